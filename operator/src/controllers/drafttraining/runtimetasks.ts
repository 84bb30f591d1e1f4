// The runtime Task document of each DraftTraining stage (the contract in operator/src/contract).
// Inputs of a stage are the fixed output files of the stages before it, so a restarted operator
// rebuilds exactly the same tasks without remembering anything but the spec.
import type { DraftTraining } from "../../api/kinds.ts";
import { RUNTIME_API_VERSION, STAGE_OUTPUTS } from "../../contract/constants.ts";
import type { TaskInput } from "../../contract/task.ts";
import { childNames, REGEN_SERVER_PORT, type StageName, type StorageLayout, stageDir } from "./plan.ts";
import { publishTask } from "./publish.ts";

/** Experiment name: checkpoints land in <train dir>/checkpoints/specops/<experiment>/step_N. */
export const EXPERIMENT = "draft";

export function trainDataPath(dt: DraftTraining, layout: StorageLayout): string {
  return dt.spec.data.regenerate.enabled
    ? `${stageDir(layout, "Regenerate")}/${STAGE_OUTPUTS.regenerate.trainFile}`
    : `${stageDir(layout, "PrepareData")}/${STAGE_OUTPUTS.prepareData.trainFile}`;
}

export const targetCachePath = (layout: StorageLayout) =>
  `${stageDir(layout, "TargetCache")}/${STAGE_OUTPUTS.targetCache.dir}`;

/** The latest checkpoint as a pvc:// URI, for the evaluation and for serving. */
export function latestCheckpointUri(layout: StorageLayout): string {
  const { checkpointsDir, latestLink } = STAGE_OUTPUTS.train;
  return `${layout.rootUri}/train/${checkpointsDir}/${EXPERIMENT}/${latestLink}`;
}

export function stageTask(
  dt: DraftTraining,
  stage: Exclude<StageName, "Evaluate">,
  layout: StorageLayout,
): TaskInput {
  const { spec } = dt;
  const common = {
    apiVersion: RUNTIME_API_VERSION,
    metadata: {
      name: childNames(dt).job(stage),
      namespace: dt.metadata.namespace,
      owner: { kind: "DraftTraining" as const, name: dt.metadata.name ?? "", uid: dt.metadata.uid },
    },
    output: { path: stageDir(layout, stage) },
    backend: spec.backend,
    // s3:// and gs:// inputs are staged once on the shared storage; later stages find them there.
    storage: { stagingDir: `${layout.root}/staged` },
  };
  const distributed = {
    nodes: stage === "Train" ? spec.resources.nodes : 1,
    gpusPerNode: spec.resources.gpusPerNode,
  };
  switch (stage) {
    case "PrepareData":
      return {
        ...common,
        kind: "prepare-data",
        params: {
          prompts: spec.data.prompts,
          heldOutFraction: spec.data.heldOutFraction,
          maxSamples: spec.data.maxSamples,
          seed: spec.training.seed,
        },
      };
    case "Regenerate": {
      const {
        enabled: _enabled,
        engine: _engine,
        replicas: _replicas,
        gpusPerReplica: _gpus,
        ...sampling
      } = spec.data.regenerate;
      const namespace = dt.metadata.namespace ?? "default";
      return {
        ...common,
        kind: "regenerate",
        params: {
          ...sampling,
          target: spec.target,
          inputPath: `${stageDir(layout, "PrepareData")}/${STAGE_OUTPUTS.prepareData.trainFile}`,
          // The reference backend answers in-process; DeepSpec queries the temporary target server.
          servers:
            spec.backend === "deepspec"
              ? [`${childNames(dt).regenServer}.${namespace}.svc:${REGEN_SERVER_PORT}`]
              : undefined,
        },
      };
    }
    case "TargetCache":
      return {
        ...common,
        kind: "target-cache",
        distributed,
        params: {
          ...spec.data.targetCache,
          target: spec.target,
          method: spec.method,
          draft: spec.draft,
          dataPaths: [trainDataPath(dt, layout)],
          maxLength: spec.training.maxLength,
        },
      };
    case "Publish":
      return publishTask(
        dt,
        common,
        `${layout.root}/train/${STAGE_OUTPUTS.train.checkpointsDir}/${EXPERIMENT}/${STAGE_OUTPUTS.train.latestLink}`,
      );
    case "Train":
      return {
        ...common,
        kind: "train",
        distributed,
        params: {
          target: spec.target,
          method: spec.method,
          draft: spec.draft,
          training: spec.training,
          targetCachePath: targetCachePath(layout),
          dataPaths: [trainDataPath(dt, layout)],
          experiment: EXPERIMENT,
        },
      };
  }
}

/** The regeneration server's task: the target alone (no method, no draft) on the chosen engine. */
export function regenServerTask(dt: DraftTraining, layout: StorageLayout): TaskInput {
  const regen = dt.spec.data.regenerate;
  return {
    apiVersion: RUNTIME_API_VERSION,
    kind: "serve",
    backend: regen.engine,
    metadata: { name: childNames(dt).regenServer, namespace: dt.metadata.namespace },
    output: { path: `${stageDir(layout, "Regenerate")}/server` },
    params: {
      target: dt.spec.target,
      port: REGEN_SERVER_PORT,
      tensorParallelSize: Math.max(1, regen.gpusPerReplica),
    },
  };
}

/** The spec fields the stage tasks' object-store locations came from (params.x to spec.y). */
export const TASK_FIELDS_IN_SPEC: Readonly<Record<string, string>> = {
  "params.prompts": "spec.data.prompts",
  "params.target": "spec.target",
};
