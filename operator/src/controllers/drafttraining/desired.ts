// Desired Kubernetes objects of a DraftTraining: its storage claim, one task ConfigMap and Job per
// stage (an Indexed Job plus a headless Service for multi-node training), and the temporary target
// server answering regeneration requests. Pure builders; children.ts applies what they return.
import type { V1ObjectMeta } from "@kubernetes/client-node";
import { API_VERSION } from "../../api/common.ts";
import type { DraftTraining } from "../../api/kinds.ts";
import { EXIT_CODES, FAIL_JOB_EXIT_CODES } from "../../contract/exitCodes.ts";
import { controllerReference } from "../../lib/apply.ts";
import type { KubeObject, Wire } from "../../lib/rest.ts";
import { MANAGED_BY, STARTED_WITH_ANNOTATION } from "../shared/informers.ts";
import { labelValue } from "../shared/names.ts";
import { dropEmpty, runtimePodTemplate } from "../shared/pod.ts";
import {
  childNames,
  MASTER_PORT,
  REGEN_SERVER_PORT,
  STAGE_SLUG,
  type StageName,
  type StorageLayout,
} from "./plan.ts";
import { regenServerTask, stageTask } from "./runtimetasks.ts";

/** A built child: kind, name and namespace always set; only the fields this controller owns. */
export type DesiredObject = KubeObject & {
  apiVersion: string;
  kind: string;
  metadata: Wire<V1ObjectMeta> & { name: string; namespace: string; labels: Record<string, string> };
  [field: string]: unknown;
};

export const LABELS = {
  name: "app.kubernetes.io/name",
  managedBy: MANAGED_BY.key,
  /** The DraftTraining's name, hash-shortened when longer than a label value may be. */
  owner: "specops.dev/drafttraining",
  stage: "specops.dev/stage",
  /** Kueue's label naming the LocalQueue a Job is submitted to. */
  kueueQueue: "kueue.x-k8s.io/queue-name",
} as const;

export const ANNOTATIONS = {
  /** The spec a stage was started with (JSON): its children are rebuilt from it until it ends. */
  stageSpec: STARTED_WITH_ANNOTATION,
  /** The DraftTraining generation a stage was started with. */
  generation: "specops.dev/generation",
} as const;

export interface BuildContext {
  defaultImage: string;
  progressPort: number;
}

/** Label value of a DraftTraining's own name: selectors of its Services and list filters use it. */
export const ownerLabel = (dt: DraftTraining) => labelValue(dt.metadata.name ?? "");

function childMetadata(dt: DraftTraining, name: string, stage?: StageName) {
  return {
    name,
    namespace: dt.metadata.namespace ?? "default",
    labels: dropEmpty({
      [LABELS.name]: "specops",
      [LABELS.managedBy]: MANAGED_BY.value,
      [LABELS.owner]: ownerLabel(dt),
      [LABELS.stage]: stage ? STAGE_SLUG[stage] : undefined,
    }) as Record<string, string>,
    ownerReferences: [controllerReference(dt as KubeObject)],
  };
}

/** Secrets referenced by the spec; their keys become env vars of the pods (never copied anywhere). */
export function credentialSecrets(dt: DraftTraining): string[] {
  const refs = [
    dt.spec.target.credentialsSecretRef,
    dt.spec.data.prompts.credentialsSecretRef,
    dt.spec.output?.credentialsSecretRef,
  ];
  return [...new Set(refs.flatMap((r) => (r ? [r.name] : [])))];
}

/** The operator-created claim; absent when the spec names an existing one. */
export function storageClaim(dt: DraftTraining, layout: StorageLayout): DesiredObject | undefined {
  if (!layout.created) return undefined;
  const m = childMetadata(dt, layout.claimName);
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    // Retain: no owner reference, so the claim (and its checkpoints) outlives the DraftTraining.
    metadata: dt.spec.storage.retentionPolicy === "Delete" ? m : { ...m, ownerReferences: undefined },
    spec: dropEmpty({
      accessModes: [dt.spec.storage.accessMode],
      storageClassName: dt.spec.storage.storageClassName,
      resources: { requests: { storage: String(dt.spec.storage.size) } },
    }),
  };
}

export function taskConfigMap(dt: DraftTraining, stage: StageName, task: unknown): DesiredObject {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: childMetadata(dt, childNames(dt).taskConfigMap(stage), stage),
    data: { "task.json": `${JSON.stringify(task, null, 2)}\n` },
  };
}

/** Terminal runtime exits fail the Job at once; disruptions (preemption, node loss) don't count. */
export function podFailurePolicy() {
  return {
    rules: [
      {
        action: "FailJob",
        onExitCodes: { containerName: "runtime", operator: "In", values: FAIL_JOB_EXIT_CODES },
      },
      { action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] },
      {
        action: "Ignore",
        onExitCodes: { containerName: "runtime", operator: "In", values: [EXIT_CODES.terminated.code] },
      },
    ],
  };
}

export function stageJob(
  dt: DraftTraining,
  stage: StageName,
  layout: StorageLayout,
  ctx: BuildContext,
  opts: { suspend: boolean },
): DesiredObject {
  const queue = dt.spec.queueName;
  const names = childNames(dt);
  const jobName = names.job(stage);
  const multiNode = stage === "Train" && dt.spec.resources.nodes > 1;
  const nodes = stage === "Train" ? dt.spec.resources.nodes : 1;
  const gpus = stage === "PrepareData" || stage === "Regenerate" ? 0 : dt.spec.resources.gpusPerNode;
  const distributedEnv =
    stage === "Train" || stage === "TargetCache"
      ? [
          // DeepSpec's launcher semantics: RANK is the node rank, WORLD_SIZE the node count (not torchrun's).
          {
            name: "RANK",
            valueFrom: multiNode
              ? {
                  fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" },
                }
              : undefined,
            value: multiNode ? undefined : "0",
          },
          { name: "WORLD_SIZE", value: String(nodes) },
          {
            name: "MASTER_ADDR",
            value: multiNode
              ? `${jobName}-0.${names.trainService}.${dt.metadata.namespace ?? "default"}.svc`
              : "127.0.0.1",
          },
          { name: "MASTER_PORT", value: String(MASTER_PORT) },
        ].map((e) => dropEmpty(e))
      : [];
  const m = childMetadata(dt, jobName, stage);
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      ...m,
      labels: queue ? { ...m.labels, [LABELS.kueueQueue]: queue } : m.labels,
      annotations: {
        [ANNOTATIONS.stageSpec]: JSON.stringify(dt.spec),
        [ANNOTATIONS.generation]: String(dt.metadata.generation ?? 0),
      },
    },
    spec: dropEmpty({
      // Kueue admits a queued Job by unsuspending it, so such a Job is created suspended.
      suspend: queue ? true : opts.suspend,
      backoffLimit: dt.spec.backoffLimit,
      completions: nodes,
      parallelism: nodes,
      completionMode: multiNode ? "Indexed" : "NonIndexed",
      podFailurePolicy: podFailurePolicy(),
      template: runtimePodTemplate({
        defaultImage: ctx.defaultImage,
        runtime: dt.spec.runtime,
        placement: dt.spec.placement,
        resources: dt.spec.resources,
        gpus,
        taskConfigMap: names.taskConfigMap(stage),
        claimName: layout.claimName,
        credentialSecrets: credentialSecrets(dt),
        progressPort: ctx.progressPort,
        env: distributedEnv,
        labels: m.labels,
        ports: multiNode ? [{ name: "rendezvous", containerPort: MASTER_PORT }] : undefined,
        restartPolicy: "Never",
        subdomain: multiNode ? names.trainService : undefined,
      }),
    }),
  };
}

/** Headless Service that gives each Indexed Job pod a stable DNS name (MASTER_ADDR = index 0). */
export function trainService(dt: DraftTraining): DesiredObject {
  const m = childMetadata(dt, childNames(dt).trainService, "Train");
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: m,
    spec: {
      clusterIP: "None",
      publishNotReadyAddresses: true,
      selector: { [LABELS.owner]: ownerLabel(dt), [LABELS.stage]: STAGE_SLUG.Train },
      ports: [{ name: "rendezvous", port: MASTER_PORT, targetPort: MASTER_PORT }],
    },
  };
}

/**
 * The target served alone on the regeneration engine: a Deployment and its Service, torn down after.
 * While the stage is suspended the Deployment keeps its objects at zero replicas (its GPUs are free)
 * and scales back when the stage resumes.
 */
export function regenServer(
  dt: DraftTraining,
  layout: StorageLayout,
  ctx: BuildContext,
  task: unknown,
  opts: { suspend: boolean },
): DesiredObject[] {
  const names = childNames(dt);
  const m = childMetadata(dt, names.regenServer, "Regenerate");
  const selector = { [LABELS.owner]: ownerLabel(dt), [LABELS.stage]: "regen-server" };
  const regen = dt.spec.data.regenerate;
  const template = runtimePodTemplate({
    defaultImage: ctx.defaultImage,
    runtime: dt.spec.runtime,
    placement: dt.spec.placement,
    resources: dt.spec.resources,
    gpus: regen.gpusPerReplica,
    taskConfigMap: names.regenServerTask,
    claimName: layout.claimName,
    credentialSecrets: credentialSecrets(dt),
    progressPort: ctx.progressPort,
    labels: { ...m.labels, ...selector },
    ports: [{ name: "http", containerPort: REGEN_SERVER_PORT }],
    restartPolicy: "Always",
    readinessPath: { path: "/health", port: REGEN_SERVER_PORT },
  });
  return [
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: childMetadata(dt, names.regenServerTask, "Regenerate"),
      data: { "task.json": `${JSON.stringify(task, null, 2)}\n` },
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: m,
      spec: { replicas: opts.suspend ? 0 : regen.replicas, selector: { matchLabels: selector }, template },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: childMetadata(dt, names.regenServer, "Regenerate"),
      spec: { selector, ports: [{ name: "http", port: REGEN_SERVER_PORT, targetPort: REGEN_SERVER_PORT }] },
    },
  ];
}

/** The evaluation gate: an AcceptanceEval of the trained draft, owned by the DraftTraining. */
export function acceptanceEval(dt: DraftTraining, checkpointUri: string): DesiredObject | undefined {
  const evaluation = dt.spec.evaluation;
  if (!evaluation) return undefined;
  const { resources } = dt.spec;
  return {
    apiVersion: API_VERSION,
    kind: "AcceptanceEval",
    metadata: {
      ...childMetadata(dt, childNames(dt).acceptanceEval, "Evaluate"),
      annotations: { [ANNOTATIONS.generation]: String(dt.metadata.generation ?? 0) },
    },
    spec: dropEmpty({
      target: dt.spec.target,
      draft: { source: { uri: checkpointUri } },
      method: dt.spec.method,
      backend: dt.spec.backend,
      tasks: evaluation.tasks,
      gate: evaluation.minTau !== undefined ? { minTau: evaluation.minTau } : undefined,
      resources: dropEmpty({
        gpus: Math.min(1, resources.gpusPerNode),
        gpuProduct: resources.gpuProduct,
        gpuResourceName: resources.gpuResourceName,
        cpu: resources.cpu,
        memory: resources.memory,
      }),
      placement: dt.spec.placement,
      runtime: dt.spec.runtime,
    }),
  };
}

export type JobStage = Exclude<StageName, "Evaluate">;

/**
 * Every object a stage runs on: its Job and what the Job's pods need (claim, task document, the
 * multi-node Service, the regeneration server). suspend is the Job's; undefined leaves it to Kueue.
 */
export function stageChildren(
  dt: DraftTraining,
  stage: JobStage,
  layout: StorageLayout,
  ctx: BuildContext,
  opts: { suspend: boolean },
): { job: DesiredObject; others: DesiredObject[] } {
  const others = [
    storageClaim(dt, layout),
    taskConfigMap(dt, stage, stageTask(dt, stage, layout)),
    stage === "Train" && dt.spec.resources.nodes > 1 ? trainService(dt) : undefined,
    ...(stage === "Regenerate" && dt.spec.backend === "deepspec"
      ? regenServer(dt, layout, ctx, regenServerTask(dt, layout), opts)
      : []),
  ].filter((o): o is DesiredObject => o !== undefined);
  return { job: stageJob(dt, stage, layout, ctx, opts), others };
}
