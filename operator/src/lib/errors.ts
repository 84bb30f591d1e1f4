// Error classes and predicates shared by the helpers and the controller's retry logic.
import { ApiException } from "@kubernetes/client-node";

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

export function statusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  return undefined;
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

/** The API server's Status message from an ApiException body, or the error's own message. */
export function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body = typeof err.body === "string" ? safeJson(err.body) : err.body;
    const msg = (body as { message?: unknown } | undefined)?.message;
    return typeof msg === "string" ? msg : err.message;
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
