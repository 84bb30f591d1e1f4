// SPS(B) learned online: a bounded, persistable correction of the prior SPS function (a measured
// table, or the first-principles model) from each window's exact engine-step figures. Pure.
//
// The observation. vLLM counts, per engine, its steps (vllm:iteration_tokens_total, one observation
// per step: _count), each running request's interval between two token batches (one observation per
// request per decode step: vllm:inter_token_latency_seconds _sum / _count is the mean wall time of a
// step, request-weighted), the requests that drafted (spec_decode_num_drafts, one per request per
// step) and the tokens they drafted (k = draft tokens / drafts). The capacity model (capacity.ts)
// says a step of R running requests takes 1 / SPS(R x (1 + k)) plus P / (chunk x SPS(chunk)) of
// chunked prefill, P the prompt tokens per step; the ratio of that prediction to the measured step
// time is the factor by which the model, as the decision evaluates it, is off there. R is the
// running gauge (mean of the window's two ends; drafts / steps when absent), as the decision reads
// concurrency. Each engine is judged on its own figures. Idle time is no error: a request is only
// in the batch while the engine steps, so an idle engine adds no interval.
//
// SGLang counts no engine steps. Its inter-token latency is per token: each interval between two
// outputs of a request is divided by the tokens it brought and counted that many times (_sum gains
// the interval once, _count the tokens), so _sum / _count is the mean time per token per request,
// however often the request streams. A request-step brings tau tokens (spec_accept_length: tokens
// per request per verify forward), so the mean step time is tau x _sum / _count and the
// request-steps _count / tau; the batch is the running gauge x the verify window
// (spec_num_draft_tokens, bonus slot included; the configured k + 1 where the engine does not say)
// and the engine steps request-steps / running. Approximate where vLLM's figures are exact: tau and
// the verify window are snapshots of the last decode-log interval (40 decode steps by default)
// before the window's end, as the decision's tau is, and tau is taken as the same for every request;
// running is a gauge set at those intervals; prompt tokens count when a request finishes. The time
// is taken at the tokenizer between a request's outputs, so it holds the prefill batches run
// between its decode steps, as the model's step does. No histogram, no tau, no running requests or
// too few tokens timed (idle): the window tells nothing (tokenIntervalSteps, unusable).
//
// The state: per power-of-two bucket of B, the log of the factor averaged with exponential
// forgetting (the last MEMORY_WINDOWS windows weigh most), and how many windows it has seen. At most
// MAX_BUCKETS buckets, so it fits in status and survives a restart.
// The corrected SPS: the prior times the factor, interpolated (in log B) between the centres of
// trusted buckets, each edge bucket's own inside it, and never above 1: the correction only lowers
// the prior (in the fleet simulator a factor above 1 learned at mid batches, applied near
// saturation, cost SLO minutes; a pessimistic prior costs GPUs, never SLOs). Beyond the observed
// range: below it the nearest bucket's, above it (towards saturation) the lowest factor seen.
import type { ReplicaShape, Workload } from "./capacity.ts";
import type { Signals } from "./signals.ts";
import type { SpsFunction } from "./sps.ts";

/** One window's engine-step figures, summed over the engines scraped at both ends. */
export interface EngineSteps {
  /** Engine steps (vLLM iteration_tokens_total _count increase). */
  steps: number;
  /** Request-step intervals and their total seconds (inter_token_latency_seconds _count, _sum). */
  intervals: number;
  intervalSeconds: number;
  /** Requests that drafted, summed over steps (spec_decode_num_drafts), and the tokens drafted. */
  drafts: number;
  draftTokens: number;
  /** Prompt tokens prefilled in the window. */
  promptTokens: number;
  /** Requests running (the gauge, mean of the window's two ends), when exposed. */
  running?: number;
}

/**
 * One SGLang engine's window (a pod: its tokenizer times every scheduler of it), per output token:
 * SGLang's figures do not count steps (see the header).
 */
export interface TokenIntervals {
  /** Output tokens timed (inter_token_latency_seconds _count increase: one per token). */
  tokens: number;
  /** Their intervals' seconds (_sum increase: each interval between two outputs once). */
  seconds: number;
  /** Tokens per request per verify step (spec_accept_length at the window's end), when exposed. */
  acceptLength?: number;
  /** Tokens verified per request per step (spec_num_draft_tokens, bonus slot included), when exposed. */
  verifyTokens?: number;
  /** Prompt tokens of the requests finished in the window. */
  promptTokens: number;
  /** Requests running per scheduler (the gauge, mean of the window's two ends), when exposed. */
  running?: number;
}

/**
 * An SGLang engine's window as the step figures observe() judges, or why it cannot tell. `k` is the
 * configured draft tokens per round, for an engine that does not expose its verify window.
 */
export function tokenIntervalSteps(t: TokenIntervals, k: number | undefined): EngineSteps | string {
  if (!(t.tokens > 0) || !(t.seconds > 0)) return "no decode steps in the window";
  if (t.acceptLength === undefined || !(t.acceptLength >= 1)) return "no acceptance length to count steps by";
  if (t.running === undefined || !(t.running > 0)) return "no running requests to count steps by";
  const drafted = t.verifyTokens !== undefined && t.verifyTokens > 1 ? t.verifyTokens - 1 : k;
  if (drafted === undefined || !(drafted >= 0)) return "the verify window is unknown";
  const requestSteps = t.tokens / t.acceptLength;
  return {
    steps: requestSteps / t.running,
    intervals: requestSteps,
    intervalSeconds: t.seconds,
    drafts: requestSteps,
    draftTokens: requestSteps * drafted,
    promptTokens: t.promptTokens,
    running: t.running,
  };
}

/** The window's per-engine step figures: vLLM's as counted, SGLang's derived from its token times. */
export function engineStepsOf(
  signals: Signals,
  k: number | undefined,
): { engines: EngineSteps[] | null | undefined; why?: string } {
  if (!signals.tokenIntervals?.length) return { engines: signals.steps };
  const engines: EngineSteps[] = [];
  let why: string | undefined;
  for (const t of signals.tokenIntervals) {
    const e = tokenIntervalSteps(t, k);
    if (typeof e === "string") why = e;
    else engines.push(e);
  }
  return { engines, ...(why ? { why } : {}) };
}

export interface SpsObservation {
  /** Tokens verified per step. */
  batch: number;
  /** Requests per step. */
  requests: number;
  /** Mean cached context per request the prior is read at. */
  context: number;
  promptTokensPerStep: number;
  /** Measured mean wall time of a step, seconds. */
  stepSeconds: number;
  /** Measured SPS over the prior's prediction for the same steps. */
  factor: number;
}

export interface SpsBucket {
  /** The bucket holds batches in [batch, 2 x batch): a power of two. */
  batch: number;
  /** Learned SPS over the prior's, at this bucket. */
  factor: number;
  /** Windows observed (capped at MEMORY_WINDOWS: older ones are forgotten). */
  windows: number;
}

export interface SpsLearned {
  /** The prior the factors correct (a changed table or model starts over). */
  prior: string;
  /** Windows learned from, in all. */
  windows: number;
  buckets: SpsBucket[];
}

/** Windows remembered per bucket: a window's weight is at least 1 / MEMORY_WINDOWS. */
export const MEMORY_WINDOWS = 10;
/** Windows a bucket needs before its factor is used. */
export const TRUSTED_WINDOWS = 2;
export const MAX_BUCKETS = 16;
/** The factor stays within [1 / MAX_FACTOR, MAX_FACTOR] of the prior. */
export const MAX_FACTOR = 4;
/** A window with fewer steps or intervals than this (about idle) tells nothing. */
export const MIN_STEPS = 50;
/** Windows whose predicted step time is mostly prefill (a backlog being admitted) are skipped. */
export const MAX_PREFILL_SHARE = 0.5;
/** Past this KV-cache use the engine preempts and recomputes: step times say more of that than of SPS. */
export const MAX_KV_CACHE_USAGE = 0.95;

export const emptyLearned = (prior: string): SpsLearned => ({ prior, windows: 0, buckets: [] });

const bucketOf = (batch: number) => 2 ** Math.max(0, Math.floor(Math.log2(Math.max(1, batch))));
const clampFactor = (f: number) => Math.min(MAX_FACTOR, Math.max(1 / MAX_FACTOR, f));

/** Why an engine's window cannot tell SPS(B), or null when it can. */
export function unusable(steps: EngineSteps): string | null {
  if (steps.steps < MIN_STEPS || steps.intervals < MIN_STEPS) return "too few engine steps in the window";
  if (!(steps.intervalSeconds > 0) || !(steps.drafts > 0)) return "no decode steps in the window";
  return null;
}

/**
 * The window's observations against the prior, one per batch-size bucket its engines ran in (each
 * engine judged on its own figures: a mean over engines of unequal load would pair one engine's
 * batch with another's step time), or why the window cannot tell.
 */
export function observe(
  prior: SpsFunction,
  engines: readonly EngineSteps[] | null | undefined,
  kvCacheUsage: number | null,
  work: Workload,
  shape: ReplicaShape,
): { observations: SpsObservation[] } | { skipped: string } {
  if (!engines?.length) return { skipped: "the engines expose no step figures" };
  if (kvCacheUsage !== null && kvCacheUsage > MAX_KV_CACHE_USAGE)
    return { skipped: "KV cache full (preemptions)" };
  const context = work.promptTokens + work.outputTokens / 2;
  const groups = new Map<
    number,
    {
      steps: number;
      batchSteps: number;
      requestSteps: number;
      prompt: number;
      predicted: number;
      measured: number;
    }
  >();
  let why = "";
  for (const e of engines) {
    const bad = unusable(e);
    if (bad) {
      why = bad;
      continue;
    }
    // Batch as the capacity model reads it (running requests x (1 + k)): the factor corrects the
    // model at the concurrency it is evaluated at. k from the exact counters; the drafting requests
    // per step when the gauge is missing.
    const requests = Math.max(1, e.running ?? e.drafts / e.steps);
    const batch = requests * (1 + e.draftTokens / e.drafts);
    const promptPerStep = e.promptTokens / e.steps;
    const decode = 1 / prior(batch, context, requests);
    const prefill = promptPerStep / (shape.prefillChunk * prior(shape.prefillChunk, context, requests));
    if (prefill / (decode + prefill) > MAX_PREFILL_SHARE) {
      why = "steps mostly prefill (a backlog admitted)";
      continue;
    }
    const g = groups.get(bucketOf(batch)) ?? {
      steps: 0,
      batchSteps: 0,
      requestSteps: 0,
      prompt: 0,
      predicted: 0,
      measured: 0,
    };
    g.steps += e.steps;
    g.batchSteps += batch * e.steps;
    g.requestSteps += requests * e.steps;
    g.prompt += e.promptTokens;
    // Predicted and measured busy time of the engine's steps.
    g.predicted += (decode + prefill) * e.steps;
    g.measured += (e.intervalSeconds / e.intervals) * e.steps;
    groups.set(bucketOf(batch), g);
  }
  const observations: SpsObservation[] = [];
  for (const g of groups.values()) {
    const factor = g.predicted / g.measured;
    if (!Number.isFinite(factor) || factor <= 0) continue;
    observations.push({
      batch: g.batchSteps / g.steps,
      requests: g.requestSteps / g.steps,
      context,
      promptTokensPerStep: g.prompt / g.steps,
      stepSeconds: g.measured / g.steps,
      factor,
    });
  }
  return observations.length ? { observations } : { skipped: why || "step time not measurable" };
}

/** The state after one more observation (its bucket's log-factor moves by at least 1 / MEMORY_WINDOWS). */
export function learn(state: SpsLearned, o: SpsObservation): SpsLearned {
  const batch = bucketOf(o.batch);
  const buckets = state.buckets.map((b) => ({ ...b }));
  let b = buckets.find((x) => x.batch === batch);
  if (!b) {
    b = { batch, factor: 1, windows: 0 };
    buckets.push(b);
  }
  const weight = 1 / Math.min(MEMORY_WINDOWS, b.windows + 1);
  const logFactor = Math.log(b.factor) * (1 - weight) + Math.log(clampFactor(o.factor)) * weight;
  b.factor = clampFactor(Math.exp(logFactor));
  b.windows = Math.min(MEMORY_WINDOWS, b.windows + 1);
  buckets.sort((x, y) => x.batch - y.batch);
  // Bounded (B beyond 2^15 is no real batch): drop the least observed bucket, the smaller on a tie.
  while (buckets.length > MAX_BUCKETS) {
    let drop = 0;
    for (let i = 1; i < buckets.length; i++)
      if ((buckets[i] as SpsBucket).windows < (buckets[drop] as SpsBucket).windows) drop = i;
    buckets.splice(drop, 1);
  }
  return { prior: state.prior, windows: state.windows + 1, buckets };
}

/** The learned factor at `batch` (1 where nothing is trusted yet). */
export function factorAt(state: SpsLearned, batch: number): number {
  return factorAmong(trustedBuckets(state), batch);
}

const trustedBuckets = (state: SpsLearned) => state.buckets.filter((b) => b.windows >= TRUSTED_WINDOWS);

function factorAmong(trusted: readonly SpsBucket[], batch: number): number {
  if (trusted.length === 0) return 1;
  const x = Math.log2(Math.max(1, batch));
  const centre = (b: SpsBucket) => Math.log2(b.batch) + 0.5;
  const first = trusted[0] as SpsBucket;
  const last = trusted[trusted.length - 1] as SpsBucket;
  // Inside an edge bucket its own factor; beyond it no optimism.
  if (x <= centre(first)) return x >= Math.log2(first.batch) ? first.factor : Math.min(1, first.factor);
  // Above it (towards saturation, where an error costs the SLOs): the lowest factor seen.
  if (x >= centre(last))
    return x < Math.log2(last.batch) + 1 ? last.factor : Math.min(1, ...trusted.map((b) => b.factor));
  for (let i = 1; i < trusted.length; i++) {
    const hi = trusted[i] as SpsBucket;
    if (x > centre(hi)) continue;
    const lo = trusted[i - 1] as SpsBucket;
    const w = (x - centre(lo)) / (centre(hi) - centre(lo));
    return Math.exp(Math.log(lo.factor) * (1 - w) + Math.log(hi.factor) * w);
  }
  return Math.min(1, last.factor);
}

/** The prior corrected by the learned factors. */
export function correctedSps(prior: SpsFunction, state: SpsLearned): SpsFunction {
  // The trusted buckets once, not per call: a decision evaluates SPS(B) many times.
  const trusted = trustedBuckets(state);
  if (trusted.length === 0) return prior;
  return (batch, context, requests) =>
    prior(batch, context, requests) * Math.min(1, factorAmong(trusted, batch));
}

/** The learned state in words, for status.autoscaling.spsSource. */
export function describeLearned(state: SpsLearned): string {
  const trusted = state.buckets.filter((b) => b.windows >= TRUSTED_WINDOWS);
  if (trusted.length === 0)
    return state.windows > 0 ? `learning online (${state.windows} windows, none trusted yet)` : "";
  const lo = trusted[0] as SpsBucket;
  const hi = trusted[trusted.length - 1] as SpsBucket;
  const range = `B ${lo.batch}-${hi.batch * 2 - 1}`;
  // As applied: the correction never raises the prior.
  const factors = trusted.map((b) => Math.min(1, b.factor));
  const f = (v: number) => v.toFixed(2);
  const spread =
    Math.min(...factors) === Math.max(...factors)
      ? `factor ${f(factors[0] as number)}`
      : `factor ${f(Math.min(...factors))}-${f(Math.max(...factors))}`;
  return `corrected online from ${state.windows} windows (${spread} at ${range})`;
}

/** A persisted state read back: valid and for this prior, else a fresh one. Never throws. */
export function restoreLearned(persisted: unknown, prior: string): SpsLearned {
  const p = persisted as Partial<SpsLearned> | undefined;
  if (!p || p.prior !== prior || !Array.isArray(p.buckets)) return emptyLearned(prior);
  const buckets: SpsBucket[] = [];
  for (const b of p.buckets.slice(0, MAX_BUCKETS)) {
    if (
      !b ||
      !(b.batch >= 1) ||
      !Number.isInteger(Math.log2(b.batch)) ||
      !(b.factor > 0) ||
      !(b.windows >= 0) ||
      buckets.some((x) => x.batch === b.batch)
    )
      continue;
    buckets.push({
      batch: b.batch,
      factor: clampFactor(b.factor),
      windows: Math.min(MEMORY_WINDOWS, Math.floor(b.windows)),
    });
  }
  buckets.sort((x, y) => x.batch - y.batch);
  return { prior, windows: Math.max(0, Math.floor(p.windows ?? 0)), buckets };
}

/** Mean prompt and output tokens per request from the window's rates, else the fallback. */
export function workloadOf(s: Signals | null, fallback: Workload): Workload {
  if (!s?.requestsPerSecond) return fallback;
  return {
    promptTokens: s.promptTokensPerSecond
      ? s.promptTokensPerSecond / s.requestsPerSecond
      : fallback.promptTokens,
    outputTokens: s.generationTokensPerSecond
      ? s.generationTokensPerSecond / s.requestsPerSecond
      : fallback.outputTokens,
  };
}

/**
 * One window's learning, as the controller and the fleet simulator both run it: the state after
 * the window, the SPS function to decide with, and what the window told (or why not). `k`, the
 * configured draft tokens per round, stands in for an SGLang engine that does not expose its own.
 */
export function learnFromWindow(
  state: SpsLearned,
  prior: SpsFunction,
  signals: Signals | null,
  fallbackWork: Workload,
  shape: ReplicaShape,
  k?: number,
): { state: SpsLearned; sps: SpsFunction; observations?: SpsObservation[]; skipped?: string } {
  let seen: ReturnType<typeof observe> = { skipped: "no signals" };
  if (signals) {
    const { engines, why } = engineStepsOf(signals, k);
    seen =
      why && !engines?.length
        ? { skipped: why }
        : observe(prior, engines, signals.kvCacheUsage, workloadOf(signals, fallbackWork), shape);
  }
  let next = state;
  if ("observations" in seen) for (const o of seen.observations) next = learn(next, o);
  return { state: next, sps: correctedSps(prior, next), ...seen };
}
