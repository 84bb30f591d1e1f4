// Error classes and predicates shared by the helpers and the controller's retry logic.

/** A non-2xx answer of the API server: HTTP code, the Status body, the response headers. */
export class ApiError extends Error {
  override name = "ApiError";
  readonly code: number;
  readonly body: unknown;
  readonly headers: Record<string, string>;

  constructor(code: number, message: string, body?: unknown, headers: Record<string, string> = {}) {
    super(message);
    this.code = code;
    this.body = body;
    this.headers = headers;
  }

  /** The server's Retry-After (seconds or an HTTP date) in ms, when it sent one (429, some 503s). */
  get retryAfterMs(): number | undefined {
    return parseRetryAfter(this.headers["retry-after"]);
  }
}

export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** A request that got no complete answer within its deadline (a hung or unreachable API server). */
export class RequestTimeoutError extends Error {
  override name = "RequestTimeoutError";
}

/** Throw from reconcile to stop retrying a key: the input cannot succeed until it changes. */
export class TerminalError extends Error {
  override name = "TerminalError";
  /** Condition reason the controller's onTerminalError hook should record. */
  readonly reason: string;

  constructor(message: string, opts: { reason?: string; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.reason = opts.reason ?? "TerminalError";
  }
}

/** An optimistic-concurrency loss (409, or a JSON Patch `test` that failed): requeue, don't alarm. */
export class ConflictError extends Error {
  override name = "ConflictError";
}

/** HTTP status of an API error: ours, or client-node's ApiException (same .code) from a test. */
export function statusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === "number" ? code : undefined;
}

export function isNotFound(err: unknown): boolean {
  return statusCode(err) === 404;
}

export function isConflict(err: unknown): boolean {
  return err instanceof ConflictError || statusCode(err) === 409;
}

export function isGone(err: unknown): boolean {
  return statusCode(err) === 410;
}

/** The API server's Status message from an ApiError body, or the error's own message. */
export function apiMessage(err: unknown): string {
  if (statusCode(err) !== undefined) {
    const raw = (err as { body?: unknown }).body;
    const body = typeof raw === "string" ? safeJson(raw) : raw;
    const msg = (body as { message?: unknown } | undefined)?.message;
    return typeof msg === "string" ? msg : (err as Error).message;
  }
  return err instanceof Error ? err.message : String(err);
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return { message: s };
  }
}
