// Capacity of one replica from the DSpark serving model: a step verifying B = R * (1 + k) tokens
// for R running requests takes 1 / SPS(B) seconds and yields tau(k) tokens per request, so each user
// sees tau * SPS(B) tokens/s; prefill of arriving prompts takes its share of the replica's time.
// Pure functions of the signals, an SPS function and the SLOs.
import type { SpsFunction } from "./sps.ts";

export interface Slo {
  /** Seconds. */
  ttftP95?: number;
  /** Seconds per output token. */
  tpotP95?: number;
  minTokensPerSecondPerUser?: number;
}

export interface Workload {
  promptTokens: number;
  outputTokens: number;
}

export interface ReplicaShape {
  /** Most requests an engine runs at once (vLLM max_num_seqs). */
  maxBatch: number;
  /** Prefill tokens per step when prompts are chunked (vLLM max_num_batched_tokens). */
  prefillChunk: number;
  /** Largest share of a replica's time prefill may take while decodes run (chunked prefill). */
  maxPrefillShare: number;
}

export const DEFAULT_SHAPE: ReplicaShape = { maxBatch: 256, prefillChunk: 2048, maxPrefillShare: 0.6 };

/** tau(k) = 1 + sum of the first k per-position acceptance rates (each already the survival of position i). */
export function tauAt(acceptanceByPosition: readonly number[], k: number): number {
  let tau = 1;
  for (let i = 0; i < Math.min(k, acceptanceByPosition.length); i++) tau += acceptanceByPosition[i] ?? 0;
  return tau;
}

/** Feedback: measured p95 over the model's prediction (1 = the model is right about the tail). */
export interface Correction {
  tpot: number;
  ttft: number;
}

export interface OperatingPoint {
  /** Running requests per replica. */
  requests: number;
  tau: number;
  /** Mean tokens/s each user sees. */
  tokensPerSecondPerUser: number;
  /** Predicted p95 time per output token and time to first token, seconds (correction applied). */
  tpotP95: number;
  ttftP95: number;
  /** Requests per second the replica completes at this concurrency. */
  requestsPerSecond: number;
  prefillShare: number;
}

/** Steady state of one replica running `requests` requests with draft length k at mean tau. */
export function operatingPoint(
  sps: SpsFunction,
  requests: number,
  tau: number,
  k: number,
  work: Workload,
  shape: ReplicaShape,
  correction: Correction = { tpot: 1, ttft: 1 },
): OperatingPoint {
  const context = work.promptTokens + work.outputTokens / 2;
  const stepRate = sps(Math.max(1, requests * (1 + k)), context, requests);
  const prefillRate = shape.prefillChunk * sps(shape.prefillChunk, context, requests);
  let share = 0;
  let speed = tau * stepRate;
  let ttft = work.promptTokens / prefillRate + 1 / stepRate;
  let rps = 0;
  // Fixed point: arrivals need prefill time, which slows decoding, which lengthens requests.
  for (let i = 0; i < 30; i++) {
    speed = tau * stepRate * (1 - share);
    ttft = work.promptTokens / prefillRate / Math.max(0.05, 1 - share) + 1 / stepRate;
    rps = requests / (ttft + work.outputTokens / speed);
    share = Math.min(shape.maxPrefillShare, (rps * work.promptTokens) / prefillRate);
  }
  return {
    requests,
    tau,
    tokensPerSecondPerUser: speed,
    tpotP95: correction.tpot / speed,
    ttftP95: correction.ttft * ttft,
    requestsPerSecond: rps,
    prefillShare: share,
  };
}

export function meetsSlo(p: OperatingPoint, slo: Slo): boolean {
  if (slo.tpotP95 !== undefined && p.tpotP95 > slo.tpotP95) return false;
  if (slo.ttftP95 !== undefined && p.ttftP95 > slo.ttftP95) return false;
  // The slowest users run at about 1 / p95 TPOT.
  if (slo.minTokensPerSecondPerUser !== undefined && 1 / p.tpotP95 < slo.minTokensPerSecondPerUser)
    return false;
  return true;
}

/** The highest concurrency per replica at which every SLO holds (0 when none does), and its point. */
export function maxConcurrency(
  sps: SpsFunction,
  tau: number,
  k: number,
  work: Workload,
  shape: ReplicaShape,
  slo: Slo,
  correction?: Correction,
): OperatingPoint | null {
  // Speed falls monotonically with concurrency: binary search for the last R that meets the SLOs.
  let lo = 0;
  let hi = shape.maxBatch;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (meetsSlo(operatingPoint(sps, mid, tau, k, work, shape, correction), slo)) lo = mid;
    else hi = mid - 1;
  }
  return lo === 0 ? null : operatingPoint(sps, lo, tau, k, work, shape, correction);
}
