// The acceptance gate of a draft rollout: does the candidate draft, measured on the canary pods'
// own counters, hold up against the current draft measured on the stable pods over the same window?
// Pure. Measurements come from the project's one metrics parser (operator/src/autoscaler/signals.ts);
// the decision uses a one-sided confidence bound on the tau difference, so a measurement that
// wobbles around the threshold keeps the canary in analysis instead of flapping the rollout, and a
// decision once taken is final for that candidate (the reconciler records it in status).
import type { Signals } from "../../autoscaler/signals.ts";

export interface TauMeasurement {
  tau: number;
  /** Verification rounds in the window. */
  rounds: number;
  /** Standard error of tau. */
  standardError: number;
}

/**
 * Verification rounds in a window: counted by the engine where it counts them (vLLM's
 * spec_decode_num_drafts), else estimated: every round emits tau tokens on average, so rounds =
 * generated tokens / tau (SGLang exposes no round counter).
 */
export function verificationRounds(signals: Signals): number | undefined {
  if (signals.rounds !== undefined && signals.rounds !== null) return signals.rounds;
  const { tau, generationTokensPerSecond: gen, windowSeconds } = signals;
  if (tau === null || gen === null || !(tau > 0)) return undefined;
  return Math.floor((gen * windowSeconds) / tau);
}

/**
 * tau, rounds (verificationRounds) and its standard error from window signals.
 * Variance of the accepted length L per round: from the per-position acceptance when the engine
 * reports it (P(L >= j) = acceptance at position j-1, so E[L^2] = sum (2j-1) P(L >= j)); otherwise
 * the largest variance a length in [0, k] with that mean can have, mu (k - mu).
 */
export function measureTau(signals: Signals, k: number): TauMeasurement | undefined {
  const { tau } = signals;
  if (tau === null || !(tau > 0)) return undefined;
  const rounds = verificationRounds(signals) ?? 0;
  if (rounds <= 0) return undefined;
  const mean = tau - 1;
  let variance: number;
  const byPos = signals.acceptanceByPosition;
  if (byPos?.length) {
    let second = 0;
    byPos.forEach((p, i) => {
      second += (2 * (i + 1) - 1) * p;
    });
    variance = Math.max(0, second - mean * mean);
  } else {
    variance = Math.max(0, mean * (Math.max(k, byPos?.length ?? 0) - mean));
  }
  return { tau, rounds, standardError: Math.sqrt(variance / rounds) };
}

export interface GateSettings {
  maxTauDrop: number;
  minTau?: number;
  minRounds: number;
  confidence: number;
  analysisWindowMs: number;
}

export type GateDecision =
  | { verdict: "Analyzing"; reason: string; message: string }
  | { verdict: "Promote" | "RollBack"; reason: string; message: string };

/** z of a one-sided normal bound (Acklam-free: a bisection on erf is plenty for a few digits). */
export function zFor(confidence: number): number {
  let lo = 0;
  let hi = 10;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (normalCdf(mid) < confidence) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

function normalCdf(x: number): number {
  // Abramowitz-Stegun 7.1.26 for erf: absolute error below 1.5e-7.
  const t = 1 / (1 + 0.3275911 * (Math.abs(x) / Math.SQRT2));
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-(x * x) / 2);
  return x >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

const fmt = (x: number) => x.toFixed(3);

/**
 * The decision after elapsedMs of analysis. The analysis runs at least the window; undecided
 * after three windows (too little traffic, or a tau too close to the line), the candidate is
 * rolled back: the current draft keeps serving.
 */
/**
 * What every gate decides before it looks at the figures: keep analysing for the first window, then
 * wait for enough verification rounds on both sides, rolling back once three windows have passed.
 * Otherwise both sides, measured enough for the gate's own test.
 */
export function analysisPrelude<M extends { rounds: number }>(
  candidate: M | undefined,
  current: M | undefined,
  settings: GateSettings,
  elapsedMs: number,
): { waiting: GateDecision } | { candidate: M; current: M; expired: boolean } {
  if (elapsedMs < settings.analysisWindowMs) {
    return {
      waiting: { verdict: "Analyzing", reason: "Analyzing", message: "measuring for the analysis window" },
    };
  }
  if (
    !candidate ||
    !current ||
    candidate.rounds < settings.minRounds ||
    current.rounds < settings.minRounds
  ) {
    const message = `not enough verification rounds yet (candidate ${candidate?.rounds ?? 0}, current ${current?.rounds ?? 0}, need ${settings.minRounds} each)`;
    return {
      waiting: analysisExpired(settings, elapsedMs)
        ? { verdict: "RollBack", reason: "InsufficientTraffic", message }
        : { verdict: "Analyzing", reason: "WaitingForRounds", message },
    };
  }
  return { candidate, current, expired: analysisExpired(settings, elapsedMs) };
}

/** Undecided after three analysis windows: the gate rolls back. */
function analysisExpired(settings: GateSettings, elapsedMs: number): boolean {
  return elapsedMs >= 3 * settings.analysisWindowMs;
}

export function decideRollout(
  candidateMeasured: TauMeasurement | undefined,
  currentMeasured: TauMeasurement | undefined,
  settings: GateSettings,
  elapsedMs: number,
): GateDecision {
  const measured = analysisPrelude(candidateMeasured, currentMeasured, settings, elapsedMs);
  if ("waiting" in measured) return measured.waiting;
  const { candidate, current, expired } = measured;
  const z = zFor(settings.confidence);
  const allowed = 1 - settings.maxTauDrop;
  const threshold = current.tau * allowed;
  const diff = candidate.tau - threshold;
  const seDiff = Math.hypot(candidate.standardError, current.standardError * allowed);
  const figures =
    `candidate tau ${fmt(candidate.tau)} over ${candidate.rounds} rounds, current ${fmt(current.tau)} over ` +
    `${current.rounds} rounds, threshold ${fmt(threshold)} (maxTauDrop ${settings.maxTauDrop})`;
  const candidateLow = candidate.tau - z * candidate.standardError;
  const candidateHigh = candidate.tau + z * candidate.standardError;
  if (settings.minTau !== undefined && candidateHigh < settings.minTau) {
    return {
      verdict: "RollBack",
      reason: "BelowMinTau",
      message: `${figures}; below minTau ${settings.minTau}`,
    };
  }
  if (diff + z * seDiff < 0) return { verdict: "RollBack", reason: "TauDropped", message: figures };
  const minTauHolds = settings.minTau === undefined || candidateLow >= settings.minTau;
  if (diff - z * seDiff >= 0 && minTauHolds)
    return { verdict: "Promote", reason: "TauHeld", message: figures };
  return expired
    ? {
        verdict: "RollBack",
        reason: "Inconclusive",
        message: `${figures}; the bound did not clear in 3 windows`,
      }
    : {
        verdict: "Analyzing",
        reason: "WithinBound",
        message: `${figures}; the confidence bound has not cleared yet`,
      };
}
