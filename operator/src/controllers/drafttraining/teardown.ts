// What goes away: the temporary regeneration server once regeneration is over, a failed stage's
// child from an older generation (so the stage runs again), and on deletion every child before the
// finalizer is released.
import type { ReconcileContext, ReconcileResult } from "../../lib/controller.ts";
import { isNotFound } from "../../lib/errors.ts";
import { removeFinalizer } from "../../lib/finalizers.ts";
import { ConfigMaps, Deployments, Jobs, type Resource, Services } from "../../lib/rest.ts";
import {
  AcceptanceEvals,
  type DraftTrainingDeps,
  type DraftTrainingObject,
  DraftTrainings,
  FINALIZER,
} from "./controller.ts";
import { childNames, type StageName } from "./plan.ts";
import { controlledBy, ownedBy } from "./read.ts";

type Deps = Pick<DraftTrainingDeps, "client" | "jobs" | "evals" | "deployments" | "configMaps" | "services">;

async function deleteIfPresent(
  deps: Deps,
  r: Resource,
  namespace: string | undefined,
  name: string,
): Promise<void> {
  await deps.client.delete(r, namespace, name, { propagationPolicy: "Background" }).catch((err) => {
    if (!isNotFound(err)) throw err;
  });
}

/** Deletes the regeneration server's Deployment, Service and task ConfigMap, by the names they were made with. */
export async function tearDownRegenServer(deps: Deps, dt: DraftTrainingObject): Promise<void> {
  const names = childNames(dt);
  const ns = dt.metadata.namespace;
  const present: [Resource, string, boolean][] = [
    [Deployments, names.regenServer, deps.deployments.store.get(ns, names.regenServer) !== undefined],
    [Services, names.regenServer, deps.services.store.get(ns, names.regenServer) !== undefined],
    [ConfigMaps, names.regenServerTask, deps.configMaps.store.get(ns, names.regenServerTask) !== undefined],
  ];
  for (const [r, name, cached] of present) if (cached) await deleteIfPresent(deps, r, ns, name);
}

/** Deletes a stage's failed Job (or AcceptanceEval) so that the next pass starts the stage afresh. */
export async function restartStage(deps: Deps, dt: DraftTrainingObject, stage: StageName): Promise<void> {
  const names = childNames(dt);
  if (stage === "Evaluate") {
    const cached = deps.evals.store.get(dt.metadata.namespace, names.acceptanceEval);
    // Only its own: an AcceptanceEval of that name it does not control is someone else's.
    if (cached && controlledBy(cached, dt.metadata.uid))
      await deleteIfPresent(deps, AcceptanceEvals, dt.metadata.namespace, names.acceptanceEval);
  } else await deleteIfPresent(deps, Jobs, dt.metadata.namespace, names.job(stage));
}

/**
 * How long to wait before looking again at a deletion whose children are still going: child
 * deletions enqueue the owner anyway, so this is a safety net that backs off (1 s, doubling with
 * the time the deletion has taken, at most a minute) instead of polling every second forever.
 */
export function finalizerRecheckMs(deletingForMs: number): number {
  return Math.min(60_000, Math.max(1000, Math.floor(deletingForMs / 2)));
}

/** Deletion: stop every stage (pods get SIGTERM and save), let children go, then release the object. */
export async function finalize(
  deps: Deps,
  dt: DraftTrainingObject,
  ctx: ReconcileContext,
  now: number,
): Promise<ReconcileResult> {
  const uid = dt.metadata.uid;
  const children = [
    [Jobs, ownedBy(deps.jobs, uid)],
    [AcceptanceEvals, ownedBy(deps.evals, uid)],
    [Deployments, ownedBy(deps.deployments, uid)],
  ] as const;
  let remaining = 0;
  for (const [r, objs] of children) {
    for (const o of objs) {
      remaining++;
      if (o.metadata?.deletionTimestamp) continue;
      await deleteIfPresent(deps, r as Resource, o.metadata?.namespace, o.metadata?.name ?? "");
    }
  }
  if (remaining > 0) {
    const since = Date.parse(dt.metadata.deletionTimestamp ?? "") || now;
    ctx.log.info({ remaining }, "waiting for children to go");
    return { requeueAfterMs: finalizerRecheckMs(now - since) };
  }
  await removeFinalizer(deps.client, DraftTrainings, dt, FINALIZER);
  return undefined;
}
