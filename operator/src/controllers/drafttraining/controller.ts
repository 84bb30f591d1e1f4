// The DraftTraining reconciler: thin I/O around the pure plan/resources/pipeline modules. It reads
// the DraftTraining and its children from shared informers, creates what the current stage needs
// (only what is missing: a stage's objects are fixed once it starts, so spec edits apply from the
// next stage), folds Job results and pod progress into status, and writes status only on change.
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import type { z } from "zod";
import type { acceptanceEvalStatus } from "../../api/acceptanceeval.ts";
import { API_VERSION } from "../../api/common.ts";
import {
  acceptanceEvalKind,
  type DraftTraining,
  draftTrainingKind,
  draftTrainingResource,
} from "../../api/kinds.ts";
import { apply, updateStatus } from "../../lib/apply.ts";
import type { Client } from "../../lib/client.ts";
import { type Clock, realClock } from "../../lib/clock.ts";
import { type Condition, setCondition } from "../../lib/conditions.ts";
import type { ReconcileContext, ReconcileResult } from "../../lib/controller.ts";
import { isNotFound, TerminalError } from "../../lib/errors.ts";
import type { EventRecorder } from "../../lib/events.ts";
import { addFinalizer, removeFinalizer } from "../../lib/finalizers.ts";
import type { Informer } from "../../lib/informer.ts";
import {
  CORE_RESOURCES,
  ConfigMaps,
  customResource,
  Deployments,
  Jobs,
  type KubeObject,
  ResourceTable,
  Secrets,
  Services,
  type Wire,
} from "../../lib/rest.ts";
import { parseDuration } from "../../lib/time.ts";
import { type ProgressRead, readProgress, statusProgress } from "../shared/progress.ts";
import { observeJob } from "./observe.ts";
import {
  type Action,
  type Decision,
  type DraftTrainingStatus,
  decide,
  type EvalObservation,
  type Observed,
} from "./pipeline.ts";
import { childNames, STAGE_SLUG, type StageName, storageLayout } from "./plan.ts";
import * as desired from "./resources.ts";
import { latestCheckpointUri, regenServerTask, stageTask } from "./tasks.ts";

export const CONTROLLER_NAME = "drafttraining";
export const FIELD_MANAGER = "specops-drafttraining";
export const FINALIZER = "specops.dev/drafttraining-cleanup";

export const DraftTrainings = customResource<KubeObject & { spec?: unknown; status?: unknown }>(
  API_VERSION,
  draftTrainingKind,
);
type AcceptanceEvalWire = KubeObject & { spec?: unknown; status?: z.infer<typeof acceptanceEvalStatus> };
export const AcceptanceEvals = customResource<AcceptanceEvalWire>(API_VERSION, acceptanceEvalKind);
export const RESOURCES = new ResourceTable([...CORE_RESOURCES, DraftTrainings, AcceptanceEvals]);

/** Exactly what this controller does with each kind; the chart's ClusterRole is generated from it. */
export const RBAC_RULES = [
  {
    apiGroups: ["specops.dev"],
    resources: ["drafttrainings"],
    verbs: ["get", "list", "watch", "patch", "update"],
  },
  { apiGroups: ["specops.dev"], resources: ["drafttrainings/status"], verbs: ["get", "patch", "update"] },
  { apiGroups: ["specops.dev"], resources: ["drafttrainings/finalizers"], verbs: ["update"] },
  {
    apiGroups: ["specops.dev"],
    resources: ["acceptanceevals"],
    verbs: ["get", "list", "watch", "create", "patch", "delete"],
  },
  { apiGroups: ["batch"], resources: ["jobs"], verbs: ["get", "list", "watch", "create", "patch", "delete"] },
  {
    apiGroups: ["apps"],
    resources: ["deployments"],
    verbs: ["get", "list", "watch", "create", "patch", "delete"],
  },
  { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
  {
    apiGroups: [""],
    resources: ["configmaps", "services", "persistentvolumeclaims"],
    verbs: ["get", "create", "patch", "delete"],
  },
  // Existence only: the operator never reads Secret data into logs, status or events.
  { apiGroups: [""], resources: ["secrets"], verbs: ["get"] },
  { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
] as const;

type JobWire = Wire<V1Job>;
type PodWire = Wire<V1Pod>;

export interface DraftTrainingDeps {
  client: Client;
  drafts: Informer<KubeObject>;
  jobs: Informer<JobWire>;
  pods: Informer<PodWire>;
  deployments: Informer<KubeObject>;
  evals: Informer<KubeObject>;
  events: EventRecorder;
  image: string;
  progressPort: number;
  clock?: Clock;
  /** How a pod's progress is read; tests point it at a local server. */
  readProgress?: (podIP: string, port: number) => Promise<ProgressRead>;
}

export function draftTrainingReconciler(deps: DraftTrainingDeps) {
  const clock = deps.clock ?? realClock;
  const read = deps.readProgress ?? readProgress;
  const applyOpts = { fieldManager: FIELD_MANAGER, resources: RESOURCES };
  const applyDesired = (obj: desired.DesiredObject) => apply(deps.client, obj as KubeObject, applyOpts);

  return async function reconcile(_key: string, ctx: ReconcileContext): Promise<ReconcileResult> {
    const raw = deps.drafts.store.get(ctx.namespace, ctx.name);
    if (!raw) return undefined;
    if (raw.metadata?.deletionTimestamp) return finalize(raw, ctx);

    const parsed = draftTrainingResource.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new TerminalError(`invalid DraftTraining: ${issue?.path.join(".")}: ${issue?.message}`);
    }
    const dt: DraftTraining = parsed.data;
    if (dt.status?.stage === "Succeeded" || dt.status?.stage === "Failed") {
      // Terminal: nothing runs any more; only the regen server may still need tearing down.
      await tearDownRegenServer(dt);
      return undefined;
    }
    let current = raw;
    const withFinalizer = await addFinalizer(deps.client, DraftTrainings, current, FINALIZER);
    if (withFinalizer) {
      ctx.log.debug({ resourceVersion: current.metadata?.resourceVersion }, "added finalizer");
      deps.drafts.recordWrite(current, withFinalizer);
      current = withFinalizer;
    }

    const now = clock.now();
    const layout = storageLayout(dt);
    const observed: Observed = {
      jobs: observeJobs(dt),
      evaluation: observeEvaluation(dt),
      missingSecrets: await missingSecrets(dt),
      checkpointUri: latestCheckpointUri(layout),
    };
    let decision = decide(dt, observed, now);
    let created = false;
    for (const action of decision.actions) {
      const job = await act(dt, action, layout);
      if (job && action.type === "runStage") {
        observed.jobs[action.stage] = observeJob(job, []);
        created = true;
      }
    }
    // Report the stage just started in this same status write rather than on the next pass.
    if (created) decision = decide(dt, observed, now);
    const status = decision.active ? await withProgress(dt, decision, now) : decision.status;
    for (const e of decision.events) deps.events.event(current, e.type, e.reason, e.message);
    const written = await updateStatus(deps.client, DraftTrainings, current, status, {
      fieldManager: FIELD_MANAGER,
    });
    deps.drafts.recordWrite(current, written);
    if (decision.active) return { requeueAfterMs: parseDuration(dt.spec.progressInterval) ?? 10_000 };
    // Secrets are not watched (that would need list/watch on every Secret): look again soon.
    if (observed.missingSecrets.length > 0) return { requeueAfterMs: 10_000 };
    return undefined;
  };

  function ownedBy<T extends KubeObject>(informer: Informer<T>, uid: string | undefined): T[] {
    return uid ? informer.store.byOwner(uid) : [];
  }

  function observeJobs(dt: DraftTraining): Observed["jobs"] {
    const jobs: Observed["jobs"] = {};
    for (const job of ownedBy(deps.jobs, dt.metadata.uid)) {
      const slug = job.metadata?.labels?.[desired.LABELS.stage];
      const stage = (Object.keys(STAGE_SLUG) as StageName[]).find((s) => STAGE_SLUG[s] === slug);
      if (!stage) continue;
      jobs[stage] = observeJob(job, ownedBy(deps.pods, job.metadata?.uid));
    }
    return jobs;
  }

  function observeEvaluation(dt: DraftTraining): EvalObservation | undefined {
    const name = childNames(dt).acceptanceEval;
    const ae = deps.evals.store.get(dt.metadata.namespace, name) as AcceptanceEvalWire | undefined;
    if (!ae) return undefined;
    const s = ae.status ?? {};
    return {
      name,
      phase: s.phase,
      macroTau: s.summary?.macroTau,
      verdict: s.gate?.verdict,
      reasons: s.gate?.reasons,
      message: s.conditions?.find((c) => c.type === "Succeeded")?.message,
    };
  }

  async function missingSecrets(dt: DraftTraining): Promise<string[]> {
    const missing: string[] = [];
    for (const name of desired.credentialSecrets(dt)) {
      try {
        await deps.client.get(Secrets, dt.metadata.namespace, name);
      } catch (err) {
        if (isNotFound(err)) missing.push(name);
        else throw err;
      }
    }
    return missing;
  }

  /** Carries out one action; returns the stage Job when it was just created. */
  async function act(
    dt: DraftTraining,
    action: Action,
    layout: ReturnType<typeof storageLayout>,
  ): Promise<JobWire | undefined> {
    const ctx = { defaultImage: deps.image, progressPort: deps.progressPort };
    switch (action.type) {
      case "runStage": {
        const name = childNames(dt).job(action.stage);
        const existing = deps.jobs.store.get(dt.metadata.namespace, name);
        if (existing) {
          if ((existing.spec?.suspend === true) !== action.suspend) {
            await deps.client.patch(
              Jobs,
              dt.metadata.namespace,
              name,
              { spec: { suspend: action.suspend } },
              { type: "merge" },
            );
          }
          return;
        }
        // A stage's objects are independent (the Job's pods wait for their ConfigMap and claim), so
        // they are applied together: one round trip of latency instead of one per object.
        const objects = [
          desired.storageClaim(dt, layout),
          ...(action.stage === "Regenerate" && dt.spec.backend === "deepspec"
            ? desired.regenServer(dt, layout, ctx, regenServerTask(dt, layout))
            : []),
          action.stage === "Train" && dt.spec.resources.nodes > 1 ? desired.trainService(dt) : undefined,
          desired.taskConfigMap(dt, action.stage, stageTask(dt, action.stage, layout)),
        ].filter((o): o is desired.DesiredObject => o !== undefined);
        const [job] = await Promise.all([
          applyDesired(desired.stageJob(dt, action.stage, layout, ctx, { suspend: action.suspend })),
          ...objects.map(applyDesired),
        ]);
        deps.jobs.recordWrite(undefined, job as JobWire);
        return job as JobWire;
      }
      case "createEvaluation": {
        const ae = desired.acceptanceEval(dt, latestCheckpointUri(layout));
        if (ae) await applyDesired(ae);
        return;
      }
      case "tearDownRegenServer":
        await tearDownRegenServer(dt);
        return;
    }
  }

  async function tearDownRegenServer(dt: DraftTraining): Promise<void> {
    const name = childNames(dt).regenServer;
    if (!deps.deployments.store.get(dt.metadata.namespace, name)) return;
    for (const [r, n] of [
      [Deployments, name],
      [Services, name],
      [ConfigMaps, `${name}-task`],
    ] as const) {
      await deps.client.delete(r, dt.metadata.namespace, n).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
    }
  }

  /** Reads rank 0's progress when the last reading is older than the interval; bad reports become a condition. */
  async function withProgress(dt: DraftTraining, decision: Decision, now: number) {
    const status = decision.status;
    const stage = status.stage as StageName;
    const interval = parseDuration(dt.spec.progressInterval) ?? 10_000;
    const last = status.progress?.lastUpdateTime ? Date.parse(status.progress.lastUpdateTime) : 0;
    if (now - last < interval) return status;
    const pod = runningPod(dt, stage);
    if (!pod?.status?.podIP) return status;
    const report = await read(pod.status.podIP, deps.progressPort);
    let conditions = (status.conditions ?? []) as Condition[];
    if (!report.ok) {
      conditions = setCondition(
        conditions,
        { type: "ProgressAvailable", status: "False", reason: "BadProgressReport", message: report.problem },
        dt.metadata.generation,
        now,
      );
      deps.events.event(
        deps.drafts.store.get(dt.metadata.namespace, dt.metadata.name ?? "") ?? (dt as KubeObject),
        "Warning",
        "BadProgressReport",
        report.problem,
      );
      return { ...status, conditions };
    }
    conditions = setCondition(
      conditions,
      {
        type: "ProgressAvailable",
        status: "True",
        reason: "Reporting",
        message: `reading ${pod.metadata?.name}`,
      },
      dt.metadata.generation,
      now,
    );
    return { ...status, conditions, progress: { stage, ...statusProgress(report.progress, now) } };
  }

  function runningPod(dt: DraftTraining, stage: StageName): PodWire | undefined {
    const job = deps.jobs.store.get(dt.metadata.namespace, childNames(dt).job(stage));
    const pods = ownedBy(deps.pods, job?.metadata?.uid).filter((p) => p.status?.phase === "Running");
    // Rank 0 reports for the whole job (DeepSpec logs on rank 0).
    return (
      pods.find((p) => p.metadata?.annotations?.["batch.kubernetes.io/job-completion-index"] === "0") ??
      pods[0]
    );
  }

  /** Deletion: stop every stage (pods get SIGTERM and save), let children go, then release the object. */
  async function finalize(raw: KubeObject, ctx: ReconcileContext): Promise<ReconcileResult> {
    const uid = raw.metadata?.uid;
    const jobs = ownedBy(deps.jobs, uid);
    const evals = ownedBy(deps.evals, uid);
    const servers = ownedBy(deps.deployments, uid);
    for (const [r, objs] of [
      [Jobs, jobs],
      [AcceptanceEvals, evals],
      [Deployments, servers],
    ] as const) {
      for (const o of objs) {
        if (o.metadata?.deletionTimestamp) continue;
        await deps.client
          .delete(r, o.metadata?.namespace, o.metadata?.name ?? "", { propagationPolicy: "Background" })
          .catch((err) => {
            if (!isNotFound(err)) throw err;
          });
      }
    }
    if (jobs.length + evals.length + servers.length > 0) {
      ctx.log.info(
        { jobs: jobs.length, evals: evals.length, servers: servers.length },
        "waiting for children to go",
      );
      return { requeueAfterMs: 1000 };
    }
    await removeFinalizer(deps.client, DraftTrainings, raw, FINALIZER);
    return undefined;
  }
}

/** Records a TerminalError on the object: Ready=False and Succeeded=False with the reason. */
export function recordTerminalError(deps: Pick<DraftTrainingDeps, "client" | "drafts" | "events" | "clock">) {
  return async (err: TerminalError, ctx: ReconcileContext) => {
    const raw = deps.drafts.store.get(ctx.namespace, ctx.name) as
      | (KubeObject & { status?: DraftTrainingStatus })
      | undefined;
    if (!raw) return;
    const now = (deps.clock ?? realClock).now();
    let conditions = (raw.status?.conditions ?? []) as Condition[];
    for (const type of ["Ready", "Succeeded"]) {
      conditions = setCondition(
        conditions,
        { type, status: "False", reason: "InvalidSpec", message: err.message },
        raw.metadata?.generation,
        now,
      );
    }
    deps.events.event(raw, "Warning", "InvalidSpec", err.message);
    await updateStatus(
      deps.client,
      DraftTrainings,
      raw,
      { ...raw.status, stage: "Failed", conditions },
      { fieldManager: FIELD_MANAGER },
    );
  };
}
