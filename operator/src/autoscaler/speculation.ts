// Draft length tuned to load: for each batch-size range, the draft length that maximises goodput
// (tokens/s of the replica) while every SLO holds, from the live acceptance by position and SPS(B).
// Long drafts are nearly free at batch 1 and cost throughput at high concurrency (the DSpark paper).
// Pure output; what happens with it is the spec's switch: Off, Recommend (status only) or Apply.
import { meetsSlo, operatingPoint, type ReplicaShape, type Slo, tauAt, type Workload } from "./capacity.ts";
import type { SpsFunction } from "./sps.ts";

export type LengthTuningMode = "Off" | "Recommend" | "Apply";

export interface LengthRange {
  minBatch: number;
  maxBatch: number;
  tokens: number;
}

export interface LengthTuningInput {
  mode: LengthTuningMode;
  acceptanceByPosition: readonly number[] | null;
  /** Draft length the engines run now (and the most the draft was trained for). */
  currentTokens: number;
  maxTokens: number;
  engine: "vllm" | "sglang" | "reference";
  loadAdaptation: "Off" | "Engine";
  /** A lengthByBatchSize the user set; never overwritten. */
  userLengthByBatchSize?: readonly LengthRange[];
  /** Requests per replica now, for the predicted gain at the current load. */
  currentBatch: number;
  /** Least predicted goodput gain at the current load worth a rolling restart. */
  minGain: number;
  slo: Slo;
  work: Workload;
  shape: ReplicaShape;
}

export interface LengthTuning {
  mode: LengthTuningMode;
  action: "none" | "recommend" | "apply";
  ranges: LengthRange[];
  /** Tokens the tuned schedule uses at the current batch and its predicted goodput gain (0.1 = +10%). */
  tokensAtCurrentBatch?: number;
  predictedGain?: number;
  reason: string;
}

/** Batch-size ranges the schedule is made of (powers of two up to the engine's maximum batch). */
export function batchRanges(maxBatch: number): [number, number][] {
  const out: [number, number][] = [];
  for (let lo = 1; lo <= maxBatch; lo *= 2) out.push([lo, Math.min(maxBatch, lo * 2 - 1)]);
  return out;
}

function goodput(
  sps: SpsFunction,
  requests: number,
  k: number,
  acc: readonly number[],
  input: LengthTuningInput,
) {
  const p = operatingPoint(sps, requests, tauAt(acc, k), k, input.work, input.shape);
  return {
    goodput: requests * p.tokensPerSecondPerUser,
    ok: meetsSlo(p, input.slo),
    speed: p.tokensPerSecondPerUser,
  };
}

/** The draft length for `requests` concurrent requests: most goodput among lengths meeting the SLOs. */
export function bestLength(
  sps: SpsFunction,
  requests: number,
  acc: readonly number[],
  input: LengthTuningInput,
): number {
  let best = { k: input.currentTokens, goodput: -1, ok: false, speed: 0 };
  for (let k = 0; k <= Math.min(input.maxTokens, acc.length); k++) {
    const g = goodput(sps, requests, k, acc, input);
    const better = g.ok && (!best.ok || g.goodput > best.goodput);
    // When no length meets the SLOs, the fastest per user is the least bad.
    const lessBad = !g.ok && !best.ok && g.speed > best.speed;
    if (better || lessBad) best = { k, ...g };
  }
  return best.k;
}

export function tuneLength(sps: SpsFunction, input: LengthTuningInput): LengthTuning {
  const base = { mode: input.mode, ranges: [] as LengthRange[] };
  if (input.mode === "Off") return { ...base, action: "none", reason: "lengthTuning is Off" };
  const acc = input.acceptanceByPosition;
  if (!acc || acc.length === 0)
    return { ...base, action: "none", reason: "no acceptance by position measured (SGLang exposes none)" };
  const ranges = batchRanges(input.shape.maxBatch).map(([minBatch, maxBatch]) => ({
    minBatch,
    maxBatch,
    tokens: bestLength(sps, Math.round(Math.sqrt(minBatch * maxBatch)), acc, input),
  }));
  // Adjacent ranges with the same length merge.
  const merged: LengthRange[] = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && last.tokens === r.tokens) last.maxBatch = r.maxBatch;
    else merged.push({ ...r });
  }
  const batch = Math.max(1, Math.round(input.currentBatch));
  const tokensNow =
    merged.find((r) => batch >= r.minBatch && batch <= r.maxBatch)?.tokens ?? input.currentTokens;
  const now = goodput(sps, batch, input.currentTokens, acc, input).goodput;
  const tuned = goodput(sps, batch, tokensNow, acc, input).goodput;
  const gain = now > 0 ? tuned / now - 1 : 0;
  const out = {
    ...base,
    ranges: merged,
    tokensAtCurrentBatch: tokensNow,
    predictedGain: Number(gain.toFixed(4)),
  };
  if (input.mode === "Recommend") return { ...out, action: "recommend", reason: "lengthTuning is Recommend" };
  if (input.engine !== "vllm" || input.loadAdaptation !== "Engine")
    return { ...out, action: "recommend", reason: "Apply needs engine vllm with loadAdaptation Engine" };
  if (input.userLengthByBatchSize?.length)
    return { ...out, action: "recommend", reason: "lengthByBatchSize is set by the user; not overwritten" };
  if (gain < input.minGain)
    return {
      ...out,
      action: "recommend",
      reason: `predicted gain ${(gain * 100).toFixed(1)}% is below ${(input.minGain * 100).toFixed(0)}%, not worth a rolling restart`,
    };
  return {
    ...out,
    action: "apply",
    reason: `predicted goodput gain ${(gain * 100).toFixed(1)}% at batch ${batch}`,
  };
}
