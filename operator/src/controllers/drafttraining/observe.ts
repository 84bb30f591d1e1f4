// Reads what a stage's Job and pods say: running, done, failed and why — the failure reason from
// the Job's conditions and the runtime's own words from the termination message (contract result).
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import { exitReasonOf } from "../../contract/exitCodes.ts";
import type { Result } from "../../contract/result.ts";
import type { Wire } from "../../lib/rest.ts";
import { RUNTIME_CONTAINER } from "../shared/pod.ts";
import { ANNOTATIONS, LABELS } from "./desired.ts";

export interface Termination {
  exitCode: number;
  /** Exit reason name from the contract (invalidTask, outOfMemory, ...), when the code is one of its. */
  reason?: string;
  /** The runtime's message, or the raw termination text when it is not a contract result. */
  message?: string;
  /** The parsed compact result, when the message was one. */
  result?: Result;
  /** True when the pod wrote something that is not a valid contract result. */
  malformed: boolean;
}

/** Why a pod's runtime container does not start, in the kubelet's words. */
export interface ContainerProblem {
  /** The kubelet's waiting reason: CreateContainerConfigError, ImagePullBackOff, ... */
  reason: string;
  message: string;
  pod: string;
}

/** Waiting reasons that do not clear by themselves: the pod needs something fixed. */
const STUCK_REASONS = new Set([
  "CreateContainerConfigError",
  "CreateContainerError",
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
]);

export interface JobObservation {
  name: string;
  /** Generation of the DraftTraining the Job was started with (0 when not recorded). */
  generation: number;
  /** The Kueue LocalQueue the Job was submitted to. */
  queue?: string;
  suspended: boolean;
  /** Job condition Suspended's message (the Job controller's, or Kueue's on eviction). */
  suspendedMessage?: string;
  complete: boolean;
  failed: boolean;
  /** Job condition reason of a failure: PodFailurePolicy (terminal exit), BackoffLimitExceeded, DeadlineExceeded. */
  failureReason?: string;
  failureMessage?: string;
  active: number;
  failedPods: number;
  /** When the Job was created (RFC 3339), to tell "starting" from "stuck". */
  createdAt?: string;
  /** Pods of the Job that exist at all. */
  pods: number;
  /** Why a pod cannot be scheduled (the scheduler's message), when one cannot. */
  unschedulable?: string;
  /** A pod whose runtime container cannot start (missing Secret, image pull...), when one cannot. */
  containerProblem?: ContainerProblem;
  startTime?: string;
  completionTime?: string;
  /** The most informative pod ending: the latest failure, else the latest success. */
  termination?: Termination;
}

export function parseTermination(exitCode: number, text: string | undefined): Termination {
  const base = { exitCode, reason: exitReasonOf(exitCode) };
  if (!text) return { ...base, malformed: false };
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object" && parsed.kind === "Result") {
      return { ...base, message: parsed.message, result: parsed, malformed: false };
    }
  } catch {
    // not JSON: FallbackToLogsOnError put the log tail here
  }
  return { ...base, message: text.slice(-1024), malformed: true };
}

function terminationOf(pod: Wire<V1Pod>): (Termination & { finishedAt: string }) | undefined {
  const status = pod.status?.containerStatuses?.find((c) => c.name === RUNTIME_CONTAINER);
  const t = status?.state?.terminated;
  if (!t) return undefined;
  return { ...parseTermination(t.exitCode, t.message), finishedAt: t.finishedAt ?? "" };
}

export function observeJob(job: Wire<V1Job>, pods: Wire<V1Pod>[]): JobObservation {
  const conditions = job.status?.conditions ?? [];
  const isTrue = (type: string) => conditions.find((c) => c.type === type && c.status === "True");
  const failedCondition = isTrue("Failed");
  const ended = pods
    .map(terminationOf)
    .filter((t): t is Termination & { finishedAt: string } => t !== undefined)
    .sort((a, b) =>
      (a.exitCode === 0) === (b.exitCode === 0)
        ? a.finishedAt.localeCompare(b.finishedAt)
        : a.exitCode === 0
          ? -1
          : 1,
    );
  const last = ended.at(-1);
  const { finishedAt: _finishedAt, ...termination } = last ?? { finishedAt: "" };
  return {
    name: job.metadata?.name ?? "",
    generation: Number(job.metadata?.annotations?.[ANNOTATIONS.generation] ?? 0),
    queue: job.metadata?.labels?.[LABELS.kueueQueue],
    suspended: job.spec?.suspend === true,
    suspendedMessage: isTrue("Suspended")?.message,
    complete: Boolean(isTrue("Complete")),
    failed: Boolean(failedCondition),
    failureReason: failedCondition?.reason,
    failureMessage: failedCondition?.message,
    active: job.status?.active ?? 0,
    failedPods: job.status?.failed ?? 0,
    createdAt: job.metadata?.creationTimestamp,
    pods: pods.length,
    unschedulable: pods
      .flatMap((p) => p.status?.conditions ?? [])
      .find((c) => c.type === "PodScheduled" && c.status === "False" && c.reason === "Unschedulable")
      ?.message,
    containerProblem: containerProblem(pods),
    startTime: job.status?.startTime,
    completionTime: job.status?.completionTime,
    termination: last ? (termination as Termination) : undefined,
  };
}

function containerProblem(pods: Wire<V1Pod>[]): ContainerProblem | undefined {
  for (const pod of pods) {
    if (pod.status?.phase !== "Pending" && pod.status?.phase !== undefined) continue;
    const waiting = pod.status?.containerStatuses?.find((c) => c.name === RUNTIME_CONTAINER)?.state?.waiting;
    if (waiting?.reason && STUCK_REASONS.has(waiting.reason)) {
      return { reason: waiting.reason, message: waiting.message ?? "", pod: pod.metadata?.name ?? "" };
    }
  }
  return undefined;
}
