// The AcceptanceEval reconciler: thin I/O around plan/tasks/resources/decide. It reads the
// AcceptanceEval, the DraftTraining it may reference and its Job from shared informers, labels the
// object for leaderboards, starts this generation's Job when the draft is ready, folds the Job's
// result into status (written only on change), emits Events and exports the figures as metrics.
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import { API_VERSION } from "../../api/common.ts";
import {
  type AcceptanceEval,
  acceptanceEvalKind,
  acceptanceEvalResource,
  type DraftTraining,
} from "../../api/kinds.ts";
import {
  apply,
  type Client,
  type Clock,
  CORE_RESOURCES,
  type Condition,
  customResource,
  type EventRecorder,
  type Informer,
  isNotFound,
  Jobs,
  type KubeObject,
  type ReconcileContext,
  type ReconcileResult,
  ResourceTable,
  realClock,
  Secrets,
  setCondition,
  TerminalError,
  updateStatus,
  type Wire,
} from "../../lib/index.ts";
import { observeJob } from "../drafttraining/observe.ts";
import { type AcceptanceEvalStatus, decide } from "./decide.ts";
import type { AcceptanceMetrics } from "./metrics.ts";
import { childNames, leaderboardLabels, outputLayout, resolveDraft } from "./plan.ts";
import * as desired from "./resources.ts";
import { evalTask } from "./tasks.ts";

export const CONTROLLER_NAME = "acceptanceeval";
export const FIELD_MANAGER = "specops-acceptanceeval";

type AcceptanceEvalWire = KubeObject & { spec?: unknown; status?: AcceptanceEvalStatus };
export const AcceptanceEvals = customResource<AcceptanceEvalWire>(API_VERSION, acceptanceEvalKind);
const RESOURCES = new ResourceTable([...CORE_RESOURCES, AcceptanceEvals]);

/** Exactly what this controller does with each kind; the chart's ClusterRole is generated from it. */
export const RBAC_RULES = [
  {
    apiGroups: ["specops.dev"],
    resources: ["acceptanceevals"],
    verbs: ["get", "list", "watch", "patch"],
  },
  { apiGroups: ["specops.dev"], resources: ["acceptanceevals/status"], verbs: ["get", "patch"] },
  { apiGroups: ["specops.dev"], resources: ["drafttrainings"], verbs: ["get", "list", "watch"] },
  { apiGroups: ["batch"], resources: ["jobs"], verbs: ["get", "list", "watch", "create", "patch", "delete"] },
  { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
  { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "create", "patch"] },
  // Existence only: the operator never reads Secret data into logs, status or events.
  { apiGroups: [""], resources: ["secrets"], verbs: ["get"] },
  { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
] as const;

export interface AcceptanceEvalDeps {
  client: Client;
  evals: Informer<KubeObject>;
  drafts: Informer<KubeObject>;
  jobs: Informer<Wire<V1Job>>;
  pods: Informer<Wire<V1Pod>>;
  events: EventRecorder;
  metrics: AcceptanceMetrics;
  image: string;
  progressPort: number;
  clock?: Clock;
}

export function acceptanceEvalReconciler(deps: AcceptanceEvalDeps) {
  const clock = deps.clock ?? realClock;
  const applyOpts = { fieldManager: FIELD_MANAGER, resources: RESOURCES };

  return async function reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult> {
    let raw = deps.evals.store.get(ctx.namespace, ctx.name) as AcceptanceEvalWire | undefined;
    if (!raw || raw.metadata?.deletionTimestamp) {
      // Children are owned (garbage-collected with the object); only the metrics are ours to drop.
      deps.metrics.remove(key);
      return undefined;
    }
    const parsed = acceptanceEvalResource.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new TerminalError(`invalid AcceptanceEval: ${issue?.path.join(".")}: ${issue?.message}`);
    }
    const ae: AcceptanceEval = parsed.data;
    raw = await ensureLabels(raw, ae);

    const jobs = (ae.metadata.uid ? deps.jobs.store.byOwner(ae.metadata.uid) : []).filter(
      (j) => j.metadata?.labels?.[desired.LABELS.owner] === ae.metadata.name,
    );
    const jobName = childNames(ae).job;
    const current = jobs.find((j) => j.metadata?.name === jobName);
    const draft = resolveDraft(ae, referencedDraftTraining(ae));
    const output = outputLayout(ae);
    const observed = {
      draft,
      job: current
        ? observeJob(current, current.metadata?.uid ? deps.pods.store.byOwner(current.metadata.uid) : [])
        : undefined,
      staleJobs: jobs
        .filter((j) => j !== current && !j.metadata?.deletionTimestamp)
        .map((j) => j.metadata?.name ?? ""),
      // Only looked up while about to start: a running Job's pods already have what they need.
      missingSecrets: !current && draft.state === "ready" ? await missingSecrets(ae) : [],
      output,
    };
    const decision = decide(ae, observed, clock.now());
    for (const action of decision.actions) {
      if (action.type === "deleteJob") {
        await deps.client
          .delete(Jobs, ae.metadata.namespace, action.name, { propagationPolicy: "Background" })
          .catch((err) => {
            if (!isNotFound(err)) throw err;
          });
        continue;
      }
      const task = evalTask(ae, action.draft, output);
      const ctxBuild = { defaultImage: deps.image, progressPort: deps.progressPort };
      // The Job's pod waits for its ConfigMap, so both go in one round trip.
      const [job] = await Promise.all([
        apply(deps.client, desired.evalJob(ae, action.draft, ctxBuild) as KubeObject, applyOpts),
        apply(deps.client, desired.taskConfigMap(ae, task) as KubeObject, applyOpts),
      ]);
      deps.jobs.recordWrite(undefined, job as Wire<V1Job>);
    }
    for (const e of decision.events) deps.events.event(raw, e.type, e.reason, e.message);
    const written = await updateStatus(deps.client, AcceptanceEvals, raw, decision.status, {
      fieldManager: FIELD_MANAGER,
    });
    deps.evals.recordWrite(raw, written);
    deps.metrics.record({
      ...ae,
      metadata: { ...ae.metadata, labels: raw.metadata?.labels },
      status: decision.status,
    });
    // Secrets are not watched (that would need list/watch on every Secret): look again soon.
    return decision.recheck ? { requeueAfterMs: 10_000 } : undefined;
  };

  /** The leaderboard labels, set under this controller's own field manager when they differ. */
  async function ensureLabels(raw: AcceptanceEvalWire, ae: AcceptanceEval): Promise<AcceptanceEvalWire> {
    const want = leaderboardLabels(ae);
    const have = raw.metadata?.labels ?? {};
    if (Object.entries(want).every(([k, v]) => have[k] === v)) return raw;
    // A merge patch, not an apply: an apply of a just-deleted object would create it again.
    const written = await deps.client.patch(
      AcceptanceEvals,
      ae.metadata.namespace,
      ae.metadata.name ?? "",
      { metadata: { labels: want } },
      { type: "merge", fieldManager: FIELD_MANAGER },
    );
    deps.evals.recordWrite(raw, written);
    return written;
  }

  function referencedDraftTraining(ae: AcceptanceEval): DraftTraining | undefined {
    const ref = ae.spec.draft.draftTrainingRef;
    if (!ref) return undefined;
    return deps.drafts.store.get(ae.metadata.namespace, ref.name) as DraftTraining | undefined;
  }

  async function missingSecrets(ae: AcceptanceEval): Promise<string[]> {
    const missing: string[] = [];
    for (const name of desired.credentialSecrets(ae)) {
      try {
        await deps.client.get(Secrets, ae.metadata.namespace, name);
      } catch (err) {
        if (isNotFound(err)) missing.push(name);
        else throw err;
      }
    }
    return missing;
  }
}

/** Maps a DraftTraining to the AcceptanceEvals that measure its draft. */
export function evalsReferencing(evals: Informer<KubeObject>) {
  return (dt: KubeObject): string[] =>
    evals.store
      .list(dt.metadata?.namespace)
      .filter(
        (ae) =>
          (ae as { spec?: { draft?: { draftTrainingRef?: { name?: string } } } }).spec?.draft
            ?.draftTrainingRef?.name === dt.metadata?.name,
      )
      .map((ae) => `${ae.metadata?.namespace}/${ae.metadata?.name}`);
}

/** Records a TerminalError on the object: phase Failed and Succeeded=False with the reason. */
export function recordTerminalError(deps: Pick<AcceptanceEvalDeps, "client" | "evals" | "events" | "clock">) {
  return async (err: TerminalError, ctx: ReconcileContext) => {
    const raw = deps.evals.store.get(ctx.namespace, ctx.name) as AcceptanceEvalWire | undefined;
    if (!raw) return;
    const now = (deps.clock ?? realClock).now();
    const conditions = setCondition(
      (raw.status?.conditions ?? []) as Condition[],
      { type: "Succeeded", status: "False", reason: "InvalidSpec", message: err.message },
      raw.metadata?.generation,
      now,
    );
    deps.events.event(raw, "Warning", "InvalidSpec", err.message);
    await updateStatus(
      deps.client,
      AcceptanceEvals,
      raw,
      { ...raw.status, phase: "Failed", conditions: conditions as AcceptanceEvalStatus["conditions"] },
      { fieldManager: FIELD_MANAGER },
    );
  };
}
