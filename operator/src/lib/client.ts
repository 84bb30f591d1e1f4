// A thin REST client over KubeConfig: plain JSON in and out, for any kind in a ResourceTable.
// Why not the generated typed APIs: the informer cache, SSA bodies and status patches all want the
// wire JSON (string timestamps, unknown fields kept), and one small surface is easy to inject in
// tests. Auth, TLS and proxies still come from client-node (applySecurityAuthentication); watches
// use client-node's Watch. Errors are client-node's ApiException (.code, .body).
import { ApiException, HttpMethod, type KubeConfig, RequestContext, Watch } from "@kubernetes/client-node";
import { fetch } from "undici";
import { collectionPath, type KubeObject, objectPath, type Resource } from "./resources.ts";

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
  readonly #kc: KubeConfig;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
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
    let abort: AbortController | undefined;
    let stopped = false;
    const done = new Promise<void>((resolve, reject) => {
      const finished = (err: unknown) => {
        // client-node aborts each watch request after 30 s of silence (TimeoutError): that is a
        // normal end, the caller reconnects from its last resourceVersion.
        const name = (err as { name?: string } | null)?.name;
        if (!err || stopped || name === "TimeoutError" || name === "AbortError") return resolve();
        const code = (err as { statusCode?: number }).statusCode;
        reject(code ? new ApiException(code, `watch ${r.plural}: ${String(err)}`, undefined, {}) : err);
      };
      new Watch(this.#kc)
        .watch(
          collectionPath(r, namespace),
          {
            resourceVersion: opts.resourceVersion,
            allowWatchBookmarks: true,
            labelSelector: opts.labelSelector,
            // Server-side end of the watch, jittered like client-go so reconnects spread out.
            timeoutSeconds: 300 + Math.floor(Math.random() * 300),
          },
          (type, obj) => onEvent(type as WatchEventType, obj as T),
          finished,
        )
        .then((controller) => {
          abort = controller;
          if (stopped) controller.abort();
        }, reject);
    });
    return {
      done,
      stop() {
        stopped = true;
        abort?.abort();
      },
    };
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

  async #request<T>(
    method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
    path: string,
    query: Record<string, string | undefined> = {},
    body?: unknown,
    contentType = "application/json",
  ): Promise<T> {
    const cluster = this.#kc.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster");
    const url = new URL(cluster.server + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    const ctx = new RequestContext(url.toString(), HttpMethod[method]);
    await this.#kc.applySecurityAuthentication(ctx);
    const headers = ctx.getHeaders() as Record<string, string>;
    const res = await fetch(url, {
      method,
      headers: {
        ...headers,
        accept: "application/json",
        ...(body !== undefined ? { "content-type": contentType } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      dispatcher: ctx.getDispatcher(),
    });
    const text = await res.text();
    const parsed = text ? parseJson(text) : undefined;
    if (!res.ok) {
      const message = (parsed as { message?: string } | undefined)?.message ?? (text || res.statusText);
      throw new ApiException(
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
