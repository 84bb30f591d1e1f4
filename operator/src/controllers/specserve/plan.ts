// What a SpecServe serves, decided from its spec and what it references: the draft (a model source,
// a DraftTraining's checkpoint, or built into the target), the serve Task the runtime turns into
// engine flags, and the names and labels of its children. Pure: the same inputs give the same plan.
import { createHash } from "node:crypto";
import type { ModelSource } from "../../api/common.ts";
import type { SpecServe } from "../../api/kinds.ts";
import type { LengthRange } from "../../autoscaler/speculation.ts";
import { RUNTIME_API_VERSION } from "../../contract/constants.ts";
import type { TaskInput } from "../../contract/task.ts";
import { MANAGED_BY } from "../shared/informers.ts";
import { childName } from "../shared/names.ts";

export const LABELS = {
  name: "app.kubernetes.io/name",
  managedBy: MANAGED_BY.key,
  owner: "specops.dev/specserve",
  /** Short hash of the served draft, so a canary's pods and an InferencePool can tell drafts apart. */
  draft: "specops.dev/draft",
  /** On the pods of a rollout's canary Deployment. */
  canary: "specops.dev/canary",
  /** Short hash of the draft-length schedule lengthTuning Apply set, on pods that run one. */
  lengths: "specops.dev/lengths",
} as const;

export const ANNOTATIONS = {
  /** "true" stops all reconciling of this SpecServe (children stay as they are). */
  paused: "specops.dev/paused",
  /** A draft URI to serve instead of what draft.draftTrainingRef currently points at. */
  pinnedDraft: "specops.dev/pinned-draft",
  /** On the Deployment (not its template): the runtime image chosen when it was created. */
  runtimeImage: "specops.dev/runtime-image",
  /** On the pod template: hash of the serve Task, so a Task change rolls the pods. */
  taskHash: "specops.dev/task-hash",
} as const;

export const SERVER_OUTPUT_PATH = "/tmp/specops-serve";

export const childNames = (ss: SpecServe) => {
  const base = ss.metadata.name ?? "";
  return {
    server: base,
    taskConfigMap: childName(base, "task"),
    canary: childName(base, "canary"),
    canaryTaskConfigMap: childName(base, "canary-task"),
    /** The canary analysis' start (baseline.ts). */
    rolloutBaseline: childName(base, "rollout-baseline"),
    service: base,
    pdb: base,
  };
};

/** Labels selecting every serving pod of a SpecServe (the status selector, the Service, the PDB). */
export const selectorLabels = (ss: SpecServe) => ({ [LABELS.owner]: ss.metadata.name ?? "" });
export const selectorString = (ss: SpecServe) =>
  Object.entries(selectorLabels(ss))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");

/** What the referenced DraftTraining says, as far as serving cares. */
export interface DraftTrainingObservation {
  exists: boolean;
  stage?: string;
  checkpointUri?: string;
  failureMessage?: string;
}

export type DraftPlan =
  | { state: "ready"; source?: ModelSource; display: string }
  | { state: "waiting" | "failed"; reason: string; message: string };

export function planDraft(ss: SpecServe, dt: DraftTrainingObservation | undefined): DraftPlan {
  const { draft } = ss.spec;
  const pinned = ss.metadata.annotations?.[ANNOTATIONS.pinnedDraft];
  if (pinned) return { state: "ready", source: { uri: pinned }, display: pinned };
  if (draft.builtIn) return { state: "ready", display: "built-in" };
  if (draft.source) return { state: "ready", source: draft.source, display: draft.source.uri };
  const name = draft.draftTrainingRef?.name ?? "";
  if (!dt?.exists) {
    return {
      state: "waiting",
      reason: "DraftTrainingNotFound",
      message: `DraftTraining ${name} does not exist yet; create it or set draft.source`,
    };
  }
  if (dt.stage === "Failed") {
    return {
      state: "failed",
      reason: "DraftTrainingFailed",
      message: `DraftTraining ${name} failed${dt.failureMessage ? `: ${dt.failureMessage}` : ""}; fix and recreate it, or set draft.source`,
    };
  }
  if (dt.stage !== "Succeeded" || !dt.checkpointUri) {
    return {
      state: "waiting",
      reason: "DraftTraining",
      message: `waiting for DraftTraining ${name} to finish (stage ${dt.stage ?? "Pending"})`,
    };
  }
  // A trained draft lives beside the target's credentials only if the user says so: the checkpoint
  // is on the DraftTraining's storage (pvc://), which needs no credentials.
  return { state: "ready", source: { uri: dt.checkpointUri }, display: dt.checkpointUri };
}

/**
 * The serve Task: only what the user's spec (and the resolved draft) says; no operator defaults,
 * except the draft-length schedule lengthTuning Apply promoted (or is trying), which the spec's own
 * lengthByBatchSize always wins over.
 */
export function serveTask(
  ss: SpecServe,
  draft: ModelSource | undefined,
  lengths?: readonly LengthRange[],
): TaskInput {
  const { spec } = ss;
  const speculative =
    lengths?.length && !spec.speculative.lengthByBatchSize?.length
      ? {
          ...spec.speculative,
          // Keys in one order, wherever the schedule was read from: the Task's hash rolls the pods.
          lengthByBatchSize: lengths.map((r) => ({
            minBatch: r.minBatch,
            maxBatch: r.maxBatch,
            tokens: r.tokens,
          })),
        }
      : spec.speculative;
  return {
    apiVersion: RUNTIME_API_VERSION,
    kind: "serve",
    backend: spec.engine,
    metadata: {
      name: ss.metadata.name,
      namespace: ss.metadata.namespace,
      owner: { kind: "SpecServe", name: ss.metadata.name ?? "" },
    },
    output: { path: SERVER_OUTPUT_PATH },
    params: {
      target: spec.target,
      draft,
      method: spec.method,
      speculative,
      extraEngineArgs: spec.extraEngineArgs,
      port: spec.port,
      tensorParallelSize: Math.max(1, spec.resources.gpusPerReplica * spec.resources.nodesPerReplica),
    },
  } as TaskInput;
}

export const shortHash = (value: unknown) =>
  createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 10);
