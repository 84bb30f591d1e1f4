// Which draft the stable pods serve and whether a canary tries a new one. A changed draft (a new
// source, or the referenced DraftTraining's new checkpoint) starts a canary Deployment beside the
// stable one, behind the same Service; the gate (gate.ts) decides on measured tau; a promoted
// candidate becomes the stable draft, a rolled-back one is not tried again until the draft changes.
// Pure: the state lives in status.rollout, so a restarted operator neither loses nor doubles a canary.
import type { z } from "zod";
import type { SpecServe } from "../../api/kinds.ts";
import type { specServeStatus } from "../../api/specserve.ts";
import type { GateDecision, TauMeasurement } from "./gate.ts";
import { ANNOTATIONS, type DraftPlan } from "./plan.ts";

export type RolloutStatus = NonNullable<z.infer<typeof specServeStatus>["rollout"]>;
export type ReadyDraft = Extract<DraftPlan, { state: "ready" }>;

export interface RolloutPlan {
  stable: ReadyDraft;
  canary?: ReadyDraft;
  rollout: RolloutStatus;
}

export const BUILT_IN = "built-in";

/** The draft a status entry names, as a source the serve Task can carry. */
export function draftFromDisplay(ss: SpecServe, display: string): ReadyDraft {
  if (display === BUILT_IN) return { state: "ready", display };
  const credentials = ss.spec.draft.source?.credentialsSecretRef;
  return {
    state: "ready",
    display,
    source: { uri: display, ...(credentials ? { credentialsSecretRef: credentials } : {}) },
  };
}

export function planRollout(
  ss: SpecServe,
  resolved: ReadyDraft,
  previous: RolloutStatus | undefined,
  opts: { hasServer: boolean; now: string },
): RolloutPlan {
  const current = previous?.currentDraft;
  const ungated = ungatedReason(ss);
  const direct = !opts.hasServer || !current || ungated !== undefined;
  if (direct || current === resolved.display) {
    // First server, a pinned draft, a multi-node replica (rolled directly), or nothing changed.
    const keep = previous && current === resolved.display ? previous : undefined;
    const rollout: RolloutStatus = keep ?? { state: "Stable", currentDraft: resolved.display };
    // Say, always, why a new draft would skip the gate: never a silent no-op.
    return { stable: resolved, rollout: ungated ? { ...rollout, message: ungated } : rollout };
  }
  const stable = draftFromDisplay(ss, current);
  if (previous?.candidateDraft === resolved.display && previous.state === "RolledBack") {
    return { stable, rollout: previous };
  }
  if (previous?.candidateDraft === resolved.display && previous.state === "Canary") {
    return { stable, canary: resolved, rollout: previous };
  }
  return {
    stable,
    canary: resolved,
    rollout: {
      state: "Canary",
      currentDraft: current,
      candidateDraft: resolved.display,
      startTime: opts.now,
      message: "measuring the candidate's tau against the current draft's",
    },
  };
}

/** Why a new draft of this SpecServe rolls directly, without a canary; undefined when it is gated. */
export function ungatedReason(ss: SpecServe): string | undefined {
  const pinned = ss.metadata.annotations?.[ANNOTATIONS.pinnedDraft];
  if (pinned !== undefined)
    return `draft pinned by ${ANNOTATIONS.pinnedDraft}: a new draft is served directly, without a canary`;
  if (ss.spec.resources.nodesPerReplica > 1)
    return "canary rollouts are not supported for multi-node replicas (LeaderWorkerSet): a new draft rolls directly, without the acceptance gate";
  return undefined;
}

const round = (x: number) => Math.round(x * 1e4) / 1e4;

/** The plan after the gate's verdict: promoted, rolled back, or still measuring. */
export function applyVerdict(
  plan: RolloutPlan,
  decision: GateDecision,
  candidate: TauMeasurement | undefined,
  current: TauMeasurement | undefined,
): RolloutPlan {
  if (!plan.canary) return plan;
  const figures = {
    candidateTau: candidate ? round(candidate.tau) : undefined,
    currentTau: current ? round(current.tau) : undefined,
    candidateRounds: candidate?.rounds,
    currentRounds: current?.rounds,
  };
  const base = Object.fromEntries(
    Object.entries({ ...plan.rollout, ...figures }).filter(([, v]) => v !== undefined),
  ) as RolloutStatus;
  if (decision.verdict === "Analyzing") {
    return { ...plan, rollout: { ...base, message: `${decision.reason}: ${decision.message}` } };
  }
  if (decision.verdict === "Promote") {
    return {
      stable: plan.canary,
      rollout: { ...base, state: "Promoted", currentDraft: plan.canary.display, message: decision.message },
    };
  }
  return {
    stable: plan.stable,
    rollout: { ...base, state: "RolledBack", message: `${decision.reason}: ${decision.message}` },
  };
}
