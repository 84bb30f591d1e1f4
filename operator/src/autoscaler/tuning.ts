// SpecOps' tuned replica-policy settings that are no SpecServe spec field. One object, read by the
// controller (operator/src/controllers/autoscaler/policy.ts) and by the fleet simulator's SpecOps
// policy (test/sim/policies.ts), so that `npm run bench -- autoscaler` measures what the operator
// runs. The bench's grid may vary headroom around this point; its reported setting is this one.
// Pure.
import type { ReplicaPolicy } from "./replicas.ts";

export type SpecOpsTuning = Readonly<
  Pick<
    ReplicaPolicy,
    | "headroom"
    | "backlogDrainSeconds"
    | "tauLookaheadSeconds"
    | "maxProjectedGrowth"
    | "scaleDownIntervalSeconds"
    | "defaultWorkload"
  > & {
    /** Signals older than this many measuring windows are stale. */
    staleAfterWindows: number;
  }
>;

export const SPECOPS_TUNING: SpecOpsTuning = Object.freeze({
  /**
   * Spare capacity above the demand: covers the ±15% SPS-table error, the p95 tail between decisions
   * and the model's optimism near a replica's saturation (docs/benchmarks.md, "Autoscaler").
   */
  headroom: 0.4,
  /** Waiting requests are demand to drain within this long. */
  backlogDrainSeconds: 60,
  /**
   * A falling tau or a rising load is projected this far ahead: the upper end of a serving pod's
   * cold start (the simulator's 180-420 s), so pods asked for now are ready when the load arrives.
   */
  tauLookaheadSeconds: 420,
  /** A rising load's projection adds at most this share of the measured rate (a step is no trend). */
  maxProjectedGrowth: 0.25,
  /** No scale-down within this long of the last scale event: a fleet that just moved settles first. */
  scaleDownIntervalSeconds: 180,
  /** Prompt and output means used until the signals tell them. */
  defaultWorkload: Object.freeze({ promptTokens: 600, outputTokens: 400 }),
  staleAfterWindows: 3,
});
