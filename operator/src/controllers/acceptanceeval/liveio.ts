// The thin I/O of a live evaluation: what the caches say about the SpecServe, its serving pods and
// this evaluation's load Jobs; scraping the ready serving pods' /metrics (text only; parsed by the
// signal parser in livemeasure.ts); and applying the snapshot, task ConfigMap and load Job.

import type { AcceptanceEval, SpecServe } from "../../api/kinds.ts";
import { specServeResource } from "../../api/kinds.ts";
import { isNotFound } from "../../lib/errors.ts";
import { ConfigMaps } from "../../lib/rest.ts";
import { withAppliedHash } from "../drafttraining/children.ts";
import { observeJob } from "../drafttraining/observe.ts";
import { labelValue } from "../shared/names.ts";
import { readyPods, scrapePods } from "../specserve/scrape.ts";
import { applyAll, syncTaskAndJob } from "./children.ts";
import type { AcceptanceEvalDeps } from "./controller.ts";
import { LABELS } from "./desired.ts";
import {
  type LiveAction,
  type LiveObserved,
  liveNames,
  loadJob,
  loadTask,
  loadTaskConfigMap,
  nextTaskIndex,
  type SpecServeView,
  snapshotConfigMap,
  viewSpecServe,
} from "./live.ts";
import {
  decodeSnapshot,
  encodeSnapshot,
  type LoadCounts,
  measureWindow,
  type Snapshot,
} from "./livemeasure.ts";

/** The label every serving pod of a SpecServe carries (specserve/plan.ts selectorLabels). */
const SPECSERVE_POD_LABEL = "specops.dev/specserve";

type PodLike = {
  metadata?: { name?: string; labels?: Record<string, string>; deletionTimestamp?: string };
  status?: { podIP?: string; conditions?: { type: string; status: string }[] };
};

export function readLive(deps: AcceptanceEvalDeps, ae: AcceptanceEval): LiveObserved {
  const ns = ae.metadata.namespace;
  const name = ae.spec.draft.specServeRef?.name ?? "";
  const raw = deps.specServes.store.get(ns, name);
  const parsed = raw ? specServeResource.safeParse(raw) : undefined;
  const specServe = parsed?.success ? viewSpecServe(parsed.data as SpecServe) : undefined;
  const sameGeneration = ae.status?.observedGeneration === ae.metadata.generation;
  const index = nextTaskIndex(ae, sameGeneration ? ae.status?.results : []);
  const uid = ae.metadata.uid;
  const jobs = (uid ? deps.jobs.store.byOwner(uid) : []).filter(
    (j) =>
      j.metadata?.labels?.[LABELS.owner] === labelValue(ae.metadata.name ?? "") &&
      !j.metadata?.deletionTimestamp,
  );
  const generation = String(ae.metadata.generation ?? 1);
  const names = index === undefined ? undefined : liveNames(ae, index);
  const current = names ? jobs.find((j) => j.metadata?.name === names.job) : undefined;
  return {
    specServe,
    index,
    job: current
      ? observeJob(current, current.metadata?.uid ? deps.pods.store.byOwner(current.metadata.uid) : [])
      : undefined,
    snapshot: names ? deps.configMaps.store.get(ns, names.snapshot) !== undefined : false,
    // This generation's finished load Jobs stay (their pods' logs); earlier generations' go.
    staleJobs: jobs
      .filter((j) => j.metadata?.labels?.[LABELS.generation] !== generation)
      .map((j) => j.metadata?.name ?? ""),
  };
}

/** For the leaderboard labels: a live evaluation's target and method are its SpecServe's. */
export function withSpecServeModel(deps: AcceptanceEvalDeps, ae: AcceptanceEval): AcceptanceEval {
  const ref = ae.spec.draft.specServeRef;
  const raw = ref ? deps.specServes.store.get(ae.metadata.namespace, ref.name) : undefined;
  const parsed = raw ? specServeResource.safeParse(raw) : undefined;
  if (!parsed?.success) return ae;
  const { target, method } = parsed.data.spec;
  return { ...ae, spec: { ...ae.spec, target, method: method as AcceptanceEval["spec"]["method"] } };
}

/** Every ready serving pod of the SpecServe, scraped now; a pod that does not answer is left out. */
export async function scrapeServingPods(
  deps: AcceptanceEvalDeps,
  ae: AcceptanceEval,
  ss: SpecServeView,
  signal: AbortSignal | undefined,
  now: number,
): Promise<Snapshot> {
  const pods = readyPods(
    (deps.pods.store.list(ae.metadata.namespace) as PodLike[]).filter(
      (p) => p.metadata?.labels?.[SPECSERVE_POD_LABEL] === ss.name,
    ),
  );
  const results = await scrapePods(pods, {
    port: ss.port,
    signal: signal ?? new AbortController().signal,
    fetchText: deps.scrapeMetrics,
  });
  // An unreachable pod is missing from the snapshot, not zero.
  const scraped = results.flatMap((r) => (r.ok ? [{ pod: r.pod, text: r.text }] : []));
  return { time: now / 1000, pods: scraped };
}

/** The load counts of the finished Job's task set, from its termination message. */
function loadCounts(observed: LiveObserved, task: string): LoadCounts | undefined {
  const row = observed.job?.termination?.result?.load?.tasks.find((t) => t.name === task);
  return row
    ? {
        requests: row.requests,
        completionTokens: row.completionTokens,
        requestSeconds: row.requestSeconds,
        durationSeconds: row.durationSeconds,
      }
    : undefined;
}

/** Reads a finished window (its snapshot, the pods now, the load's counts) into observed.measurement. */
export async function measureFinished(
  deps: AcceptanceEvalDeps,
  ae: AcceptanceEval,
  observed: LiveObserved,
  signal: AbortSignal | undefined,
  now: number,
): Promise<void> {
  const index = observed.index;
  if (index === undefined || !observed.job?.complete) return;
  if (ae.status?.observedGeneration === ae.metadata.generation && ae.status?.phase === "Failed") return;
  const task = ae.spec.tasks[index]?.name ?? "";
  const fail = (message: string) => {
    observed.measurement = { ok: false, message };
  };
  const counts = loadCounts(observed, task);
  if (!counts)
    return fail(`Job ${observed.job.name} completed without load counts in its termination message`);
  if (!observed.specServe)
    return fail(
      `SpecServe ${ae.spec.draft.specServeRef?.name} disappeared before the window of ${task} was read`,
    );
  const snapshotName = liveNames(ae, index).snapshot;
  let before: Snapshot | undefined;
  try {
    const cm = await deps.client.get(ConfigMaps, ae.metadata.namespace, snapshotName, { signal });
    before = decodeSnapshot(cm.data);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (!before)
    return fail(`the start of ${task}'s window (ConfigMap ${snapshotName}) is missing or unreadable`);
  const after = await scrapeServingPods(deps, ae, observed.specServe, signal, now);
  observed.measurement = measureWindow(task, before, after, counts, observed.specServe.k);
}

export async function actLive(
  deps: AcceptanceEvalDeps,
  ae: AcceptanceEval,
  action: LiveAction,
  signal: AbortSignal | undefined,
  now: number,
): Promise<void> {
  const ns = ae.metadata.namespace;
  if (action.type === "snapshot") {
    const ss = readLive(deps, ae).specServe;
    if (!ss) return;
    const snapshot = await scrapeServingPods(deps, ae, ss, signal, now);
    if (snapshot.pods.length === 0)
      throw new Error(`no ready pod of SpecServe ${ss.name} answered /metrics on port ${ss.port}`);
    const cm = snapshotConfigMap(ae, action.index, encodeSnapshot(snapshot));
    const cached = deps.configMaps.store.get(ns, cm.metadata.name);
    await applyAll(deps, [{ obj: cm, record: (w) => deps.configMaps.recordWrite(cached, w) }]);
    return;
  }
  const build = { defaultImage: deps.image, progressPort: deps.progressPort };
  await syncTaskAndJob(
    deps,
    ns,
    withAppliedHash(loadTaskConfigMap(ae, action.index, loadTask(ae, action.specServe, action.index))),
    withAppliedHash(loadJob(ae, action.specServe, action.index, build)),
  );
}
