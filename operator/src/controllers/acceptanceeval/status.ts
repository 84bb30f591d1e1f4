// The status this controller writes: only the fields and condition types it owns (server-side apply
// of the /status subresource with its field manager), compared with the cached status first so an
// unchanged status is not written.
import { updateStatus } from "../../lib/apply.ts";
import type { Condition } from "../../lib/conditions.ts";
import { dropUndefined } from "../../lib/objects.ts";
import {
  type AcceptanceEvalDeps,
  type AcceptanceEvalObject,
  AcceptanceEvals,
  FIELD_MANAGER,
} from "./controller.ts";
import type { AcceptanceEvalStatus } from "./decide.ts";

/** Condition types this controller sets; others on the object belong to someone else. */
export const OWNED_CONDITIONS = new Set([
  "DraftReady",
  "Succeeded",
  "Passed",
  "ResultComplete",
  "PodsScheduled",
  "ContainersStarted",
  "Reconciled",
]);

export function ownedStatus(status: AcceptanceEvalStatus | undefined): AcceptanceEvalStatus {
  const s = status ?? {};
  return dropUndefined({
    ...s,
    conditions: s.conditions?.filter((c) => OWNED_CONDITIONS.has(c.type)),
  });
}

export const conditionsOf = (status: AcceptanceEvalStatus | undefined): Condition[] =>
  (status?.conditions ?? []) as Condition[];

/** Writes the owned part of status when it differs from the cached one. */
export async function writeStatus(
  deps: Pick<AcceptanceEvalDeps, "client" | "evals">,
  raw: AcceptanceEvalObject,
  status: AcceptanceEvalStatus,
): Promise<AcceptanceEvalObject | undefined> {
  const current = { ...raw, status: ownedStatus(raw.status) };
  const written = await updateStatus(deps.client, AcceptanceEvals, current, ownedStatus(status), {
    fieldManager: FIELD_MANAGER,
  });
  if (written) deps.evals.recordWrite(raw, written);
  return written;
}
