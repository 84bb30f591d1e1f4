// lengthTuning Apply on the SpecServe side: a draft-length schedule the autoscaler proposed
// (status.autoscaling.speculationLength, action apply) is tried like a new draft, on a canary
// Deployment beside the stable one with the same draft and the new schedule, measured over the
// analysis window and promoted or rolled back. The applied schedule lives in status.rollout.lengths,
// never in the spec: the spec's lengthByBatchSize is the user's (it always wins), so a GitOps
// manifest and the operator never write the same field. Pure.
import type { SpecServe } from "../../api/kinds.ts";
import {
  LENGTH_COOLDOWN_WINDOWS,
  type LengthRolloutStatus,
  lengthApplyBlocker,
} from "../../autoscaler/length-apply.ts";
import type { Signals } from "../../autoscaler/signals.ts";
import type { LengthRange } from "../../autoscaler/speculation.ts";
import { parseDuration } from "../../lib/time.ts";
import { analysisPrelude, type GateDecision, type GateSettings, verificationRounds, zFor } from "./gate.ts";
import { shortHash } from "./plan.ts";
import type { RolloutPlan, RolloutStatus } from "./rollout.ts";

/** A schedule that loses more than this share of the stable pods' per-user speed is rolled back. */
export const LENGTH_MAX_SPEED_DROP = 0.02;

/** Pod label value of a schedule; the key suffix of an applied one (drift's baseline is per schedule). */
export const lengthsLabel = (ranges: readonly LengthRange[]) =>
  // Canonical: a schedule read back from the API server has its keys in another order.
  shortHash(ranges.map((r) => [r.minBatch, r.maxBatch, r.tokens]));
export const lengthsKey = (ranges: readonly LengthRange[] | undefined) =>
  ranges?.length ? `|lengths:${lengthsLabel(ranges)}` : "";
/** What the gate's baseline is keyed on for a length candidate (a draft candidate: its URI). */
export const lengthCandidateId = (ranges: readonly LengthRange[]) => `lengths:${lengthsLabel(ranges)}`;

export const formatRanges = (ranges: readonly LengthRange[] | undefined) =>
  (ranges ?? []).map((r) => `${r.minBatch}-${r.maxBatch}:${r.tokens}`).join(", ");

const analysisWindowMs = (ss: SpecServe) => parseDuration(ss.spec.rollout.analysisWindow) ?? 600_000;
export const lengthCooldownMs = (ss: SpecServe) => LENGTH_COOLDOWN_WINDOWS * analysisWindowMs(ss);

/** Data-parallel engines per pod that extraEngineArgs ask vLLM for (1 when unset). */
export function dataParallelSize(args: readonly string[] | undefined): number {
  const list = args ?? [];
  for (let i = 0; i < list.length; i++) {
    const a = list[i] ?? "";
    const m = /^(?:--data-parallel-size|-dp)(?:=(.*))?$/.exec(a);
    if (m) return Number(m[1] ?? list[i + 1]) || 1;
  }
  return 1;
}

/** Why this SpecServe cannot take a schedule through the gate; undefined when it can. */
export function lengthApplyUnsupported(ss: SpecServe): string | undefined {
  if (ss.spec.resources.nodesPerReplica > 1)
    return "multi-node replicas (LeaderWorkerSet) have no canary, and a schedule only rolls out through the gate";
  const dp = dataParallelSize(ss.spec.extraEngineArgs);
  if (dp > 1)
    return `--data-parallel-size ${dp}: vLLM 0.33.0 turns num_speculative_tokens_per_batch_size off under data parallelism`;
  return undefined;
}

/** The inputs tuneLength's Apply checks take from a SpecServe. */
export function lengthApplyContext(ss: SpecServe, nowMs: number) {
  return {
    rollout: ss.status?.rollout,
    nowMs,
    cooldownMs: lengthCooldownMs(ss),
    unsupported: lengthApplyUnsupported(ss),
  };
}

export interface LengthPlan extends RolloutPlan {
  /** Schedule the stable pods' Task carries (undefined: the spec's, or a static length). */
  stableLengths?: LengthRange[];
  /** Schedule the canary pods' Task carries. */
  canaryLengths?: LengthRange[];
}

const isLengthCanary = (r: RolloutStatus | undefined) =>
  r?.state === "Canary" && r.candidateKind === "Length";

/**
 * The rollout plan with lengthTuning Apply folded in: the applied schedule carried across any
 * rollout, a running length canary continued, and a new one started when the autoscaler proposes
 * a schedule and nothing blocks it (length-apply.ts). A draft change always wins over a schedule.
 */
export function planLengthRollout(
  ss: SpecServe,
  plan: RolloutPlan,
  previous: RolloutStatus | undefined,
  now: { iso: string; ms: number },
): LengthPlan {
  const spec = ss.spec.speculative;
  const carried = plan.rollout.lengths ?? previous?.lengths;
  const userSet = (spec.lengthByBatchSize?.length ?? 0) > 0;
  if (spec.lengthTuning !== "Apply" || userSet) {
    // The operator's schedule no longer applies: the spec's own (or a static length) serves.
    const { lengths: _dropped, ...rest } = plan.rollout;
    if (!isLengthCanary(plan.rollout)) return { ...plan, rollout: rest };
    return {
      ...plan,
      canary: undefined,
      rollout: {
        ...rest,
        state: "Stable",
        candidateKind: "Length",
        message: userSet
          ? "the length canary stopped: spec.speculative.lengthByBatchSize is set and wins"
          : "the length canary stopped: lengthTuning is no longer Apply",
      },
    };
  }
  const applied = carried?.applied;
  let rollout: RolloutStatus = carried ? { ...plan.rollout, lengths: carried } : plan.rollout;
  if (plan.canary) {
    // A draft canary (it runs the applied schedule too); a length canary it replaced is superseded.
    if (isLengthCanary(previous) && carried)
      rollout = { ...rollout, lengths: { ...carried, outcome: "Superseded", endTime: now.iso } };
    return { ...plan, rollout, stableLengths: applied, canaryLengths: applied };
  }
  if (isLengthCanary(rollout) && rollout.lengths?.candidate)
    return {
      ...plan,
      rollout,
      canary: plan.stable,
      stableLengths: applied,
      canaryLengths: rollout.lengths.candidate,
    };
  const proposal = ss.status?.autoscaling?.speculationLength;
  if (proposal?.action !== "apply" || !proposal.ranges.length || lengthApplyUnsupported(ss))
    return { ...plan, rollout, stableLengths: applied };
  const blocked = lengthApplyBlocker(
    rollout,
    { ranges: proposal.ranges, tau: proposal.tau ?? 0, batch: proposal.currentBatch ?? 0 },
    now.ms,
    lengthCooldownMs(ss),
  );
  if (blocked) return { ...plan, rollout, stableLengths: applied };
  const lengths: LengthRolloutStatus = {
    ...pickApplied(carried),
    candidate: proposal.ranges.map((r) => ({ ...r })),
    ...(proposal.predictedGain !== undefined ? { predictedGain: proposal.predictedGain } : {}),
    ...(proposal.tau !== undefined ? { proposedTau: proposal.tau } : {}),
    ...(proposal.currentBatch !== undefined ? { proposedBatch: proposal.currentBatch } : {}),
    ...(proposal.acceptanceByPosition?.length
      ? { proposedAcceptanceByPosition: proposal.acceptanceByPosition }
      : {}),
  };
  const gain = proposal.predictedGain !== undefined ? ` (predicted gain ${pct(proposal.predictedGain)})` : "";
  return {
    ...plan,
    canary: plan.stable,
    stableLengths: applied,
    canaryLengths: lengths.candidate,
    rollout: {
      state: "Canary",
      ...(rollout.currentDraft !== undefined ? { currentDraft: rollout.currentDraft } : {}),
      candidateDraft: rollout.currentDraft,
      candidateKind: "Length",
      startTime: now.iso,
      lengths,
      message: `trying draft length per batch size ${formatRanges(lengths.candidate)}${gain} on the canary`,
    },
  };
}

function pickApplied(l: LengthRolloutStatus | undefined): Partial<LengthRolloutStatus> {
  if (!l?.applied) return {};
  const { applied, appliedTime, appliedGain, appliedAcceptanceByPosition } = l;
  return Object.fromEntries(
    Object.entries({ applied, appliedTime, appliedGain, appliedAcceptanceByPosition }).filter(
      ([, v]) => v !== undefined,
    ),
  );
}

const pct = (x: number) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}%`;
const fmt = (x: number) => x.toFixed(3);

/** What the length gate compares on each side over the window. */
export interface LengthMeasurement {
  rounds: number;
  tokensPerSecondPerUser: number | null;
  /** Acceptance of the first draft position and its standard error (no schedule dilutes it). */
  firstAcceptance: number | null;
  firstStandardError: number;
  tpotP95: number | null;
}

export function measureLength(signals: Signals): LengthMeasurement | undefined {
  const rounds = verificationRounds(signals) ?? 0;
  if (rounds <= 0) return undefined;
  const p = signals.acceptanceByPosition?.[0] ?? null;
  return {
    rounds,
    tokensPerSecondPerUser: signals.tokensPerSecondPerUser,
    firstAcceptance: p,
    firstStandardError: p === null ? 0 : Math.sqrt((p * (1 - p)) / rounds),
    tpotP95: signals.tpotP95,
  };
}

export interface LengthGateSettings extends GateSettings {
  /** Seconds: the SLO on p95 time per output token, when set. */
  tpotP95?: number;
}

/**
 * The length gate. tau is no test here: a shorter draft lowers it by design. The canary must keep
 * the draft's acceptance at the first position (the same draft serves both sides; a fall means the
 * engine serves the schedule otherwise than the model assumes), keep the TPOT SLO where the stable
 * pods keep it, and not lose per-user speed (the goodput the schedule was predicted to raise; the
 * Service spreads requests evenly, so speed per request is goodput per replica). Undecided after
 * three windows: rolled back.
 */
export function decideLengthRollout(
  canary: LengthMeasurement | undefined,
  stable: LengthMeasurement | undefined,
  settings: LengthGateSettings,
  elapsedMs: number,
): GateDecision {
  const sides = analysisPrelude(canary, stable, settings, elapsedMs);
  if ("waiting" in sides) return sides.waiting;
  const { candidate, current, expired } = sides;
  const c = candidate.tokensPerSecondPerUser;
  const s = current.tokensPerSecondPerUser;
  if (c === null || s === null || !(s > 0)) {
    const message = "no per-user speed measured on both sides (running requests and generated tokens)";
    return expired
      ? { verdict: "RollBack", reason: "NoSpeedMeasured", message }
      : { verdict: "Analyzing", reason: "WaitingForSpeed", message };
  }
  const speed = `per-user speed ${c.toFixed(1)} tokens/s on the canary, ${s.toFixed(1)} on the stable pods (${pct(c / s - 1)})`;
  const z = zFor(settings.confidence);
  if (candidate.firstAcceptance !== null && current.firstAcceptance !== null) {
    const allowed = 1 - settings.maxTauDrop;
    const threshold = current.firstAcceptance * allowed;
    const se = Math.hypot(candidate.firstStandardError, current.firstStandardError * allowed);
    if (candidate.firstAcceptance - threshold + z * se < 0)
      return {
        verdict: "RollBack",
        reason: "AcceptanceDropped",
        message: `first-position acceptance ${fmt(candidate.firstAcceptance)} on the canary, ${fmt(current.firstAcceptance)} on the stable pods (threshold ${fmt(threshold)}); ${speed}`,
      };
  }
  const slo = settings.tpotP95;
  if (
    slo !== undefined &&
    candidate.tpotP95 !== null &&
    candidate.tpotP95 > slo &&
    (current.tpotP95 === null || current.tpotP95 <= slo)
  )
    return {
      verdict: "RollBack",
      reason: "SloBroken",
      message: `canary TPOT p95 ${(candidate.tpotP95 * 1000).toFixed(1)} ms over the SLO ${(slo * 1000).toFixed(1)} ms; ${speed}`,
    };
  if (c < s * (1 - LENGTH_MAX_SPEED_DROP))
    return { verdict: "RollBack", reason: "SlowerPerUser", message: speed };
  return { verdict: "Promote", reason: "SpeedHeld", message: speed };
}

/** The plan after the length gate's verdict: promoted (the stable pods take it), rolled back, or measuring. */
export function applyLengthVerdict(
  plan: LengthPlan,
  decision: GateDecision,
  candidate: LengthMeasurement | undefined,
  current: LengthMeasurement | undefined,
  nowIso: string,
): LengthPlan {
  const lengths = plan.rollout.lengths;
  if (!plan.canary || !lengths?.candidate) return plan;
  const speeds = {
    ...(candidate?.tokensPerSecondPerUser != null
      ? { candidateTokensPerSecondPerUser: Number(candidate.tokensPerSecondPerUser.toPrecision(4)) }
      : {}),
    ...(current?.tokensPerSecondPerUser != null
      ? { currentTokensPerSecondPerUser: Number(current.tokensPerSecondPerUser.toPrecision(4)) }
      : {}),
  };
  const rounds = {
    ...(candidate ? { candidateRounds: Math.round(candidate.rounds) } : {}),
    ...(current ? { currentRounds: Math.round(current.rounds) } : {}),
  };
  const measured = { ...lengths, ...speeds };
  if (decision.verdict === "Analyzing")
    return {
      ...plan,
      rollout: {
        ...plan.rollout,
        ...rounds,
        lengths: measured,
        message: `${decision.reason}: ${decision.message}`,
      },
    };
  if (decision.verdict === "Promote") {
    const promoted: LengthRolloutStatus = {
      ...measured,
      applied: lengths.candidate,
      appliedTime: nowIso,
      ...(lengths.predictedGain !== undefined ? { appliedGain: lengths.predictedGain } : {}),
      ...(lengths.proposedAcceptanceByPosition
        ? { appliedAcceptanceByPosition: lengths.proposedAcceptanceByPosition }
        : {}),
      outcome: "Promoted",
      endTime: nowIso,
    };
    return {
      stable: plan.stable,
      stableLengths: lengths.candidate,
      rollout: {
        ...plan.rollout,
        ...rounds,
        state: "Promoted",
        lengths: promoted,
        message: decision.message,
      },
    };
  }
  return {
    stable: plan.stable,
    stableLengths: plan.stableLengths,
    rollout: {
      ...plan.rollout,
      ...rounds,
      state: "RolledBack",
      lengths: { ...measured, outcome: "RolledBack", endTime: nowIso },
      message: `${decision.reason}: ${decision.message}`,
    },
  };
}
