// Why the current stage's pods do not run when they should: not scheduled, no pod at all, a
// container the kubelet cannot start (a missing Secret, an image), or a Job Kueue has not admitted.
// Pure: the reasons and messages for conditions and Events.
import type { JobObservation } from "./observe.ts";

/** A Job that started no pod for this long is stuck (quota, admission, missing PriorityClass...). */
export const POD_START_GRACE_MS = 60_000;

/** Why the current stage's pods are not running, when they should be by now. */
export function podsNotStarting(job: JobObservation | undefined, now: number) {
  if (!job || job.complete || job.failed || job.suspended) return undefined;
  if (job.unschedulable) {
    return {
      reason: "Unschedulable",
      message: `pods of Job ${job.name} cannot be scheduled: ${job.unschedulable}`,
    };
  }
  const age = job.createdAt ? now - Date.parse(job.createdAt) : 0;
  if (job.pods === 0 && job.failedPods === 0 && age > POD_START_GRACE_MS) {
    return {
      reason: "NoPods",
      message: `Job ${job.name} has created no pod for over ${POD_START_GRACE_MS / 1000}s; \`kubectl describe job ${job.name}\` shows why (quota, admission, PriorityClass)`,
    };
  }
  return undefined;
}

/** The kubelet's own words on why a pod's container does not start (a missing Secret, an image). */
export function containersNotStarting(job: JobObservation | undefined) {
  const p = job?.containerProblem;
  if (!job || !p || job.complete || job.failed) return undefined;
  // The kubelet names the Secret: `secret "hf-token" not found`, `couldn't find key K in Secret ns/name`.
  const secret = /secrets? "[^"]+" not found|in Secret /.test(p.message);
  return {
    reason: secret ? "SecretMissing" : p.reason,
    message: `pod ${p.pod} of Job ${job.name} cannot start (${p.reason}): ${p.message}`,
  };
}

/** Kueue's decision on the current stage's Job, read from its suspension. */
export function kueueAdmission(job: JobObservation | undefined, queue: string) {
  if (!job || job.complete || job.failed) return undefined;
  if (job.suspended)
    return {
      status: "False" as const,
      reason: "WaitingForQuota",
      message: `Job ${job.name} waits for quota in Kueue queue ${queue}${job.suspendedMessage ? ` (${job.suspendedMessage})` : ""}`,
    };
  return {
    status: "True" as const,
    reason: "Admitted",
    message: `Job ${job.name} admitted by Kueue (queue ${queue})`,
  };
}
