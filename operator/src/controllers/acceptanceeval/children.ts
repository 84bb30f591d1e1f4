// Level-triggered children of the running generation: its task ConfigMap and Job are built every
// pass and applied when missing or no longer what this controller applied (the applied-hash
// annotation, and a ConfigMap's data digest). The Job's pod template is immutable, so an existing
// Job is left as it is; a new generation gets a new Job.
import type { AcceptanceEval } from "../../api/kinds.ts";
import { apply } from "../../lib/apply.ts";
import type { KubeObject } from "../../lib/rest.ts";
import { ChildApplyError, drifted, withAppliedHash } from "../drafttraining/children.ts";
import { type AcceptanceEvalDeps, FIELD_MANAGER, RESOURCES } from "./controller.ts";
import { type DesiredObject, evalJob, taskConfigMap } from "./desired.ts";
import { outputLayout, type ResolvedDraft } from "./plan.ts";
import { evalTask } from "./runtimetasks.ts";

export async function syncEval(
  deps: AcceptanceEvalDeps,
  ae: AcceptanceEval,
  draft: ResolvedDraft,
): Promise<void> {
  const build = { defaultImage: deps.image, progressPort: deps.progressPort };
  await syncTaskAndJob(
    deps,
    ae.metadata.namespace,
    withAppliedHash(taskConfigMap(ae, evalTask(ae, draft, outputLayout(ae)))),
    withAppliedHash(evalJob(ae, draft, build)),
  );
}

/** A task ConfigMap applied when it drifted, its Job when missing or being deleted. */
export async function syncTaskAndJob(
  deps: AcceptanceEvalDeps,
  ns: string | undefined,
  configMap: DesiredObject,
  job: DesiredObject,
): Promise<void> {
  const todo: AppliedChild[] = [];
  const cachedMap = deps.configMaps.store.get(ns, configMap.metadata.name);
  if (drifted(configMap, cachedMap))
    todo.push({ obj: configMap, record: (w) => deps.configMaps.recordWrite(cachedMap, w) });
  const cachedJob = deps.jobs.store.get(ns, job.metadata.name);
  if (!cachedJob || cachedJob.metadata?.deletionTimestamp)
    todo.push({ obj: job, record: (w) => deps.jobs.recordWrite(cachedJob, w as never) });
  // The Job's pod waits for its ConfigMap, so both go in one round trip.
  await applyAll(deps, todo);
}

export interface AppliedChild {
  obj: DesiredObject;
  /** Keeps the informer's cache in step with what the write returned. */
  record: (written: KubeObject) => void;
}

/** Applies the children concurrently; each written one is recorded, the first failure thrown. */
export async function applyAll(deps: AcceptanceEvalDeps, children: AppliedChild[]): Promise<void> {
  const results = await Promise.allSettled(
    children.map(({ obj }) =>
      apply(deps.client, obj as KubeObject, { fieldManager: FIELD_MANAGER, resources: RESOURCES }).catch(
        (err) => {
          throw new ChildApplyError(obj, err);
        },
      ),
    ),
  );
  results.forEach((r, i) => {
    if (r.status === "fulfilled") children[i]?.record(r.value as KubeObject);
  });
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
}
