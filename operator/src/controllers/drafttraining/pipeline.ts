// The DraftTraining state machine as one pure function: from the resource and what its children
// say, compute the next status and the one thing to do next. No I/O, no clock reads: `now` is given.
import type { z } from "zod";
import type { draftTrainingStatus } from "../../api/drafttraining.ts";
import type { DraftTraining } from "../../api/kinds.ts";
import { type Condition, setCondition } from "../../lib/conditions.ts";
import { dropUndefined } from "../../lib/objects.ts";
import { percentOf, round } from "../shared/progress.ts";
import type { JobStage } from "./desired.ts";
import { containersNotStarting, kueueAdmission, podsNotStarting } from "./health.ts";
import type { JobObservation } from "./observe.ts";
import { plannedStages, type StageName } from "./plan.ts";
import { inSpecTerms, publishedOutput } from "./publish.ts";
import { TASK_FIELDS_IN_SPEC } from "./runtimetasks.ts";
import { evaluationStage, type StageStatus, stageFromJob, staleFailure, terminalStates } from "./stages.ts";

export type DraftTrainingStatus = z.infer<typeof draftTrainingStatus>;

export interface EvalObservation {
  name: string;
  /** Generation of the DraftTraining the AcceptanceEval was made for (0 when not recorded). */
  generation: number;
  phase?: "Pending" | "Running" | "Succeeded" | "Failed";
  macroTau?: number;
  verdict?: "Passed" | "Failed" | "NotEvaluated";
  reasons?: string[];
  message?: string;
  /** An AcceptanceEval of the gate's name exists that this DraftTraining does not control. */
  foreign?: boolean;
}

export interface Observed {
  jobs: Partial<Record<StageName, JobObservation>>;
  evaluation?: EvalObservation;
  /** Where the latest checkpoint is, as a URI. */
  checkpointUri: string;
}

export type Action =
  /** Bring the stage's children to their desired state; suspend is the operator's (absent under Kueue). */
  | { type: "runStage"; stage: JobStage; suspend?: boolean }
  /** Delete a failed stage's Job (or AcceptanceEval) from an older generation, so it runs again. */
  | { type: "restartStage"; stage: StageName }
  | { type: "runEvaluation" }
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

export function decide(dt: DraftTraining, observed: Observed, now: number): Decision {
  const generation = dt.metadata.generation;
  const old = dt.status ?? {};
  const previous = new Map((old.stages ?? []).map((s) => [s.name, s]));
  const planned = plannedStages(dt);
  const stages = planned
    .map((name) =>
      name === "Evaluate"
        ? evaluationStage(observed.evaluation, previous.get(name), generation ?? 0)
        : stageFromJob(name, observed.jobs[name], previous.get(name), generation ?? 0),
    )
    // The runtime names its task's fields; the stage's message names the spec's.
    .map((s) => (s.message ? { ...s, message: inSpecTerms(s.message, TASK_FIELDS_IN_SPEC) } : s));
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
  const output = publishedOutput(observed.jobs.Publish);
  if (output) status.output = output;
  const actions: Action[] = [];

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
    const copied = status.output ? `, copied to ${status.output.uri}` : "";
    set("Succeeded", "True", "PipelineSucceeded", `draft trained: ${observed.checkpointUri}${copied}`);
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

  // Under Kueue the Jobs' suspension is Kueue's; the operator's own suspend applies only without it.
  const kueue = dt.spec.queueName !== undefined;
  const suspended = !kueue && dt.spec.suspend;
  const ev = observed.evaluation;
  const restart = planned.find((name) =>
    name === "Evaluate"
      ? staleFailure(ev, ev?.phase === "Failed" || ev?.verdict === "Failed", generation ?? 0)
      : staleFailure(observed.jobs[name], observed.jobs[name]?.failed === true, generation ?? 0),
  );
  if (restart) {
    // The old child goes first; the next pass (its deletion event) starts the stage afresh.
    actions.push({ type: "restartStage", stage: restart });
    if (old.stage === "Failed")
      events.push({
        type: "Normal",
        reason: "Rerunning",
        message: `spec changed (generation ${generation}): stage ${restart} runs again`,
      });
  } else if (current.name === "Evaluate") {
    // Someone else's AcceptanceEval of that name is left alone: applying would take it over.
    if (!ev?.foreign) actions.push({ type: "runEvaluation" });
  } else {
    actions.push({ type: "runStage", stage: current.name, ...(kueue ? {} : { suspend: suspended }) });
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
  if (current.name === "Evaluate" && ev?.foreign) {
    // Waits, and looks again each poll, until the name is free.
    const message = current.message ?? `AcceptanceEval ${ev.name} is not this DraftTraining's`;
    const before = old.conditions?.find((c) => c.type === "Progressing")?.reason;
    set("Progressing", "False", "EvaluationNameTaken", message);
    set("Ready", "False", "EvaluationNameTaken", message);
    set("Succeeded", "Unknown", "EvaluationNameTaken", message);
    if (before !== "EvaluationNameTaken")
      events.push({ type: "Warning", reason: "EvaluationNameTaken", message });
    return { status: { ...status, stage: current.name, conditions }, actions, events, active: true };
  }
  const job = current.name === "Evaluate" ? undefined : observed.jobs[current.name];
  const stuck = podsNotStarting(job, now);
  if (stuck) {
    set("PodsScheduled", "False", stuck.reason, stuck.message);
    if (old.conditions?.find((c) => c.type === "PodsScheduled")?.reason !== stuck.reason) {
      events.push({ type: "Warning", reason: stuck.reason, message: stuck.message });
    }
  } else {
    conditions = conditions.filter((c) => c.type !== "PodsScheduled");
  }
  const notStarting = containersNotStarting(job);
  if (notStarting) {
    set("ContainersStarted", "False", notStarting.reason, notStarting.message);
    if (old.conditions?.find((c) => c.type === "ContainersStarted")?.message !== notStarting.message) {
      events.push({ type: "Warning", reason: notStarting.reason, message: notStarting.message });
    }
  } else {
    conditions = conditions.filter((c) => c.type !== "ContainersStarted");
  }
  if (kueue) {
    const admission = kueueAdmission(job, dt.spec.queueName ?? "");
    if (admission) set("Admitted", admission.status, admission.reason, admission.message);
  } else {
    conditions = conditions.filter((c) => c.type !== "Admitted");
  }
  set(
    "Progressing",
    "True",
    `${current.name}Running`,
    `stage ${current.name} is ${current.state.toLowerCase()}`,
  );
  set("Ready", "False", notStarting?.reason ?? "InProgress", notStarting?.message ?? `stage ${current.name}`);
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
    percent: percentOf(t.step, t.totalSteps),
    epoch: t.epoch,
    loss: round(t.loss),
    tauEstimate: round(t.tauEstimate),
    lastUpdateTime: train?.completionTime,
  });
}

/** The temporary regeneration server goes away once regeneration is over; a suspended stage keeps it. */
function regenTeardown(planned: StageName[], stages: StageStatus[]): Action[] {
  if (!planned.includes("Regenerate")) return [];
  const regen = stages.find((s) => s.name === "Regenerate");
  return regen && (regen.state === "Succeeded" || regen.state === "Failed" || regen.state === "Skipped")
    ? [{ type: "tearDownRegenServer" }]
    : [];
}
