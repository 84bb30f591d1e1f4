// Level-triggered children. Every pass builds all of the running stage's desired objects (claim,
// task ConfigMap, headless Service, regeneration server, Job) and applies each one that is missing
// from the cache or no longer what this controller applied (an annotation hashes the applied
// content; a task ConfigMap's data is also compared). A deleted ConfigMap or Service comes back on
// the next pass, and an apply that failed is retried with the pass. A stage's objects are rebuilt
// from the spec its Job was started with, so spec edits apply from the next stage (a Job's pod
// template is immutable) while the Job's suspension follows the spec at once.
import { createHash } from "node:crypto";
import { draftTrainingSpec } from "../../api/drafttraining.ts";
import { apply } from "../../lib/apply.ts";
import { apiMessage, statusCode } from "../../lib/errors.ts";
import type { Informer } from "../../lib/informer.ts";
import { Jobs, type KubeObject } from "../../lib/rest.ts";
import { dataDigest, specDigest, stageSpecDigestOf } from "../shared/informers.ts";
import {
  type DraftTrainingDeps,
  type DraftTrainingObject,
  FIELD_MANAGER,
  type JobObject,
  RESOURCES,
} from "./controller.ts";
import { ANNOTATIONS, acceptanceEval, type DesiredObject, type JobStage, stageChildren } from "./desired.ts";
import { childNames, storageLayout } from "./plan.ts";
import { controlledBy } from "./read.ts";
import { latestCheckpointUri } from "./runtimetasks.ts";

export const APPLIED_HASH = "specops.dev/applied-hash";

/** An apply the API server refused, naming the child; keeps the HTTP code for retry decisions. */
export class ChildApplyError extends Error {
  override name = "ChildApplyError";
  readonly code: number | undefined;
  /** The server's Retry-After, which the controller waits out before retrying. */
  readonly retryAfterMs: number | undefined;

  constructor(obj: DesiredObject, cause: unknown) {
    super(`applying ${obj.kind} ${obj.metadata.name}: ${apiMessage(cause)}`, { cause });
    this.code = statusCode(cause);
    this.retryAfterMs = (cause as { retryAfterMs?: number } | null)?.retryAfterMs;
  }
}

/** desired plus an annotation hashing its content, so the cache tells whether it is still what was applied. */
export function withAppliedHash(obj: DesiredObject): DesiredObject {
  const hash = createHash("sha256").update(JSON.stringify(obj)).digest("hex").slice(0, 16);
  const annotations = { ...obj.metadata.annotations, [APPLIED_HASH]: hash };
  return { ...obj, metadata: { ...obj.metadata, annotations } };
}

/** Missing, or not what was applied: its hash annotation differs, or (ConfigMap) its data does. */
export function drifted(desired: DesiredObject, cached: KubeObject | undefined): boolean {
  if (!cached || cached.metadata?.deletionTimestamp) return true;
  if (cached.metadata?.annotations?.[APPLIED_HASH] !== desired.metadata.annotations?.[APPLIED_HASH])
    return true;
  return (
    desired.kind === "ConfigMap" &&
    (cached as { dataDigest?: string }).dataDigest !== dataDigest(desired.data)
  );
}

/** Parsed started specs of Jobs whose spec is no longer their owner's, by Job uid: read from the API once. */
const startedSpecs = new Map<string, { digest: string; spec?: DraftTrainingObject["spec"] }>();
const STARTED_SPECS_MAX = 1024;
/** specDigest of each parsed spec object (the informer reuses the object while the spec is unchanged). */
const specDigests = new WeakMap<object, string>();

function digestOfSpec(spec: DraftTrainingObject["spec"]): string {
  let digest = specDigests.get(spec);
  if (digest === undefined) {
    digest = specDigest(JSON.stringify(spec));
    specDigests.set(spec, digest);
  }
  return digest;
}

function parseStarted(recorded: string | undefined): DraftTrainingObject["spec"] | undefined {
  if (recorded === undefined) return undefined;
  try {
    const spec = draftTrainingSpec.safeParse(JSON.parse(recorded));
    return spec.success ? spec.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The DraftTraining as its stage Job was started: that spec and generation, when the Job recorded
 * them. A cached Job carries only a digest of its spec (shared/informers.ts): when it is the
 * DraftTraining's current spec (nearly always) nothing is parsed or read; when the spec changed
 * since, the Job is read from the API once and its parsed spec kept while the digest stays.
 */
export async function asStarted(
  deps: Pick<DraftTrainingDeps, "client">,
  dt: DraftTrainingObject,
  job: JobObject | undefined,
): Promise<DraftTrainingObject> {
  if (!job) return dt;
  const generation = Number(job.metadata?.annotations?.[ANNOTATIONS.generation] ?? dt.metadata.generation);
  const started = (spec: DraftTrainingObject["spec"] | undefined) =>
    spec ? { ...dt, spec, metadata: { ...dt.metadata, generation } } : dt;
  const recorded = job.metadata?.annotations?.[ANNOTATIONS.stageSpec];
  if (recorded !== undefined) return started(parseStarted(recorded));
  const digest = stageSpecDigestOf(job);
  if (digest === undefined) return dt;
  if (digest === digestOfSpec(dt.spec)) return started(dt.spec);
  const uid = job.metadata?.uid ?? `${job.metadata?.namespace}/${job.metadata?.name}`;
  let known = startedSpecs.get(uid);
  if (known?.digest !== digest) {
    const live = await deps.client.get(Jobs, job.metadata?.namespace, job.metadata?.name ?? "");
    known = { digest, spec: parseStarted(live.metadata?.annotations?.[ANNOTATIONS.stageSpec]) };
    startedSpecs.delete(uid);
    startedSpecs.set(uid, known);
    // Oldest first: entries of finished or deleted Jobs age out.
    if (startedSpecs.size > STARTED_SPECS_MAX)
      startedSpecs.delete(startedSpecs.keys().next().value as string);
  }
  return started(known.spec);
}

type ApplyDeps = Pick<DraftTrainingDeps, "client">;

async function applyAll(deps: ApplyDeps, objects: DesiredObject[]): Promise<KubeObject[]> {
  const results = await Promise.allSettled(
    objects.map((o) =>
      apply(deps.client, o, { fieldManager: FIELD_MANAGER, resources: RESOURCES }).catch((err) => {
        throw new ChildApplyError(o, err);
      }),
    ),
  );
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return results.map((r) => (r as PromiseFulfilledResult<KubeObject>).value);
}

/**
 * Brings a stage's children to their desired state. suspend is the operator's wish for the Job;
 * undefined means Kueue decides (the Job is created suspended and its suspension never applied).
 * Returns the stage Job when this pass created it.
 */
export async function syncStage(
  deps: DraftTrainingDeps,
  dt: DraftTrainingObject,
  stage: JobStage,
  suspend: boolean | undefined,
  ctx: { defaultImage: string; progressPort: number },
): Promise<JobObject | undefined> {
  const ns = dt.metadata.namespace;
  const existing = deps.jobs.store.get(ns, childNames(dt).job(stage));
  const started =
    existing && !existing.metadata?.deletionTimestamp ? await asStarted(deps, dt, existing) : dt;
  // Under Kueue the regeneration server follows the Job's actual suspension (admission).
  const effective = suspend ?? (existing ? existing.spec?.suspend === true : true);
  const { job, others } = stageChildren(started, stage, storageLayout(started), ctx, { suspend: effective });
  const informers: Record<string, Informer<KubeObject> | undefined> = {
    ConfigMap: deps.configMaps as Informer<KubeObject>,
    Service: deps.services,
    PersistentVolumeClaim: deps.claims,
    Deployment: deps.deployments,
    Job: deps.jobs as Informer<KubeObject>,
  };
  const cached = (o: DesiredObject) => informers[o.kind]?.store.get(ns, o.metadata.name);
  const todo = others.map(withAppliedHash).filter((o) => drifted(o, cached(o)));
  const jobMissing = !existing;
  const suspendDrifted =
    existing !== undefined && suspend !== undefined && (existing.spec?.suspend === true) !== suspend;
  // A Job is applied when missing, or (without Kueue) to change its suspension: server-side apply of
  // the same object as started, so this controller's field manager owns spec.suspend.
  if (jobMissing || suspendDrifted) todo.push(withAppliedHash(job));
  if (todo.length === 0) return undefined;
  // Independent objects (the Job's pods wait for their ConfigMap and claim): one round trip.
  const applied = await applyAll(deps, todo);
  // Into the caches at once, so the next pass (often triggered before the watch delivers these
  // writes) does not apply them again.
  applied.forEach((written, i) => {
    const o = todo[i] as DesiredObject;
    informers[o.kind]?.recordWrite(cached(o), written);
  });
  return jobMissing ? (applied.at(-1) as JobObject) : undefined;
}

/** The evaluation gate's AcceptanceEval, applied when missing or drifted. */
export async function syncEvaluation(deps: DraftTrainingDeps, dt: DraftTrainingObject): Promise<void> {
  const desired = acceptanceEval(dt, latestCheckpointUri(storageLayout(dt)));
  if (!desired) return;
  const hashed = withAppliedHash(desired);
  const cached = deps.evals.store.get(dt.metadata.namespace, hashed.metadata.name);
  // Never over someone else's AcceptanceEval of that name: a forced apply would take it over.
  if (cached && !controlledBy(cached, dt.metadata.uid)) return;
  if (drifted(hashed, cached)) await applyAll(deps, [hashed]);
}
