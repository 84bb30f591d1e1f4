// The figures of one live window: the serving pods' /metrics text scraped before the load Job ran
// and after it finished, read through the project's one signal parser (autoscaler/signals.ts), and
// the load's own counts. Pure. vLLM's counters give tau = 1 + delta(accepted) / delta(drafts) summed
// over the pods and per position delta(accepted at i) / delta(drafts): the vllm convention.
import { deriveSignals, type Scrape } from "../../autoscaler/signals.ts";
import type { TaskResult } from "./verdict.ts";

/** What a window's start keeps (in its snapshot ConfigMap): when, and every ready pod's text. */
export interface Snapshot {
  /** Unix seconds of the scrape. */
  time: number;
  pods: { pod: string; text: string }[];
}

export const SNAPSHOT_KEY = "scrape.json";

export function encodeSnapshot(s: Snapshot): Record<string, string> {
  return { [SNAPSHOT_KEY]: JSON.stringify(s) };
}

export function decodeSnapshot(data: Record<string, string> | undefined): Snapshot | undefined {
  const raw = data?.[SNAPSHOT_KEY];
  if (!raw) return undefined;
  try {
    const s = JSON.parse(raw) as Snapshot;
    return typeof s.time === "number" && Array.isArray(s.pods) ? s : undefined;
  } catch {
    return undefined;
  }
}

/** The load task's per-task-set counts (the contract result's load.tasks row). */
export interface LoadCounts {
  requests: number;
  completionTokens: number;
  requestSeconds: number;
  durationSeconds: number;
}

export type Measurement = { ok: true; result: TaskResult } | { ok: false; message: string };

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;
const opt = (x: number | null | undefined, digits = 6) =>
  x === null || x === undefined || !Number.isFinite(x) ? undefined : round(x, digits);

/**
 * One task set's live figures from the window [before.time, afterTime]. Fails (with a message a
 * person can act on) when no pod answered or the engines' counters show no speculative round.
 */
export function measureWindow(
  task: string,
  before: Snapshot,
  after: Snapshot,
  load: LoadCounts,
  k: number | undefined,
): Measurement {
  if (after.pods.length === 0)
    return { ok: false, message: "no ready serving pod answered /metrics at the end of the load" };
  const windowSeconds = Math.max(after.time - before.time, 1e-3);
  const scrape = (s: Snapshot): Scrape[] => s.pods.map((p) => ({ pod: p.pod, text: p.text, time: s.time }));
  let signals: ReturnType<typeof deriveSignals>;
  try {
    signals = deriveSignals(scrape(before), scrape(after), windowSeconds);
  } catch (err) {
    return { ok: false, message: `reading the serving pods' /metrics: ${(err as Error).message}` };
  }
  if (!signals.engine)
    return {
      ok: false,
      message: "the serving pods' /metrics carry neither vLLM's nor SGLang's metric names",
    };
  if (signals.tau === null)
    return {
      ok: false,
      message: `the serving pods' /metrics show no speculative round during the load (${signals.engine}; ${load.requests} requests sent)`,
    };
  const byPosition = signals.acceptanceByPosition?.slice(0, k ?? undefined).map((a) => round(Math.min(1, a)));
  const live: NonNullable<TaskResult["live"]> = {
    requests: load.requests,
    pods: signals.pods.scraped,
  };
  const figures = {
    ttftP50Seconds: opt(signals.ttftP50),
    ttftP95Seconds: opt(signals.ttftP95),
    tpotP50Seconds: opt(signals.tpotP50),
    tpotP95Seconds: opt(signals.tpotP95),
    tokensPerSecondPerUser:
      load.requestSeconds > 0 ? round(load.completionTokens / load.requestSeconds, 2) : undefined,
  };
  for (const [key, value] of Object.entries(figures))
    if (value !== undefined) (live as Record<string, number>)[key] = value;
  const result: TaskResult = {
    name: task,
    samples: load.requests,
    tau: round(signals.tau),
    convention: "vllm",
    live,
  };
  if (byPosition?.length) result.acceptanceByPosition = byPosition;
  if (load.durationSeconds > 0)
    result.tokensPerSecond = round(load.completionTokens / load.durationSeconds, 2);
  return { ok: true, result };
}
