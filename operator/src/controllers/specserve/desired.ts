// Desired objects of a SpecServe: the serve Task's ConfigMap, a Deployment of the runtime's serving
// target (or a LeaderWorkerSet when a replica spans nodes), a Service with the OpenAI and metrics
// ports, and a PodDisruptionBudget. Pure builders; the reconciler applies what they return.
//
// The pod template is a function of the user's spec alone: the runtime image falls back to the one
// the Deployment was created with (kept in an annotation on the Deployment, not its template), so a
// new operator build or a new default image never rolls a GPU fleet.
import { API_VERSION } from "../../api/common.ts";
import type { SpecServe } from "../../api/kinds.ts";
import { dropEmpty, RUNTIME_CONTAINER, runtimePodTemplate } from "../shared/pod.ts";
import { ANNOTATIONS, childNames, LABELS, selectorLabels, shortHash } from "./plan.ts";

export type DesiredObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels?: Record<string, string> } & Record<string, unknown>;
} & Record<string, unknown>;

export const LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1";

/** Model loads of hundreds of GB take many minutes: the startup probe allows 60 min before liveness counts. */
export const PROBES = {
  startup: { periodSeconds: 10, failureThreshold: 360, timeoutSeconds: 5 },
  readiness: { periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 5 },
  liveness: { periodSeconds: 15, failureThreshold: 4, timeoutSeconds: 10 },
} as const;
export const HEALTH_PATH = "/health";

export interface BuildContext {
  /** Image of an existing server (its annotation), else the operator's default. */
  image: string;
  progressPort: number;
  task: unknown;
  /** The served draft's display value (URI or built-in), hashed into a pod label. */
  draft: string;
  /** URI of the served draft, when it has one (its pvc:// claim is mounted). */
  draftUri?: string;
  /** The canary of a draft rollout: its own name, Task, replicas and a canary label. */
  canary?: boolean;
  /** Label value of the draft-length schedule the pods run, when lengthTuning Apply set one. */
  lengths?: string;
}

function ownerReference(ss: SpecServe) {
  return {
    apiVersion: API_VERSION,
    kind: "SpecServe",
    name: ss.metadata.name,
    uid: ss.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function meta(ss: SpecServe, name: string, annotations?: Record<string, string>) {
  return dropEmpty({
    name,
    namespace: ss.metadata.namespace ?? "default",
    labels: { [LABELS.name]: "specops", [LABELS.managedBy]: "specops-operator", ...selectorLabels(ss) },
    annotations,
    ownerReferences: [ownerReference(ss)],
  }) as DesiredObject["metadata"];
}

/** Secrets holding model credentials (their keys become env; never copied anywhere). */
export function credentialSecrets(ss: SpecServe): string[] {
  const refs = [ss.spec.target.credentialsSecretRef, ss.spec.draft.source?.credentialsSecretRef];
  return [...new Set(refs.flatMap((r) => (r ? [r.name] : [])))];
}

/** Every Secret the pods need to start, for the missing-Secret condition. */
export const referencedSecrets = (ss: SpecServe): string[] => [
  ...new Set([...credentialSecrets(ss), ...(ss.spec.apiKeySecretRef ? [ss.spec.apiKeySecretRef.name] : [])]),
];

/** The claim a pvc:// model lives on (a DraftTraining's checkpoint is on its storage claim). */
export function claimOf(uri: string | undefined): string | undefined {
  return uri?.startsWith("pvc://") ? uri.slice("pvc://".length).split("/")[0] : undefined;
}

export function taskConfigMap(ss: SpecServe, task: unknown, canary = false): DesiredObject {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: meta(ss, canary ? childNames(ss).canaryTaskConfigMap : childNames(ss).taskConfigMap),
    data: { "task.json": `${JSON.stringify(task, null, 2)}\n` },
  };
}

function apiKeyEnv(ss: SpecServe) {
  const ref = ss.spec.apiKeySecretRef;
  if (!ref) return [];
  const valueFrom = { secretKeyRef: { name: ref.name, key: ref.key } };
  // SPECOPS_API_KEY for the runtime's adapters (SGLang's --api-key, the reference server);
  // VLLM_API_KEY is read by vLLM itself (vllm/envs.py), so the key never appears in a command line.
  const env = [{ name: "SPECOPS_API_KEY", valueFrom }];
  if (ss.spec.engine === "vllm") env.push({ name: "VLLM_API_KEY", valueFrom });
  return env;
}

/** The serving pod template; for a multi-node replica, role says leader or worker. */
export function serverPodTemplate(ss: SpecServe, ctx: BuildContext, role?: "leader" | "worker") {
  const { spec } = ss;
  const labels = {
    ...meta(ss, "").labels,
    [LABELS.draft]: draftLabel(ctx.draft),
    ...(role ? { "specops.dev/role": role } : {}),
    ...(ctx.canary ? { [LABELS.canary]: "true" } : {}),
    ...(ctx.lengths ? { [LABELS.lengths]: ctx.lengths } : {}),
  };
  const template = runtimePodTemplate({
    defaultImage: ctx.image,
    runtime: spec.runtime,
    placement: spec.placement,
    resources: spec.resources,
    gpus: spec.resources.gpusPerReplica,
    taskConfigMap: ctx.canary ? childNames(ss).canaryTaskConfigMap : childNames(ss).taskConfigMap,
    // One claim per pod: the draft's (a DraftTraining checkpoint), else the target's.
    claimName: claimOf(ctx.draftUri) ?? claimOf(spec.target.uri),
    credentialSecrets: credentialSecrets(ss),
    progressPort: ctx.progressPort,
    env: [
      ...apiKeyEnv(ss),
      ...(role ? [{ name: "SPECOPS_NODES_PER_REPLICA", value: String(spec.resources.nodesPerReplica) }] : []),
    ],
    labels,
    annotations: { [ANNOTATIONS.taskHash]: shortHash(ctx.task) },
    ports: [{ name: "openai", containerPort: spec.port }],
    restartPolicy: "Always",
  }) as { metadata: object; spec: { containers: Record<string, unknown>[] } & Record<string, unknown> };
  const container = template.spec.containers[0] as Record<string, unknown>;
  if (role !== "worker") {
    const httpGet = { path: HEALTH_PATH, port: "openai" };
    container.startupProbe = { httpGet, ...PROBES.startup };
    container.readinessProbe = { httpGet, ...PROBES.readiness };
    container.livenessProbe = { httpGet, ...PROBES.liveness };
  }
  return template;
}

export function deployment(ss: SpecServe, ctx: BuildContext): DesiredObject {
  const names = childNames(ss);
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta(ss, ctx.canary ? names.canary : names.server, { [ANNOTATIONS.runtimeImage]: ctx.image }),
    spec: {
      replicas: ctx.canary ? ss.spec.rollout.canaryReplicas : ss.spec.replicas,
      selector: {
        matchLabels: { ...selectorLabels(ss), ...(ctx.canary ? { [LABELS.canary]: "true" } : {}) },
      },
      // GPUs are scarce: never start a replica beyond the count to roll (surge 0, one down at a time).
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } },
      // A model load of many minutes is progress, not a stall.
      progressDeadlineSeconds: 3600,
      template: serverPodTemplate(ss, ctx),
    },
  };
}

/** A multi-node replica: one LeaderWorkerSet group per replica (leader serves, workers join it). */
export function leaderWorkerSet(ss: SpecServe, ctx: BuildContext): DesiredObject {
  return {
    apiVersion: LWS_API_VERSION,
    kind: "LeaderWorkerSet",
    metadata: meta(ss, childNames(ss).server, { [ANNOTATIONS.runtimeImage]: ctx.image }),
    spec: {
      replicas: ss.spec.replicas,
      startupPolicy: "LeaderCreated",
      rolloutStrategy: {
        type: "RollingUpdate",
        rollingUpdateConfiguration: { maxUnavailable: 1, maxSurge: 0 },
      },
      leaderWorkerTemplate: {
        size: ss.spec.resources.nodesPerReplica,
        restartPolicy: "RecreateGroupOnPodRestart",
        leaderTemplate: serverPodTemplate(ss, ctx, "leader"),
        workerTemplate: serverPodTemplate(ss, ctx, "worker"),
      },
    },
  };
}

/** The endpoint: OpenAI API (the engines serve /metrics on it too) and the agent's metrics port. */
export function service(ss: SpecServe, progressPort: number): DesiredObject {
  const selector: Record<string, string> = { ...selectorLabels(ss) };
  // Only leaders serve requests in a multi-node replica.
  if (ss.spec.resources.nodesPerReplica > 1) selector["specops.dev/role"] = "leader";
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(ss, childNames(ss).service),
    spec: {
      selector,
      ports: [
        { name: "openai", port: ss.spec.port, targetPort: "openai" },
        { name: "metrics", port: progressPort, targetPort: "progress" },
      ],
    },
  };
}

export function podDisruptionBudget(ss: SpecServe): DesiredObject {
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: meta(ss, childNames(ss).pdb),
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels(ss) } },
  };
}

/** The value of a pod's draft label: a short hash of the draft it serves. */
export const draftLabel = (draft: string) => shortHash(draft);

export const endpointOf = (ss: SpecServe) =>
  `http://${childNames(ss).service}.${ss.metadata.namespace ?? "default"}.svc:${ss.spec.port}/v1`;

export { RUNTIME_CONTAINER };
