// Progress of the running stage, read from rank 0's progress endpoint when the last reading is
// older than spec.progressInterval. A bad report is a condition and an Event, never an error.
import { setCondition } from "../../lib/conditions.ts";
import { readProgress, statusProgress } from "../shared/progress.ts";
import type { DraftTrainingDeps, DraftTrainingObject } from "./controller.ts";
import type { DraftTrainingStatus, PipelineEvent } from "./pipeline.ts";
import { progressIntervalMs, type StageName } from "./plan.ts";
import { runningPod } from "./read.ts";
import { conditionsOf } from "./status.ts";

export async function withProgress(
  deps: Pick<DraftTrainingDeps, "jobs" | "pods" | "progressPort" | "readProgress">,
  dt: DraftTrainingObject,
  status: DraftTrainingStatus,
  now: number,
): Promise<{ status: DraftTrainingStatus; events: PipelineEvent[] }> {
  const stage = status.stage as StageName;
  const last = status.progress?.lastUpdateTime ? Date.parse(status.progress.lastUpdateTime) : 0;
  if (now - last < progressIntervalMs(dt)) return { status, events: [] };
  const pod = runningPod(deps, dt, stage);
  if (!pod?.status?.podIP) return { status, events: [] };
  const report = await (deps.readProgress ?? readProgress)(pod.status.podIP, deps.progressPort);
  const generation = dt.metadata.generation;
  if (!report.ok) {
    const conditions = setCondition(
      conditionsOf(status),
      { type: "ProgressAvailable", status: "False", reason: "BadProgressReport", message: report.problem },
      generation,
      now,
    );
    return {
      status: { ...status, conditions },
      events: [{ type: "Warning", reason: "BadProgressReport", message: report.problem }],
    };
  }
  const conditions = setCondition(
    conditionsOf(status),
    {
      type: "ProgressAvailable",
      status: "True",
      reason: "Reporting",
      message: `reading ${pod.metadata?.name}`,
    },
    generation,
    now,
  );
  return {
    status: { ...status, conditions, progress: { stage, ...statusProgress(report.progress, now) } },
    events: [],
  };
}
