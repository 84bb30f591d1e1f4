// The I/O half of status.signals: scrapes a SpecServe's stable pods once per measurement window
// (spec.autoscaling.window, else DEFAULT_SIGNALS_WINDOW) and keeps the last scrape per pod uid in
// memory (lost on restart: the first window after it only starts again). signals-status.ts
// computes the figures and the MetricsAvailable condition.
// The scrapes go through the operator's shared pod-scrape cache (../shared/pod-scrapes.ts): when
// another reader (the autoscaler, deciding once a window over the same pods) scraped them since
// this meter last did, the meter takes those results instead of a second scrape, and from then on
// follows that reader's phase (waiting up to half a window for its next scrape rather than taking
// its own), so each pod answers once per window.
import type { SpecServe } from "../../api/kinds.ts";
import type { KubeObject } from "../../lib/rest.ts";
import { parseDuration } from "../../lib/time.ts";
import type { SharedScrape } from "../shared/pod-scrapes.ts";
import { freshnessMs } from "../shared/pod-scrapes.ts";
import { readyPods, type ScrapablePod } from "./scrape.ts";
import { type PodMetrics, type SignalsOutcome, signalsStatus } from "./signals-status.ts";

/** status.signals' measurement window when spec.autoscaling.window is not set (its default too). */
export const DEFAULT_SIGNALS_WINDOW = "2m";

/** The meter's view of the shared scrapes. */
export interface MeterScrapes {
  /** Scrapes the pods, reusing a pod's result taken at or after `since` (ms). */
  scrape(ss: SpecServe, pods: ScrapablePod[], signal: AbortSignal, since: number): Promise<SharedScrape[]>;
  /** When the newest result held for the pod was taken (by any reader), if one is held. */
  latestMs(ss: SpecServe, pod: ScrapablePod): number | undefined;
}

export function signalsMeter(scrapes: MeterScrapes) {
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
    let since = now - freshnessMs(windowMs);
    if (kept && kept.pods.length > 0) {
      // The newest scrape of these pods that another reader took since this meter's last.
      let other: number | undefined;
      for (const p of ready) {
        const t = scrapes.latestMs(ss, p);
        if (t !== undefined && t > kept.timeMs && (other === undefined || t > other)) other = t;
      }
      if (other !== undefined) {
        // Its next scrape comes sooner than half a window: wait for it rather than scrape twice.
        if (now - other > windowMs / 2 && other + windowMs > now) return { dueInMs: other + windowMs - now };
        since = Math.max(kept.timeMs + 1, now - windowMs / 2);
      }
    }
    const results = await scrapes.scrape(ss, ready, signal, since);
    const outcome = signalsStatus({
      previous: ss.status?.signals,
      start: kept?.pods ?? [],
      end: results.flatMap((r) =>
        r.ok ? [{ uid: r.uid, pod: r.pod, exposition: r.exposition, timeMs: r.timeMs }] : [],
      ),
      failed: results.flatMap((r) => (r.ok ? [] : [{ pod: r.pod, error: r.error }])),
      nowMs: now,
      window,
      windowMs,
    });
    // The window ends at the newest result used (perhaps another reader's, taken before now).
    const timeMs = results.length ? Math.max(...results.map((r) => r.timeMs)) : now;
    memory.set(key, { ssUid: uid, timeMs, pods: outcome.keep, tried });
    return { outcome, dueInMs: Math.max(windowMs / 2, timeMs + windowMs - now) };
  }

  return { measure, forget: (key: string) => memory.delete(key) };
}
