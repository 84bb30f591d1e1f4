// Each stage's state from what its child says (a Job, or the AcceptanceEval for Evaluate), and
// whether a failed child predates the latest spec change (then the stage runs again). Pure.

import type { JobObservation } from "./observe.ts";
import type { DraftTrainingStatus, EvalObservation } from "./pipeline.ts";
import type { StageName } from "./plan.ts";

export type StageStatus = NonNullable<DraftTrainingStatus["stages"]>[number];

export const terminalStates = new Set(["Succeeded", "Skipped"]);

/** A failed child from before the latest spec change: the stage runs again with the new spec. */
export const staleFailure = (
  child: { generation: number } | undefined,
  failed: boolean,
  generation: number,
) => child !== undefined && failed && child.generation < generation;

const rerunning = (name: StageName, generation: number): StageStatus => ({
  name,
  state: "Pending",
  attempts: 0,
  message: `runs again with the changed spec (generation ${generation})`,
});

export function stageFromJob(
  name: StageName,
  job: JobObservation | undefined,
  previous: StageStatus | undefined,
  generation: number,
): StageStatus {
  if (job && staleFailure(job, job.failed, generation)) return rerunning(name, generation);
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
  if (job.suspended && job.queue) {
    // Kueue keeps a queued Job suspended until it admits it (and suspends it again on eviction).
    const why = job.suspendedMessage ? `: ${job.suspendedMessage}` : "";
    return { ...base, state: "Pending", message: `waiting for quota in Kueue queue ${job.queue}${why}` };
  }
  if (job.suspended) return { ...base, state: "Suspended", message: "suspended" };
  return base;
}

export function evaluationStage(
  ev: EvalObservation | undefined,
  previous: StageStatus | undefined,
  generation: number,
): StageStatus {
  if (ev?.foreign)
    return {
      name: "Evaluate",
      state: "Pending",
      attempts: 0,
      message: `AcceptanceEval ${ev.name} already exists and is not this DraftTraining's (no controller reference to it); the evaluation gate needs that name: rename or delete that AcceptanceEval`,
    };
  if (ev && staleFailure(ev, ev.phase === "Failed" || ev.verdict === "Failed", generation))
    return rerunning("Evaluate", generation);
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
