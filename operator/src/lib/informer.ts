// One shared informer per kind: list, then watch from the list's resourceVersion with bookmarks,
// keeping a Cache current and telling handlers about adds, updates and deletes.
//  - 410 Gone (on the watch request or as an ERROR event) → relist at once; objects missing from
//    the new list are reported as deletes, so nothing is lost while the watch was down.
//  - Any other list/watch error → retry with capped exponential backoff (never give up, never
//    exit the process); a watch resumes from the last resourceVersion it saw.
//  - A watch that ends normally (server timeout, client-node's 30 s request timeout) resumes from
//    the last resourceVersion.
// Namespaces: one list/watch per configured namespace (or one cluster-wide). Per-namespace watches
// need only namespaced RBAC (a Role per namespace), which is what a restricted install grants.
import type { Logger } from "pino";
import { Cache, type Store } from "./cache.ts";
import type { Client, WatchEventType } from "./client.ts";
import { type Clock, realClock, sleep } from "./clock.ts";
import { ApiError, isGone } from "./errors.ts";
import { silentLogger } from "./log.ts";
import { type KubeObject, keyOf, type Resource } from "./resources.ts";

export interface EventHandler<T> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  delete?(obj: T): void;
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
  readonly #syncWaiters: (() => void)[] = [];
  readonly #watches = new Set<{ stop(): void }>();
  /** Own writes recorded ahead of their watch event, by object key. */
  readonly #recorded = new Map<string, { resourceVersion: string; before: T | undefined }>();
  #abort = new AbortController();
  #loops: Promise<void>[] = [];
  #started = false;

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

  /**
   * Records the result of this process's own write, so the next reconcile does not act on the
   * version it just replaced (a stale read would re-add a finalizer or re-write the same status).
   * Only when the cache still holds the version the write started from: anything newer that the
   * watch already delivered wins, and the watch event of the write itself arrives later anyway.
   * No handlers run: the write's own watch event will notify them.
   */
  recordWrite(basedOn: T | undefined, written: T | undefined): void {
    if (!written?.metadata?.resourceVersion) return;
    const current = this.#cache.get(written.metadata.namespace, written.metadata.name ?? "");
    // basedOn undefined: a create, recorded only while the watch has not delivered it yet.
    if (current?.metadata?.resourceVersion !== basedOn?.metadata?.resourceVersion) return;
    this.#cache.upsert((this.#opts.transform ? this.#opts.transform(written) : written) as T);
    // The write's watch event then carries a version the cache already holds; it must still reach
    // the handlers (other controllers watching this kind learn of the write only from it).
    this.#recorded.set(keyOf(written), {
      resourceVersion: written.metadata.resourceVersion,
      before: current,
    });
  }

  hasSynced(): boolean {
    return this.#scopes.every((s) => this.#synced.has(s));
  }

  /** Resolves true once every scope has listed, or false if the informer stops first / signal aborts. */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.hasSynced()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onAbort = () => resolve(false);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#abort.signal.addEventListener("abort", onAbort, { once: true });
      this.#syncWaiters.push(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve(true);
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
          this.#markSynced(namespace);
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
        failures++;
        const delayMs = Math.min(maxMs, initialMs * 2 ** (failures - 1)) * (0.8 + 0.4 * Math.random());
        log.warn({ err, failures, delayMs: Math.round(delayMs) }, "list/watch failed; retrying");
        await sleep(this.#clock, delayMs, this.#abort.signal);
      }
    }
  }

  async #relist(namespace: string | undefined): Promise<string> {
    const { items, resourceVersion } = await this.#client.list(this.resource, namespace, {
      labelSelector: this.#opts.labelSelector,
    });
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
        if (type === "ADDED" || type === "MODIFIED") this.#upsert(obj);
        else if (type === "DELETED") this.#remove(obj);
      },
    );
    this.#watches.add(handle);
    return handle.done
      .then(() => {
        if (failure) throw failure;
        return last;
      })
      .finally(() => this.#watches.delete(handle));
  }

  #upsert(raw: T): void {
    const obj = (this.#opts.transform ? this.#opts.transform(raw) : raw) as T;
    const recorded = this.#takeRecorded(obj);
    const old = this.#cache.upsert(obj);
    const stored = this.#cache.get(obj.metadata?.namespace, obj.metadata?.name ?? "") as T;
    if (!old) this.#emit("add", stored);
    else if (old.metadata?.resourceVersion !== stored.metadata?.resourceVersion)
      this.#emit("update", stored, old);
    else if (recorded) {
      if (recorded.before) this.#emit("update", stored, recorded.before);
      else this.#emit("add", stored);
    }
  }

  /** The recorded own write this watch event delivers, if any; any event for the object ends the record. */
  #takeRecorded(obj: T): { before: T | undefined } | undefined {
    const key = keyOf(obj);
    const recorded = this.#recorded.get(key);
    if (!recorded) return undefined;
    this.#recorded.delete(key);
    return recorded.resourceVersion === obj.metadata?.resourceVersion ? recorded : undefined;
  }

  #remove(obj: T): void {
    this.#recorded.delete(keyOf(obj));
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
    if (this.hasSynced()) for (const w of this.#syncWaiters.splice(0)) w();
  }
}
