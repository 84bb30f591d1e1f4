// Draft length tuned to load: for each batch-size range, the draft length that maximises goodput
// (tokens/s of the replica) while every SLO holds, from the live acceptance by position and SPS(B).
// Long drafts are nearly free at batch 1 and cost throughput at high concurrency (the DSpark paper).
// Pure output; what happens with it is the spec's switch: Off, Recommend (status only) or Apply
// (the SpecServe controller tries the schedule on a canary through the rollout gate: length-apply.ts
// says when a proposal may start one, controllers/specserve/length-rollout.ts runs it).
import { meetsSlo, operatingPoint, type ReplicaShape, type Slo, tauAt, type Workload } from "./capacity.ts";
import { type LengthRolloutState, lengthApplyBlocker, sameRanges } from "./length-apply.ts";
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
  /** Apply only: the rollout's state (status.rollout), for what runs now, cool-down and rollbacks. */
  rollout?: LengthRolloutState;
  /** Apply only: now (ms) and the cool-down after a length rollout ended (ms). */
  nowMs?: number;
  cooldownMs?: number;
  /** Apply only: why the deployment cannot take a schedule through the gate (multi-node, DP > 1). */
  unsupported?: string;
}
export interface LengthTuning {
  mode: LengthTuningMode;
  action: "none" | "recommend" | "apply";
  ranges: LengthRange[];
  /** Tokens the tuned schedule uses at the current batch and its predicted goodput gain (0.1 = +10%). */
  tokensAtCurrentBatch?: number;
  predictedGain?: number;
  /** Requests per replica and the acceptance by position the schedule was computed from. */
  currentBatch?: number;
  acceptanceByPosition?: number[];
  /** tau at the configured length from that profile (what a rolled-back proposal is compared on). */
  tau?: number;
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

/** The draft length a schedule gives a batch size (vLLM carries the last range's K past its end). */
export function tokensAt(ranges: readonly LengthRange[], batch: number, fallback: number): number {
  let k = fallback;
  for (const r of [...ranges].sort((a, b) => a.minBatch - b.minBatch)) {
    if (batch < r.minBatch) break;
    k = r.tokens;
  }
  return k;
}

/**
 * Acceptance by position as the tuner may read it. Under an applied schedule the engine drafts
 * fewer tokens at some batch sizes, while vLLM's per-position counters still divide by every
 * draft: positions at or beyond the shortest non-zero length are diluted, so they are taken from
 * the profile measured when the schedule was proposed (a static length then).
 */
export function undilutedAcceptance(
  live: readonly number[],
  applied: readonly LengthRange[] | undefined,
  atProposal: readonly number[] | undefined,
): number[] {
  const drafting = (applied ?? []).filter((r) => r.tokens > 0).map((r) => r.tokens);
  if (!drafting.length || !atProposal?.length) return [...live];
  const shortest = Math.min(...drafting);
  const n = Math.max(live.length, atProposal.length);
  return Array.from({ length: n }, (_, i) => (i < shortest ? (live[i] ?? 0) : (atProposal[i] ?? 0)));
}

export function tuneLength(sps: SpsFunction, input: LengthTuningInput): LengthTuning {
  const base = { mode: input.mode, ranges: [] as LengthRange[] };
  if (input.mode === "Off") return { ...base, action: "none", reason: "lengthTuning is Off" };
  const live = input.acceptanceByPosition;
  if (!live || live.length === 0)
    return { ...base, action: "none", reason: "no acceptance by position measured (SGLang exposes none)" };
  const lengths = input.mode === "Apply" ? input.rollout?.lengths : undefined;
  const running = input.userLengthByBatchSize?.length ? input.userLengthByBatchSize : lengths?.applied;
  const acc = undilutedAcceptance(live, lengths?.applied, lengths?.appliedAcceptanceByPosition);
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
  const tokensNow = tokensAt(merged, batch, input.currentTokens);
  // The gain is against what the engines run now: the applied (or the user's) schedule, else k.
  const runningNow = running?.length ? tokensAt(running, batch, input.currentTokens) : input.currentTokens;
  const now = goodput(sps, batch, runningNow, acc, input).goodput;
  const tuned = goodput(sps, batch, tokensNow, acc, input).goodput;
  const gain = now > 0 ? tuned / now - 1 : 0;
  const out = {
    ...base,
    ranges: merged,
    tokensAtCurrentBatch: tokensNow,
    predictedGain: Number(gain.toFixed(4)),
    currentBatch: Number(input.currentBatch.toFixed(2)),
    acceptanceByPosition: acc,
    tau: tauAt(acc, input.currentTokens),
  };
  const recommend = (reason: string): LengthTuning => ({ ...out, action: "recommend", reason });
  if (input.mode === "Recommend") return recommend("lengthTuning is Recommend");
  if (input.engine !== "vllm")
    return recommend(
      `Apply needs engine vllm (num_speculative_tokens_per_batch_size); ${input.engine} is not tuned`,
    );
  if (input.loadAdaptation !== "Engine")
    return recommend("Apply needs speculative.loadAdaptation Engine; the engine runs one length");
  if (input.userLengthByBatchSize?.length)
    return recommend("lengthByBatchSize is set by the user; not overwritten");
  if (input.unsupported) return recommend(`Apply refused: ${input.unsupported}`);
  if (lengths?.applied && sameRanges(merged, lengths.applied))
    return recommend("this schedule is already applied");
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  if (gain < input.minGain)
    return recommend(
      `predicted gain ${pct(gain)} at batch ${batch} is below ${(input.minGain * 100).toFixed(0)}%, not worth a rolling restart`,
    );
  const blocked = lengthApplyBlocker(
    input.rollout,
    { ranges: merged, tau: out.tau, batch: input.currentBatch },
    input.nowMs ?? 0,
    input.cooldownMs ?? 0,
  );
  if (blocked) return recommend(`predicted gain ${pct(gain)} at batch ${batch}, but ${blocked}`);
  return { ...out, action: "apply", reason: `predicted goodput gain ${pct(gain)} at batch ${batch}` };
}
