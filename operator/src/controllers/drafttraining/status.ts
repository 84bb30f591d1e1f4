// The status this controller writes: only the fields and condition types it owns (server-side apply
// of the /status subresource with its field manager, so a condition another writer sets stays that
// writer's), compared with the cached status first so an unchanged status is not written.

import { updateStatus } from "../../lib/apply.ts";
import type { Condition } from "../../lib/conditions.ts";
import { dropUndefined } from "../../lib/objects.ts";
import {
  type DraftTrainingDeps,
  type DraftTrainingObject,
  DraftTrainings,
  FIELD_MANAGER,
} from "./controller.ts";
import type { DraftTrainingStatus } from "./pipeline.ts";

/** Condition types this controller sets; others on the object belong to someone else. */
export const OWNED_CONDITIONS = new Set([
  "Ready",
  "Succeeded",
  "Progressing",
  "PodsScheduled",
  "ContainersStarted",
  "ProgressAvailable",
  "Admitted",
  "Reconciled",
]);

export function ownedStatus(status: DraftTrainingStatus | undefined): DraftTrainingStatus {
  const s = status ?? {};
  return dropUndefined({
    observedGeneration: s.observedGeneration,
    conditions: s.conditions?.filter((c) => OWNED_CONDITIONS.has(c.type)),
    stage: s.stage,
    stages: s.stages,
    progress: s.progress,
    checkpoint: s.checkpoint,
    evaluation: s.evaluation,
  });
}

export const conditionsOf = (status: DraftTrainingStatus | undefined): Condition[] =>
  (status?.conditions ?? []) as Condition[];

/** Writes the owned part of status when it differs from the cached one; true when it wrote. */
export async function writeStatus(
  deps: Pick<DraftTrainingDeps, "client" | "drafts">,
  dt: DraftTrainingObject,
  status: DraftTrainingStatus,
): Promise<boolean> {
  const current = { ...dt, status: ownedStatus(dt.status) };
  const written = await updateStatus(deps.client, DraftTrainings, current, ownedStatus(status), {
    fieldManager: FIELD_MANAGER,
  });
  if (written) deps.drafts.recordWrite(dt, written);
  return written !== undefined;
}
