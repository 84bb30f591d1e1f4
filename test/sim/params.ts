// Physics of the fleet simulator, overridable with `--params FILE` (a JSON object; any subset of
// these keys, nested objects merged). Nothing here is tuned for any policy: the figures come from
// dspark-paper.md (first-principles SPS(B) for Qwen3-8B on an H200, Table 1's tau spread) and from
// common engine defaults (vLLM max_num_seqs 256, chunked prefill).
import { QWEN3_8B_H200 } from "../../operator/src/autoscaler/sps.ts";

export type Domain = "math" | "code" | "chat";
export const DOMAINS: Domain[] = ["math", "code", "chat"];

export interface SimParams {
  /** Simulated seconds per step (coarse, fluid within a step). */
  stepSeconds: number;
  /** How often every policy scrapes and decides. */
  decisionIntervalSeconds: number;
  /** True physics of one replica. */
  model: typeof QWEN3_8B_H200;
  /** Draft forward per step (a parallel DSpark/DFlash drafter: one small forward per block). */
  draftSecondsPerStep: number;
  numSpeculativeTokens: number;
  maxBatch: number;
  prefillChunk: number;
  maxPrefillShare: number;
  /** Per-position conditional acceptance per domain: position i survives with prob p^(i+1). */
  acceptance: Record<Domain, number>;
  /** Standard deviation of a request's p around its domain's (acceptance variance). */
  acceptanceSpread: number;
  /** Replica start-up (image pull, weights load, CUDA graphs), uniform between the two. */
  coldStartSeconds: { min: number; max: number };
  /** Probability that one pod's scrape fails. */
  scrapeFailureRate: number;
  /** Largest relative error of each row of the SPS table policies are given. */
  spsTableError: number;
  /**
   * Every row of that table multiplied by this (1.3: 30% optimistic, as the first-principles model
   * of another model or GPU might be). 1 in the bench.
   */
  spsTableBias: number;
  slo: { ttftP95: number; tpotP95: number; minTokensPerSecondPerUser: number };
  minReplicas: number;
  maxReplicas: number;
  seed: number;
}

export const DEFAULT_PARAMS: SimParams = {
  stepSeconds: 3,
  decisionIntervalSeconds: 30,
  model: QWEN3_8B_H200,
  draftSecondsPerStep: 0.0004,
  numSpeculativeTokens: 7,
  maxBatch: 256,
  prefillChunk: 2048,
  maxPrefillShare: 0.6,
  // tau at k=7: math ~5.7, code ~5.2, chat ~3.3 (Table 1, DSpark on Qwen3-8B: 5.0-6.2 / 5.2-5.5 / 3.2-3.7).
  acceptance: { math: 0.9, code: 0.87, chat: 0.72 },
  acceptanceSpread: 0.04,
  coldStartSeconds: { min: 180, max: 420 },
  scrapeFailureRate: 0.02,
  spsTableError: 0.15,
  spsTableBias: 1,
  slo: { ttftP95: 1.0, tpotP95: 0.007, minTokensPerSecondPerUser: 150 },
  minReplicas: 1,
  maxReplicas: 48,
  seed: 1,
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Merges an override file into the defaults; unknown keys and wrong types are refused by name. */
export function withOverrides(base: SimParams, override: unknown, path = "params"): SimParams {
  if (!isObject(override)) throw new Error(`${path}: must be a JSON object`);
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = (base as unknown as Record<string, unknown>)[key];
    if (current === undefined) throw new Error(`${path}.${key}: unknown parameter`);
    if (isObject(current)) out[key] = withOverrides(current as never, value, `${path}.${key}`);
    else if (typeof value !== typeof current || (typeof value === "number" && !Number.isFinite(value)))
      throw new Error(`${path}.${key}: expected a ${typeof current}`);
    else out[key] = value;
  }
  return out as unknown as SimParams;
}
