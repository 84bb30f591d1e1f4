// The Publish stage: after training (and the evaluation gate, when there is one) the final
// checkpoint is copied from storage to spec.output when that is an object store. It runs as a Job of
// its own (runtime task kind `publish`), so a failed copy is retried, and shown, without training
// again; the runtime skips files already there, so a retry sends only what did not arrive. Pure.
import type { DraftTraining } from "../../api/kinds.ts";
import { RUNTIME_API_VERSION } from "../../contract/constants.ts";
import type { TaskInput } from "../../contract/task.ts";
import { isObjectStoreOutput, publishedOutput as publishedCopy, publishTarget } from "../shared/publish.ts";
import type { JobObservation } from "./observe.ts";
import type { DraftTrainingStatus } from "./pipeline.ts";

export { inSpecTerms } from "../shared/publish.ts";

/** Whether the DraftTraining copies its draft to an object store (pvc:// output stays where it is). */
export const publishesOutput = (dt: DraftTraining): boolean => isObjectStoreOutput(dt.spec.output);

/** The publish task: the checkpoint folder (resolved from its latest link by the runtime) to spec.output. */
export function publishTask(
  dt: DraftTraining,
  common: Omit<TaskInput, "kind" | "params">,
  checkpointPath: string,
): TaskInput {
  const output = dt.spec.output;
  if (!output) throw new Error("publishTask: spec.output is not set");
  return {
    ...common,
    apiVersion: RUNTIME_API_VERSION,
    kind: "publish",
    publish: publishTarget(output),
    params: { source: checkpointPath },
  } as TaskInput;
}

/** status.output from a finished Publish Job's result: where the draft is, its size and checksum. */
export function publishedOutput(job: JobObservation | undefined): DraftTrainingStatus["output"] {
  return job?.complete ? publishedCopy(job.termination, job.completionTime) : undefined;
}
