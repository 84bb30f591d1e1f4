// Time as a dependency: the queue, rate limiter, informer backoff and leader election take a Clock
// so unit tests drive time by hand instead of sleeping or patching globals.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number;
  /** Runs fn after ms; the timer never keeps the process alive on its own. */
  after(ms: number, fn: () => void): Timer;
}

export const realClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/** Resolves after ms on the given clock, or early (without throwing) when signal aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = clock.after(ms, done);
    function done() {
      timer.cancel();
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** A clock that only moves when told to; timers fire in due order during advance(). */
export class ManualClock implements Clock {
  #now: number;
  #timers: { due: number; seq: number; fn: () => void }[] = [];
  #seq = 0;

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  after(ms: number, fn: () => void): Timer {
    const entry = { due: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.push(entry);
    return {
      cancel: () => {
        const i = this.#timers.indexOf(entry);
        if (i >= 0) this.#timers.splice(i, 1);
      },
    };
  }

  /** Moves time forward by ms, firing every timer that falls due (including ones they schedule). */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.due - b.due || a.seq - b.seq);
      const next = this.#timers[0];
      if (!next || next.due > target) break;
      this.#timers.shift();
      this.#now = next.due;
      next.fn();
    }
    this.#now = target;
  }

  pendingTimers(): number {
    return this.#timers.length;
  }
}

/**
 * A signal that aborts after ms on the given clock, or when any of parents aborts; cancel() stops
 * its timer once the work it bounds is done.
 */
export function deadlineSignal(
  clock: Clock,
  ms: number,
  reason: () => Error,
  ...parents: (AbortSignal | undefined)[]
): { signal: AbortSignal; cancel(): void } {
  const controller = new AbortController();
  const timer = clock.after(ms, () => controller.abort(reason()));
  const live = parents.filter((p): p is AbortSignal => p !== undefined);
  const signal = live.length > 0 ? AbortSignal.any([controller.signal, ...live]) : controller.signal;
  return { signal, cancel: () => timer.cancel() };
}
