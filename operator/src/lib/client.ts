// A thin REST client: plain JSON in and out, for any kind in a ResourceTable. Why not the generated
// typed APIs: the informer cache, SSA bodies and status patches all want the wire JSON (string
// timestamps, unknown fields kept), one small surface is easy to inject in tests, and the generated
// client costs more memory than the operator's whole budget (see connection.ts). Errors are ApiError.
import { fetch } from "undici";
import { type Connection, connectionFromKubeConfig, type KubeConfigLike } from "./connection.ts";
import { ApiError } from "./errors.ts";
import { collectionPath, type KubeObject, objectPath, type Resource } from "./rest.ts";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchHandle {
  /** Resolves when the stream ends normally (server close, client timeout, stop()); rejects on HTTP errors. */
  readonly done: Promise<void>;
  stop(): void;
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export type PatchType = "json" | "merge" | "apply";

export interface PatchOptions {
  type: PatchType;
  fieldManager?: string;
  force?: boolean;
  fieldValidation?: "Strict" | "Warn" | "Ignore";
  subresource?: string;
}

/** Everything the library needs from the API server; inject a fake or a wrapper in tests. */
export interface Client {
  get<T extends KubeObject>(r: Resource<T>, namespace: string | undefined, name: string): Promise<T>;
  list<T extends KubeObject>(
    r: Resource<T>,
    namespace?: string,
    opts?: { labelSelector?: string },
  ): Promise<ListResult<T>>;
  watch<T extends KubeObject>(
    r: Resource<T>,
    namespace: string | undefined,
    opts: { resourceVersion: string; labelSelector?: string },
    onEvent: (type: WatchEventType, obj: T) => void,
  ): WatchHandle;
  create<T extends KubeObject>(r: Resource<T>, obj: T, opts?: { fieldManager?: string }): Promise<T>;
  /** PUT; obj.metadata.resourceVersion makes it conditional (409 on a stale write). */
  replace<T extends KubeObject>(r: Resource<T>, obj: T, opts?: { fieldManager?: string }): Promise<T>;
  patch<T extends KubeObject>(
    r: Resource<T>,
    namespace: string | undefined,
    name: string,
    body: unknown,
    opts: PatchOptions,
  ): Promise<T>;
  delete(
    r: Resource,
    namespace: string | undefined,
    name: string,
    opts?: { propagationPolicy?: string },
  ): Promise<void>;
}

const CONTENT_TYPES: Record<PatchType, string> = {
  json: "application/json-patch+json",
  merge: "application/merge-patch+json",
  apply: "application/apply-patch+yaml", // JSON is YAML
};

export class KubeClient implements Client {
  readonly #conn: Connection;

  /** A connection (loadConnection()), or a client-node KubeConfig as tests and tools hold. */
  constructor(conn: Connection | KubeConfigLike) {
    this.#conn = "dispatcher" in conn ? conn : connectionFromKubeConfig(conn);
  }

  get<T extends KubeObject>(r: Resource<T>, namespace: string | undefined, name: string): Promise<T> {
    return this.#request<T>("GET", objectPath(r, namespace, name));
  }

  async list<T extends KubeObject>(
    r: Resource<T>,
    namespace?: string,
    opts: { labelSelector?: string } = {},
  ): Promise<ListResult<T>> {
    const list = await this.#request<{ items?: T[]; metadata?: { resourceVersion?: string } }>(
      "GET",
      collectionPath(r, namespace),
      { labelSelector: opts.labelSelector },
    );
    // Lists don't carry apiVersion/kind on their items; restore them so cached objects are whole.
    const items = (list.items ?? []).map((o) => ({ ...o, apiVersion: r.apiVersion, kind: r.kind }));
    return { items, resourceVersion: list.metadata?.resourceVersion ?? "" };
  }

  watch<T extends KubeObject>(
    r: Resource<T>,
    namespace: string | undefined,
    opts: { resourceVersion: string; labelSelector?: string },
    onEvent: (type: WatchEventType, obj: T) => void,
  ): WatchHandle {
    const abort = new AbortController();
    const url = this.#url(collectionPath(r, namespace), {
      watch: "true",
      resourceVersion: opts.resourceVersion,
      allowWatchBookmarks: "true",
      labelSelector: opts.labelSelector,
      // Server-side end of the watch, jittered like client-go so reconnects spread out.
      timeoutSeconds: String(300 + Math.floor(Math.random() * 300)),
    });
    const done = (async () => {
      try {
        const res = await fetch(url, {
          headers: { ...this.#conn.headers(), accept: "application/json" },
          dispatcher: this.#conn.dispatcher,
          signal: abort.signal,
        });
        if (!res.ok || !res.body) {
          const text = await res.text();
          throw new ApiError(
            res.status,
            `watch ${r.plural}: ${res.status} ${text.slice(0, 500)}`,
            parseJson(text),
          );
        }
        // One JSON event per line; a line may arrive split across chunks.
        let pending = "";
        const decoder = new TextDecoder();
        for await (const chunk of res.body) {
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
        // stop() aborts the request: a normal end. So is a connection the server closed.
        if (abort.signal.aborted || (err as { name?: string }).name === "AbortError") return;
        if (err instanceof ApiError) throw err;
        if ((err as { code?: string }).code === "UND_ERR_SOCKET") return;
        throw err;
      }
    })();
    return { done, stop: () => abort.abort() };
  }

  create<T extends KubeObject>(r: Resource<T>, obj: T, opts: { fieldManager?: string } = {}): Promise<T> {
    return this.#request<T>("POST", collectionPath(r, obj.metadata?.namespace), opts, obj);
  }

  replace<T extends KubeObject>(r: Resource<T>, obj: T, opts: { fieldManager?: string } = {}): Promise<T> {
    const path = objectPath(r, obj.metadata?.namespace, obj.metadata?.name ?? "");
    return this.#request<T>("PUT", path, opts, obj);
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
      CONTENT_TYPES[opts.type],
    );
  }

  async delete(
    r: Resource,
    namespace: string | undefined,
    name: string,
    opts: { propagationPolicy?: string } = {},
  ): Promise<void> {
    const body = opts.propagationPolicy ? { propagationPolicy: opts.propagationPolicy } : undefined;
    await this.#request("DELETE", objectPath(r, namespace, name), {}, body);
  }

  #url(path: string, query: Record<string, string | undefined>): URL {
    const url = new URL(this.#conn.server + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    return url;
  }

  async #request<T>(
    method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
    path: string,
    query: Record<string, string | undefined> = {},
    body?: unknown,
    contentType = "application/json",
  ): Promise<T> {
    const res = await fetch(this.#url(path, query), {
      method,
      headers: {
        ...this.#conn.headers(),
        accept: "application/json",
        ...(body !== undefined ? { "content-type": contentType } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      dispatcher: this.#conn.dispatcher,
    });
    const text = await res.text();
    const parsed = text ? parseJson(text) : undefined;
    if (!res.ok) {
      const message = (parsed as { message?: string } | undefined)?.message ?? (text || res.statusText);
      throw new ApiError(
        res.status,
        `${method} ${path}: ${res.status} ${message}`,
        parsed,
        Object.fromEntries(res.headers),
      );
    }
    return parsed as T;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
