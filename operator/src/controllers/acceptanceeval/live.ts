// Live evaluation (draft.specServeRef) as pure functions: what the referenced SpecServe says, the
// load Task and Job of each task set, and the state machine. Task sets are measured one after the
// other, each in its own window: the operator scrapes every ready serving pod's /metrics (kept in a
// snapshot ConfigMap, so a restarted operator still has the window's start), runs a load Job that
// sends the task set's prompts to the SpecServe's Service, scrapes again once it finished, and folds
// the difference (livemeasure.ts) into status.results. No I/O here; `now` is given.
import type { AcceptanceEval, SpecServe } from "../../api/kinds.ts";
import { RUNTIME_API_VERSION, RUNTIME_ENV } from "../../contract/constants.ts";
import type { TaskInput } from "../../contract/task.ts";
import type { JobObservation } from "../drafttraining/observe.ts";
import { childName } from "../shared/names.ts";
import { SCRATCH_PATH } from "../shared/pod.ts";
import type { AcceptanceEvalStatus, Action, Decision } from "./decide.ts";
import { foldResult, jobFailure, statusDecision } from "./decide.ts";
import { type BuildContext, type DesiredObject, evalMeta, runtimeJob } from "./desired.ts";
import type { Measurement } from "./livemeasure.ts";
import { claimOf } from "./plan.ts";
import { summarize, verdict } from "./verdict.ts";

/** A load request waits at most this long (a long generation on a loaded server is not a failure). */
export const LOAD_REQUEST_TIMEOUT_SECONDS = 600;

/** Children of task set `index` in this generation: its load Job, its task and its window's start. */
export function liveNames(ae: AcceptanceEval, index: number) {
  const job = childName(ae.metadata.name ?? "", `g${ae.metadata.generation ?? 1}-load-${index}`);
  return { job, taskConfigMap: childName(job, "task"), snapshot: childName(job, "before") };
}

/** What the referenced SpecServe says, as far as measuring it goes. */
export interface SpecServeView {
  name: string;
  ready: boolean;
  /** The Ready condition's reason and message (or why there is none). */
  reason: string;
  message: string;
  engine: SpecServe["spec"]["engine"];
  port: number;
  endpoint: string;
  /** Draft length k the SpecServe serves with. */
  k?: number;
  draft?: string;
  apiKeySecretRef?: { name: string; key: string };
}

export function viewSpecServe(ss: SpecServe): SpecServeView {
  const ready = ss.status?.conditions?.find((c) => c.type === "Ready");
  const name = ss.metadata.name ?? "";
  const ns = ss.metadata.namespace ?? "default";
  return {
    name,
    ready: ready?.status === "True",
    reason: ready?.reason ?? "NoReadyCondition",
    message: ready?.message ?? "the SpecServe reports no Ready condition yet",
    engine: ss.spec.engine,
    port: ss.spec.port,
    // The Service is named after the SpecServe (specserve/plan.ts childNames).
    endpoint: ss.status?.endpoint ?? `http://${name}.${ns}.svc:${ss.spec.port}/v1`,
    k: ss.spec.speculative.numSpeculativeTokens,
    draft: ss.status?.draft ?? ss.spec.draft.source?.uri,
    apiKeySecretRef: ss.spec.apiKeySecretRef,
  };
}

export function loadTask(ae: AcceptanceEval, ss: SpecServeView, index: number): TaskInput {
  const task = ae.spec.tasks[index];
  if (!task) throw new Error(`no task set ${index}`);
  return {
    apiVersion: RUNTIME_API_VERSION,
    kind: "load",
    backend: ss.engine,
    metadata: {
      name: liveNames(ae, index).job,
      namespace: ae.metadata.namespace,
      owner: { kind: "AcceptanceEval", name: ae.metadata.name ?? "", uid: ae.metadata.uid },
    },
    output: { path: `${SCRATCH_PATH}/load` },
    params: {
      endpoint: ss.endpoint,
      tasks: [task],
      decoding: ae.spec.decoding,
      concurrency: ae.spec.load.concurrency,
      requestTimeoutSeconds: LOAD_REQUEST_TIMEOUT_SECONDS,
    },
  };
}

/** The load Job: no GPU, the task sources' claims and credentials, the endpoint's key by reference. */
export function loadJob(
  ae: AcceptanceEval,
  ss: SpecServeView,
  index: number,
  ctx: BuildContext,
): DesiredObject {
  const names = liveNames(ae, index);
  const key = ss.apiKeySecretRef;
  return runtimeJob(
    ae,
    {
      name: names.job,
      taskConfigMap: names.taskConfigMap,
      gpus: 0,
      claims: [...new Set(ae.spec.tasks.map((t) => claimOf(t.source?.uri)).filter((c) => c !== undefined))],
      env: key
        ? [{ name: RUNTIME_ENV.apiKey, valueFrom: { secretKeyRef: { name: key.name, key: key.key } } }]
        : [],
    },
    ctx,
  );
}

export interface LiveObserved {
  /** Undefined: no SpecServe of that name in the namespace. */
  specServe?: SpecServeView;
  /** The task set being measured: the first in spec.tasks without a result in status. */
  index?: number;
  /** Its load Job, when it exists. */
  job?: JobObservation;
  /** Whether its window's start (the snapshot ConfigMap) was taken. */
  snapshot: boolean;
  /** Its figures, once its Job completed (read by the I/O layer before deciding). */
  measurement?: Measurement;
  /** Load Jobs of this evaluation other than the current one. */
  staleJobs: string[];
}

/** The live actions: take a window's start, or bring a task set's load Job to its desired state. */
export type LiveAction =
  | { type: "snapshot"; index: number; name: string }
  | { type: "runLoad"; index: number; specServe: SpecServeView };

/** The first task set of spec.tasks that has no figures in `results`. */
export function nextTaskIndex(
  ae: AcceptanceEval,
  results: { name: string }[] | undefined,
): number | undefined {
  const done = new Set((results ?? []).map((r) => r.name));
  const i = ae.spec.tasks.findIndex((t) => !done.has(t.name));
  return i < 0 ? undefined : i;
}

export function decideLive(
  ae: AcceptanceEval,
  observed: LiveObserved,
  now: number,
): Omit<Decision, "actions"> & { actions: (Action | LiveAction)[] } {
  const { old, sameGeneration, base, actions, events, set, drop, previousReason, finish, showPodStart } =
    statusDecision<LiveAction>(ae, now, observed.staleJobs);
  // A generation that ended stays as it ended (a window read again later could say otherwise).
  if (sameGeneration && (old.phase === "Failed" || (old.phase === "Succeeded" && !observed.job)))
    return { status: old, actions, events };

  const name = ae.spec.draft.specServeRef?.name ?? "";
  const ss = observed.specServe;
  const live: NonNullable<AcceptanceEvalStatus["live"]> = {
    ...(base.live ?? {}),
    specServe: name,
    concurrency: ae.spec.load.concurrency,
    convention: "vllm",
  };
  if (ss) {
    live.endpoint = ss.endpoint;
    if (ss.k !== undefined) live.numSpeculativeTokens = ss.k;
  }
  const results = [...(base.results ?? [])];
  const index = observed.index;
  const job = observed.job;

  // Figures of a finished window go in first; the next task set starts from the next pass.
  if (job?.complete && index !== undefined) {
    const m = observed.measurement;
    if (!m?.ok) {
      const message =
        m?.ok === false ? m.message : `Job ${job.name} finished but its window could not be read`;
      set("Succeeded", "False", "MeasurementFailed", message);
      return finish({ ...base, live, phase: "Failed", completionTime: new Date(now).toISOString() });
    }
    results.push(foldResult(m.result));
  } else if (job?.failed) {
    const f = jobFailure(job);
    set("Succeeded", "False", f.reason, f.message);
    return finish({ ...base, live, phase: "Failed", completionTime: new Date(now).toISOString() });
  }
  const draft = base.draft ?? (ss ? { name, uri: ss.draft ?? `specserve://${name}` } : undefined);
  const next = job?.complete ? nextTaskIndex(ae, results) : index;
  if (next === undefined) {
    const summary = { ...summarize(results), macroTau: Math.round(summarize(results).macroTau * 1e4) / 1e4 };
    const gate = verdict(ae.spec.gate, results, summary);
    set(
      "Succeeded",
      "True",
      "Measured",
      `live macro tau ${summary.macroTau} (vLLM's convention) over ${summary.samples} requests in ${results.length} task sets`,
    );
    if (gate.verdict === "Passed") set("Passed", "True", "ThresholdsMet", "every gate threshold is met");
    else if (gate.verdict === "Failed")
      set("Passed", "False", "ThresholdsMissed", (gate.reasons ?? []).join("; ") || "gate failed");
    else drop("Passed");
    const { task: _task, ...settled } = live;
    return finish({
      ...base,
      live: settled,
      draft,
      results,
      summary,
      gate,
      phase: "Succeeded",
      completionTime: new Date(now).toISOString(),
    });
  }
  live.task = ae.spec.tasks[next]?.name;

  if (job && !job.complete) {
    // Its window is open: the Job's children stay as desired; problems starting its pod show.
    if (ss) actions.push({ type: "runLoad", index: next, specServe: ss });
    set("Succeeded", "Unknown", "Running", `Job ${job.name} sends ${live.task} to SpecServe ${name}`);
    showPodStart(job);
    return finish({ ...base, live, draft, results, job: job.name, phase: "Running" });
  }

  // A new window: only against a Ready SpecServe.
  const waiting = !ss
    ? {
        reason: "SpecServeNotFound",
        message: `waiting for SpecServe ${name}: it does not exist in namespace ${ae.metadata.namespace}`,
      }
    : !ss.ready
      ? {
          reason: "SpecServeNotReady",
          message: `waiting for SpecServe ${name} to be Ready (${ss.reason}: ${ss.message})`,
        }
      : undefined;
  if (waiting || !ss) {
    const w = waiting ?? { reason: "SpecServeNotFound", message: "" };
    set("DraftReady", "False", w.reason, w.message);
    set("Succeeded", "Unknown", w.reason, w.message);
    if (previousReason("DraftReady") !== w.reason)
      events.push({ type: "Normal", reason: "WaitingForSpecServe", message: w.message });
    return finish({ ...base, live, results, phase: results.length ? "Running" : "Pending" });
  }
  set(
    "DraftReady",
    "True",
    "SpecServeReady",
    `measuring SpecServe ${name} (draft ${ss.draft ?? "unknown"}) live`,
  );
  const names = liveNames(ae, next);
  actions.push(
    observed.snapshot && !job?.complete
      ? { type: "runLoad", index: next, specServe: ss }
      : { type: "snapshot", index: next, name: names.snapshot },
  );
  set("Succeeded", "Unknown", "Running", `measuring ${live.task} against SpecServe ${name}`);
  return finish({
    ...base,
    live,
    draft,
    results,
    job: names.job,
    phase: "Running",
    startTime: base.startTime ?? new Date(now).toISOString(),
  });
}

/** The task document of task set `index`'s load Job. */
export function loadTaskConfigMap(ae: AcceptanceEval, index: number, task: unknown): DesiredObject {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: evalMeta(ae, liveNames(ae, index).taskConfigMap),
    data: { "task.json": `${JSON.stringify(task, null, 2)}\n` },
  };
}

/** The start of task set `index`'s window: every ready serving pod's /metrics text. */
export function snapshotConfigMap(
  ae: AcceptanceEval,
  index: number,
  data: Record<string, string>,
): DesiredObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: evalMeta(ae, liveNames(ae, index).snapshot), data };
}
