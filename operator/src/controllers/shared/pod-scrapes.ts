// One scrape of a serving pod's /metrics serves every controller that reads it: the SpecServe
// controller (status.signals) and the autoscaler both read the stable pods once a window, and
// without this each pod answered twice per window. Results are kept per pod uid + IP + port + path
// (a pod with a new IP, or a new pod of the same name, is scraped afresh), the newest one each;
// a caller reuses a result taken at or after the time it names (`since`), joins a scrape already in
// flight, and scrapes otherwise. Each answer is parsed once, keeping only the series the signal
// parser reads (a vLLM pod's 600-odd samples come down to about 100), and held parsed, without its
// text. Failures are kept too (a parse error is one): a pod that did not answer a moment ago is
// reported the same to both readers. Each caller keeps its own deadline and abort signal; the
// shared GET is aborted only once every caller waiting on it gave up, and such a GET is not kept.
// Thin I/O around scrape.ts's single-pod read; scrape durations go to a histogram.
import { Histogram, type Registry } from "prom-client";
import { readSeriesFilter } from "../../autoscaler/engines.ts";
import { type Exposition, parseExposition } from "../../autoscaler/exposition.ts";
import {
  DEFAULT_SCRAPE_TIMEOUT_MS,
  defaultFetchBody,
  type FetchBody,
  type ScrapablePod,
  type ScrapeOptions,
  scrapeTarget,
  timeoutMessage,
} from "../specserve/scrape.ts";

export interface PodScrapesOptions {
  /** Reads a pod's /metrics body (bytes, parsed as they came; a text in tests). */
  fetchText?: FetchBody;
  /** Clock of the scrape times (ms). */
  now?: () => number;
  /** Where the scrape-duration histogram goes (the operator's registry); none in unit tests. */
  registry?: Registry;
  /** How long a result is held after it was taken (default 15 min, longer than any usual window). */
  retainMs?: number;
}

export interface SharedScrapeOptions extends Omit<ScrapeOptions, "fetchText" | "now"> {
  /**
   * Reuse a pod's held result taken at or after this time (ms). Default: the call's start, so
   * that only a scrape in flight is joined.
   */
  since?: number;
}

type Outcome =
  | { ok: true; exposition: Exposition; timeMs: number }
  | { ok: false; error: string; timeMs: number };

/** One pod's scrape as the readers get it: its parsed series (those the signals read), or why not. */
export type SharedScrape = Outcome & { pod: string; uid: string };

interface Flight {
  promise: Promise<Outcome>;
  abort: AbortController;
  waiters: number;
}

interface Slot {
  result?: Outcome;
  flight?: Flight;
}

/**
 * How old a held result may be and still serve as a reader's scrape of this window: a quarter
 * window, at most 10 s (covers two readers due within the 5% slack of each other).
 */
export const freshnessMs = (windowMs: number) => Math.min(10_000, windowMs / 4);

const DEFAULT_RETAIN_MS = 15 * 60_000;
const SWEEP_EVERY_MS = 60_000;

export class PodScrapes {
  readonly #slots = new Map<string, Slot>();
  readonly #fetchText: FetchBody;
  readonly #now: () => number;
  readonly #retainMs: number;
  readonly #duration?: Histogram<"result">;
  #lastSweepMs = 0;

  constructor(opts: PodScrapesOptions = {}) {
    this.#fetchText = opts.fetchText ?? defaultFetchBody;
    this.#now = opts.now ?? Date.now;
    this.#retainMs = opts.retainMs ?? DEFAULT_RETAIN_MS;
    if (opts.registry)
      this.#duration = new Histogram({
        name: "specops_pod_scrape_duration_seconds",
        help: "Time to read and parse a serving pod's /metrics, by result (ok or error); one per scrape, however many controllers read it",
        labelNames: ["result"],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [opts.registry],
      });
  }

  /** One result per pod, in the order given: held, joined or scraped now (see the file comment). */
  scrape(pods: readonly ScrapablePod[], opts: SharedScrapeOptions): Promise<SharedScrape[]> {
    const now = this.#now();
    this.#sweep(now);
    const since = opts.since ?? now;
    return Promise.all(pods.map((p) => this.#one(p, opts, since)));
  }

  /** The newest result held for a pod (from any reader), if any. */
  latest(p: ScrapablePod, port: number, path?: string): SharedScrape | undefined {
    const target = scrapeTarget(p, port, path);
    const result = target.url ? this.#slots.get(target.url + target.uid)?.result : undefined;
    return result ? { ...result, pod: target.pod, uid: target.uid } : undefined;
  }

  async #one(p: ScrapablePod, opts: SharedScrapeOptions, since: number): Promise<SharedScrape> {
    const { pod, uid, url } = scrapeTarget(p, opts.port, opts.path);
    if (!url) return { pod, uid, ok: false, error: "pod has no IP yet", timeMs: this.#now() };
    const key = url + uid;
    let slot = this.#slots.get(key);
    if (!slot) {
      slot = {};
      this.#slots.set(key, slot);
    }
    if (slot.result && slot.result.timeMs >= since) return { ...slot.result, pod, uid };
    const timeoutMs = opts.timeoutMs ?? DEFAULT_SCRAPE_TIMEOUT_MS;
    const flight = slot.flight ?? this.#start(slot, url, timeoutMs);
    return { ...(await this.#wait(flight, opts.signal, timeoutMs)), pod, uid };
  }

  /** The one GET of a pod, under the deadline of the caller that started it. */
  #start(slot: Slot, url: string, timeoutMs: number): Flight {
    // Aborted by its callers (`abort`) or at its deadline: one controller and one timer, not
    // AbortSignal.any over AbortSignal.timeout (a composite signal per scrape, 1000 a window).
    const abort = new AbortController();
    const get = new AbortController();
    const onAbort = () => get.abort(abort.signal.reason);
    abort.signal.addEventListener("abort", onAbort, { once: true });
    const deadline = setTimeout(() => get.abort(new Error(timeoutMessage(timeoutMs))), timeoutMs);
    const started = performance.now();
    const signal = get.signal;
    const settled = () => {
      clearTimeout(deadline);
      abort.signal.removeEventListener("abort", onAbort);
    };
    const promise = this.#fetchText(url, signal).then(
      (body): Outcome => {
        settled();
        const timeMs = this.#now();
        try {
          return { ok: true, exposition: parseExposition(body, readSeriesFilter), timeMs };
        } catch (err) {
          return { ok: false, error: (err as Error).message, timeMs };
        }
      },
      (err): Outcome => {
        settled();
        return {
          ok: false,
          error:
            signal.aborted && !abort.signal.aborted
              ? timeoutMessage(timeoutMs)
              : err instanceof Error
                ? err.message
                : String(err),
          timeMs: this.#now(),
        };
      },
    );
    const flight: Flight = { promise, abort, waiters: 0 };
    slot.flight = flight;
    void promise.then((outcome) => {
      if (slot.flight === flight) slot.flight = undefined;
      // A GET its callers abandoned says nothing about the pod.
      if (abort.signal.aborted) return;
      slot.result = outcome;
      this.#duration?.observe({ result: outcome.ok ? "ok" : "error" }, (performance.now() - started) / 1000);
    });
    return flight;
  }

  /** Waits for a flight under this caller's own deadline and abort signal. */
  async #wait(flight: Flight, callerSignal: AbortSignal, timeoutMs: number): Promise<Outcome> {
    flight.waiters++;
    let timedOut = false;
    let onAbort: (() => void) | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await new Promise<Outcome>((resolve, reject) => {
        onAbort = () => reject(callerSignal.reason);
        if (callerSignal.aborted) return onAbort();
        callerSignal.addEventListener("abort", onAbort, { once: true });
        timer = setTimeout(() => {
          timedOut = true;
          reject(new Error(timeoutMessage(timeoutMs)));
        }, timeoutMs);
        flight.promise.then(resolve, reject);
      });
    } catch (err) {
      // The last caller's own abort (not its deadline: the GET has one) ends the GET.
      if (flight.waiters === 1 && callerSignal.aborted) flight.abort.abort();
      const error =
        timedOut && !callerSignal.aborted
          ? timeoutMessage(timeoutMs)
          : err instanceof Error
            ? err.message
            : String(err);
      return { ok: false, error, timeMs: this.#now() };
    } finally {
      flight.waiters--;
      clearTimeout(timer);
      if (onAbort) callerSignal.removeEventListener("abort", onAbort);
    }
  }

  /** Drops results older than the retention (pods that went), at most once a minute. */
  #sweep(now: number) {
    if (now - this.#lastSweepMs < SWEEP_EVERY_MS) return;
    this.#lastSweepMs = now;
    for (const [key, slot] of this.#slots)
      if (!slot.flight && (!slot.result || now - slot.result.timeMs > this.#retainMs))
        this.#slots.delete(key);
  }
}
