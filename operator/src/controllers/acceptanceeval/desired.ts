// Desired Kubernetes objects of an offline AcceptanceEval: the task ConfigMap and the Job running
// the runtime's eval task (GPUs, placement and image from the spec; every claim its URIs name
// mounted). Pure builders; the reconciler applies what they return.
import { API_VERSION } from "../../api/common.ts";
import type { AcceptanceEval } from "../../api/kinds.ts";
import { type DesiredObject, podFailurePolicy } from "../drafttraining/desired.ts";
import { MANAGED_BY } from "../shared/informers.ts";
import { labelValue } from "../shared/names.ts";
import { dropEmpty, runtimePodTemplate, SCRATCH_PATH } from "../shared/pod.ts";
import { childNames, claims, type ResolvedDraft } from "./plan.ts";

export type { DesiredObject };

export const LABELS = {
  name: "app.kubernetes.io/name",
  managedBy: MANAGED_BY.key,
  owner: "specops.dev/acceptanceeval",
  generation: "specops.dev/generation",
} as const;

/** Retriable runtime exits (internal error, lost infrastructure) are retried this many times. */
export const EVAL_BACKOFF_LIMIT = 2;

export interface BuildContext {
  defaultImage: string;
  progressPort: number;
}

export function evalMeta(ae: AcceptanceEval, name: string) {
  return {
    name,
    namespace: ae.metadata.namespace ?? "default",
    labels: {
      [LABELS.name]: "specops",
      [LABELS.managedBy]: MANAGED_BY.value,
      [LABELS.owner]: labelValue(ae.metadata.name ?? ""),
      [LABELS.generation]: String(ae.metadata.generation ?? 1),
    },
    ownerReferences: [
      {
        apiVersion: API_VERSION,
        kind: "AcceptanceEval",
        name: ae.metadata.name ?? "",
        uid: ae.metadata.uid ?? "",
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
  };
}

/** Secrets referenced by the spec; their keys become env vars of the pod (never copied anywhere). */
export function credentialSecrets(ae: AcceptanceEval): string[] {
  const refs = [
    ae.spec.target?.credentialsSecretRef,
    ae.spec.draft.source?.credentialsSecretRef,
    ae.spec.output?.credentialsSecretRef,
    ...ae.spec.tasks.map((t) => t.source?.credentialsSecretRef),
  ];
  return [...new Set(refs.flatMap((r) => (r ? [r.name] : [])))].sort();
}

export function taskConfigMap(ae: AcceptanceEval, task: unknown): DesiredObject {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: evalMeta(ae, childNames(ae).taskConfigMap),
    data: { "task.json": `${JSON.stringify(task, null, 2)}\n` },
  };
}

export function evalJob(ae: AcceptanceEval, draft: ResolvedDraft, ctx: BuildContext): DesiredObject {
  const names = childNames(ae);
  return runtimeJob(
    ae,
    {
      name: names.job,
      taskConfigMap: names.taskConfigMap,
      gpus: ae.spec.resources.gpus,
      claims: claims(ae, draft.uri),
    },
    ctx,
  );
}

export interface RuntimeJobParts {
  name: string;
  taskConfigMap: string;
  gpus: number;
  /** Claims mounted for the task's inputs; the first is the main one. */
  claims: string[];
  env?: { name: string; value?: string; valueFrom?: object }[];
}

/** A one-pod Job of the runtime image (the offline eval, or a live eval's load generator). */
export function runtimeJob(ae: AcceptanceEval, parts: RuntimeJobParts, ctx: BuildContext): DesiredObject {
  const m = evalMeta(ae, parts.name);
  const [first, ...rest] = parts.claims;
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: m,
    spec: dropEmpty({
      backoffLimit: EVAL_BACKOFF_LIMIT,
      completions: 1,
      parallelism: 1,
      // Terminal exits (invalid task, missing input, OOM, unsupported) fail at once; so does a missed
      // gate (exit gateFailed), whose figures are in the termination message all the same.
      podFailurePolicy: podFailurePolicy(),
      template: runtimePodTemplate({
        defaultImage: ctx.defaultImage,
        runtime: ae.spec.runtime,
        placement: ae.spec.placement,
        resources: ae.spec.resources,
        gpus: parts.gpus,
        taskConfigMap: parts.taskConfigMap,
        claimName: first,
        extraClaimNames: rest,
        scratchPath: SCRATCH_PATH,
        credentialSecrets: credentialSecrets(ae),
        progressPort: ctx.progressPort,
        env: parts.env,
        labels: m.labels,
        restartPolicy: "Never",
      }),
    }),
  };
}
