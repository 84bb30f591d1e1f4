// One autoscaler decision for one SpecServe, pure: the window's signals, the SPS function and the
// memory of earlier decisions in; the replicas to write (if any), the status fields this controller
// owns, its Events and the next memory out. The I/O around it (reconcile.ts) scrapes, reads the
// SPS table, writes /scale and status, and records the Events after the status they describe.
import type { SpecServe } from "../../api/kinds.ts";
import { assessDrift, type DriftState, type DriftVerdict, driftStateAt } from "../../autoscaler/drift.ts";
import {
  type AutoscalerState,
  decideReplicas,
  initialState,
  type ReplicaDecision,
} from "../../autoscaler/replicas.ts";
import type { Signals } from "../../autoscaler/signals.ts";
import { type LengthTuning, tuneLength } from "../../autoscaler/speculation.ts";
import type { SpsFunction } from "../../autoscaler/sps.ts";
import {
  describeLearned,
  learnFromWindow,
  restoreLearned,
  type SpsLearned,
  workloadOf,
} from "../../autoscaler/sps-online.ts";
import type { EventType } from "../../lib/events.ts";
import { lengthApplyContext, lengthsKey } from "../specserve/length-rollout.ts";
import {
  type Autoscaling,
  DEFAULT_WORKLOAD,
  driftPolicy,
  MIN_LENGTH_GAIN,
  replicaPolicy,
  speculativeTokens,
} from "./policy.ts";
import { type AutoscalerStatus, type Decision, type OwnedStatus, ownedStatus } from "./status.ts";

/** What the controller remembers per SpecServe between decisions (lost on restart, rebuilt). */
export interface AutoscalerMemory {
  replicas: AutoscalerState;
  drift?: { draft: string; state: DriftState };
  /** Replicas this replica of the operator last wrote through /scale. */
  lastWritten?: number;
  /** SPS(B) learned online (also in status, whence a restarted operator resumes). */
  sps?: SpsLearned;
}

export const initialMemory = (): AutoscalerMemory => ({ replicas: initialState() });

export interface StepInput {
  ss: SpecServe;
  autoscaling: Autoscaling;
  nowMs: number;
  /** Signals over the window; null when no window could be measured (see metricsError). */
  signals: Signals | null;
  /** Why there are no signals, or which pods failed (for the condition's message). */
  metricsError?: string;
  readyReplicas: number;
  /** Ready pods whose scrape succeeded at both ends of the window. */
  scrapedReplicas: number;
  /** The prior SPS(B): the table or the model; corrected online here unless spsLearning is Off. */
  sps: SpsFunction;
  /** Where the prior came from (also the learned state's key: another prior starts over). */
  spsSource: string;
  memory: AutoscalerMemory;
}

export interface AutoscalerEvent {
  type: EventType;
  reason: string;
  message: string;
}

export interface StepOutput {
  /** Replicas to write through /scale, when spec.replicas must change. */
  write?: number;
  status: OwnedStatus;
  events: AutoscalerEvent[];
  memory: AutoscalerMemory;
  decision: ReplicaDecision;
  drift: DriftVerdict;
  speculation?: LengthTuning;
}

const MAX_DECISIONS = 10;
const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
/** Three significant digits: the status changes when a figure really moves, not on every scrape. */
export const sig3 = (v: number | null | undefined): number | undefined =>
  v === null || v === undefined || !Number.isFinite(v) ? undefined : Number(v.toPrecision(3));

/**
 * Whether spec.replicas was set by someone else while autoscaling is on, and what the autoscaler had
 * set. Its own writes are known twice: in memory (this operator replica's last write) and in
 * status.autoscaling.desiredReplicas (written after each decision, by whichever replica led), so
 * neither a status write that failed after the /scale write nor a leader change reads as an override.
 */
export function externalChange(
  ss: SpecServe,
  memory: AutoscalerMemory,
): { overridden: false } | { overridden: true; believed: number } {
  const spec = ss.spec.replicas;
  const inStatus = ss.status?.autoscaling?.desiredReplicas;
  const mine = [memory.lastWritten, inStatus].filter((v): v is number => v !== undefined);
  if (mine.length === 0 || mine.includes(spec)) return { overridden: false };
  return { overridden: true, believed: inStatus ?? (memory.lastWritten as number) };
}

export function step(input: StepInput): StepOutput {
  const { ss, autoscaling: a, nowMs, signals } = input;
  const now = nowMs / 1000;
  const policy = replicaPolicy(ss, a);
  const events: AutoscalerEvent[] = [];
  const specReplicas = ss.spec.replicas;
  // kubectl scale (or any other writer) while enabled: overridden at this decision, with an Event.
  const change = externalChange(ss, input.memory);
  const overridden = change.overridden;
  const current = change.overridden ? change.believed : specReplicas;

  const learned = learnedSps(input, policy);
  const sps = learned?.sps ?? input.sps;

  const { decision, state } = decideReplicas(
    policy,
    sps,
    {
      now,
      signals,
      signalsTime: signals ? now : null,
      currentReplicas: current,
      readyReplicas: input.readyReplicas,
      scrapedReplicas: input.scrapedReplicas,
    },
    input.memory.replicas,
  );
  // Holding never leaves the configured range (a spec.replicas set before autoscaling was enabled).
  const desired = clamp(decision.desiredReplicas, a.minReplicas, a.maxReplicas);

  // Drift: the baseline is measured anew for each draft served.
  // An applied length schedule changes tau as much as a draft does (shorter drafts at high batch).
  const draft = `${ss.status?.draft ?? ""}${lengthsKey(ss.status?.rollout?.lengths?.applied)}`;
  const driftMemory =
    input.memory.drift?.draft === draft ? input.memory.drift : { draft, state: driftStateAt(now) };
  const liveTau = decision.metricsAvailable ? (signals?.tau ?? null) : null;
  const assessed = assessDrift(driftPolicy(ss, a), driftMemory.state, now, liveTau);

  const speculation = lengthTuning(ss, { ...input, sps }, decision);

  const previous = ss.status?.autoscaling;
  const decisions = [...(ss.status?.decisions ?? [])];
  const record = (d: Decision) => decisions.unshift(d);
  const time = new Date(Math.floor(nowMs / 1000) * 1000).toISOString().replace(".000Z", "Z");
  const what = `${decision.reason}: ${decision.message}`;
  if (overridden) {
    events.push({
      type: "Warning",
      reason: "ScaleOverridden",
      message: `spec.replicas was set to ${specReplicas} outside the autoscaler (kubectl scale?); autoscaling is enabled and owns spec.replicas, so it is set to ${desired} (${what}). Set autoscaling.enabled: false to scale by hand.`,
    });
    record({ time, from: specReplicas, to: desired, reason: `Overridden: ${what}`.slice(0, 1024) });
  } else if (desired !== specReplicas) {
    events.push({
      type: "Normal",
      reason: desired > specReplicas ? "ScaledUp" : "ScaledDown",
      message: `${specReplicas} -> ${desired} replicas; ${what}`,
    });
    record({ time, from: specReplicas, to: desired, reason: what.slice(0, 1024) });
  } else if (!decision.metricsAvailable && previous?.reason !== decision.reason) {
    // A hold on missing metrics is a decision too: worth one entry when it starts.
    record({ time, from: current, to: desired, reason: what.slice(0, 1024) });
  }
  const wrote = desired !== specReplicas;

  const f = decision.figures;
  const autoscaling: AutoscalerStatus = {
    reason: decision.reason,
    message: decision.message.slice(0, 1024),
    desiredReplicas: desired,
    ...(wrote
      ? { lastScaleTime: time }
      : previous?.lastScaleTime
        ? { lastScaleTime: previous.lastScaleTime }
        : {}),
    tau: sig3(f.tau),
    projectedTau: sig3(f.projectedTau),
    baselineTau: sig3(assessed.verdict.baselineTau),
    arrivalRate: sig3(f.arrivalRate),
    concurrency: sig3(f.concurrency),
    maxConcurrencyPerReplica: sig3(f.maxConcurrencyPerReplica),
    predictedTokensPerSecondPerUser: sig3(f.predictedTokensPerSecondPerUser),
    measuredTokensPerSecondPerUser: sig3(f.measuredTokensPerSecondPerUser),
    spsSource: learned?.describe ? `${input.spsSource}; ${learned.describe}`.slice(0, 512) : input.spsSource,
    ...(learned && learned.state.windows > 0 ? { spsLearned: persistable(learned.state) } : {}),
    ...(speculation ? { speculationLength: speculationStatus(speculation) } : {}),
  };

  const status = ownedStatus(ss, {
    nowMs,
    autoscaling,
    decisions: decisions.slice(0, MAX_DECISIONS),
    scaling: decision.metricsAvailable
      ? {
          status: "True",
          reason: "SignalsMeasured",
          message: `${input.scrapedReplicas} of ${input.readyReplicas} ready pods scraped over the window${input.metricsError ? `; ${input.metricsError}` : ""}`,
        }
      : {
          status: "False",
          reason: decision.reason,
          message: `${decision.message}${input.metricsError ? `: ${input.metricsError}` : ""}; replicas held at ${desired}`,
        },
    acceptance: acceptanceCondition(assessed.verdict),
  });
  events.push(...driftEvents(ss, assessed.verdict));

  return {
    ...(wrote ? { write: desired } : {}),
    status,
    events,
    memory: {
      replicas: state,
      drift: { draft, state: assessed.state },
      lastWritten: desired,
      ...(learned ? { sps: learned.state } : {}),
    },
    decision: { ...decision, desiredReplicas: desired, currentReplicas: current },
    drift: assessed.verdict,
    speculation,
  };
}

/**
 * SPS(B) corrected from this window's step figures (spsLearning Online), resuming from memory, or
 * after a restart from status; undefined when learning is off.
 */
function learnedSps(input: StepInput, policy: ReturnType<typeof replicaPolicy>) {
  if (input.autoscaling.spsLearning === "Off") return undefined;
  const prior = input.spsSource;
  const start =
    input.memory.sps?.prior === prior
      ? input.memory.sps
      : restoreLearned(input.ss.status?.autoscaling?.spsLearned, prior);
  const l = learnFromWindow(
    start,
    input.sps,
    input.signals,
    policy.defaultWorkload,
    policy.shape,
    policy.numSpeculativeTokens,
  );
  return { sps: l.sps, state: l.state, describe: describeLearned(l.state) };
}

/** Three significant digits of each factor: status changes when a factor really moves. */
function persistable(s: SpsLearned): SpsLearned {
  return { ...s, buckets: s.buckets.map((b) => ({ ...b, factor: Number(b.factor.toPrecision(3)) })) };
}

function acceptanceCondition(v: DriftVerdict) {
  const figures =
    v.liveTau !== null
      ? ` (live tau ${v.liveTau.toFixed(2)}${v.baselineTau !== null ? `, baseline ${v.baselineTau.toFixed(2)}` : ""})`
      : "";
  if (v.reason === "NoAcceptanceData")
    return { status: "Unknown" as const, reason: v.reason, message: v.message };
  if (v.reason === "Healthy" || v.reason === "BaselinePending" || v.reason === "Disabled")
    return { status: "True" as const, reason: v.reason, message: v.message };
  return { status: "False" as const, reason: v.reason, message: `${v.message}${figures}` };
}

/** An Event when acceptance turns unhealthy and when it recovers (the condition carries the figures). */
function driftEvents(ss: SpecServe, v: DriftVerdict): AutoscalerEvent[] {
  const before = ss.status?.conditions?.find((c) => c.type === "AcceptanceHealthy");
  if (!v.healthy && (before?.status !== "False" || before.reason !== v.reason))
    return [{ type: "Warning", reason: v.reason, message: v.message }];
  if (v.healthy && v.reason === "Healthy" && before?.status === "False")
    return [{ type: "Normal", reason: "AcceptanceRecovered", message: v.message }];
  return [];
}

function lengthTuning(ss: SpecServe, input: StepInput, decision: ReplicaDecision): LengthTuning | undefined {
  const mode = ss.spec.speculative.lengthTuning;
  if (mode === "Off" || !decision.metricsAvailable || !input.signals) return undefined;
  const s = input.signals;
  const k = speculativeTokens(ss);
  const policy = replicaPolicy(ss, input.autoscaling);
  return tuneLength(input.sps, {
    ...lengthApplyContext(ss, input.nowMs),
    mode,
    acceptanceByPosition: s.acceptanceByPosition,
    currentTokens: k,
    maxTokens: k,
    engine: ss.spec.engine,
    loadAdaptation: ss.spec.speculative.loadAdaptation,
    userLengthByBatchSize: ss.spec.speculative.lengthByBatchSize,
    currentBatch: input.scrapedReplicas > 0 && s.running !== null ? s.running / input.scrapedReplicas : 0,
    minGain: MIN_LENGTH_GAIN,
    slo: policy.slo,
    work: workloadOf(s, DEFAULT_WORKLOAD),
    shape: policy.shape,
  });
}

function speculationStatus(t: LengthTuning): NonNullable<AutoscalerStatus["speculationLength"]> {
  // action apply: the SpecServe controller tries the ranges on a canary (length-rollout.ts).
  return {
    action: t.action,
    ranges: t.ranges,
    ...(t.tokensAtCurrentBatch !== undefined ? { tokensAtCurrentBatch: t.tokensAtCurrentBatch } : {}),
    ...(t.currentBatch !== undefined ? { currentBatch: sig3(t.currentBatch) } : {}),
    ...(t.predictedGain !== undefined ? { predictedGain: Number(t.predictedGain.toFixed(2)) } : {}),
    ...(t.tau !== undefined ? { tau: sig3(t.tau) } : {}),
    ...(t.acceptanceByPosition?.length
      ? { acceptanceByPosition: t.acceptanceByPosition.map((a) => Number(a.toFixed(3))) }
      : {}),
    reason: t.reason.slice(0, 1024),
  };
}
