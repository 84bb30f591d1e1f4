// When a draft-length schedule proposed by lengthTuning Apply may start a rollout: never while a
// rollout runs, never within a cool-down of the last length rollout's end (a rolling restart of a
// GPU fleet is costly; the schedule must not flap with the load), and a schedule that was rolled
// back is not tried again until the figures it came from move materially. Pure: the state lives in
// status.rollout, read by the autoscaler (which reports what would happen) and the SpecServe
// controller (which acts, and checks again, since the autoscaler's proposal may be one window old).
import type { z } from "zod";
import type { specServeStatus } from "../api/specserve.ts";
import type { LengthRange } from "./speculation.ts";

type Rollout = NonNullable<z.infer<typeof specServeStatus>["rollout"]>;
export type LengthRolloutStatus = NonNullable<Rollout["lengths"]>;
export type LengthRolloutState = Pick<
  Rollout,
  "state" | "candidateKind" | "candidateDraft" | "currentDraft" | "lengths"
>;

/** The cool-down after a length rollout ends, in analysis windows (1 h at the default 10 m). */
export const LENGTH_COOLDOWN_WINDOWS = 6;
/** A rolled-back schedule is retried only once tau (at the static length) moved this much... */
export const LENGTH_RETRY_TAU_CHANGE = 0.1;
/** ...or the requests per replica changed by this factor (a different batch range). */
export const LENGTH_RETRY_BATCH_FACTOR = 2;

export interface LengthProposal {
  ranges: readonly LengthRange[];
  /** tau the acceptance profile gives at the configured length, and requests per replica. */
  tau: number;
  batch: number;
}

export function sameRanges(a: readonly LengthRange[] | undefined, b: readonly LengthRange[] | undefined) {
  if (!a || !b || a.length !== b.length) return false;
  return a.every(
    (r, i) => r.minBatch === b[i]?.minBatch && r.maxBatch === b[i]?.maxBatch && r.tokens === b[i]?.tokens,
  );
}

/** Whether the figures moved enough since a rolled-back proposal to try a schedule again. */
export function materialChange(lengths: LengthRolloutStatus, p: LengthProposal): boolean {
  const tau0 = lengths.proposedTau;
  const batch0 = lengths.proposedBatch;
  if (tau0 === undefined || batch0 === undefined) return true;
  if (tau0 > 0 && Math.abs(p.tau - tau0) / tau0 >= LENGTH_RETRY_TAU_CHANGE) return true;
  const lo = Math.max(1, Math.min(p.batch, batch0));
  const hi = Math.max(1, Math.max(p.batch, batch0));
  return hi / lo >= LENGTH_RETRY_BATCH_FACTOR;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

/** Why a proposal may not start a length rollout now; undefined when it may. */
export function lengthApplyBlocker(
  rollout: LengthRolloutState | undefined,
  proposal: LengthProposal,
  nowMs: number,
  cooldownMs: number,
): string | undefined {
  if (rollout?.state === "Canary")
    return rollout.candidateKind === "Length"
      ? "a length schedule is on a canary already"
      : `draft ${rollout.candidateDraft ?? ""} is on a canary; the schedule waits for its rollout to end`;
  if (
    rollout?.state === "RolledBack" &&
    rollout.candidateKind !== "Length" &&
    rollout.candidateDraft !== rollout.currentDraft
  )
    return `draft ${rollout.candidateDraft ?? ""} was rolled back and is still in the spec; a schedule waits until spec.draft changes`;
  const lengths = rollout?.lengths;
  if (!lengths) return undefined;
  if (sameRanges(proposal.ranges, lengths.applied)) return "this schedule is already applied";
  const ended = lengths.endTime ? Date.parse(lengths.endTime) : Number.NaN;
  if (Number.isFinite(ended) && nowMs - ended < cooldownMs)
    return `cooling down until ${iso(ended + cooldownMs)} after the last length rollout (${lengths.outcome ?? "ended"})`;
  if (lengths.outcome === "RolledBack" && !materialChange(lengths, proposal))
    return (
      `the last schedule was rolled back at ${lengths.endTime ?? "?"}; none is tried again until tau moves ` +
      `${LENGTH_RETRY_TAU_CHANGE * 100}% from ${lengths.proposedTau?.toFixed(2)} or the requests per replica ` +
      `change ${LENGTH_RETRY_BATCH_FACTOR}x from ${lengths.proposedBatch?.toFixed(1)}`
    );
  return undefined;
}
