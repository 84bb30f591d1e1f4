// Errors that keep a reconcile from progressing, made visible: a condition carrying the API
// server's own message (an apply refused with 422, a missing RBAC permission, an admission denial)
// and a Warning Event, besides the log line. Terminal errors (the object itself is invalid) fail the
// resource with their own reason until its spec changes.

import { realClock } from "../../lib/clock.ts";
import { type Condition, setCondition } from "../../lib/conditions.ts";
import type { ReconcileContext } from "../../lib/controller.ts";
import { apiMessage, isConflict, statusCode, type TerminalError } from "../../lib/errors.ts";
import { NotLeaderError } from "../../lib/fencedclient.ts";
import { redactString } from "../../lib/redact.ts";
import { ChildApplyError } from "./children.ts";
import type { DraftTrainingDeps } from "./controller.ts";
import { conditionsOf, ownedStatus, writeStatus } from "./status.ts";

export interface SyncFailure {
  reason: string;
  message: string;
}

/** What the user should read about an error, or undefined for routine ones (409 conflicts). */
export function describeFailure(err: unknown): SyncFailure | undefined {
  // Routine, or not this replica's to report: a lost optimistic lock, a replica that is not (or no
  // longer) the leader, a pass cut short by shutdown.
  if (isConflict(err) || err instanceof NotLeaderError || (err as Error)?.name === "AbortError")
    return undefined;
  const code = statusCode(err);
  // A ChildApplyError already says which child, with the server's message; others get the server's.
  const raw = err instanceof ChildApplyError ? err.message : apiMessage(err);
  const message = redactString(raw).slice(0, 2048);
  let reason = "ReconcileError";
  if (/denied (the )?request/.test(raw)) reason = "AdmissionDenied";
  else if (code === 422) reason = "Invalid";
  else if (code === 403) reason = "Forbidden";
  else if (code === 404) reason = "NotFound";
  else if (code === 429 || (code !== undefined && code >= 500)) reason = "APIUnavailable";
  return { reason, message };
}

/** Conditions saying the pass failed: Reconciled, Ready and Progressing False with the server's message. */
export function withFailure(
  conditions: Condition[],
  failure: SyncFailure,
  generation: number | undefined,
  now: number,
): Condition[] {
  let out = conditions;
  for (const type of ["Reconciled", "Ready", "Progressing"])
    out = setCondition(out, { type, status: "False", ...failure }, generation, now);
  return out;
}

/** Records a TerminalError: stage Failed, Ready and Succeeded False with the error's own reason. */
export function recordTerminalError(deps: Pick<DraftTrainingDeps, "client" | "drafts" | "events" | "clock">) {
  return async (err: TerminalError, ctx: ReconcileContext) => {
    const dt = deps.drafts.store.get(ctx.namespace, ctx.name);
    if (!dt) return;
    const now = (deps.clock ?? realClock).now();
    const generation = dt.metadata.generation;
    let conditions = conditionsOf(dt.status);
    for (const type of ["Ready", "Succeeded"]) {
      conditions = setCondition(
        conditions,
        { type, status: "False", reason: err.reason, message: err.message },
        generation,
        now,
      );
    }
    // observedGeneration marks this spec as handled: a new generation (a fixed spec) runs again.
    const status = {
      ...ownedStatus(dt.status),
      observedGeneration: generation,
      stage: "Failed" as const,
      conditions,
    };
    await writeStatus(deps, dt, status);
    deps.events.event(dt, "Warning", err.reason, err.message);
  };
}
