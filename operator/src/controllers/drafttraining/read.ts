// Reads what a DraftTraining's children say, from the informer caches only (no API calls): its
// stage Jobs with their pods, and its AcceptanceEval.

import type { Informer } from "../../lib/informer.ts";
import type { KubeObject } from "../../lib/rest.ts";
import type { DraftTrainingDeps, DraftTrainingObject, PodObject } from "./controller.ts";
import { ANNOTATIONS, LABELS } from "./desired.ts";
import { observeJob } from "./observe.ts";
import type { EvalObservation, Observed } from "./pipeline.ts";
import { childNames, STAGE_SLUG, type StageName, type StorageLayout } from "./plan.ts";
import { latestCheckpointUri } from "./runtimetasks.ts";

type Caches = Pick<DraftTrainingDeps, "jobs" | "pods" | "evals">;

export function ownedBy<T extends KubeObject>(informer: Informer<T>, uid: string | undefined): T[] {
  return uid ? informer.store.byOwner(uid) : [];
}

/** Whether obj's controller reference is the object with this uid. */
export function controlledBy(obj: KubeObject, uid: string | undefined): boolean {
  return (
    uid !== undefined &&
    (obj.metadata?.ownerReferences ?? []).some((r) => r.controller === true && r.uid === uid)
  );
}

export function readObserved(deps: Caches, dt: DraftTrainingObject, layout: StorageLayout): Observed {
  return {
    jobs: readJobs(deps, dt),
    evaluation: readEvaluation(deps, dt),
    checkpointUri: latestCheckpointUri(layout),
  };
}

function readJobs(deps: Caches, dt: DraftTrainingObject): Observed["jobs"] {
  const jobs: Observed["jobs"] = {};
  for (const job of ownedBy(deps.jobs, dt.metadata.uid)) {
    const slug = job.metadata?.labels?.[LABELS.stage];
    const stage = (Object.keys(STAGE_SLUG) as StageName[]).find((s) => STAGE_SLUG[s] === slug);
    if (!stage || job.metadata?.deletionTimestamp) continue;
    jobs[stage] = observeJob(job, ownedBy(deps.pods, job.metadata?.uid));
  }
  return jobs;
}

function readEvaluation(deps: Caches, dt: DraftTrainingObject): EvalObservation | undefined {
  const name = childNames(dt).acceptanceEval;
  const ae = deps.evals.store.get(dt.metadata.namespace, name);
  if (!ae || ae.metadata?.deletionTimestamp) return undefined;
  if (!controlledBy(ae, dt.metadata.uid)) return { name, generation: 0, foreign: true };
  const s = ae.status ?? {};
  return {
    name,
    generation: Number(ae.metadata?.annotations?.[ANNOTATIONS.generation] ?? 0),
    phase: s.phase,
    macroTau: s.summary?.macroTau,
    verdict: s.gate?.verdict,
    reasons: s.gate?.reasons,
    message: s.conditions?.find((c) => c.type === "Succeeded")?.message,
  };
}

/** Rank 0's running pod of a stage (DeepSpec logs on rank 0), else any running pod of it. */
export function runningPod(
  deps: Pick<DraftTrainingDeps, "jobs" | "pods">,
  dt: DraftTrainingObject,
  stage: StageName,
): PodObject | undefined {
  const job = deps.jobs.store.get(dt.metadata.namespace, childNames(dt).job(stage));
  const pods = ownedBy(deps.pods, job?.metadata?.uid).filter((p) => p.status?.phase === "Running");
  return (
    pods.find((p) => p.metadata?.annotations?.["batch.kubernetes.io/job-completion-index"] === "0") ?? pods[0]
  );
}
