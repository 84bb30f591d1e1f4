// The I/O half of status.signals: scrapes a SpecServe's stable pods once per measurement window
// (spec.autoscaling.window, else DEFAULT_SIGNALS_WINDOW) and keeps the last scrape per pod uid in
// memory (lost on restart: the first window after it only starts again). signals-status.ts
// computes the figures and the MetricsAvailable condition.
import type { SpecServe } from "../../api/kinds.ts";
import type { KubeObject } from "../../lib/rest.ts";
import { parseDuration } from "../../lib/time.ts";
import { type PodScrape, readyPods, type ScrapablePod } from "./scrape.ts";
import { type PodMetrics, type SignalsOutcome, signalsStatus } from "./signals-status.ts";

/** status.signals' measurement window when spec.autoscaling.window is not set (its default too). */
export const DEFAULT_SIGNALS_WINDOW = "2m";

type Scraper = (ss: SpecServe, pods: ScrapablePod[], signal: AbortSignal) => Promise<PodScrape[]>;

export function signalsMeter(scrape: Scraper) {
  /** By SpecServe key: the last scrapes that answered, and which ready pods were tried. */
  const memory = new Map<string, { ssUid: string; timeMs: number; pods: PodMetrics[]; tried: string }>();

  /**
   * Scrapes the stable pods once per measurement window and folds the window into status.signals
   * and the MetricsAvailable condition (signals-status.ts). Returns when the next window is due.
   */
  async function measure(
    key: string,
    ss: SpecServe,
    stablePods: KubeObject[],
    now: number,
    signal: AbortSignal,
  ): Promise<{ outcome?: SignalsOutcome; dueInMs: number }> {
    const window = ss.spec.autoscaling?.window ?? DEFAULT_SIGNALS_WINDOW;
    const windowMs = parseDuration(window) ?? 120_000;
    const uid = ss.metadata.uid ?? "";
    const last = memory.get(key);
    const kept = last && last.ssUid === uid ? last : undefined;
    const ready = readyPods(stablePods as ScrapablePod[]);
    const tried = ready
      .map((p) => p.metadata?.uid ?? "")
      .sort()
      .join(",");
    // A reconcile for another reason in mid-window measures nothing (5% slack for timer jitter),
    // unless no pod answered last time and the ready pods changed since (a first pod became ready).
    const waiting = kept && now - kept.timeMs < windowMs * 0.95;
    if (waiting && (kept.pods.length > 0 || kept.tried === tried)) {
      return { dueInMs: Math.max(1000, kept.timeMs + windowMs - now) };
    }
    const results = await scrape(ss, ready, signal);
    const outcome = signalsStatus({
      previous: ss.status?.signals,
      start: kept?.pods ?? [],
      end: results.flatMap((r) => (r.ok ? [{ uid: r.uid, pod: r.pod, text: r.text, timeMs: r.timeMs }] : [])),
      failed: results.flatMap((r) => (r.ok ? [] : [{ pod: r.pod, error: r.error }])),
      nowMs: now,
      window,
      windowMs,
    });
    memory.set(key, { ssUid: uid, timeMs: now, pods: outcome.keep, tried });
    return { outcome, dueInMs: windowMs };
  }

  return { measure, forget: (key: string) => memory.delete(key) };
}
