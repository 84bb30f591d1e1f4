// controller-runtime's default rate limiter: the larger of a per-key exponential backoff
// (5 ms doubling up to 1000 s) and a global token bucket (10 qps, burst 100). The bucket keeps a
// hot-looping controller from hammering the API server even when many keys fail at once.
import type { Clock } from "./clock.ts";

export interface RateLimiter {
  /** Delay in ms before key may be retried; each call counts as one more failure. */
  when(key: string): number;
  /** Clears key's failure history (after a success). */
  forget(key: string): void;
  /** Failures recorded for key since the last forget. */
  retries(key: string): number;
}

export class ExponentialBackoff implements RateLimiter {
  readonly #failures = new Map<string, number>();
  readonly baseMs: number;
  readonly maxMs: number;

  constructor(baseMs = 5, maxMs = 1_000_000) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }

  when(key: string): number {
    const n = this.#failures.get(key) ?? 0;
    this.#failures.set(key, n + 1);
    // 2 ** 1024 is Infinity; min() keeps the cap exact for any failure count.
    return Math.min(this.maxMs, this.baseMs * 2 ** n);
  }

  forget(key: string): void {
    this.#failures.delete(key);
  }

  retries(key: string): number {
    return this.#failures.get(key) ?? 0;
  }
}

/** Token bucket: each when() reserves a token and returns how long until it is available. */
export class TokenBucket implements RateLimiter {
  readonly qps: number;
  readonly burst: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;

  constructor(clock: Clock, qps = 10, burst = 100) {
    this.#clock = clock;
    this.qps = qps;
    this.burst = burst;
    this.#tokens = burst;
    this.#last = clock.now();
  }

  when(_key: string): number {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.qps);
    this.#last = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.qps) * 1000;
  }

  forget(_key: string): void {}

  retries(_key: string): number {
    return 0;
  }
}

export class MaxOf implements RateLimiter {
  readonly #limiters: RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.#limiters = limiters;
  }

  when(key: string): number {
    return Math.max(...this.#limiters.map((l) => l.when(key)));
  }

  forget(key: string): void {
    for (const l of this.#limiters) l.forget(key);
  }

  retries(key: string): number {
    return Math.max(...this.#limiters.map((l) => l.retries(key)));
  }
}

export function defaultRateLimiter(clock: Clock): RateLimiter {
  return new MaxOf(new ExponentialBackoff(5, 1_000_000), new TokenBucket(clock, 10, 100));
}
