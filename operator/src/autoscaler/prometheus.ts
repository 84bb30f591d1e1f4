// The window's signals read from a Prometheus HTTP API instead of two direct scrapes. Pure: the
// PromQL instant queries for one fleet, and the mapping of their answers into the same Signals the
// direct parser derives (signals.ts), so that a decision does not depend on the source.
// Counters and classic histogram buckets go through increase()/rate() over the window (Prometheus
// handles counter resets); gauges are the newest sample within the window (last_over_time, so a
// pod whose scrapes stopped does not linger for the 5 minute lookback); SGLang's acceptance figures
// are snapshot gauges and are read as they are, never rate()d. Several engines per pod (data
// parallel) and several pods are summed as the direct parser sums them; vLLM's engine-step figures
// (the online SPS(B) estimate) stay per engine, by pod and `engine` label, as the direct parser keeps
// them, and SGLang's token times per pod.
import { type EngineKind, type EngineMetrics, engineMetrics, SGLANG_PREFIXES } from "./engines.ts";
import { histogramBucket, histogramQuantile, type Signals } from "./signals.ts";
import type { EngineSteps, TokenIntervals } from "./sps-online.ts";

/** Which series are this fleet's: the ready serving pods of one SpecServe. */
export interface FleetSelector {
  namespaceLabel: string;
  namespace: string;
  podLabel: string;
  /** Names of the pods whose series count (never empty: the caller holds without pods). */
  pods: readonly string[];
  /** Further equality matchers (label name -> value). */
  matchers?: Readonly<Record<string, string>>;
}

/** One element of an instant vector as the HTTP API returns it, value parsed. */
export interface VectorSample {
  metric: Record<string, string>;
  value: number;
}

export type QueryName =
  | "running"
  | "waiting"
  | "runningMean"
  | "kvCache0"
  | "kvCache1"
  | "generation"
  | "prompt"
  | "requests"
  | "drafts"
  | "draftTokens"
  | "accepted"
  | "acceptedByPosition"
  | "ttftBuckets"
  | "tpotBuckets0"
  | "tpotBuckets1"
  | "acceptLength"
  | "acceptRate"
  | "engineSteps"
  | "stepIntervals"
  | "stepIntervalSeconds"
  | "engineDrafts"
  | "engineDraftTokens"
  | "enginePrompt"
  | "engineRunning"
  | "tokenIntervalCount"
  | "tokenIntervalSeconds"
  | "engineVerifyTokens";

export type QueryResults = Partial<Record<QueryName, readonly VectorSample[]>>;

/** A PromQL string literal (double-quoted; backslash, quote and newline escaped). */
export const promString = (value: string): string =>
  `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;

/** RE2 escaping of a literal inside a PromQL regex matcher (which is anchored). */
const regexLiteral = (value: string): string => value.replace(/[\\.+*?()|[\]{}^$]/g, "\\$&");

/** A PromQL range duration of the window, in whole milliseconds (at least 1 ms). */
export const promRange = (windowSeconds: number): string =>
  `${Math.max(1, Math.round(windowSeconds * 1000))}ms`;

/** The label vLLM puts the data-parallel engine's index in (vllm/v1/metrics/loggers.py). */
export const ENGINE_LABEL = "engine";

const PROM_LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The matcher of one series name (SGLang: either of its prefixes). */
function nameMatcher(engine: EngineMetrics, name: string): string {
  if (engine.kind === "vllm") return `__name__=${promString(engine.prefix + name)}`;
  const prefixes = SGLANG_PREFIXES.map(regexLiteral).join("|");
  return `__name__=~${promString(`(${prefixes})${regexLiteral(name)}`)}`;
}

/** `{__name__..., namespace="ns", pod=~"a|b", job="x"}` for one series name. */
export function seriesSelector(engine: EngineMetrics, name: string, fleet: FleetSelector): string {
  for (const label of [fleet.namespaceLabel, fleet.podLabel, ...Object.keys(fleet.matchers ?? {})])
    if (!PROM_LABEL.test(label) || label.startsWith("__"))
      throw new Error(`${JSON.stringify(label)} is not a Prometheus label name`);
  if (fleet.pods.length === 0) throw new Error("no pods to select");
  const parts = [
    nameMatcher(engine, name),
    `${fleet.namespaceLabel}=${promString(fleet.namespace)}`,
    `${fleet.podLabel}=~${promString(fleet.pods.map(regexLiteral).join("|"))}`,
  ];
  for (const [label, value] of Object.entries(fleet.matchers ?? {}).sort(([a], [b]) => a.localeCompare(b)))
    parts.push(`${label}=${promString(value)}`);
  return `{${parts.join(",")}}`;
}

/** The instant queries that give one window's signals for the engine's metric names. */
export function signalQueries(
  kind: EngineKind,
  fleet: FleetSelector,
  windowSeconds: number,
): Partial<Record<QueryName, string>> {
  const engine = engineMetrics(kind);
  const w = promRange(windowSeconds);
  const sel = (name: string) => seriesSelector(engine, name, fleet);
  const pod = fleet.podLabel;
  const { counters: c, gauges: g, histograms: h } = engine;
  const q: Partial<Record<QueryName, string>> = {
    running: `sum by (${pod}) (last_over_time(${sel(g.running)}[${w}]))`,
    waiting: `sum by (${pod}) (last_over_time(${sel(g.waiting)}[${w}]))`,
    runningMean: `sum(avg_over_time(${sel(g.running)}[${w}]))`,
    generation: `sum by (${pod}) (rate(${sel(`${c.generationTokens}_total`)}[${w}]))`,
    prompt: `sum(rate(${sel(`${c.promptTokens}_total`)}[${w}]))`,
    requests: `sum(rate(${sel(`${c.requestsFinished}_total`)}[${w}]))`,
    ttftBuckets: `sum by (le) (increase(${sel(`${h.ttft}_bucket`)}[${w}]))`,
  };
  g.kvCacheUsage.slice(0, 2).forEach((name, i) => {
    q[i === 0 ? "kvCache0" : "kvCache1"] = `avg(last_over_time(${sel(name)}[${w}]))`;
  });
  h.tpot.slice(0, 2).forEach((family, i) => {
    q[i === 0 ? "tpotBuckets0" : "tpotBuckets1"] = `sum by (le) (increase(${sel(`${family}_bucket`)}[${w}]))`;
  });
  if (c.drafts) q.drafts = `sum(increase(${sel(`${c.drafts}_total`)}[${w}]))`;
  if (c.acceptedTokens) q.accepted = `sum(increase(${sel(`${c.acceptedTokens}_total`)}[${w}]))`;
  if (c.draftTokens) q.draftTokens = `sum(increase(${sel(`${c.draftTokens}_total`)}[${w}]))`;
  if (c.acceptedTokensPerPosition)
    q.acceptedByPosition = `sum by (position) (increase(${sel(`${c.acceptedTokensPerPosition}_total`)}[${w}]))`;
  // vLLM's engine-step figures, one element per engine (pod and `engine` label), as vllmSteps in
  // signals.ts keys them: histogram _count and _sum and counters increased over the window, running
  // averaged over it (the direct parser averages the window's two ends).
  const { stepInterval, engineSteps } = h;
  if (stepInterval && engineSteps && c.drafts && c.draftTokens) {
    const byEngine = `sum by (${pod}, ${ENGINE_LABEL})`;
    const inc = (name: string) => `${byEngine} (increase(${sel(name)}[${w}]))`;
    q.engineSteps = inc(`${engineSteps}_count`);
    q.stepIntervals = inc(`${stepInterval}_count`);
    q.stepIntervalSeconds = inc(`${stepInterval}_sum`);
    q.engineDrafts = inc(`${c.drafts}_total`);
    q.engineDraftTokens = inc(`${c.draftTokens}_total`);
    q.enginePrompt = inc(`${c.promptTokens}_total`);
    q.engineRunning = `${byEngine} (avg_over_time(${sel(g.running)}[${w}]))`;
  }
  // SGLang's token times per pod (its tokenizer times all its schedulers), as sglangTokenIntervals
  // in signals.ts reads them: running averaged over the window and over the pod's schedulers, the
  // verify window the newest value (the acceptance length comes from acceptLength below).
  const { tokenInterval } = h;
  if (tokenInterval) {
    const inc = (name: string) => `sum by (${pod}) (increase(${sel(name)}[${w}]))`;
    q.tokenIntervalCount = inc(`${tokenInterval}_count`);
    q.tokenIntervalSeconds = inc(`${tokenInterval}_sum`);
    q.enginePrompt = inc(`${c.promptTokens}_total`);
    q.engineRunning = `avg by (${pod}) (avg_over_time(${sel(g.running)}[${w}]))`;
    if (g.verifyTokens)
      q.engineVerifyTokens = `avg by (${pod}) (last_over_time(${sel(g.verifyTokens)}[${w}]))`;
  }
  // Snapshot gauges: the newest value of each series, by pod, weighted below; never rate()d.
  if (g.acceptLength) q.acceptLength = `last_over_time(${sel(g.acceptLength)}[${w}])`;
  if (g.acceptRate) q.acceptRate = `last_over_time(${sel(g.acceptRate)}[${w}])`;
  return q;
}

/** Parses a sample value as the HTTP API writes it ("1.5", "NaN", "+Inf", "-Inf"). */
export function promNumber(text: string): number {
  if (text === "+Inf" || text === "Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (text === "NaN") return Number.NaN;
  const v = Number(text);
  if (text.trim() === "" || Number.isNaN(v)) throw new Error(`bad sample value ${JSON.stringify(text)}`);
  return v;
}

const finite = (samples: readonly VectorSample[] | undefined) =>
  (samples ?? []).filter((s) => Number.isFinite(s.value));

/** The sum of a vector's finite values, null when it is empty (no such series in the window). */
function total(samples: readonly VectorSample[] | undefined): number | null {
  const values = finite(samples);
  return values.length ? values.reduce((a, s) => a + s.value, 0) : null;
}

/** Bucket increases summed by `le`, as histogramQuantile takes them. */
function buckets(samples: readonly VectorSample[] | undefined): Map<number, number> | null {
  const out = new Map<number, number>();
  for (const s of finite(samples)) {
    const le = s.metric.le;
    if (le === undefined) continue;
    const bound = le === "+Inf" || le === "Inf" ? Number.POSITIVE_INFINITY : Number(le);
    if (Number.isNaN(bound)) continue;
    out.set(bound, (out.get(bound) ?? 0) + s.value);
  }
  return out.size ? out : null;
}

/**
 * The window's Signals from the answers to signalQueries. Fields the answers cannot tell are null,
 * as in the direct parser; Prometheus follows counter resets itself, so resetSeries stays 0, and it
 * does not say which pods appeared or left (the caller knows its ready pods).
 */
export function signalsFromResults(
  kind: EngineKind,
  results: QueryResults,
  windowSeconds: number,
  podLabel: string,
): Signals {
  if (!(windowSeconds > 0)) throw new Error(`window must be positive, got ${windowSeconds}`);
  const podsSeen = new Set<string>();
  for (const s of [...(results.running ?? []), ...(results.waiting ?? [])]) {
    const pod = s.metric[podLabel];
    if (pod !== undefined) podsSeen.add(pod);
  }
  const running = total(results.running);
  const waiting = total(results.waiting);
  const generation = total(results.generation);
  const meanRunning = total(results.runningMean);
  const ttft = buckets(results.ttftBuckets);
  const tpot = buckets(results.tpotBuckets0) ?? buckets(results.tpotBuckets1);
  const kv = total(results.kvCache0) ?? total(results.kvCache1);
  const q = (h: Map<number, number> | null, p: number) => (h ? histogramQuantile(p, h) : null);
  const out: Signals = {
    engine: podsSeen.size > 0 || running !== null ? kind : null,
    windowSeconds,
    tau: null,
    acceptanceRate: null,
    acceptanceByPosition: null,
    running,
    waiting,
    ttftP50: q(ttft, 0.5),
    ttftP90: q(ttft, 0.9),
    ttftP95: q(ttft, 0.95),
    tpotP50: q(tpot, 0.5),
    tpotP90: q(tpot, 0.9),
    tpotP95: q(tpot, 0.95),
    ttftP95Bucket: ttft ? histogramBucket(0.95, ttft) : null,
    tpotP95Bucket: tpot ? histogramBucket(0.95, tpot) : null,
    tokensPerSecondPerUser: generation !== null && meanRunning ? generation / meanRunning : null,
    generationTokensPerSecond: generation,
    promptTokensPerSecond: total(results.prompt),
    requestsPerSecond: total(results.requests),
    kvCacheUsage: kv,
    pods: { scraped: podsSeen.size, appeared: [], left: [], resetSeries: 0 },
  };
  if (kind === "vllm") {
    Object.assign(out, vllmAcceptance(results));
    out.steps = vllmSteps(results, podLabel);
  } else {
    Object.assign(out, sglangAcceptance(results, podLabel));
    out.tokenIntervals = sglangTokenIntervals(results, podLabel);
  }
  return out;
}

function vllmAcceptance(results: QueryResults): Partial<Signals> {
  const drafts = total(results.drafts);
  const accepted = total(results.accepted);
  if (drafts === null || accepted === null || !(drafts > 0)) return {};
  const out: Partial<Signals> = { tau: 1 + accepted / drafts, rounds: drafts };
  const draftTokens = total(results.draftTokens);
  if (draftTokens !== null) out.acceptanceRate = draftTokens > 0 ? accepted / draftTokens : null;
  const byPosition: number[] = [];
  for (const s of finite(results.acceptedByPosition)) {
    const position = Number(s.metric.position);
    if (!Number.isInteger(position) || position < 0 || position > 64) continue;
    byPosition[position] = (byPosition[position] ?? 0) + s.value;
  }
  if (byPosition.length) out.acceptanceByPosition = Array.from(byPosition, (v) => (v ?? 0) / drafts);
  return out;
}

/**
 * Each engine's step figures, joined by pod and engine label, for the engines every figure is known
 * of (running is optional, as in the direct parser); null when the engines expose no step figures.
 */
function vllmSteps(results: QueryResults, podLabel: string): EngineSteps[] | null {
  if (!results.engineSteps?.length || !results.stepIntervals?.length) return null;
  const keyOf = (s: VectorSample) => `${s.metric[podLabel] ?? ""}\u0000${s.metric[ENGINE_LABEL] ?? ""}`;
  const byEngine = (samples: readonly VectorSample[] | undefined) => {
    const out = new Map<string, number>();
    for (const s of finite(samples)) out.set(keyOf(s), s.value);
    return out;
  };
  const intervals = byEngine(results.stepIntervals);
  const intervalSeconds = byEngine(results.stepIntervalSeconds);
  const drafts = byEngine(results.engineDrafts);
  const draftTokens = byEngine(results.engineDraftTokens);
  const prompt = byEngine(results.enginePrompt);
  const running = byEngine(results.engineRunning);
  const engines = finite(results.engineSteps)
    .map((s) => ({ key: keyOf(s), steps: s.value }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const out: EngineSteps[] = [];
  for (const { key, steps } of engines) {
    const e = {
      steps,
      intervals: intervals.get(key),
      intervalSeconds: intervalSeconds.get(key),
      drafts: drafts.get(key),
      draftTokens: draftTokens.get(key),
      promptTokens: prompt.get(key),
    };
    if (!Object.values(e).every((v) => v !== undefined)) continue;
    const r = running.get(key);
    out.push({ ...(e as EngineSteps), ...(r !== undefined ? { running: r } : {}) });
  }
  return out;
}

/** Each SGLang pod's token times, joined by pod (as the direct parser); null when none is exposed. */
function sglangTokenIntervals(results: QueryResults, podLabel: string): TokenIntervals[] | null {
  if (!results.tokenIntervalCount?.length) return null;
  const byPod = (samples: readonly VectorSample[] | undefined, mean = false) => {
    const sums = new Map<string, { total: number; n: number }>();
    for (const s of finite(samples)) {
      const pod = s.metric[podLabel] ?? "";
      const e = sums.get(pod) ?? { total: 0, n: 0 };
      e.total += s.value;
      e.n++;
      sums.set(pod, e);
    }
    return new Map([...sums].map(([pod, e]) => [pod, mean ? e.total / e.n : e.total]));
  };
  const seconds = byPod(results.tokenIntervalSeconds);
  const prompt = byPod(results.enginePrompt);
  const running = byPod(results.engineRunning);
  const verifyTokens = byPod(results.engineVerifyTokens);
  const acceptLength = byPod(results.acceptLength, true);
  const out: TokenIntervals[] = [];
  for (const [pod, tokens] of byPod(results.tokenIntervalCount)) {
    const s = seconds.get(pod);
    if (s === undefined) continue;
    const optional = {
      acceptLength: acceptLength.get(pod),
      verifyTokens: verifyTokens.get(pod),
      running: running.get(pod),
    };
    out.push({
      tokens,
      seconds: s,
      promptTokens: prompt.get(pod) ?? 0,
      ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)),
    });
  }
  return out;
}

function sglangAcceptance(results: QueryResults, podLabel: string): Partial<Signals> {
  // As the direct parser: each series' snapshot weighted by the tokens its pod generated in the
  // window (an idle pod's gauge says nothing about the current traffic); plain mean when none did.
  const generated = new Map<string, number>();
  for (const s of finite(results.generation)) {
    const pod = s.metric[podLabel] ?? "";
    generated.set(pod, (generated.get(pod) ?? 0) + s.value);
  }
  let weighted = 0;
  let weights = 0;
  let plain = 0;
  let count = 0;
  for (const s of finite(results.acceptLength)) {
    if (!(s.value >= 1)) continue;
    const w = generated.get(s.metric[podLabel] ?? "") ?? 0;
    weighted += s.value * w;
    weights += w;
    plain += s.value;
    count++;
  }
  const out: Partial<Signals> = {};
  if (count > 0) out.tau = weights > 0 ? weighted / weights : plain / count;
  const rates = finite(results.acceptRate).filter((s) => s.value > 0);
  if (rates.length) out.acceptanceRate = rates.reduce((a, s) => a + s.value, 0) / rates.length;
  return out;
}
