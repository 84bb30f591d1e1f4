// Acceptance drift: the baseline is the live tau over drift.baselineWindow after the current draft
// was promoted (a benchmark tau is not the production mix). Live tau below the baseline by more than
// drift.tolerance for a whole window, or below slo.minTau for a whole window, is unhealthy.
export interface DriftPolicy {
  enabled: boolean;
  baselineWindowSeconds: number;
  tolerance: number;
  /** How long the live tau must stay low before it counts. */
  windowSeconds: number;
  minTau?: number;
}

export interface DriftState {
  /** When the current draft was promoted (unix seconds). */
  promotedAt: number;
  baselineTauSeconds: number;
  baselineSeconds: number;
  lastTime?: number;
  lowSince?: number;
}

export interface DriftVerdict {
  healthy: boolean;
  reason: "Healthy" | "BaselinePending" | "AcceptanceDrift" | "BelowMinTau" | "NoAcceptanceData" | "Disabled";
  message: string;
  liveTau: number | null;
  baselineTau: number | null;
  /** Relative drop from the baseline (0.2 = 20% lower). */
  drop: number | null;
}

export const driftStateAt = (promotedAt: number): DriftState => ({
  promotedAt,
  baselineTauSeconds: 0,
  baselineSeconds: 0,
});

export function assessDrift(
  policy: DriftPolicy,
  state: DriftState,
  now: number,
  liveTau: number | null,
): { verdict: DriftVerdict; state: DriftState } {
  const next = { ...state, lastTime: now };
  const base = state.baselineSeconds > 0 ? state.baselineTauSeconds / state.baselineSeconds : null;
  const verdict = (
    healthy: boolean,
    reason: DriftVerdict["reason"],
    message: string,
    baselineTau = base,
  ) => ({
    healthy,
    reason,
    message,
    liveTau,
    baselineTau,
    drop: baselineTau && liveTau !== null ? Number((1 - liveTau / baselineTau).toFixed(4)) : null,
  });
  if (!policy.enabled) return { verdict: verdict(true, "Disabled", "drift detection is off"), state: next };
  if (liveTau === null)
    return { verdict: verdict(true, "NoAcceptanceData", "no tau measured in the window"), state: next };
  // The baseline accumulates over the first baselineWindow after promotion, time-weighted.
  const inBaseline = now - state.promotedAt <= policy.baselineWindowSeconds;
  if (inBaseline && state.lastTime !== undefined) {
    const dt = now - state.lastTime;
    next.baselineTauSeconds += liveTau * dt;
    next.baselineSeconds += dt;
  }
  const baseline = next.baselineSeconds > 0 ? next.baselineTauSeconds / next.baselineSeconds : null;
  const belowMin = policy.minTau !== undefined && liveTau < policy.minTau;
  const drifted = !inBaseline && baseline !== null && liveTau < baseline * (1 - policy.tolerance);
  if (belowMin || drifted) next.lowSince = state.lowSince ?? now;
  else delete next.lowSince;
  const lowFor = next.lowSince === undefined ? 0 : now - next.lowSince;
  const fmt = (v: number) => v.toFixed(2);
  if (lowFor >= policy.windowSeconds && belowMin)
    return {
      verdict: verdict(
        false,
        "BelowMinTau",
        `live tau ${fmt(liveTau)} below slo.minTau ${policy.minTau} for ${lowFor}s`,
        baseline,
      ),
      state: next,
    };
  if (lowFor >= policy.windowSeconds && drifted && baseline !== null)
    return {
      verdict: verdict(
        false,
        "AcceptanceDrift",
        `live tau ${fmt(liveTau)} is ${((1 - liveTau / baseline) * 100).toFixed(0)}% below the baseline ${fmt(baseline)} (tolerance ${(policy.tolerance * 100).toFixed(0)}%) for ${lowFor}s`,
        baseline,
      ),
      state: next,
    };
  if (inBaseline)
    return {
      verdict: verdict(true, "BaselinePending", "measuring the baseline after promotion", baseline),
      state: next,
    };
  return {
    verdict: verdict(true, "Healthy", `live tau ${fmt(liveTau)}, baseline ${fmt(baseline ?? 0)}`, baseline),
    state: next,
  };
}
