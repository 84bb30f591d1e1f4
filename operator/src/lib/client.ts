// A thin REST client: plain JSON in and out, for any kind in a ResourceTable. Why not the generated
// typed APIs: the informer cache, SSA bodies and status patches all want the wire JSON (string
// timestamps, unknown fields kept), one small surface is easy to inject in tests, and the generated
// client costs more memory than the operator's whole budget (see connection.ts). Errors are ApiError.
// Every call has a deadline (requestTimeoutMs, covering headers and body; the connection adds a
// connect timeout) and takes an AbortSignal, so a hung API server can neither freeze a worker nor
// stop(). 429s are retried after the server's Retry-After while the deadline allows. Lists are
// read in pages (limit/continue). A watch that sends nothing, not even a bookmark, for
// watchInactivityTimeoutMs ends, and the informer resumes it from the last resourceVersion.
// Requests go through the connection's undici dispatcher with `request` (a Node stream), not
// `fetch`: fetch's web streams, Headers and Response objects cost CPU on every call and watch chunk,
// and an operator at fleet scale makes hundreds of calls a window (docs/benchmarks.md).
import type { Dispatcher } from "undici";
import { type Clock, deadlineSignal, realClock, sleep } from "./clock.ts";
import { type Connection, connectionFromKubeConfig, type KubeConfigLike } from "./connection.ts";
import { ApiError, isGone, parseRetryAfter, RequestTimeoutError } from "./errors.ts";
import { collectionPath, type KubeObject, objectPath, type Resource } from "./rest.ts";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchHandle {
  /** Resolves once the server accepted the watch (2xx headers); rejects like done on an HTTP error. */
  readonly opened?: Promise<void>;
  /** Resolves when the stream ends normally (server close, inactivity, stop()); rejects on HTTP errors. */
  readonly done: Promise<void>;
  stop(): void;
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export type PatchType = "json" | "merge" | "apply";

export interface RequestOptions {
  /** Aborts the call (the caller gave up: shutdown, lost leadership). */
  signal?: AbortSignal;
}

export interface ListOptions extends RequestOptions {
  labelSelector?: string;
  /** Page size (limit/continue); default 500. */
  limit?: number;
}

export interface WatchOptions extends RequestOptions {
  resourceVersion: string;
  labelSelector?: string;
}

export interface WriteOptions extends RequestOptions {
  fieldManager?: string;
}

export interface PatchOptions extends RequestOptions {
  type: PatchType;
  fieldManager?: string;
  force?: boolean;
  fieldValidation?: "Strict" | "Warn" | "Ignore";
  subresource?: string;
}

export interface DeleteOptions extends RequestOptions {
  propagationPolicy?: string;
}

/** Everything the library needs from the API server; inject a fake or a wrapper in tests. */
export interface Client {
  get<T extends KubeObject>(
    r: Resource<T>,
    namespace: string | undefined,
    name: string,
    opts?: RequestOptions,
  ): Promise<T>;
  list<T extends KubeObject>(r: Resource<T>, namespace?: string, opts?: ListOptions): Promise<ListResult<T>>;
  watch<T extends KubeObject>(
    r: Resource<T>,
    namespace: string | undefined,
    opts: WatchOptions,
    onEvent: (type: WatchEventType, obj: T) => void,
  ): WatchHandle;
  create<T extends KubeObject>(r: Resource<T>, obj: T, opts?: WriteOptions): Promise<T>;
  /** PUT; obj.metadata.resourceVersion makes it conditional (409 on a stale write). */
  replace<T extends KubeObject>(r: Resource<T>, obj: T, opts?: WriteOptions): Promise<T>;
  patch<T extends KubeObject>(
    r: Resource<T>,
    namespace: string | undefined,
    name: string,
    body: unknown,
    opts: PatchOptions,
  ): Promise<T>;
  delete(r: Resource, namespace: string | undefined, name: string, opts?: DeleteOptions): Promise<void>;
}

export interface KubeClientOptions {
  /** Deadline of one call, from sending to the last byte of the answer (429 retries included). Default 30 s. */
  requestTimeoutMs?: number;
  /** A watch silent this long (no event, no bookmark) is closed; the informer resumes it. Default 2 min. */
  watchInactivityTimeoutMs?: number;
  /** Page size of lists. Default 500. */
  listPageSize?: number;
  clock?: Clock;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_WATCH_INACTIVITY_TIMEOUT_MS = 120_000;
const MAX_THROTTLE_RETRIES = 5;

const CONTENT_TYPES: Record<PatchType, string> = {
  json: "application/json-patch+json",
  merge: "application/merge-patch+json",
  apply: "application/apply-patch+yaml", // JSON is YAML
};

export class KubeClient implements Client {
  readonly #conn: Connection;
  readonly #requestTimeoutMs: number;
  readonly #watchInactivityMs: number;
  readonly #pageSize: number;
  readonly #clock: Clock;

  /** A connection (loadConnection()), or a client-node KubeConfig as tests and tools hold. */
  constructor(conn: Connection | KubeConfigLike, opts: KubeClientOptions = {}) {
    this.#conn = "dispatcher" in conn ? conn : connectionFromKubeConfig(conn);
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#watchInactivityMs = opts.watchInactivityTimeoutMs ?? DEFAULT_WATCH_INACTIVITY_TIMEOUT_MS;
    this.#pageSize = opts.listPageSize ?? 500;
    this.#clock = opts.clock ?? realClock;
  }

  get<T extends KubeObject>(
    r: Resource<T>,
    namespace: string | undefined,
    name: string,
    opts: RequestOptions = {},
  ): Promise<T> {
    return this.#request<T>("GET", objectPath(r, namespace, name), {}, undefined, opts.signal);
  }

  async list<T extends KubeObject>(
    r: Resource<T>,
    namespace?: string,
    opts: ListOptions = {},
  ): Promise<ListResult<T>> {
    type Page = { items?: T[]; metadata?: { resourceVersion?: string; continue?: string } };
    const path = collectionPath(r, namespace);
    const limit = opts.limit ?? this.#pageSize;
    const items: T[] = [];
    let page: Page | undefined;
    let token: string | undefined;
    do {
      const query = { labelSelector: opts.labelSelector, limit: String(limit), continue: token };
      try {
        page = await this.#request<Page>("GET", path, query, undefined, opts.signal);
      } catch (err) {
        // The continue token expired mid-list (etcd compacted): read it whole, as client-go's pager does.
        if (!(token && isGone(err))) throw err;
        items.length = 0;
        query.limit = "0";
        query.continue = undefined;
        page = await this.#request<Page>("GET", path, query, undefined, opts.signal);
      }
      // Lists don't carry apiVersion/kind on their items; restore them so cached objects are whole.
      for (const o of page.items ?? []) items.push({ ...o, apiVersion: r.apiVersion, kind: r.kind });
      token = page.metadata?.continue || undefined;
    } while (token);
    return { items, resourceVersion: page?.metadata?.resourceVersion ?? "" };
  }

  watch<T extends KubeObject>(
    r: Resource<T>,
    namespace: string | undefined,
    opts: WatchOptions,
    onEvent: (type: WatchEventType, obj: T) => void,
  ): WatchHandle {
    const stopped = new AbortController();
    // Server-side end of the watch, jittered like client-go so reconnects spread out.
    const serverTimeoutS = 300 + Math.floor(Math.random() * 300);
    const url = this.#url(collectionPath(r, namespace), {
      watch: "true",
      resourceVersion: opts.resourceVersion,
      allowWatchBookmarks: "true",
      labelSelector: opts.labelSelector,
      timeoutSeconds: String(serverTimeoutS),
    });
    // Headers within the request deadline; then at most the inactivity timeout between chunks.
    const idle = new AbortController();
    let idleTimer = this.#clock.after(this.#requestTimeoutMs, () => idle.abort());
    const touch = () => {
      idleTimer.cancel();
      idleTimer = this.#clock.after(this.#watchInactivityMs, () => idle.abort());
    };
    const live = [stopped.signal, idle.signal, ...(opts.signal ? [opts.signal] : [])];
    const signal = AbortSignal.any(live);
    let markOpened!: () => void;
    let failOpen!: (err: unknown) => void;
    const opened = new Promise<void>((resolve, reject) => {
      markOpened = resolve;
      failOpen = reject;
    });
    opened.catch(() => {}); // done carries the same error to whoever waits
    const done = (async () => {
      try {
        const res = await this.#conn.dispatcher.request({
          origin: url.origin,
          path: url.pathname + url.search,
          method: "GET",
          headers: { ...(await untilAborted(this.#conn.headers(), signal)), accept: "application/json" },
          signal,
        });
        if (res.statusCode < 200 || res.statusCode >= 300) {
          const text = await res.body.text();
          throw new ApiError(
            res.statusCode,
            `watch ${r.plural}: ${res.statusCode} ${text.slice(0, 500)}`,
            parseJson(text),
            headerRecord(res.headers),
          );
        }
        touch();
        markOpened();
        // One JSON event per line; a line may arrive split across chunks.
        let pending = "";
        const decoder = new TextDecoder();
        for await (const chunk of res.body) {
          touch();
          pending += decoder.decode(chunk as Uint8Array, { stream: true });
          let nl = pending.indexOf("\n");
          while (nl >= 0) {
            const line = pending.slice(0, nl).trim();
            pending = pending.slice(nl + 1);
            if (line) {
              const event = JSON.parse(line) as { type: WatchEventType; object: T };
              onEvent(event.type, event.object);
            }
            nl = pending.indexOf("\n");
          }
        }
      } catch (err) {
        failOpen(err);
        // stop(), the caller's signal or inactivity: a normal end (the informer resumes).
        if (signal.aborted) return;
        if (err instanceof ApiError) throw err;
        // So is a connection the server closed.
        const code = (err as { code?: string; cause?: { code?: string } }).code;
        if (
          code === "UND_ERR_SOCKET" ||
          (err as { cause?: { code?: string } }).cause?.code === "UND_ERR_SOCKET"
        )
          return;
        throw err;
      } finally {
        idleTimer.cancel();
        failOpen(new Error("watch ended before it opened")); // no-op once opened
      }
    })();
    return { opened, done, stop: () => stopped.abort() };
  }

  create<T extends KubeObject>(r: Resource<T>, obj: T, opts: WriteOptions = {}): Promise<T> {
    const path = collectionPath(r, obj.metadata?.namespace);
    return this.#request<T>("POST", path, { fieldManager: opts.fieldManager }, obj, opts.signal);
  }

  replace<T extends KubeObject>(r: Resource<T>, obj: T, opts: WriteOptions = {}): Promise<T> {
    const path = objectPath(r, obj.metadata?.namespace, obj.metadata?.name ?? "");
    return this.#request<T>("PUT", path, { fieldManager: opts.fieldManager }, obj, opts.signal);
  }

  patch<T extends KubeObject>(
    r: Resource<T>,
    namespace: string | undefined,
    name: string,
    body: unknown,
    opts: PatchOptions,
  ): Promise<T> {
    const query = {
      fieldManager: opts.fieldManager,
      force: opts.type === "apply" ? String(opts.force ?? false) : undefined,
      fieldValidation: opts.fieldValidation,
    };
    return this.#request<T>(
      "PATCH",
      objectPath(r, namespace, name, opts.subresource),
      query,
      body,
      opts.signal,
      CONTENT_TYPES[opts.type],
    );
  }

  async delete(
    r: Resource,
    namespace: string | undefined,
    name: string,
    opts: DeleteOptions = {},
  ): Promise<void> {
    const body = opts.propagationPolicy ? { propagationPolicy: opts.propagationPolicy } : undefined;
    await this.#request("DELETE", objectPath(r, namespace, name), {}, body, opts.signal);
  }

  #url(path: string, query: Record<string, string | undefined>): URL {
    const url = new URL(this.#conn.server + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    return url;
  }

  async #request<T>(
    method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
    path: string,
    query: Record<string, string | undefined>,
    body: unknown,
    callerSignal: AbortSignal | undefined,
    contentType = "application/json",
  ): Promise<T> {
    const what = `${method} ${path}`;
    const timeoutMs = this.#requestTimeoutMs;
    const startedAt = this.#clock.now();
    const deadline = deadlineSignal(
      this.#clock,
      timeoutMs,
      () => new RequestTimeoutError(`${what}: no complete answer within ${timeoutMs} ms (request timeout)`),
      callerSignal,
    );
    const { signal } = deadline;
    try {
      for (let attempt = 1; ; attempt++) {
        let res: Dispatcher.ResponseData;
        let text: string;
        try {
          const url = this.#url(path, query);
          res = await this.#conn.dispatcher.request({
            origin: url.origin,
            path: url.pathname + url.search,
            method,
            headers: {
              ...(await untilAborted(this.#conn.headers(), signal)),
              accept: "application/json",
              ...(body !== undefined ? { "content-type": contentType } : {}),
            },
            body: body === undefined ? undefined : JSON.stringify(body),
            signal,
          });
          text = await res.body.text();
        } catch (err) {
          // The deadline's or the caller's reason says why better than undici's AbortError.
          if (signal.aborted) throw signal.reason ?? err;
          throw err;
        }
        const parsed = text ? parseJson(text) : undefined;
        const status = res.statusCode;
        if (status >= 200 && status < 300) return parsed as T;
        const headers = headerRecord(res.headers);
        const retryAfterMs = status === 429 ? parseRetryAfter(headers["retry-after"]) : undefined;
        const left = timeoutMs - (this.#clock.now() - startedAt);
        if (retryAfterMs !== undefined && attempt < MAX_THROTTLE_RETRIES && retryAfterMs < left) {
          await sleep(this.#clock, retryAfterMs, signal);
          if (signal.aborted) throw signal.reason;
          continue;
        }
        const message = (parsed as { message?: string } | undefined)?.message ?? (text || `HTTP ${status}`);
        throw new ApiError(status, `${what}: ${status} ${message}`, parsed, headers);
      }
    } finally {
      deadline.cancel();
    }
  }
}

/** p, or signal's reason once it aborts first (an exec credential plugin that hangs, say). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Response headers as one string each (a repeated header's values joined, as fetch's Headers do). */
function headerRecord(headers: Dispatcher.ResponseData["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers))
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
