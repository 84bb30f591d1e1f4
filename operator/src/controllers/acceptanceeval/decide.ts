// The AcceptanceEval state machine as one pure function: from the resource and what its draft and
// Job say, compute the next status, what to do and which Events to emit. No I/O; `now` is given.
// One generation, one Job: its results stay in status until the spec changes (a new generation).
import type { z } from "zod";
import type { acceptanceEvalStatus } from "../../api/acceptanceeval.ts";
import type { AcceptanceEval } from "../../api/kinds.ts";
import { type Condition, setCondition } from "../../lib/conditions.ts";
import { dropUndefined } from "../../lib/objects.ts";
import { containersNotStarting, podsNotStarting } from "../drafttraining/health.ts";
import type { JobObservation, Termination } from "../drafttraining/observe.ts";
import { inSpecTerms, publishedOutput } from "../shared/publish.ts";
import { childNames, type DraftResolution, type OutputLayout, type ResolvedDraft } from "./plan.ts";
import { specFields } from "./runtimetasks.ts";
import { summarize, type TaskResult, verdict } from "./verdict.ts";

export type AcceptanceEvalStatus = z.infer<typeof acceptanceEvalStatus>;

export interface Observed {
  draft: DraftResolution;
  /** This generation's Job. */
  job?: JobObservation;
  /** Jobs of earlier generations that still exist. */
  staleJobs: string[];
  output: OutputLayout;
}

/** runEval: bring this generation's Job and task ConfigMap to their desired state (level-triggered). */
export type Action = { type: "runEval"; draft: ResolvedDraft } | { type: "deleteJob"; name: string };

export interface EvalEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export interface Decision {
  status: AcceptanceEvalStatus;
  actions: Action[];
  events: EvalEvent[];
}

const round = (x: number | undefined, digits = 4) =>
  x === undefined ? undefined : Math.round(x * 10 ** digits) / 10 ** digits;

/** Per-task figures as status keeps them: rounded, so equal runs write equal status. */
export function foldResult(r: TaskResult): TaskResult {
  const out: TaskResult = { name: r.name, samples: r.samples, tau: round(r.tau) ?? 0 };
  if (r.acceptanceByPosition) out.acceptanceByPosition = r.acceptanceByPosition.map((a) => round(a) ?? 0);
  if (r.verifyRate !== undefined) out.verifyRate = round(r.verifyRate);
  if (r.tokensPerSecond !== undefined) out.tokensPerSecond = round(r.tokensPerSecond, 2);
  if (r.baselineTokensPerSecond !== undefined)
    out.baselineTokensPerSecond = round(r.baselineTokensPerSecond, 2);
  if (r.speedup !== undefined) out.speedup = round(r.speedup);
  if (r.convention) out.convention = r.convention;
  if (r.vllmConvention)
    out.vllmConvention = dropUndefined({
      tau: round(r.vllmConvention.tau) ?? 0,
      acceptanceByPosition: r.vllmConvention.acceptanceByPosition?.map((a) => round(a) ?? 0),
      drafts: r.vllmConvention.drafts,
    });
  if (r.live) out.live = r.live;
  return out;
}

/**
 * The figures a finished Job reported, when it reported any: a missed gate and a failed copy of the
 * result to spec.output exit non-zero with them.
 */
function measured(job: JobObservation): Termination | undefined {
  const t = job.termination;
  if (!t?.result?.evaluation) return undefined;
  if (job.complete || t.result.reason === "gateFailed" || t.result.reason === "publishFailed") return t;
  return undefined;
}

/**
 * Where the full result is when the termination message could not hold it: on spec.output (written
 * in place on a claim, or copied to the object store), else only in the pod's scratch space.
 */
function fullResultAt(resultUri: string | undefined, resultPath: string | undefined, copyFailed: boolean) {
  if (resultUri) return resultUri;
  const file = resultPath ?? "the result file";
  return copyFailed
    ? `${file} in the pod's scratch space only (the copy to spec.output failed)`
    : `${file} in the pod's scratch space only (set spec.output to keep it)`;
}

const capitalized = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

export function jobFailure(
  job: JobObservation,
  fields: Record<string, string> = {},
): { reason: string; message: string } {
  const t = job.termination;
  if (t?.reason && t.reason !== "success") {
    const why = inSpecTerms(t.message ?? job.failureMessage ?? "no message", fields);
    return { reason: capitalized(t.reason), message: `${t.reason} (exit ${t.exitCode}): ${why}` };
  }
  return {
    reason: job.failureReason ?? "JobFailed",
    message: job.failureMessage ?? t?.message ?? `Job ${job.name} failed`,
  };
}

/**
 * What every AcceptanceEval decision, offline and live, starts from and ends with: the previous
 * status of this generation (a new generation starts from nothing but its conditions), a condition
 * setter, the stale Jobs to delete, and `finish`, which stamps observedGeneration, drops the
 * pod-start conditions once not running and adds the phase Events.
 */
export function statusDecision<A extends { type: string }>(
  ae: AcceptanceEval,
  now: number,
  staleJobs: string[],
) {
  const generation = ae.metadata.generation;
  const old = ae.status ?? {};
  const sameGeneration = old.observedGeneration === generation;
  const previousPhase = sameGeneration ? old.phase : undefined;
  let conditions = (old.conditions ?? []) as Condition[];
  const base: AcceptanceEvalStatus = sameGeneration
    ? { ...old }
    : { conditions: old.conditions as AcceptanceEvalStatus["conditions"] };
  const actions: (A | Action)[] = staleJobs.map((name) => ({ type: "deleteJob" as const, name }));
  const events: EvalEvent[] = [];
  const set = (type: string, status: "True" | "False" | "Unknown", reason: string, message: string) => {
    conditions = setCondition(conditions, { type, status, reason, message }, generation, now);
  };
  const drop = (...types: string[]) => {
    conditions = conditions.filter((c) => !types.includes(c.type));
  };
  const previousReason = (type: string) => old.conditions?.find((c) => c.type === type)?.reason;
  const finish = (status: Omit<AcceptanceEvalStatus, "conditions" | "observedGeneration">) => {
    if (status.phase !== "Running") drop("PodsScheduled", "ContainersStarted");
    const next = dropUndefined({ ...status, observedGeneration: generation, conditions });
    if (next.phase !== previousPhase) events.unshift(...phaseEvents(next));
    return { status: next, actions, events };
  };
  /** A running Job's pod that cannot be scheduled or start its containers shows, with an Event once. */
  const showPodStart = (job: JobObservation) => {
    for (const [type, problem] of [
      ["PodsScheduled", podsNotStarting(job, now)],
      ["ContainersStarted", containersNotStarting(job)],
    ] as const) {
      if (!problem) {
        drop(type);
        continue;
      }
      set(type, "False", problem.reason, problem.message);
      if (previousReason(type) !== problem.reason)
        events.push({ type: "Warning", reason: problem.reason, message: problem.message });
    }
  };
  const write = { set, drop, previousReason, finish, showPodStart };
  return { old, sameGeneration, previousPhase, base, actions, events, ...write };
}

export function decide(ae: AcceptanceEval, observed: Observed, now: number): Decision {
  const {
    old,
    sameGeneration,
    previousPhase,
    base,
    actions,
    events,
    set,
    drop,
    previousReason,
    finish,
    showPodStart,
  } = statusDecision<Action>(ae, now, observed.staleJobs);

  const job = observed.job;
  if (!job) {
    // This generation already ended and its Job was removed: its figures stand.
    if (sameGeneration && (old.phase === "Succeeded" || old.phase === "Failed"))
      return { status: old, actions, events };
    const d = observed.draft;
    if (d.state !== "ready") {
      set("DraftReady", "False", d.reason, d.message);
      if (d.state === "failed") {
        set("Succeeded", "False", d.reason, d.message);
        return finish({ ...base, phase: "Failed", completionTime: new Date(now).toISOString() });
      }
      set("Succeeded", "Unknown", d.reason, d.message);
      if (previousReason("DraftReady") !== d.reason)
        events.push({
          type: d.state === "unsupported" ? "Warning" : "Normal",
          reason: d.state === "unsupported" ? d.reason : "WaitingForDraft",
          message: d.message,
        });
      return finish({ ...base, phase: "Pending" });
    }
    set("DraftReady", "True", "DraftResolved", `measuring ${d.draft.uri}`);
    actions.push({ type: "runEval", draft: d.draft });
    const jobName = childNames(ae).job;
    set("Succeeded", "Unknown", "Running", `Job ${jobName} is evaluating`);
    return finish({
      ...base,
      phase: "Running",
      job: jobName,
      draft: d.draft,
      startTime: base.startTime ?? new Date(now).toISOString(),
    });
  }

  // The draft was fixed when the Job was built; a restarted operator that lost it resolves it again.
  const draft = base.draft ?? (observed.draft.state === "ready" ? observed.draft.draft : undefined);
  const running: AcceptanceEvalStatus = {
    ...base,
    job: job.name,
    draft,
    startTime: base.startTime ?? job.startTime ?? new Date(now).toISOString(),
  };
  if (draft) set("DraftReady", "True", "DraftResolved", `measuring ${draft.uri}`);
  const ended = (time?: string) => old.completionTime ?? time ?? new Date(now).toISOString();
  const onClaim = observed.output.onOutput ? `${observed.output.uri}/result.json` : undefined;

  const t = measured(job);
  if (t?.result?.evaluation) {
    const output = publishedOutput(t, job.completionTime ?? ended());
    const copyFailed = t.result.reason === "publishFailed";
    const resultUri = onClaim ?? output?.uri;
    const phase = copyFailed ? "Failed" : "Succeeded";
    const evaluation = t.result.evaluation;
    const results = (evaluation.results ?? []).map(foldResult);
    const truncated = t.result.truncated === true;
    const summary =
      truncated && evaluation.summary
        ? evaluation.summary
        : { ...summarize(results), macroTau: round(summarize(results).macroTau) ?? 0 };
    if (summary.macroSpeedup !== undefined) summary.macroSpeedup = round(summary.macroSpeedup);
    const gate = truncated && evaluation.gate ? evaluation.gate : verdict(ae.spec.gate, results, summary);
    const figures = `macro tau ${summary.macroTau} over ${summary.samples} samples in ${results.length} task sets`;
    if (copyFailed) {
      // The evaluation is not run again for a copy: its figures stand, the failure names the field.
      const message = `the evaluation completed (${figures}, in status) but its result JSON was not copied to spec.output.uri ${ae.spec.output?.uri}: ${inSpecTerms(t.message ?? t.result.message) ?? "no message"}`;
      set("Succeeded", "False", "PublishFailed", message);
    } else
      set("Succeeded", "True", "Measured", output ? `${figures}; result copied to ${output.uri}` : figures);
    if (gate.verdict === "Passed") set("Passed", "True", "ThresholdsMet", "every gate threshold is met");
    else if (gate.verdict === "Failed")
      set("Passed", "False", "ThresholdsMissed", (gate.reasons ?? []).join("; ") || "gate failed");
    else drop("Passed");
    if (truncated) {
      const where = fullResultAt(resultUri, t.result.resultPath, copyFailed);
      const message = `the runtime's result did not fit in the 4096-byte termination message; status holds what fit, the full result is in ${where}`;
      set("ResultComplete", "False", "ResultTruncated", message);
      if (previousPhase !== phase) events.push({ type: "Warning", reason: "ResultTruncated", message });
    } else drop("ResultComplete");
    return finish({
      ...running,
      phase,
      results,
      summary,
      gate,
      resultUri,
      output,
      completionTime: ended(job.completionTime),
    });
  }
  if (job.complete) {
    const message = `Job ${job.name} completed without evaluation figures in its termination message`;
    set("Succeeded", "False", "MissingResult", message);
    return finish({ ...running, phase: "Failed", completionTime: ended(job.completionTime) });
  }
  if (job.failed) {
    const f = jobFailure(job, specFields(ae));
    set("Succeeded", "False", f.reason, f.message);
    return finish({ ...running, phase: "Failed", completionTime: ended() });
  }
  // Still running: its children stay as desired (a deleted task ConfigMap comes back).
  if (draft) actions.push({ type: "runEval", draft });
  set("Succeeded", "Unknown", "Running", `Job ${job.name} is evaluating`);
  showPodStart(job);
  return finish({ ...running, phase: "Running" });
}

export function phaseEvents(status: AcceptanceEvalStatus): EvalEvent[] {
  const succeeded = status.conditions?.find((c) => c.type === "Succeeded");
  switch (status.phase) {
    case "Running":
      return [
        {
          type: "Normal",
          reason: "Started",
          message: `evaluating ${status.draft?.name ?? "the draft"} (Job ${status.job})`,
        },
      ];
    case "Failed": {
      const reason = succeeded?.reason === "PublishFailed" ? "PublishFailed" : "Failed";
      return [{ type: "Warning", reason, message: succeeded?.message ?? "evaluation failed" }];
    }
    case "Succeeded": {
      const perTask = (status.results ?? []).map((r) => `${r.name} ${r.tau}`).join(", ");
      const out: EvalEvent[] = [
        {
          type: "Normal",
          reason: "Succeeded",
          message: `macro tau ${status.summary?.macroTau} over ${status.summary?.samples} samples (${perTask})`,
        },
      ];
      if (status.gate?.verdict === "Passed")
        out.push({ type: "Normal", reason: "GatePassed", message: "every gate threshold is met" });
      if (status.gate?.verdict === "Failed")
        out.push({
          type: "Warning",
          reason: "GateFailed",
          message: `gate failed: ${(status.gate.reasons ?? []).join("; ")}`,
        });
      return out;
    }
    default:
      return [];
  }
}
