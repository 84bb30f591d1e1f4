// The DraftTraining state machine as one pure function: from the resource and what its children
// say, compute the next status and the one thing to do next. No I/O, no clock reads: `now` is given.
import type { z } from "zod";
import type { draftTrainingStatus } from "../../api/drafttraining.ts";
import type { DraftTraining } from "../../api/kinds.ts";
import { type Condition, setCondition } from "../../lib/conditions.ts";
import { round } from "../shared/progress.ts";
import type { JobObservation } from "./observe.ts";
import { plannedStages, type StageName } from "./plan.ts";

export type DraftTrainingStatus = z.infer<typeof draftTrainingStatus>;
type StageStatus = NonNullable<DraftTrainingStatus["stages"]>[number];

export interface EvalObservation {
  name: string;
  phase?: "Pending" | "Running" | "Succeeded" | "Failed";
  macroTau?: number;
  verdict?: "Passed" | "Failed" | "NotEvaluated";
  reasons?: string[];
  message?: string;
}

export interface Observed {
  jobs: Partial<Record<StageName, JobObservation>>;
  evaluation?: EvalObservation;
  /** Secrets the spec references that do not exist. */
  missingSecrets: string[];
  /** Where the latest checkpoint is, as a URI. */
  checkpointUri: string;
}

export type Action =
  | { type: "runStage"; stage: Exclude<StageName, "Evaluate">; suspend: boolean }
  | { type: "createEvaluation" }
  | { type: "tearDownRegenServer" };

export interface PipelineEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export interface Decision {
  status: DraftTrainingStatus;
  actions: Action[];
  events: PipelineEvent[];
  /** The pipeline is still moving: poll progress and look again. */
  active: boolean;
}

const terminalStates = new Set(["Succeeded", "Skipped"]);

function stageFromJob(
  name: StageName,
  job: JobObservation | undefined,
  previous: StageStatus | undefined,
): StageStatus {
  if (!job) {
    // A finished stage whose Job was deleted stays finished: its output is on storage.
    if (previous && terminalStates.has(previous.state)) return previous;
    return { name, state: "Pending", attempts: 0 };
  }
  const attempts = job.failedPods + (job.complete ? 1 : job.active > 0 ? 1 : 0);
  const base: StageStatus = {
    name,
    state: "Running",
    job: job.name,
    attempts,
    ...(job.startTime ? { startTime: job.startTime } : {}),
  };
  if (job.complete) {
    return {
      ...base,
      state: "Succeeded",
      ...(job.completionTime ? { completionTime: job.completionTime } : {}),
      message: job.termination?.message ?? "completed",
    };
  }
  if (job.failed) {
    const why = job.termination?.message ?? job.failureMessage ?? job.failureReason ?? "failed";
    return { ...base, state: "Failed", message: why };
  }
  if (job.suspended) return { ...base, state: "Suspended", message: "suspended" };
  return base;
}

function evaluationStage(ev: EvalObservation | undefined, previous: StageStatus | undefined): StageStatus {
  if (!ev)
    return previous && terminalStates.has(previous.state)
      ? previous
      : { name: "Evaluate", state: "Pending", attempts: 0 };
  const base: StageStatus = { name: "Evaluate", state: "Running", job: ev.name, attempts: 1 };
  if (ev.phase === "Succeeded") {
    if (ev.verdict === "Failed")
      return { ...base, state: "Failed", message: `gate failed: ${(ev.reasons ?? []).join("; ")}` };
    return { ...base, state: "Succeeded", message: `macro tau ${ev.macroTau?.toFixed(2) ?? "?"}` };
  }
  if (ev.phase === "Failed") {
    const gate = ev.verdict === "Failed" ? `gate failed: ${(ev.reasons ?? []).join("; ")}` : undefined;
    return { ...base, state: "Failed", message: gate ?? ev.message ?? "evaluation failed" };
  }
  return base;
}

export function decide(dt: DraftTraining, observed: Observed, now: number): Decision {
  const generation = dt.metadata.generation;
  const old = dt.status ?? {};
  const previous = new Map((old.stages ?? []).map((s) => [s.name, s]));
  const planned = plannedStages(dt);
  const stages = planned.map((name) =>
    name === "Evaluate"
      ? evaluationStage(observed.evaluation, previous.get(name))
      : stageFromJob(name, observed.jobs[name], previous.get(name)),
  );
  const events: PipelineEvent[] = [];
  for (const s of stages) {
    const before = previous.get(s.name)?.state;
    if (before === s.state) continue;
    const termination = s.name === "Evaluate" ? undefined : observed.jobs[s.name]?.termination;
    if (s.state === "Succeeded" && (!termination?.result || termination.malformed)) {
      events.push({
        type: "Warning",
        reason: "MissingResult",
        message: `stage ${s.name} succeeded without a valid result in its termination message`,
      });
    }
    if (s.state === "Running")
      events.push({
        type: "Normal",
        reason: `${s.name}Started`,
        message: `stage ${s.name} started (${s.job})`,
      });
    if (s.state === "Succeeded")
      events.push({ type: "Normal", reason: `${s.name}Succeeded`, message: `stage ${s.name} succeeded` });
    if (s.state === "Failed")
      events.push({
        type: "Warning",
        reason: `${s.name}Failed`,
        message: `stage ${s.name} failed: ${s.message}`,
      });
  }

  let conditions: Condition[] = (old.conditions ?? []) as Condition[];
  const set = (type: string, status: "True" | "False" | "Unknown", reason: string, message: string) => {
    conditions = setCondition(conditions, { type, status, reason, message }, generation, now);
  };

  const status: DraftTrainingStatus = { ...old, observedGeneration: generation, stages };
  // The draft exists as soon as training succeeds; the evaluation reads it from here.
  const trained = observed.jobs.Train;
  if (trained?.complete) {
    const step = trained.termination?.result?.outputs?.checkpoint?.step;
    status.checkpoint = { uri: observed.checkpointUri, ...(step !== undefined ? { step } : {}) };
  }
  const actions: Action[] = [];

  if (observed.missingSecrets.length > 0) {
    const message = `Secret ${observed.missingSecrets.join(", ")} referenced by the spec does not exist in namespace ${dt.metadata.namespace}`;
    set("Ready", "False", "SecretMissing", message);
    if (old.conditions?.find((c) => c.type === "Ready")?.reason !== "SecretMissing") {
      events.push({ type: "Warning", reason: "SecretMissing", message });
    }
    return {
      status: { ...status, stage: old.stage ?? "Pending", conditions },
      actions,
      events,
      active: false,
    };
  }

  const failed = stages.find((s) => s.state === "Failed");
  const ended = failed !== undefined || stages.every((s) => terminalStates.has(s.state));
  // ProgressAvailable describes the running stage's pods; once the pipeline ends there are none.
  if (ended) conditions = conditions.filter((c) => c.type !== "ProgressAvailable");
  if (failed) {
    set(
      "Succeeded",
      "False",
      failed.name === "Evaluate" && failed.message?.startsWith("gate failed")
        ? "GateFailed"
        : `${failed.name}Failed`,
      failed.message ?? "",
    );
    set("Ready", "False", "Failed", `stage ${failed.name} failed`);
    set("Progressing", "False", "Failed", `stage ${failed.name} failed`);
    return {
      status: { ...status, stage: "Failed", conditions },
      actions: regenTeardown(planned, stages),
      events,
      active: false,
    };
  }

  const current = stages.find((s) => !terminalStates.has(s.state));
  if (!current) {
    set("Succeeded", "True", "PipelineSucceeded", `draft trained: ${observed.checkpointUri}`);
    set("Ready", "True", "Succeeded", "the trained draft is ready");
    set("Progressing", "False", "Succeeded", "all stages done");
    const evaluation = observed.evaluation
      ? {
          acceptanceEval: observed.evaluation.name,
          macroTau: observed.evaluation.macroTau,
          passed: observed.evaluation.verdict !== "Failed",
        }
      : undefined;
    return {
      status: dropUndefined({
        ...status,
        stage: "Succeeded",
        conditions,
        checkpoint: { ...status.checkpoint, uri: observed.checkpointUri },
        evaluation: evaluation ?? old.evaluation,
        progress: finalTrainingProgress(observed.jobs.Train) ?? status.progress,
      }),
      actions: regenTeardown(planned, stages),
      events,
      active: false,
    };
  }

  const suspended = dt.spec.suspend;
  if (current.name === "Evaluate") {
    if (!observed.evaluation) actions.push({ type: "createEvaluation" });
  } else {
    actions.push({ type: "runStage", stage: current.name, suspend: suspended });
  }
  actions.push(...regenTeardown(planned, stages));

  if (suspended) {
    set("Progressing", "False", "Suspended", `suspended at stage ${current.name}; checkpoints are kept`);
    set("Ready", "False", "Suspended", "suspended");
    if (old.stage !== "Suspended")
      events.push({ type: "Normal", reason: "Suspended", message: `suspended at stage ${current.name}` });
    return { status: { ...status, stage: "Suspended", conditions }, actions, events, active: false };
  }
  if (old.stage === "Suspended")
    events.push({ type: "Normal", reason: "Resumed", message: `resumed at stage ${current.name}` });
  const stuck = current.name === "Evaluate" ? undefined : podsNotStarting(observed.jobs[current.name], now);
  if (stuck) {
    set("PodsScheduled", "False", stuck.reason, stuck.message);
    if (old.conditions?.find((c) => c.type === "PodsScheduled")?.reason !== stuck.reason) {
      events.push({ type: "Warning", reason: stuck.reason, message: stuck.message });
    }
  } else {
    conditions = conditions.filter((c) => c.type !== "PodsScheduled");
  }
  set(
    "Progressing",
    "True",
    `${current.name}Running`,
    `stage ${current.name} is ${current.state.toLowerCase()}`,
  );
  set("Ready", "False", "InProgress", `stage ${current.name}`);
  set("Succeeded", "Unknown", "InProgress", `stage ${current.name}`);
  const progress = old.progress?.stage === current.name ? old.progress : { stage: current.name };
  return { status: { ...status, stage: current.name, conditions, progress }, actions, events, active: true };
}

/** Training's own final figures (from its result), so a finished run does not show the last poll. */
function finalTrainingProgress(train: JobObservation | undefined): DraftTrainingStatus["progress"] {
  const t = train?.termination?.result?.training;
  if (!t) return undefined;
  return dropUndefined({
    stage: "Train" as const,
    step: t.step,
    totalSteps: t.totalSteps,
    percent:
      t.step !== undefined && t.totalSteps
        ? Math.min(100, Math.floor((100 * t.step) / t.totalSteps))
        : undefined,
    epoch: t.epoch,
    loss: round(t.loss),
    tauEstimate: round(t.tauEstimate),
    lastUpdateTime: train?.completionTime,
  });
}

/** A Job that started no pod for this long is stuck (quota, admission, missing PriorityClass...). */
export const POD_START_GRACE_MS = 60_000;

/** Why the current stage's pods are not running, when they should be by now. */
function podsNotStarting(job: JobObservation | undefined, now: number) {
  if (!job || job.complete || job.failed || job.suspended) return undefined;
  if (job.unschedulable) {
    return {
      reason: "Unschedulable",
      message: `pods of Job ${job.name} cannot be scheduled: ${job.unschedulable}`,
    };
  }
  const age = job.createdAt ? now - Date.parse(job.createdAt) : 0;
  if (job.pods === 0 && job.failedPods === 0 && age > POD_START_GRACE_MS) {
    return {
      reason: "NoPods",
      message: `Job ${job.name} has created no pod for over ${POD_START_GRACE_MS / 1000}s; \`kubectl describe job ${job.name}\` shows why (quota, admission, PriorityClass)`,
    };
  }
  return undefined;
}

/** The temporary regeneration server goes away as soon as regeneration is over (or the run ends). */
function regenTeardown(planned: StageName[], stages: StageStatus[]): Action[] {
  if (!planned.includes("Regenerate")) return [];
  const regen = stages.find((s) => s.name === "Regenerate");
  return regen && regen.state !== "Running" && regen.state !== "Pending"
    ? [{ type: "tearDownRegenServer" }]
    : [];
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
