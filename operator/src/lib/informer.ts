// One shared informer per kind: list (in pages), then watch from the list's resourceVersion with
// bookmarks, keeping a Cache current and telling handlers about adds, updates and deletes.
//  - 410 Gone (on the watch request or as an ERROR event) → relist at once; objects missing from
//    the new list are reported as deletes, so nothing is lost while the watch was down.
//  - Any other list/watch error → retry with capped exponential backoff, at least the server's
//    Retry-After (never give up, never exit the process); a watch resumes from the last
//    resourceVersion it saw.
//  - A watch that ends normally (the server's timeoutSeconds, the client's inactivity timeout, a
//    closed connection) resumes from the last resourceVersion.
//  - Synced = listed and the watch accepted. A list or watch refused with 403/404 before that fails
//    waitForSync with a message naming the resource and the missing verb (or CRD), so start-up
//    fails instead of waiting forever.
// Namespaces: one list/watch per configured namespace (or one cluster-wide). Per-namespace watches
// need only namespaced RBAC (a Role per namespace), which is what a restricted install grants.
import type { Logger } from "pino";
import type { Client, WatchEventType } from "./client.ts";
import { type Clock, realClock, sleep } from "./clock.ts";
import { ApiError, isGone, statusCode } from "./errors.ts";
import { silentLogger } from "./log.ts";
import type { KubeObject, Resource } from "./rest.ts";
import { Cache, type Store } from "./store.ts";

export interface EventHandler<T> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  delete?(obj: T): void;
}

/** The informer cannot list its kind: RBAC refuses it (403) or the API server does not serve it (404). */
export class InformerSyncError extends Error {
  override name = "InformerSyncError";
}

export interface InformerOptions {
  /**
   * Trims each object before it is cached (like controller-runtime's cache transforms): keep only
   * what reconcilers read, so caching thousands of Jobs or Pods costs little memory.
   */
  transform?: (obj: KubeObject) => KubeObject;
  /** Namespaces to watch; undefined or empty = all namespaces. */
  namespaces?: readonly string[];
  labelSelector?: string;
  clock?: Clock;
  logger?: Logger;
  /** Retry backoff after list/watch errors. Default 800 ms doubling to 30 s (client-go's reflector). */
  backoff?: { initialMs: number; maxMs: number };
}

export class Informer<T extends KubeObject> {
  readonly resource: Resource<T>;
  readonly #cache = new Cache<T>();
  readonly #client: Client;
  readonly #scopes: (string | undefined)[];
  readonly #opts: InformerOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #handlers = new Set<EventHandler<T>>();
  readonly #synced = new Set<string | undefined>();
  readonly #syncWaiters: { resolve(): void; reject(err: Error): void }[] = [];
  readonly #watches = new Set<{ stop(): void }>();
  #abort = new AbortController();
  #loops: Promise<void>[] = [];
  #started = false;
  #lastError?: Error;
  #syncError?: InformerSyncError;
  /** The highest resourceVersion this informer has seen from the server (list, events, bookmarks). */
  #seenVersion = 0n;

  constructor(client: Client, resource: Resource<T>, opts: InformerOptions = {}) {
    this.#client = client;
    this.resource = resource;
    this.#opts = opts;
    this.#scopes = resource.namespaced && opts.namespaces?.length ? [...opts.namespaces] : [undefined];
    this.#clock = opts.clock ?? realClock;
    this.#log = (opts.logger ?? silentLogger).child({ informer: resource.plural });
  }

  get store(): Store<T> {
    return this.#cache;
  }

  /** Registers h; current objects are replayed to it as adds. Returns an unsubscribe function. */
  addHandler(h: EventHandler<T>): () => void {
    this.#handlers.add(h);
    for (const obj of this.#cache.list()) this.#call(h, "add", obj);
    return () => this.#handlers.delete(h);
  }

  /** The last list/watch failure (for start-up and readiness messages); cleared by a good list. */
  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /**
   * Records the result of this process's own write, so the next reconcile does not act on the
   * version it just replaced (a stale read would re-add a finalizer or re-write the same status).
   * The cache only moves forward: the write is taken when it is newer than the cached object, or,
   * for an object not cached, newer than anything the watch has delivered (else its absence is a
   * delete the watch already reported, and recording it would resurrect the object). Handlers are
   * told as for a watch event, and the write's own watch event, arriving later with the same
   * resourceVersion, is then a no-op: every handler sees the write exactly once.
   * basedOn is unused (kept for callers); resourceVersions decide.
   */
  recordWrite(_basedOn: T | undefined, written: T | undefined): void {
    const version = numericVersion(written?.metadata?.resourceVersion);
    if (!written || version === undefined) return;
    const current = this.#cache.get(written.metadata?.namespace, written.metadata?.name ?? "");
    const floor = current ? numericVersion(current.metadata?.resourceVersion) : this.#seenVersion;
    if (floor === undefined || version <= floor) return;
    this.#upsert(written);
  }

  hasSynced(): boolean {
    return this.#scopes.every((s) => this.#synced.has(s));
  }

  /**
   * Resolves true once every scope has listed, or false if the informer stops first / signal
   * aborts. Rejects with InformerSyncError when a list is refused (403/404) before the first sync.
   */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.hasSynced()) return Promise.resolve(true);
    if (this.#syncError) return Promise.reject(this.#syncError);
    return new Promise((resolve, reject) => {
      const onAbort = () => resolve(false);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#abort.signal.addEventListener("abort", onAbort, { once: true });
      this.#syncWaiters.push({
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve(true);
        },
        reject,
      });
    });
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#loops = this.#scopes.map((ns) => this.#run(ns));
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    for (const w of this.#watches) w.stop();
    await Promise.allSettled(this.#loops);
  }

  async #run(namespace: string | undefined): Promise<void> {
    const log = namespace ? this.#log.child({ namespace }) : this.#log;
    const { initialMs, maxMs } = this.#opts.backoff ?? { initialMs: 800, maxMs: 30_000 };
    let resourceVersion: string | undefined;
    let failures = 0;
    while (!this.#abort.signal.aborted) {
      try {
        if (resourceVersion === undefined) {
          resourceVersion = await this.#relist(namespace);
          failures = 0;
          log.debug({ resourceVersion }, "listed");
        }
        const started = this.#clock.now();
        resourceVersion = await this.#watch(namespace, resourceVersion);
        failures = 0;
        // A watch that the server closes at once must not become a hot loop.
        if (this.#clock.now() - started < 1000) await sleep(this.#clock, 1000, this.#abort.signal);
      } catch (err) {
        if (this.#abort.signal.aborted) break;
        if (isGone(err)) {
          log.info({ resourceVersion }, "resourceVersion too old (410 Gone); relisting");
          resourceVersion = undefined;
          continue;
        }
        const verb = resourceVersion === undefined ? "list" : "watch";
        const explained = this.#explain(err, verb, namespace);
        this.#lastError = explained;
        if (!this.hasSynced() && explained instanceof InformerSyncError) {
          this.#syncError = explained;
          for (const w of this.#syncWaiters.splice(0)) w.reject(explained);
        }
        failures++;
        const backoffMs = Math.min(maxMs, initialMs * 2 ** (failures - 1)) * (0.8 + 0.4 * Math.random());
        const delayMs = Math.max(backoffMs, (err as ApiError).retryAfterMs ?? 0);
        log.warn(
          { err: explained, failures, delayMs: Math.round(delayMs) },
          `${verb} ${this.resource.plural} failed; retrying`,
        );
        await sleep(this.#clock, delayMs, this.#abort.signal);
      }
    }
  }

  async #relist(namespace: string | undefined): Promise<string> {
    const { items, resourceVersion } = await this.#client.list(this.resource, namespace, {
      labelSelector: this.#opts.labelSelector,
      signal: this.#abort.signal,
    });
    this.#lastError = undefined;
    this.#see(resourceVersion);
    const seen = new Set<string>();
    for (const obj of items) {
      seen.add(`${obj.metadata?.namespace ?? ""}/${obj.metadata?.name}`);
      this.#upsert(obj);
    }
    for (const obj of this.#cache.list(namespace)) {
      if (!seen.has(`${obj.metadata?.namespace ?? ""}/${obj.metadata?.name}`)) this.#remove(obj);
    }
    return resourceVersion;
  }

  /** Watches until the stream ends; resolves the last resourceVersion seen. */
  #watch(namespace: string | undefined, resourceVersion: string): Promise<string> {
    let last = resourceVersion;
    let failure: Error | undefined;
    const handle = this.#client.watch(
      this.resource,
      namespace,
      { resourceVersion, labelSelector: this.#opts.labelSelector },
      (type: WatchEventType, obj: T) => {
        if (failure || this.#abort.signal.aborted) return;
        if (type === "ERROR") {
          const status = obj as { code?: number; message?: string };
          failure = new ApiError(
            status.code ?? 500,
            `watch ${this.resource.plural}: ${status.message}`,
            status,
            {},
          );
          handle.stop();
          return;
        }
        last = obj.metadata?.resourceVersion ?? last;
        this.#see(last);
        if (type === "ADDED" || type === "MODIFIED") this.#upsert(obj);
        else if (type === "DELETED") this.#remove(obj);
      },
    );
    this.#watches.add(handle);
    // Synced once listed and watching: a role that may list but not watch fails start-up too.
    (handle.opened ?? Promise.resolve()).then(
      () => this.#markSynced(namespace),
      () => {},
    );
    return handle.done
      .then(() => {
        if (failure) throw failure;
        return last;
      })
      .finally(() => this.#watches.delete(handle));
  }

  #see(resourceVersion: string | undefined): void {
    const v = numericVersion(resourceVersion);
    if (v !== undefined && v > this.#seenVersion) this.#seenVersion = v;
  }

  /** A 403/404 as an InformerSyncError that says what to grant or install; other errors as they are. */
  #explain(err: unknown, verb: "list" | "watch", namespace: string | undefined): Error {
    const r = this.resource;
    const where = namespace ? `in namespace "${namespace}"` : "cluster-wide";
    const group = r.apiVersion.includes("/") ? r.apiVersion.split("/")[0] : "";
    const code = statusCode(err);
    if (code === 403)
      return new InformerSyncError(
        `cannot ${verb} ${r.plural} ${where}: forbidden (403); the operator's role needs verb "${verb}" on resource "${r.plural}" in apiGroup "${group}"`,
        { cause: err },
      );
    if (code === 404)
      return new InformerSyncError(
        `cannot ${verb} ${r.plural} ${where}: the API server does not serve ${r.apiVersion} ${r.plural} (404); is its CRD installed?`,
        { cause: err },
      );
    return err instanceof Error ? err : new Error(String(err));
  }

  #upsert(raw: T): void {
    // A version already held is the same object (a resourceVersion names one): the watch event of a
    // write recordWrite stored, or a relist of what did not change. Not transformed or stored again.
    const version = raw.metadata?.resourceVersion;
    if (
      version !== undefined &&
      this.#cache.get(raw.metadata?.namespace, raw.metadata?.name ?? "")?.metadata?.resourceVersion ===
        version
    )
      return;
    const obj = (this.#opts.transform ? this.#opts.transform(raw) : raw) as T;
    const old = this.#cache.upsert(obj);
    const stored = this.#cache.get(obj.metadata?.namespace, obj.metadata?.name ?? "") as T;
    if (!old) this.#emit("add", stored);
    else if (old.metadata?.resourceVersion !== stored.metadata?.resourceVersion)
      this.#emit("update", stored, old);
  }

  #remove(obj: T): void {
    const old = this.#cache.remove(obj);
    if (old) this.#emit("delete", old);
  }

  #emit(event: "add" | "update" | "delete", obj: T, old?: T): void {
    for (const h of this.#handlers) this.#call(h, event, obj, old);
  }

  #call(h: EventHandler<T>, event: "add" | "update" | "delete", obj: T, old?: T): void {
    try {
      if (event === "update") h.update?.(old as T, obj);
      else h[event]?.(obj);
    } catch (err) {
      this.#log.error({ err, event }, "event handler threw");
    }
  }

  #markSynced(namespace: string | undefined): void {
    this.#synced.add(namespace);
    if (this.hasSynced()) for (const w of this.#syncWaiters.splice(0)) w.resolve();
  }
}

/** resourceVersions are etcd revisions: compare them as integers (undefined when not numeric). */
function numericVersion(rv: string | undefined): bigint | undefined {
  return rv && /^\d+$/.test(rv) ? BigInt(rv) : undefined;
}
