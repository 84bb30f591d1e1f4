// The SpecServe reconciler: thin I/O around the pure plan/resources/observe modules. It resolves
// the draft (waiting while a referenced DraftTraining trains), applies the serve Task, the serving
// workload (a Deployment, or a LeaderWorkerSet for multi-node replicas), the Service and the
// PodDisruptionBudget with server-side apply, and folds the workload's and pods' state into status.
// It never writes the SpecServe's spec: spec.replicas belongs to the user, kubectl scale or the
// autoscaler (scale.ts), and the operator only copies it onto the workload.
import type { V1Pod } from "@kubernetes/client-node";
import { API_VERSION } from "../../api/common.ts";
import { type SpecServe, specServeKind, specServeResource } from "../../api/kinds.ts";
import { apply, updateStatus } from "../../lib/apply.ts";
import type { Client } from "../../lib/client.ts";
import { type Clock, realClock } from "../../lib/clock.ts";
import { type Condition, setCondition } from "../../lib/conditions.ts";
import type { ReconcileContext, ReconcileResult } from "../../lib/controller.ts";
import { isNotFound, TerminalError } from "../../lib/errors.ts";
import type { EventRecorder } from "../../lib/events.ts";
import type { Informer } from "../../lib/informer.ts";
import {
  CORE_RESOURCES,
  customResource,
  Deployments,
  type KubeObject,
  type Resource,
  ResourceTable,
  resource,
  Secrets,
  type Wire,
} from "../../lib/rest.ts";
import { foldStatus, observeWorkload, type SpecServeStatus, type WorkloadObservation } from "./observe.ts";
import {
  ANNOTATIONS,
  childNames,
  type DraftTrainingObservation,
  LABELS,
  planDraft,
  serveTask,
} from "./plan.ts";
import * as desired from "./resources.ts";
import { AUTOSCALER_FIELD_MANAGER } from "./scale.ts";

export const CONTROLLER_NAME = "specserve";
export const FIELD_MANAGER = "specops-specserve";

type SpecServeWire = KubeObject & { spec?: unknown; status?: SpecServeStatus };
export const SpecServes = customResource<SpecServeWire>(API_VERSION, specServeKind);
export const PodDisruptionBudgets = resource<KubeObject>(
  "policy/v1",
  "PodDisruptionBudget",
  "poddisruptionbudgets",
);
export const LeaderWorkerSets = resource<KubeObject>(
  desired.LWS_API_VERSION,
  "LeaderWorkerSet",
  "leaderworkersets",
);
const CustomResourceDefinitions = resource<KubeObject>(
  "apiextensions.k8s.io/v1",
  "CustomResourceDefinition",
  "customresourcedefinitions",
  false,
);
export const LWS_CRD_NAME = "leaderworkersets.leaderworkerset.x-k8s.io";
const RESOURCES = new ResourceTable([...CORE_RESOURCES, SpecServes, PodDisruptionBudgets, LeaderWorkerSets]);

/** Exactly what this controller does with each kind; the chart's ClusterRole is generated from it. */
export const RBAC_RULES = [
  { apiGroups: ["specops.dev"], resources: ["specserves"], verbs: ["get", "list", "watch"] },
  { apiGroups: ["specops.dev"], resources: ["specserves/status"], verbs: ["get", "patch", "update"] },
  // The autoscaler's write path (scale.ts): spec.replicas through /scale, as an HPA does.
  { apiGroups: ["specops.dev"], resources: ["specserves/scale"], verbs: ["get", "patch", "update"] },
  { apiGroups: ["specops.dev"], resources: ["drafttrainings"], verbs: ["get", "list", "watch"] },
  {
    apiGroups: ["apps"],
    resources: ["deployments"],
    verbs: ["get", "list", "watch", "create", "patch", "delete"],
  },
  { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
  { apiGroups: [""], resources: ["configmaps", "services"], verbs: ["get", "create", "patch"] },
  { apiGroups: ["policy"], resources: ["poddisruptionbudgets"], verbs: ["get", "create", "patch"] },
  {
    apiGroups: ["leaderworkerset.x-k8s.io"],
    resources: ["leaderworkersets"],
    verbs: ["get", "create", "patch", "delete"],
  },
  // Whether the LeaderWorkerSet CRD is installed (multi-node replicas need it).
  { apiGroups: ["apiextensions.k8s.io"], resources: ["customresourcedefinitions"], verbs: ["get"] },
  // Existence only: the operator never reads Secret data into logs, status or events.
  { apiGroups: [""], resources: ["secrets"], verbs: ["get"] },
  { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
] as const;

export interface SpecServeDeps {
  client: Client;
  specServes: Informer<SpecServeWire>;
  drafts: Informer<KubeObject>;
  deployments: Informer<KubeObject>;
  pods: Informer<Wire<V1Pod>>;
  events: EventRecorder;
  /** The operator's default runtime image, used only for servers created from now on. */
  image: string;
  progressPort: number;
  clock?: Clock;
}

/** Pod → its SpecServe, by the owner label every serving pod carries. */
export function podToSpecServe(pod: KubeObject): string[] {
  const owner = pod.metadata?.labels?.[LABELS.owner];
  return owner ? [`${pod.metadata?.namespace}/${owner}`] : [];
}

/** DraftTraining → the SpecServes in its namespace that serve its checkpoint. */
export function draftTrainingToSpecServes(specServes: Informer<SpecServeWire>) {
  return (dt: KubeObject): string[] =>
    specServes.store
      .list(dt.metadata?.namespace)
      .filter(
        (ss) =>
          (ss.spec as { draft?: { draftTrainingRef?: { name?: string } } } | undefined)?.draft
            ?.draftTrainingRef?.name === dt.metadata?.name,
      )
      .map((ss) => `${ss.metadata?.namespace}/${ss.metadata?.name}`);
}

export function specServeReconciler(deps: SpecServeDeps) {
  const clock = deps.clock ?? realClock;
  const applyOpts = { fieldManager: FIELD_MANAGER, resources: RESOURCES };

  return async function reconcile(_key: string, ctx: ReconcileContext): Promise<ReconcileResult> {
    const raw = deps.specServes.store.get(ctx.namespace, ctx.name);
    if (!raw || raw.metadata?.deletionTimestamp) return undefined; // children go by garbage collection
    const parsed = specServeResource.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new TerminalError(`invalid SpecServe: ${issue?.path.join(".")}: ${issue?.message}`);
    }
    const ss: SpecServe = parsed.data;
    const now = clock.now();
    const signal = ctx.signal;

    if (ss.metadata.annotations?.[ANNOTATIONS.paused] === "true") {
      // Paused: children stay exactly as they are; only say so.
      const status = { ...(raw.status ?? {}), state: "Paused" as const };
      const written = await updateStatus(deps.client, SpecServes, raw, status, {
        fieldManager: FIELD_MANAGER,
      });
      deps.specServes.recordWrite(raw, written);
      return undefined;
    }

    const draft = planDraft(ss, observeDraftTraining(ss));
    const multiNode = ss.spec.resources.nodesPerReplica > 1;
    const missingSecrets = await missingSecretsOf(ss, signal);
    let workload: WorkloadObservation | undefined;
    let lwsMissing = false;

    if (draft.state === "ready" && missingSecrets.length === 0) {
      lwsMissing = multiNode && !(await lwsInstalled(signal));
      if (!lwsMissing)
        workload = await applyServing(ss, draft.state === "ready" ? draft : undefined, multiNode, signal);
    } else if (draft.state === "ready") {
      workload = currentWorkload(ss, multiNode);
    }

    const pods = deps.pods.store
      .list(ss.metadata.namespace)
      .filter((p) => p.metadata?.labels?.[LABELS.owner] === ss.metadata.name);
    const status = foldStatus(ss, { draft, workload, pods, missingSecrets, lwsMissing }, now);
    emitTransitions(raw, status);
    const written = await updateStatus(deps.client, SpecServes, raw, status, { fieldManager: FIELD_MANAGER });
    deps.specServes.recordWrite(raw, written);
    // Secrets and the LWS CRD are not watched; a LeaderWorkerSet's status is read, not cached.
    if (missingSecrets.length > 0 || lwsMissing || multiNode) return { requeueAfterMs: 15_000 };
    return undefined;
  };

  function observeDraftTraining(ss: SpecServe): DraftTrainingObservation | undefined {
    const ref = ss.spec.draft.draftTrainingRef;
    if (!ref) return undefined;
    const dt = deps.drafts.store.get(ss.metadata.namespace, ref.name) as
      | (KubeObject & {
          status?: { stage?: string; checkpoint?: { uri?: string }; conditions?: Condition[] };
        })
      | undefined;
    if (!dt) return { exists: false };
    return {
      exists: true,
      stage: dt.status?.stage,
      checkpointUri: dt.status?.checkpoint?.uri,
      failureMessage: dt.status?.conditions?.find((c) => c.type === "Succeeded" && c.status === "False")
        ?.message,
    };
  }

  async function missingSecretsOf(ss: SpecServe, signal: AbortSignal): Promise<string[]> {
    const missing: string[] = [];
    for (const name of desired.referencedSecrets(ss)) {
      try {
        await deps.client.get(Secrets, ss.metadata.namespace, name, { signal });
      } catch (err) {
        if (isNotFound(err)) missing.push(name);
        else throw err;
      }
    }
    return missing;
  }

  async function lwsInstalled(signal: AbortSignal): Promise<boolean> {
    try {
      await deps.client.get(CustomResourceDefinitions, undefined, LWS_CRD_NAME, { signal });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  function currentWorkload(ss: SpecServe, multiNode: boolean): WorkloadObservation | undefined {
    if (multiNode) return undefined;
    return observeWorkload(
      "Deployment",
      deps.deployments.store.get(ss.metadata.namespace, childNames(ss).server),
    );
  }

  async function applyServing(
    ss: SpecServe,
    draft: Extract<ReturnType<typeof planDraft>, { state: "ready" }> | undefined,
    multiNode: boolean,
    signal: AbortSignal,
  ): Promise<WorkloadObservation | undefined> {
    const ns = ss.metadata.namespace;
    const name = childNames(ss).server;
    const existing = deps.deployments.store.get(ns, name);
    let existingImage = existing?.metadata?.annotations?.[ANNOTATIONS.runtimeImage];
    if (multiNode && !existingImage) {
      const lws = await getOrUndefined(LeaderWorkerSets, ns, name, signal);
      existingImage = lws?.metadata?.annotations?.[ANNOTATIONS.runtimeImage];
    }
    const task = serveTask(ss, draft?.source);
    const ctx: desired.BuildContext = {
      image: existingImage ?? deps.image,
      progressPort: deps.progressPort,
      task,
      draft: draft?.display ?? "",
      draftUri: draft?.source?.uri,
    };
    const applyOne = (obj: desired.DesiredObject) =>
      apply(deps.client, obj as KubeObject, applyOpts) as Promise<KubeObject>;
    const [workload] = await Promise.all([
      applyOne(multiNode ? desired.leaderWorkerSet(ss, ctx) : desired.deployment(ss, ctx)),
      applyOne(desired.taskConfigMap(ss, task)),
      applyOne(desired.service(ss, deps.progressPort)),
      applyOne(desired.podDisruptionBudget(ss)),
    ]);
    if (multiNode && existing) {
      // The replica shape changed from one node to several: the LeaderWorkerSet replaces the Deployment.
      await deps.client.delete(Deployments, ns, name, { signal }).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
    }
    if (!multiNode) {
      deps.deployments.recordWrite(existing, workload);
      // The cache is newer than what apply returned only when nothing changed; read status from it.
      return observeWorkload("Deployment", deps.deployments.store.get(ns, name) ?? workload);
    }
    return observeWorkload("LeaderWorkerSet", workload);
  }

  async function getOrUndefined(r: Resource, ns: string | undefined, name: string, signal: AbortSignal) {
    try {
      return await deps.client.get(r, ns, name, { signal });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Events when Degraded turns on or changes reason, and when the server becomes Ready. */
  function emitTransitions(raw: SpecServeWire, next: SpecServeStatus) {
    const before = (raw.status?.conditions ?? []) as Condition[];
    const after = (next.conditions ?? []) as Condition[];
    const find = (cs: Condition[], type: string) => cs.find((c) => c.type === type);
    const d0 = find(before, "Degraded");
    const d1 = find(after, "Degraded");
    if (d1?.status === "True" && (d0?.status !== "True" || d0.reason !== d1.reason)) {
      deps.events.event(raw, "Warning", d1.reason, d1.message);
    }
    const r0 = find(before, "Ready");
    const r1 = find(after, "Ready");
    if (r1?.status === "True" && r0?.status !== "True") deps.events.event(raw, "Normal", "Ready", r1.message);
    if (r1?.status === "False" && r1.reason !== r0?.reason && r1.reason !== "ReplicasNotReady") {
      deps.events.event(raw, r1.reason === "DraftTraining" ? "Normal" : "Warning", r1.reason, r1.message);
    }
  }
}

/** Records a TerminalError on the object: Ready=False with the reason. */
export function recordTerminalError(deps: Pick<SpecServeDeps, "client" | "specServes" | "events" | "clock">) {
  return async (err: TerminalError, ctx: ReconcileContext) => {
    const raw = deps.specServes.store.get(ctx.namespace, ctx.name);
    if (!raw) return;
    const now = (deps.clock ?? realClock).now();
    const conditions = setCondition(
      (raw.status?.conditions ?? []) as Condition[],
      { type: "Ready", status: "False", reason: "InvalidSpec", message: err.message },
      raw.metadata?.generation,
      now,
    );
    deps.events.event(raw, "Warning", "InvalidSpec", err.message);
    await updateStatus(
      deps.client,
      SpecServes,
      raw,
      { ...raw.status, state: "Failed", conditions },
      { fieldManager: FIELD_MANAGER },
    );
  };
}

export { AUTOSCALER_FIELD_MANAGER };
