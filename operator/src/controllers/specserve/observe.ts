// Folds what the serving workload and its pods say into the SpecServe's status: replica counts,
// the scale selector, the endpoint, and Ready / Progressing / Degraded with reasons a person can act
// on (an image that cannot be pulled, GPUs no node has, a crash loop with the runtime's exit code
// and message). Pure: the reconciler gathers the inputs.
import type { V1Pod } from "@kubernetes/client-node";
import type { z } from "zod";
import type { SpecServe } from "../../api/kinds.ts";
import type { specServeStatus } from "../../api/specserve.ts";
import { type Condition, setCondition } from "../../lib/conditions.ts";
import type { Wire } from "../../lib/rest.ts";
import { parseTermination } from "../drafttraining/observe.ts";
import { RUNTIME_CONTAINER } from "../shared/pod.ts";
import { endpointOf } from "./desired.ts";
import type { DraftPlan } from "./plan.ts";
import { selectorString } from "./plan.ts";

export type SpecServeStatus = z.infer<typeof specServeStatus>;

/** Deployment or LeaderWorkerSet status, as far as it is read. */
export interface WorkloadObservation {
  kind: "Deployment" | "LeaderWorkerSet";
  generation?: number;
  observedGeneration?: number;
  replicas?: number;
  readyReplicas?: number;
  updatedReplicas?: number;
}

export interface ServeObservation {
  draft: DraftPlan;
  workload?: WorkloadObservation;
  pods: Wire<V1Pod>[];
  /** Set when nodesPerReplica > 1 and the LeaderWorkerSet CRD is not installed. */
  lwsMissing?: boolean;
  paused?: boolean;
}

interface PodProblem {
  reason:
    | "SecretNotFound"
    | "ContainerConfigError"
    | "ImagePullFailed"
    | "UnschedulableGPU"
    | "Unschedulable"
    | "CrashLoop";
  message: string;
}

/** The most actionable problem among the pods: a crash loop first, then pulls, then scheduling. */
export function podProblem(pods: Wire<V1Pod>[]): PodProblem | undefined {
  const problems: PodProblem[] = [];
  for (const pod of pods) {
    const name = pod.metadata?.name ?? "";
    const cs = pod.status?.containerStatuses?.find((c) => c.name === RUNTIME_CONTAINER);
    const waiting = cs?.state?.waiting;
    const ended = cs?.state?.terminated ?? cs?.lastState?.terminated;
    if (
      ended &&
      ended.exitCode !== 0 &&
      (waiting?.reason === "CrashLoopBackOff" || (cs?.restartCount ?? 0) > 0)
    ) {
      const t = parseTermination(ended.exitCode, ended.message);
      problems.push({
        reason: "CrashLoop",
        message:
          `pod ${name}: the runtime exited with code ${t.exitCode}${t.reason ? ` (${t.reason})` : ""}` +
          `${t.message ? `: ${t.message}` : ""}; restarted ${cs?.restartCount ?? 0} times`,
      });
    }
    if (waiting?.reason === "CreateContainerConfigError" || waiting?.reason === "CreateContainerError") {
      // The kubelet's own words, e.g. secret "hf-token" not found (model credentials, the API key).
      const secret = /secret/i.test(waiting.message ?? "");
      problems.push({
        reason: secret ? "SecretNotFound" : "ContainerConfigError",
        message: `pod ${name} cannot start: ${waiting.message ?? waiting.reason}${secret ? "; create the Secret (credentialsSecretRef, apiKeySecretRef)" : ""}`,
      });
    }
    if (
      waiting?.reason === "ImagePullBackOff" ||
      waiting?.reason === "ErrImagePull" ||
      waiting?.reason === "InvalidImageName"
    ) {
      problems.push({
        reason: "ImagePullFailed",
        message: `pod ${name}: cannot pull image ${cs?.image ?? ""}: ${waiting.message ?? waiting.reason}; check spec.runtime.image and imagePullSecrets`,
      });
    }
    const unscheduled = pod.status?.conditions?.find(
      (c) => c.type === "PodScheduled" && c.status === "False" && c.reason === "Unschedulable",
    );
    if (unscheduled) {
      const gpu = /gpu/i.test(unscheduled.message ?? "");
      problems.push({
        reason: gpu ? "UnschedulableGPU" : "Unschedulable",
        message: `pod ${name} cannot be scheduled: ${unscheduled.message ?? ""}${gpu ? "; no node has the GPUs (resources.gpusPerReplica, gpuProduct, placement) free" : ""}`,
      });
    }
  }
  const order = [
    "CrashLoop",
    "SecretNotFound",
    "ContainerConfigError",
    "ImagePullFailed",
    "UnschedulableGPU",
    "Unschedulable",
  ];
  return problems.sort((a, b) => order.indexOf(a.reason) - order.indexOf(b.reason))[0];
}

type ConditionInput = { type: string; status: "True" | "False" | "Unknown"; reason: string; message: string };

export function foldStatus(ss: SpecServe, o: ServeObservation, now: number): SpecServeStatus {
  const previous = ss.status ?? {};
  const desired = ss.spec.replicas;
  const w = o.workload;
  const replicas = w?.replicas ?? 0;
  const ready = w?.readyReplicas ?? 0;
  const updated = w?.updatedReplicas ?? 0;
  const settled = w !== undefined && (w.observedGeneration ?? 0) >= (w.generation ?? 0);
  const rolledOut = settled && updated >= desired && replicas === desired && ready >= desired;
  const problem = podProblem(o.pods);

  let blocked: ConditionInput | undefined;
  if (o.draft.state !== "ready") {
    blocked = { type: "Ready", status: "False", reason: o.draft.reason, message: o.draft.message };
  } else if (o.lwsMissing) {
    blocked = {
      type: "Ready",
      status: "False",
      reason: "LeaderWorkerSetNotInstalled",
      message:
        "resources.nodesPerReplica > 1 needs the LeaderWorkerSet CRD (leaderworkerset.x-k8s.io/v1); install LWS or use one node per replica",
    };
  }

  const conds: ConditionInput[] = [];
  conds.push(
    blocked ??
      (ready >= desired && desired > 0 && settled
        ? {
            type: "Ready",
            status: "True",
            reason: "Serving",
            message: `${ready} of ${desired} replicas ready`,
          }
        : desired === 0
          ? { type: "Ready", status: "False", reason: "ScaledToZero", message: "spec.replicas is 0" }
          : {
              type: "Ready",
              status: "False",
              reason: problem?.reason ?? "ReplicasNotReady",
              message: problem?.message ?? `${ready} of ${desired} replicas ready`,
            }),
  );
  conds.push(
    o.draft.state === "waiting"
      ? { type: "Progressing", status: "True", reason: "WaitingForDraft", message: o.draft.message }
      : rolledOut || blocked
        ? {
            type: "Progressing",
            status: "False",
            reason: blocked ? blocked.reason : "RolledOut",
            message: blocked ? blocked.message : `${updated} replicas run the current spec`,
          }
        : {
            type: "Progressing",
            status: "True",
            reason: "RollingOut",
            message: `${updated} of ${desired} replicas updated, ${ready} ready`,
          },
  );
  const degraded =
    problem ??
    (o.draft.state === "failed" ? { reason: o.draft.reason, message: o.draft.message } : undefined);
  conds.push(
    degraded
      ? { type: "Degraded", status: "True", ...degraded }
      : { type: "Degraded", status: "False", reason: "AsExpected", message: "no problem seen" },
  );
  let conditions = (previous.conditions ?? []) as Condition[];
  for (const c of conds) conditions = setCondition(conditions, c, ss.metadata.generation, now);

  const state: SpecServeStatus["state"] = o.paused
    ? "Paused"
    : o.draft.state === "failed"
      ? "Failed"
      : o.draft.state === "waiting"
        ? "WaitingForDraft"
        : degraded || blocked
          ? "Degraded"
          : rolledOut && ready >= desired
            ? "Ready"
            : w
              ? "Progressing"
              : "Pending";

  return {
    ...previous,
    observedGeneration: ss.metadata.generation,
    conditions,
    replicas,
    readyReplicas: ready,
    desiredReplicas: desired,
    selector: selectorString(ss),
    endpoint: endpointOf(ss),
    state,
    draft: o.draft.state === "ready" ? o.draft.display : previous.draft,
  };
}

/** Reads a Deployment's or LeaderWorkerSet's status fields (both name them alike). */
export function observeWorkload(
  kind: WorkloadObservation["kind"],
  obj: unknown,
): WorkloadObservation | undefined {
  if (!obj || typeof obj !== "object") return undefined;
  const o = obj as { metadata?: { generation?: number }; status?: Record<string, number | undefined> };
  return {
    kind,
    generation: o.metadata?.generation,
    observedGeneration: kind === "Deployment" ? o.status?.observedGeneration : o.metadata?.generation,
    replicas: o.status?.replicas,
    readyReplicas: o.status?.readyReplicas,
    updatedReplicas: o.status?.updatedReplicas,
  };
}
