// A controller: events from informers become keys in a WorkQueue; workers call reconcile(key).
// Contract (controller-runtime's):
//   - return nothing        → success, the key's backoff is reset;
//   - return {requeueAfterMs} → run again after that delay (polling), backoff reset;
//   - throw                  → retry with per-key exponential backoff;
//   - throw TerminalError    → no retry; onTerminalError records it (e.g. a Failed condition);
//   - 409 / ConflictError    → routine optimistic-lock loss: requeue with backoff, info log, not an error;
//   - an error carrying the server's Retry-After (a 429 the client could not wait out) → retried
//     no sooner than that.
// Reconcile is level-based: it gets only the key and must read current state from the caches.
import { randomUUID } from "node:crypto";
import type { V1OwnerReference } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { type Clock, realClock } from "./clock.ts";
import { isConflict, TerminalError } from "./errors.ts";
import type { Informer } from "./informer.ts";
import { silentLogger } from "./log.ts";
import { Metrics, type ReconcileOutcome } from "./metrics.ts";
import { WorkQueue } from "./queue.ts";
import type { RateLimiter } from "./ratelimit.ts";
import { type KubeObject, keyOf, parseKey } from "./rest.ts";

export interface ReconcileContext {
  key: string;
  namespace: string | undefined;
  name: string;
  /** Unique per reconcile call; also on every line logged through log. */
  reconcileID: string;
  /** Carries controller, key and reconcileID. */
  log: Logger;
  /**
   * Aborted when this replica must stop writing (leadership lost) or shutdown gives up waiting for
   * this reconcile. Pass it to long work; the Manager's client already observes it on every call.
   */
  signal: AbortSignal;
}

export type ReconcileResult = undefined | { requeueAfterMs: number };
// biome-ignore lint/suspicious/noConfusingVoidType: lets `async () => {}` (no return) be a Reconcile.
export type Reconcile = (key: string, ctx: ReconcileContext) => Promise<ReconcileResult | void>;

/** Maps an event on a watched object to the keys to reconcile. */
export type MapFunc<T> = (obj: T) => string[];

export interface ControllerOptions<T extends KubeObject> {
  /** Short name used in metrics and logs, e.g. "drafttraining". */
  name: string;
  /** The primary kind: each of its events enqueues its own key. */
  for: Informer<T>;
  /**
   * Whether an update of a primary object is worth a pass (controller-runtime's update predicate);
   * default: every update. Adds and deletes always enqueue. A predicate may skip only changes the
   * pass does not read, or ones the controller's own periodic requeue picks up from the cache.
   */
  forUpdate?: (old: T, obj: T) => boolean;
  /** Child kinds: an event enqueues the child's controller owner when that owner is of the primary kind. */
  owns?: Informer<KubeObject>[];
  /** Other kinds with a custom mapping (e.g. a Pod → the owner of its Job). */
  watches?: { informer: Informer<KubeObject>; map: MapFunc<KubeObject> }[];
  reconcile: Reconcile;
  /** Called after a TerminalError; record it on the object. If this throws, the key is retried. */
  onTerminalError?: (err: TerminalError, ctx: ReconcileContext) => Promise<void>;
  /** Concurrent reconciles (different keys). Default 1. */
  workers?: number;
  logger?: Logger;
  metrics?: Metrics;
  clock?: Clock;
  rateLimiter?: RateLimiter;
  /** Aborts every reconcile's ctx.signal (the Manager passes its leadership signal). */
  signal?: AbortSignal;
}

/** The controller ownerReference of obj, if any. */
export function controllerOf(obj: KubeObject): V1OwnerReference | undefined {
  return obj.metadata?.ownerReferences?.find((r) => r.controller === true);
}

const groupOf = (apiVersion: string) => (apiVersion.includes("/") ? apiVersion.split("/")[0] : "");

/** MapFunc enqueuing the controlling owner of the given kind (same namespace). */
export function ownerKeys(owner: { apiVersion: string; kind: string }): MapFunc<KubeObject> {
  return (obj) => {
    const ref = controllerOf(obj);
    if (!ref || ref.kind !== owner.kind || groupOf(ref.apiVersion) !== groupOf(owner.apiVersion)) return [];
    const ns = obj.metadata?.namespace;
    return [ns ? `${ns}/${ref.name}` : ref.name];
  };
}

export class Controller<T extends KubeObject = KubeObject> {
  readonly name: string;
  readonly queue: WorkQueue;
  readonly #opts: ControllerOptions<T>;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #clock: Clock;
  readonly #abort = new AbortController();
  readonly #signal: AbortSignal;
  readonly #unsubscribe: (() => void)[] = [];
  #workers: Promise<void>[] = [];
  #started = false;

  constructor(opts: ControllerOptions<T>) {
    this.#opts = opts;
    this.name = opts.name;
    this.#clock = opts.clock ?? realClock;
    this.#metrics = opts.metrics ?? new Metrics();
    this.#log = (opts.logger ?? silentLogger).child({ controller: opts.name });
    this.queue = new WorkQueue({
      clock: this.#clock,
      rateLimiter: opts.rateLimiter,
      metrics: this.#metrics.queue(opts.name),
    });
    this.#metrics.initController(opts.name);
    this.#signal = opts.signal ? AbortSignal.any([this.#abort.signal, opts.signal]) : this.#abort.signal;
  }

  /** Subscribes to the informers (replaying their caches) and starts the workers. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const enqueue = (map: MapFunc<KubeObject>) => ({
      add: (o: KubeObject) => this.#enqueueAll(map(o)),
      update: (old: KubeObject, o: KubeObject) => this.#enqueueAll([...map(old), ...map(o)]),
      delete: (o: KubeObject) => this.#enqueueAll(map(o)),
    });
    const primary = this.#opts.for.resource;
    const forUpdate = this.#opts.forUpdate as ((old: KubeObject, o: KubeObject) => boolean) | undefined;
    const own = enqueue((o) => [keyOf(o)]);
    this.#unsubscribe.push(
      this.#opts.for.addHandler(
        forUpdate
          ? {
              ...own,
              update: (old, o) => {
                if (forUpdate(old, o)) own.update(old, o);
                else this.#metrics.updatesSkipped.inc({ controller: this.name });
              },
            }
          : own,
      ),
    );
    for (const child of this.#opts.owns ?? [])
      this.#unsubscribe.push(child.addHandler(enqueue(ownerKeys(primary))));
    for (const w of this.#opts.watches ?? []) this.#unsubscribe.push(w.informer.addHandler(enqueue(w.map)));
    const workers = Math.max(1, this.#opts.workers ?? 1);
    this.#workers = Array.from({ length: workers }, () => this.#work());
    this.#log.info({ workers }, "controller started");
  }

  /**
   * Stops intake, waits up to timeoutMs for in-flight reconciles (0: abort them at once, as on a
   * lost leadership); true if they all finished.
   */
  async stop(timeoutMs = 30_000): Promise<boolean> {
    for (const u of this.#unsubscribe.splice(0)) u();
    this.queue.shutdown();
    const drained = this.queue.processing() === 0 || (timeoutMs > 0 && (await this.queue.drain(timeoutMs)));
    if (!drained) {
      this.#log.warn(
        { inFlight: this.queue.processing() },
        "shutdown timed out; abandoning in-flight reconciles",
      );
      this.#abort.abort();
    } else {
      await Promise.all(this.#workers);
    }
    this.#log.info({ drained }, "controller stopped");
    return drained;
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  #enqueueAll(keys: string[]): void {
    for (const k of new Set(keys)) this.queue.add(k);
  }

  async #work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.#process(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  async #process(key: string): Promise<void> {
    const reconcileID = randomUUID();
    const { namespace, name } = parseKey(key);
    const log = this.#log.child({ key, reconcileID });
    const ctx: ReconcileContext = { key, namespace, name, reconcileID, log, signal: this.#signal };
    const labels = { controller: this.name };
    const started = this.#clock.now();
    this.#metrics.activeWorkers.inc(labels);
    let outcome: ReconcileOutcome;
    try {
      const result = await this.#opts.reconcile(key, ctx);
      this.queue.forget(key);
      if (result && result.requeueAfterMs > 0) {
        this.queue.addAfter(key, result.requeueAfterMs);
        outcome = "requeue_after";
      } else {
        outcome = "success";
      }
      log.debug({ outcome }, "reconciled");
    } catch (err) {
      outcome = await this.#failed(err, ctx);
    } finally {
      this.#metrics.activeWorkers.dec(labels);
      this.#metrics.reconcileTime.observe(labels, (this.#clock.now() - started) / 1000);
    }
    this.#metrics.reconcileTotal.inc({ ...labels, result: outcome });
  }

  async #failed(err: unknown, ctx: ReconcileContext): Promise<ReconcileOutcome> {
    const labels = { controller: this.name };
    if (ctx.signal.aborted) {
      ctx.log.info({ reason: (err as Error).message }, "reconcile aborted");
      return "error";
    }
    if (err instanceof TerminalError) {
      this.queue.forget(ctx.key);
      this.#metrics.reconcileErrors.inc(labels);
      this.#metrics.terminalErrors.inc(labels);
      ctx.log.error({ err }, "terminal reconcile error; not retrying");
      try {
        await this.#opts.onTerminalError?.(err, ctx);
      } catch (hookErr) {
        // The failure isn't recorded yet, so the key must come back.
        ctx.log.warn({ err: hookErr }, "recording terminal error failed; retrying");
        this.queue.addRateLimited(ctx.key);
      }
      return "error";
    }
    if (isConflict(err)) {
      ctx.log.info({ reason: (err as Error).message }, "conflict; requeueing");
      this.queue.addRateLimited(ctx.key);
      return "requeue";
    }
    this.#metrics.reconcileErrors.inc(labels);
    const retryAfterMs = (err as { retryAfterMs?: number } | null)?.retryAfterMs;
    ctx.log.error(
      { err, retries: this.queue.retries(ctx.key), retryAfterMs },
      "reconcile failed; retrying with backoff",
    );
    this.queue.addRateLimited(ctx.key, typeof retryAfterMs === "number" ? retryAfterMs : 0);
    return "error";
  }
}
