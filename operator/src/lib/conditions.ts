// Pure helpers for Kubernetes-style status conditions (metav1.Condition semantics):
// lastTransitionTime moves only when status flips, observedGeneration records which spec the
// condition describes. Inputs are never mutated, so results can be deep-compared with the old status.

export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export type ConditionInput = Pick<Condition, "type" | "status" | "reason"> & { message?: string };

/** RFC 3339 with second precision, as metav1.Time serialises. */
export function formatTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/** Returns a new list with cond set; keeps lastTransitionTime unless its status changed. */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  cond: ConditionInput,
  generation: number | undefined,
  now: number,
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === cond.type);
  const old = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type: cond.type,
    status: cond.status,
    reason: cond.reason,
    message: cond.message ?? "",
    lastTransitionTime: old && old.status === cond.status ? old.lastTransitionTime : formatTime(now),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export function getCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === "True";
}

export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}
