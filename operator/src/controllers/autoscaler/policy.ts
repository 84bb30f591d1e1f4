// What a SpecServe's spec.autoscaling (and its slo, drift and speculative settings) means for the
// pure decision code: the replica policy, the drift policy and the length-tuning input. Pure.
import type { SpecServe } from "../../api/kinds.ts";
import { DEFAULT_SHAPE, type Slo } from "../../autoscaler/capacity.ts";
import type { DriftPolicy } from "../../autoscaler/drift.ts";
import type { ReplicaPolicy } from "../../autoscaler/replicas.ts";
import { parseDuration } from "../../lib/time.ts";

/** Spare capacity kept above the demand. */
export const HEADROOM = 0.2;
/** Waiting requests are demand to drain within this long. */
export const BACKLOG_DRAIN_SECONDS = 60;
/**
 * A falling tau or a rising load is projected this far ahead: about a serving pod's cold start, but
 * never more than LOOKAHEAD_WINDOWS windows (a trend from one short window, extrapolated far, is
 * mostly its noise: 2% over a 1 s window would read as +35% three minutes on).
 */
export const LOOKAHEAD_SECONDS = 180;
export const LOOKAHEAD_WINDOWS = 5;
/** Draft length assumed when the spec leaves it to the draft (as the rollout gate assumes). */
export const DEFAULT_SPECULATIVE_TOKENS = 8;
/** Least predicted goodput gain a length change must bring to be worth a rolling restart. */
export const MIN_LENGTH_GAIN = 0.1;
/** Prompt and output means used until the signals tell them. */
export const DEFAULT_WORKLOAD = { promptTokens: 600, outputTokens: 400 };

export type Autoscaling = NonNullable<SpecServe["spec"]["autoscaling"]>;

const seconds = (d: string, fallbackSeconds: number) => {
  const ms = parseDuration(d);
  return ms === undefined ? fallbackSeconds : ms / 1000;
};

export const isAutoscaled = (ss: SpecServe): boolean => ss.spec.autoscaling?.enabled === true;

/** Seconds between decisions: the measuring window. */
export const windowSeconds = (a: Autoscaling): number => seconds(a.window, 120);

export function sloOf(ss: SpecServe): Slo {
  const s = ss.spec.autoscaling?.slo ?? {};
  const out: Slo = {};
  if (s.ttftP95 !== undefined) out.ttftP95 = seconds(s.ttftP95, 0);
  if (s.tpotP95 !== undefined) out.tpotP95 = seconds(s.tpotP95, 0);
  if (s.minTokensPerSecondPerUser !== undefined) out.minTokensPerSecondPerUser = s.minTokensPerSecondPerUser;
  return out;
}

export const speculativeTokens = (ss: SpecServe): number =>
  ss.spec.speculative.numSpeculativeTokens ?? DEFAULT_SPECULATIVE_TOKENS;

export function replicaPolicy(ss: SpecServe, a: Autoscaling): ReplicaPolicy {
  const window = windowSeconds(a);
  return {
    minReplicas: a.minReplicas,
    maxReplicas: a.maxReplicas,
    tolerance: a.tolerance,
    scaleUpStabilizationSeconds: seconds(a.scaleUpStabilization, 0),
    scaleDownStabilizationSeconds: seconds(a.scaleDownStabilization, 300),
    maxScaleUpPerMinute: a.maxScaleUpRate,
    maxScaleDownPerMinute: a.maxScaleDownRate,
    headroom: HEADROOM,
    backlogDrainSeconds: BACKLOG_DRAIN_SECONDS,
    tauLookaheadSeconds: Math.min(LOOKAHEAD_SECONDS, LOOKAHEAD_WINDOWS * window),
    staleAfterSeconds: 3 * window,
    slo: sloOf(ss),
    shape: DEFAULT_SHAPE,
    numSpeculativeTokens: speculativeTokens(ss),
    defaultWorkload: DEFAULT_WORKLOAD,
  };
}

export function driftPolicy(ss: SpecServe, a: Autoscaling): DriftPolicy {
  return {
    enabled: ss.spec.drift.enabled,
    baselineWindowSeconds: seconds(ss.spec.drift.baselineWindow, 3600),
    tolerance: ss.spec.drift.tolerance,
    windowSeconds: windowSeconds(a),
    minTau: a.slo.minTau,
  };
}
