// status.signals of a serving SpecServe, from two scrapes of its stable pods one measurement
// window apart, through the project's one signal parser (operator/src/autoscaler/signals.ts).
// Pure: the reconciler scrapes (scrape.ts) and keeps the last scrape per pod uid.
// Figures are rounded so that noise writes no status; a window without verification rounds (no
// traffic) keeps the last tau with its tauTime instead of blanking it; figures that are unchanged
// keep their time, so an idle fleet writes nothing.
import { type Exposition, parseExposition } from "../../autoscaler/exposition.ts";
import { deriveSignals, type Scrape, type Signals } from "../../autoscaler/signals.ts";
import { type ConditionInput, formatTime } from "../../lib/conditions.ts";
import { verificationRounds } from "./gate.ts";
import type { SpecServeStatus } from "./observe.ts";

export type MeasuredSignals = NonNullable<SpecServeStatus["signals"]>;

/**
 * One pod's metrics at one time, as text or already parsed (the shared scrapes hold them parsed);
 * keyed by uid so a recreated pod (same name) counts as new.
 */
export type PodMetrics = { uid: string; pod: string; timeMs: number } & (
  | { text: string; exposition?: undefined }
  | { exposition: Exposition; text?: undefined }
);

export interface SignalsWindow {
  previous: MeasuredSignals | undefined;
  /** The last scrape kept per pod uid (empty at the first measurement). */
  start: readonly PodMetrics[];
  /** This window's scrapes that answered. */
  end: readonly PodMetrics[];
  /** Pods that did not answer, with why. */
  failed: readonly { pod: string; error: string }[];
  nowMs: number;
  /** The measurement window as configured (shown in status; the window when no pod is in both). */
  window: string;
  windowMs: number;
}

export interface SignalsOutcome {
  /** The new status.signals (the previous object itself when nothing changed). */
  signals: MeasuredSignals | undefined;
  /** The MetricsAvailable condition. */
  condition: ConditionInput & { message: string };
  /** The scrapes to keep for the next window (those that parsed). */
  keep: PodMetrics[];
}

export const METRICS_AVAILABLE = "MetricsAvailable";

/** Families whose presence says the engine counts speculation (vLLM counters, SGLang gauges). */
const SPECULATIVE_FAMILY = /(^vllm:spec_decode_num_drafts$)|(^sglang[:_]spec_accept_length$)/;

function hasSpeculativeFamily(e: Exposition): boolean {
  for (const name of e.types.keys()) if (SPECULATIVE_FAMILY.test(name)) return true;
  return e.samples.some((s) => SPECULATIVE_FAMILY.test(s.name.replace(/_total$/, "")));
}

const round2 = (x: number) => Math.round(x * 100) / 100;
const sig3 = (x: number) => (x === 0 || !Number.isFinite(x) ? 0 : Number(x.toPrecision(3)));
const opt = <T>(x: T | null | undefined, f: (v: T) => T) =>
  x === null || x === undefined ? undefined : f(x);

const listPods = (pods: readonly { pod: string; error: string }[]) =>
  pods
    .slice(0, 3)
    .map((p) => `${p.pod}: ${p.error}`)
    .join("; ") + (pods.length > 3 ? `; and ${pods.length - 3} more` : "");

/** Drops undefined fields, so status compares equal to what the API server returns. */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function sameFigures(a: MeasuredSignals | undefined, b: MeasuredSignals): boolean {
  const { time: _a, ...ra } = a ?? {};
  const { time: _b, ...rb } = b;
  return JSON.stringify(sortKeys(ra)) === JSON.stringify(sortKeys(rb));
}
const sortKeys = (o: object) => Object.fromEntries(Object.entries(o).sort(([x], [y]) => (x < y ? -1 : 1)));

/** The figures status.signals shows, rounded; tau and its companions only from a window with rounds. */
export function figuresFrom(
  s: Signals,
  previous: MeasuredSignals | undefined,
  nowMs: number,
  window: string,
) {
  const rounds = verificationRounds(s) ?? 0;
  const measuredTau = s.tau !== null && rounds > 0;
  const tauPart = measuredTau
    ? {
        tau: round2(s.tau as number),
        tauTime: formatTime(nowMs),
        // An integer in the CRD: a counter delta that is not whole (fractional counters, a rate
        // times a window) would otherwise make the status write fail validation, again and again.
        rounds: Math.round(rounds),
        acceptanceByPosition: s.acceptanceByPosition?.map(round2),
      }
    : {
        tau: previous?.tau,
        tauTime: previous?.tauTime,
        rounds: previous?.rounds,
        acceptanceByPosition: previous?.acceptanceByPosition,
      };
  return compact({
    ...tauPart,
    ttftP50: opt(s.ttftP50, sig3),
    ttftP95: opt(s.ttftP95, sig3),
    tpotP50: opt(s.tpotP50, sig3),
    tpotP95: opt(s.tpotP95, sig3),
    tokensPerSecondPerUser: opt(s.tokensPerSecondPerUser, sig3),
    runningRequests: opt(s.running, round2),
    waitingRequests: opt(s.waiting, round2),
    throughput: opt(s.generationTokensPerSecond, sig3),
    window,
  }) as MeasuredSignals;
}

export function signalsStatus(w: SignalsWindow): SignalsOutcome {
  const failed = [...w.failed];
  const parsed: { m: PodMetrics; exposition: Exposition }[] = [];
  for (const m of w.end) {
    try {
      parsed.push({ m, exposition: m.exposition ?? parseExposition(m.text) });
    } catch (err) {
      failed.push({ pod: m.pod, error: err instanceof Error ? err.message : String(err) });
    }
  }
  const keep = parsed.map((p) => p.m);
  if (parsed.length === 0) {
    const condition = failed.length
      ? {
          type: METRICS_AVAILABLE,
          status: "False" as const,
          reason: "ScrapeFailed",
          message: `no serving pod's /metrics could be read: ${listPods(failed)}`,
        }
      : {
          type: METRICS_AVAILABLE,
          status: "False" as const,
          reason: "NoReadyPods",
          message: "no ready pod to scrape",
        };
    return { signals: w.previous, condition, keep };
  }
  const speculative = parsed.filter((p) => hasSpeculativeFamily(p.exposition));
  const condition: SignalsOutcome["condition"] =
    speculative.length === 0
      ? {
          type: METRICS_AVAILABLE,
          status: "False",
          reason: "NoSpeculativeCounters",
          message: `${parsed.map((p) => p.m.pod).join(", ")} expose no speculative-decoding metrics (vllm:spec_decode_num_drafts or sglang spec_accept_length); is speculation on and are metrics enabled?`,
        }
      : failed.length
        ? {
            type: METRICS_AVAILABLE,
            status: "False",
            reason: "ScrapeFailed",
            message: `${failed.length} of ${failed.length + parsed.length} pods could not be scraped (${listPods(failed)}); figures from the others`,
          }
        : {
            type: METRICS_AVAILABLE,
            status: "True",
            reason: "Scraped",
            message: `${parsed.length} pod(s) scraped every ${w.window}`,
          };

  const startByUid = new Map(w.start.map((m) => [m.uid, m]));
  const common = parsed.filter((p) => startByUid.has(p.m.uid));
  if (startByUid.size === 0) {
    // The first scrape is the start of the first window.
    return {
      signals: w.previous,
      condition:
        condition.status === "True"
          ? { ...condition, reason: "Measuring", message: `first scrape taken; figures after ${w.window}` }
          : condition,
      keep,
    };
  }
  let windowMs = 0;
  for (const p of common) windowMs = Math.max(windowMs, p.m.timeMs - (startByUid.get(p.m.uid)?.timeMs ?? 0));
  if (!(windowMs > 0)) windowMs = w.windowMs;
  const toScrape = (m: PodMetrics, exposition = m.exposition): Scrape => ({
    pod: m.uid,
    time: m.timeMs / 1000,
    ...(exposition ? { exposition } : { text: m.text }),
  });
  let signals: Signals;
  try {
    signals = deriveSignals(
      w.start.map((m) => toScrape(m)),
      parsed.map((p) => toScrape(p.m, p.exposition)),
      windowMs / 1000,
    );
  } catch (err) {
    // A kept scrape that no longer parses cannot be: it parsed when kept. Say so rather than crash.
    return {
      signals: w.previous,
      condition: {
        type: METRICS_AVAILABLE,
        status: "False",
        reason: "BadMetrics",
        message: err instanceof Error ? err.message : String(err),
      },
      keep,
    };
  }
  const figures = figuresFrom(signals, w.previous, w.nowMs, w.window);
  if (w.previous && sameFigures(w.previous, figures)) return { signals: w.previous, condition, keep };
  return { signals: { ...figures, time: formatTime(w.nowMs) }, condition, keep };
}
