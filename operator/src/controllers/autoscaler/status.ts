// The status fields the autoscaler owns on a SpecServe, beside the SpecServe controller's: status.
// autoscaling (the last decision and its figures), status.decisions (the last few, newest first) and
// the ScalingActive (as an HPA's: False while it holds for want of metrics) and AcceptanceHealthy
// conditions; MetricsAvailable belongs to the SpecServe controller (status.signals). Applied under the autoscaler's own field
// manager and only on change, compared on exactly these fields. Pure.
import type { SpecServe } from "../../api/kinds.ts";
import { type Condition, type ConditionStatus, setCondition } from "../../lib/conditions.ts";

type Status = NonNullable<SpecServe["status"]>;
export type AutoscalerStatus = NonNullable<Status["autoscaling"]>;
export type Decision = NonNullable<Status["decisions"]>[number];

export const CONDITION_TYPES = ["ScalingActive", "AcceptanceHealthy"] as const;

export interface OwnedStatus {
  autoscaling: AutoscalerStatus;
  decisions?: Decision[];
  conditions: Condition[];
}

interface ConditionFacts {
  status: ConditionStatus;
  reason: string;
  message: string;
}

/** The owned fields as they are now on the object (for the on-change comparison). */
export function currentOwned(status: SpecServe["status"]): Partial<OwnedStatus> {
  const conditions = ((status?.conditions ?? []) as Condition[]).filter((c) =>
    (CONDITION_TYPES as readonly string[]).includes(c.type),
  );
  return {
    ...(status?.autoscaling ? { autoscaling: status.autoscaling } : {}),
    ...(status?.decisions ? { decisions: status.decisions } : {}),
    conditions,
  };
}

export function ownedStatus(
  ss: SpecServe,
  o: {
    nowMs: number;
    autoscaling: AutoscalerStatus;
    decisions?: Decision[];
    scaling: ConditionFacts;
    acceptance: ConditionFacts;
  },
): OwnedStatus {
  let conditions = currentOwned(ss.status).conditions ?? [];
  const generation = ss.metadata.generation;
  conditions = setCondition(conditions, { type: "ScalingActive", ...o.scaling }, generation, o.nowMs);
  conditions = setCondition(conditions, { type: "AcceptanceHealthy", ...o.acceptance }, generation, o.nowMs);
  // Fields left undefined are not sent (and so not compared).
  const autoscaling = Object.fromEntries(
    Object.entries(o.autoscaling).filter(([, v]) => v !== undefined),
  ) as AutoscalerStatus;
  return { autoscaling, ...(o.decisions?.length ? { decisions: o.decisions } : {}), conditions };
}

/** Before the first full window: nothing decided yet, the metrics being measured. */
export function measuringStatus(ss: SpecServe, nowMs: number, message: string): OwnedStatus {
  const previous = ss.status?.autoscaling;
  return ownedStatus(ss, {
    nowMs,
    autoscaling: {
      ...(previous ?? {}),
      reason: "Measuring",
      message,
    },
    decisions: ss.status?.decisions,
    scaling: { status: "Unknown", reason: "Measuring", message },
    acceptance: previousOr(ss, "AcceptanceHealthy", {
      status: "Unknown",
      reason: "Measuring",
      message: "no window measured yet",
    }),
  });
}

/** Autoscaling off: spec.replicas is honoured exactly; the autoscaler only says so. */
export function disabledStatus(ss: SpecServe, nowMs: number): OwnedStatus {
  const message = "autoscaling is off: spec.replicas (or kubectl scale) is honoured exactly";
  return ownedStatus(ss, {
    nowMs,
    autoscaling: { reason: "Disabled", message },
    decisions: ss.status?.decisions,
    scaling: { status: "False", reason: "AutoscalingDisabled", message },
    acceptance: { status: "Unknown", reason: "AutoscalingDisabled", message },
  });
}

function previousOr(ss: SpecServe, type: string, fallback: ConditionFacts): ConditionFacts {
  const c = (ss.status?.conditions as Condition[] | undefined)?.find((x) => x.type === type);
  return c ? { status: c.status, reason: c.reason, message: c.message } : fallback;
}

/**
 * A SpecServe status without the fields the autoscaler owns: what the SpecServe controller applies
 * under its own field manager, so that a status it read a moment earlier never puts back an older
 * decision or condition of the autoscaler's (server-side apply keeps the autoscaler's fields).
 */
export function withoutAutoscalerFields<S extends SpecServe["status"]>(status: S): S {
  if (!status) return status;
  const { autoscaling: _a, decisions: _d, ...rest } = status;
  const conditions = (status.conditions as Condition[] | undefined)?.filter(
    (c) => !(CONDITION_TYPES as readonly string[]).includes(c.type),
  );
  return { ...rest, ...(conditions ? { conditions } : {}) } as S;
}
