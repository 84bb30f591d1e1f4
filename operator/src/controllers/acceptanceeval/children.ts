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
  const ns = ae.metadata.namespace;
  const build = { defaultImage: deps.image, progressPort: deps.progressPort };
  const configMap = withAppliedHash(taskConfigMap(ae, evalTask(ae, draft, outputLayout(ae))));
  const job = withAppliedHash(evalJob(ae, draft, build));
  const todo: { obj: DesiredObject; cached: KubeObject | undefined; record: (w: KubeObject) => void }[] = [];
  const cachedMap = deps.configMaps.store.get(ns, configMap.metadata.name);
  if (drifted(configMap, cachedMap))
    todo.push({
      obj: configMap,
      cached: cachedMap,
      record: (w) => deps.configMaps.recordWrite(cachedMap, w),
    });
  const cachedJob = deps.jobs.store.get(ns, job.metadata.name);
  if (!cachedJob || cachedJob.metadata?.deletionTimestamp)
    todo.push({ obj: job, cached: cachedJob, record: (w) => deps.jobs.recordWrite(cachedJob, w) });
  // The Job's pod waits for its ConfigMap, so both go in one round trip.
  const results = await Promise.allSettled(
    todo.map(({ obj }) =>
      apply(deps.client, obj as KubeObject, { fieldManager: FIELD_MANAGER, resources: RESOURCES }).catch(
        (err) => {
          throw new ChildApplyError(obj, err);
        },
      ),
    ),
  );
  results.forEach((r, i) => {
    if (r.status === "fulfilled") todo[i]?.record(r.value as KubeObject);
  });
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
}
