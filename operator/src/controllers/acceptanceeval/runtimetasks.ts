// The runtime Task of an offline evaluation (the contract's `eval` kind), built from the spec and
// the draft resolved for this generation. The gate travels along so the result file carries the
// verdict too; the operator judges again from the figures (verdict.ts), the same way. An s3:// or
// gs:// spec.output becomes the task's `publish`: the runtime copies the full result JSON there once
// the evaluation completed, its gate passed or not (shared/publish.ts, as a DraftTraining's draft).
import type { AcceptanceEval } from "../../api/kinds.ts";
import { RUNTIME_API_VERSION } from "../../contract/constants.ts";
import type { TaskInput } from "../../contract/task.ts";
import { isObjectStoreOutput, publishTarget } from "../shared/publish.ts";
import { childNames, type OutputLayout, type ResolvedDraft } from "./plan.ts";

export function evalTask(ae: AcceptanceEval, draft: ResolvedDraft, output: OutputLayout): TaskInput {
  const { spec } = ae;
  if (!spec.target || !spec.method) {
    // Admission requires both unless draft.specServeRef is set, which never reaches here.
    throw new Error("an offline evaluation needs spec.target and spec.method");
  }
  return {
    apiVersion: RUNTIME_API_VERSION,
    kind: "eval",
    backend: spec.backend,
    metadata: {
      name: childNames(ae).job,
      namespace: ae.metadata.namespace,
      owner: { kind: "AcceptanceEval", name: ae.metadata.name ?? "", uid: ae.metadata.uid },
    },
    output: { path: output.path, ...(output.uri ? { uri: output.uri } : {}) },
    ...(isObjectStoreOutput(spec.output) ? { publish: publishTarget(spec.output) } : {}),
    distributed: { nodes: 1, gpusPerNode: spec.resources.gpus },
    params: {
      target: spec.target,
      draft: { uri: draft.uri },
      method: spec.method,
      tasks: spec.tasks,
      decoding: spec.decoding,
      baseline: spec.baseline,
      ...(spec.gate ? { gate: spec.gate } : {}),
    },
  };
}

/** The spec fields the eval task's params came from, so the runtime's messages name what the user wrote. */
export function specFields(ae: AcceptanceEval): Record<string, string> {
  return {
    "params.target": "spec.target",
    "params.tasks": "spec.tasks",
    // A DraftTraining's checkpoint is nowhere in the spec: status.draft records which one it is.
    "params.draft": ae.spec.draft.source ? "spec.draft.source" : "status.draft",
  };
}
