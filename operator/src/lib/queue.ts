// A keyed work queue with client-go's semantics: keys ("namespace/name") are deduplicated while
// waiting, a key is never handed to two workers at once (one added while it is being processed is
// queued again when done() is called), retries are rate limited per key, and shutdown stops intake
// and waits for in-flight work. Level-triggered: the queue holds keys, never events.
import { type Clock, realClock, type Timer } from "./clock.ts";
import { defaultRateLimiter, type RateLimiter } from "./ratelimit.ts";

export interface QueueMetrics {
  depth(n: number): void;
  added(): void;
  retried(): void;
  /** Seconds a key waited in the queue before a worker got it. */
  queued(seconds: number): void;
  /** Seconds a worker held a key. */
  worked(seconds: number): void;
}

const noMetrics: QueueMetrics = { depth() {}, added() {}, retried() {}, queued() {}, worked() {} };

export interface WorkQueueOptions {
  clock?: Clock;
  rateLimiter?: RateLimiter;
  metrics?: QueueMetrics;
}

export class WorkQueue {
  readonly #clock: Clock;
  readonly #limiter: RateLimiter;
  readonly #metrics: QueueMetrics;
  readonly #queue: string[] = [];
  /** Keys that need processing: queued, or added again while processing. */
  readonly #dirty = new Set<string>();
  /** Key → when a worker took it. */
  readonly #processing = new Map<string, number>();
  /** Key → when it entered the queue (for the queue-duration metric). */
  readonly #addedAt = new Map<string, number>();
  readonly #waiting = new Map<string, { due: number; timer: Timer }>();
  #getters: ((key: string | undefined) => void)[] = [];
  #idle: (() => void)[] = [];
  #shuttingDown = false;

  constructor(opts: WorkQueueOptions = {}) {
    this.#clock = opts.clock ?? realClock;
    this.#limiter = opts.rateLimiter ?? defaultRateLimiter(this.#clock);
    this.#metrics = opts.metrics ?? noMetrics;
  }

  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#metrics.added();
    this.#dirty.add(key);
    if (this.#processing.has(key)) return; // done() re-queues it
    this.#push(key);
  }

  /** Adds key after ms; a key already waiting keeps the earlier of the two times. */
  addAfter(key: string, ms: number): void {
    if (this.#shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const due = this.#clock.now() + ms;
    const existing = this.#waiting.get(key);
    if (existing && existing.due <= due) return;
    existing?.timer.cancel();
    const timer = this.#clock.after(ms, () => {
      this.#waiting.delete(key);
      this.add(key);
    });
    this.#waiting.set(key, { due, timer });
  }

  /** Adds key after its rate-limited backoff (one more failure), and not before minDelayMs. */
  addRateLimited(key: string, minDelayMs = 0): void {
    if (this.#shuttingDown) return;
    this.#metrics.retried();
    this.addAfter(key, Math.max(minDelayMs, this.#limiter.when(key)));
  }

  /** Resets key's backoff; call after a successful reconcile. */
  forget(key: string): void {
    this.#limiter.forget(key);
  }

  retries(key: string): number {
    return this.#limiter.retries(key);
  }

  /** Next key to process, or undefined once the queue is shut down. Pair every key with done(). */
  get(): Promise<string | undefined> {
    if (this.#shuttingDown) return Promise.resolve(undefined);
    const key = this.#queue.shift();
    if (key !== undefined) return Promise.resolve(this.#take(key));
    return new Promise((resolve) => this.#getters.push(resolve));
  }

  done(key: string): void {
    const started = this.#processing.get(key);
    if (started === undefined) return;
    this.#processing.delete(key);
    this.#metrics.worked((this.#clock.now() - started) / 1000);
    if (this.#dirty.has(key) && !this.#shuttingDown) this.#push(key);
    if (this.#processing.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  len(): number {
    return this.#queue.length;
  }

  processing(): number {
    return this.#processing.size;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /**
   * Stops intake and drops queued and delayed keys (level-triggered: whoever runs next relists
   * everything); waiting get() calls resolve undefined. In-flight keys finish: see drain().
   */
  shutdown(): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    for (const { timer } of this.#waiting.values()) timer.cancel();
    this.#waiting.clear();
    this.#queue.length = 0;
    this.#dirty.clear();
    this.#metrics.depth(0);
    for (const resolve of this.#getters.splice(0)) resolve(undefined);
  }

  /** Resolves true once no key is being processed, or false after timeoutMs. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.#processing.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = this.#clock.after(timeoutMs, () => resolve(false));
      this.#idle.push(() => {
        timer.cancel();
        resolve(true);
      });
    });
  }

  #push(key: string): void {
    this.#addedAt.set(key, this.#clock.now());
    const getter = this.#getters.shift();
    if (getter) {
      getter(this.#take(key));
      return;
    }
    this.#queue.push(key);
    this.#metrics.depth(this.#queue.length);
  }

  #take(key: string): string {
    const now = this.#clock.now();
    this.#metrics.queued((now - (this.#addedAt.get(key) ?? now)) / 1000);
    this.#addedAt.delete(key);
    this.#dirty.delete(key);
    this.#processing.set(key, now);
    this.#metrics.depth(this.#queue.length);
    return key;
  }
}
