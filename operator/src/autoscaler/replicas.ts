// The replica decision: desired replicas from the measured signals, the capacity model and the
// SLOs, then the safety rails (hold on missing data, tolerance, stabilisation, rate limits, min/max).
// Pure: state in, state out; every decision carries the figures that drove it.
import {
  type Correction,
  maxConcurrency,
  operatingPoint,
  type ReplicaShape,
  type Slo,
  type Workload,
} from "./capacity.ts";
import type { Signals } from "./signals.ts";
import type { SpsFunction } from "./sps.ts";

export interface ReplicaPolicy {
  minReplicas: number;
  maxReplicas: number;
  /** Relative change ignored as noise. */
  tolerance: number;
  scaleUpStabilizationSeconds: number;
  scaleDownStabilizationSeconds: number;
  maxScaleUpPerMinute: number;
  maxScaleDownPerMinute: number;
  /** Spare capacity kept above the demand (0.1 = 10%). */
  headroom: number;
  /** Waiting requests count as this much extra arrival rate: waiting / backlogDrainSeconds. */
  backlogDrainSeconds: number;
  /** A falling tau or a rising load is projected this far ahead (about a cold start), so new pods are ready in time. */
  tauLookaheadSeconds: number;
  /** Signals older than this are stale. */
  staleAfterSeconds: number;
  slo: Slo;
  shape: ReplicaShape;
  /** Draft length the engines run. */
  numSpeculativeTokens: number;
  /** Prompt/output means used until the signals tell them. */
  defaultWorkload: Workload;
  /**
   * A rising load's projection one lookahead ahead adds at most this share of the measured rate
   * (a step in load is not a trend to extrapolate over a cold start). Default 0.5.
   */
  maxProjectedGrowth?: number;
  /** No scale-down within this many seconds of the last scale event (either way). Default 0. */
  scaleDownIntervalSeconds?: number;
}

export interface FleetObservation {
  /** Unix seconds. */
  now: number;
  signals: Signals | null;
  /** When the later scrape of the window was taken. */
  signalsTime: number | null;
  /** spec.replicas now: every pod asked for, starting ones included (capacity on the way). */
  currentReplicas: number;
  readyReplicas: number;
  /** Ready pods whose scrape succeeded in both ends of the window. */
  scrapedReplicas: number;
}

export interface AutoscalerState {
  /**
   * `need`: the fractional replicas the demand asked for (tolerance compares it, not the rounded
   * count). `steady`: the need at the smoothed measured rate, without the projection of a rising
   * load: what scale-downs are judged by (a projection of one window's noise over a cold start
   * would hold replicas that no load asked for). A recommendation raised by a measured breach
   * counts at its own value there: the breach is no projection, and letting its replica go the
   * moment it ends would invite the breach back.
   */
  recommendations: { time: number; replicas: number; need?: number; steady?: number }[];
  scaleEvents: { time: number; from: number; to: number }[];
  correction: Correction;
  /** Running + waiting at the previous decision, to estimate arrivals. */
  lastQueue?: { time: number; requests: number };
  /** Smoothed tau and its slope (per second), to act on a falling tau before latency breaks. */
  tauTrend?: { time: number; tau: number; slope: number };
  /** Smoothed arrival rate and its slope (per second), to start pods ahead of a rising load. */
  rateTrend?: { time: number; rate: number; slope: number };
  /** First decision: no scale-down before a full down-stabilisation window of recommendations. */
  startedAt?: number;
  /** Smoothed running requests (a single scrape of the gauge is noisy). */
  running?: number;
  /** A queue stood at the previous decision: that window's latency and running say nothing of capacity. */
  queued?: boolean;
}

export const initialState = (): AutoscalerState => ({
  recommendations: [],
  scaleEvents: [],
  correction: { tpot: 1.25, ttft: 1.5 },
});

export type DecisionReason =
  | "MetricsMissing"
  | "MetricsStale"
  | "TooFewPodsScraped"
  | "ScaleUp"
  | "ScaleDown"
  | "WithinTolerance"
  | "Stabilizing"
  | "RateLimited"
  | "AtLimit"
  | "Steady"
  | "NoCapacityAtSlo";

export interface ReplicaDecision {
  desiredReplicas: number;
  currentReplicas: number;
  reason: DecisionReason;
  message: string;
  metricsAvailable: boolean;
  figures: {
    tau?: number;
    /** Tau the capacity was computed for: the measured one, or lower when it is falling. */
    projectedTau?: number;
    arrivalRate?: number;
    concurrency?: number;
    maxConcurrencyPerReplica?: number;
    requestsPerSecondPerReplica?: number;
    predictedTokensPerSecondPerUser?: number;
    measuredTokensPerSecondPerUser?: number;
    measuredTpotP95?: number;
    measuredTtftP95?: number;
    correction?: Correction;
    recommendation?: number;
  };
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const round = (v: number, digits = 3) => Number(v.toFixed(digits));

function hold(obs: FleetObservation, reason: DecisionReason, message: string): ReplicaDecision {
  return {
    desiredReplicas: obs.currentReplicas,
    currentReplicas: obs.currentReplicas,
    reason,
    message,
    metricsAvailable: false,
    figures: {},
  };
}

/** Updates the p95/mean correction from what the replicas measured at their current load. */
function corrected(
  prev: Correction,
  sps: SpsFunction,
  s: Signals,
  perReplica: number,
  tau: number,
  policy: ReplicaPolicy,
  work: Workload,
): Correction {
  if (perReplica < 1) return prev;
  const p = operatingPoint(sps, perReplica, tau, policy.numSpeculativeTokens, work, policy.shape);
  // Only a measurement near its SLO says something about the tail there (histogram buckets are
  // coarse far below it, and the tail ratio changes with load).
  // A p95 the histogram does not resolve (in the first bucket, interpolated from zero, or in a bucket
  // wider than a factor 2) is a bound, not a measurement: it would teach a ratio of bucket edges.
  const resolved = (bucket: [number, number] | null | undefined) =>
    bucket === undefined || (bucket !== null && bucket[0] > 0 && bucket[1] <= 2 * bucket[0]);
  const blend = (
    old: number,
    measured: number | null,
    bucket: [number, number] | null | undefined,
    predicted: number,
    target: number | undefined,
    lo: number,
    hi: number,
  ) =>
    measured === null ||
    !resolved(bucket) ||
    !(predicted > 0) ||
    target === undefined ||
    measured < 0.5 * target
      ? old
      : 0.7 * old + 0.3 * clamp(measured / predicted, lo, hi);
  return {
    tpot: blend(prev.tpot, s.tpotP95, s.tpotP95Bucket, p.tpotP95, policy.slo.tpotP95, 0.8, 2.5),
    ttft: blend(prev.ttft, s.ttftP95, s.ttftP95Bucket, p.ttftP95, policy.slo.ttftP95, 0.5, 4),
  };
}

export function decideReplicas(
  policy: ReplicaPolicy,
  sps: SpsFunction,
  obs: FleetObservation,
  state: AutoscalerState,
): { decision: ReplicaDecision; state: AutoscalerState } {
  const s = obs.signals;
  if (!s || s.running === null || s.waiting === null)
    return {
      decision: hold(obs, "MetricsMissing", "no running/waiting figures from any pod; holding"),
      state,
    };
  if (obs.signalsTime === null || obs.now - obs.signalsTime > policy.staleAfterSeconds)
    return {
      decision: hold(
        obs,
        "MetricsStale",
        `newest signals are older than ${policy.staleAfterSeconds}s; holding`,
      ),
      state,
    };
  if (obs.readyReplicas > 0 && obs.scrapedReplicas < Math.ceil(obs.readyReplicas / 2))
    return {
      decision: hold(
        obs,
        "TooFewPodsScraped",
        `${obs.scrapedReplicas} of ${obs.readyReplicas} ready pods scraped; holding`,
      ),
      state,
    };

  // Pods that failed to scrape carry load too: scale the sums up to every ready pod. The sums cover
  // every pod scraped at the window's end (a pod that just became ready included), so a pod not yet
  // in both scrapes does not inflate them.
  const scraped = Math.max(obs.scrapedReplicas, s.pods.scraped);
  const coverage = scraped > 0 ? Math.max(1, obs.readyReplicas / scraped) : 1;
  const queue = (s.running + s.waiting) * coverage;
  const k = policy.numSpeculativeTokens;
  const measuredTau = s.tau ?? 1;
  // Tau trend: smoothed slope; a falling tau is projected one lookahead ahead (never a rising one).
  const prevTrend = state.tauTrend;
  const dtTrend = prevTrend ? obs.now - prevTrend.time : 0;
  const slope =
    prevTrend && dtTrend > 0 ? 0.5 * prevTrend.slope + 0.5 * ((measuredTau - prevTrend.tau) / dtTrend) : 0;
  const tau = Math.max(1, measuredTau + Math.min(0, slope) * policy.tauLookaheadSeconds);
  const work: Workload = {
    promptTokens:
      s.promptTokensPerSecond && s.requestsPerSecond
        ? s.promptTokensPerSecond / s.requestsPerSecond
        : policy.defaultWorkload.promptTokens,
    outputTokens:
      s.generationTokensPerSecond && s.requestsPerSecond
        ? s.generationTokensPerSecond / s.requestsPerSecond
        : policy.defaultWorkload.outputTokens,
  };
  const completions = (s.requestsPerSecond ?? 0) * coverage;
  const growth = state.lastQueue
    ? (queue - state.lastQueue.requests) / Math.max(1, obs.now - state.lastQueue.time)
    : 0;
  const measuredRate = Math.max(0, completions + growth);
  const prevRate = state.rateTrend;
  const smoothedRate = prevRate ? 0.5 * prevRate.rate + 0.5 * measuredRate : measuredRate;
  const dtRate = prevRate ? obs.now - prevRate.time : 0;
  const rateSlope =
    prevRate && dtRate > 0 ? 0.7 * prevRate.slope + 0.3 * ((smoothedRate - prevRate.rate) / dtRate) : 0;
  // Plan for the load one lookahead ahead when it is rising (by at most maxProjectedGrowth); never
  // below what arrives now.
  const projected = Math.min(
    smoothedRate + Math.max(0, rateSlope) * policy.tauLookaheadSeconds,
    measuredRate * (1 + (policy.maxProjectedGrowth ?? 0.5)),
  );
  const arrivalRate = Math.max(measuredRate, projected);
  // The running gauge is one instant per pod: smooth it over decisions.
  // A queue makes latency a matter of waiting, not of the tail at this concurrency, and fills every
  // batch: learn no correction and smooth no running figure over a window that held one (a queue
  // just drained leaves its full batches in the average, which called for twice the replicas).
  const queued = s.waiting * coverage > Math.max(1, obs.readyReplicas);
  const running =
    state.running === undefined || state.queued ? s.running : 0.5 * state.running + 0.5 * s.running;
  const perReplicaNow = obs.readyReplicas > 0 ? (s.running * coverage) / obs.readyReplicas : 0;
  const correction =
    queued || state.queued
      ? state.correction
      : corrected(state.correction, sps, s, perReplicaNow, tau, policy, work);

  const best = maxConcurrency(sps, tau, k, work, policy.shape, policy.slo, correction);
  const next: AutoscalerState = {
    ...state,
    correction,
    lastQueue: { time: obs.now, requests: queue },
    tauTrend: { time: obs.now, tau: measuredTau, slope },
    rateTrend: { time: obs.now, rate: smoothedRate, slope: rateSlope },
    startedAt: state.startedAt ?? obs.now,
    running,
    queued,
  };
  const figures: ReplicaDecision["figures"] = {
    tau: round(measuredTau),
    projectedTau: round(tau),
    arrivalRate: round(arrivalRate),
    concurrency: round(queue),
    measuredTokensPerSecondPerUser: s.tokensPerSecondPerUser ?? undefined,
    measuredTpotP95: s.tpotP95 ?? undefined,
    measuredTtftP95: s.ttftP95 ?? undefined,
    correction: { tpot: round(correction.tpot), ttft: round(correction.ttft) },
  };
  let raw: number;
  let need: number;
  let steady: number;
  let reasonNote: string;
  if (!best) {
    // Even one request per replica misses an SLO: the model cannot help; add capacity while queues grow.
    raw = s.waiting > 0 ? obs.currentReplicas + 1 : obs.currentReplicas;
    need = raw;
    steady = raw;
    reasonNote = "no concurrency meets the SLOs at this tau";
  } else {
    figures.maxConcurrencyPerReplica = best.requests;
    figures.requestsPerSecondPerReplica = round(best.requestsPerSecond);
    figures.predictedTokensPerSecondPerUser = round(best.tokensPerSecondPerUser);
    // Waiting requests are demand to drain within backlogDrainSeconds, on top of the arrivals; the
    // running ones must fit at the highest concurrency that keeps the SLOs. A backlog stays queued on
    // the pods that hold it: new pods drain it only by taking all new arrivals off them, so it calls
    // for at most as many replicas again as are ready, and for none while pods asked for are still
    // starting (they are the answer to it; the backlog counts again once they serve).
    const backlog = (s.waiting * coverage) / policy.backlogDrainSeconds;
    const byArrivals = (arrivalRate * (1 + policy.headroom)) / best.requestsPerSecond;
    const bySmoothedArrivals = (smoothedRate * (1 + policy.headroom)) / best.requestsPerSecond;
    const byBacklog =
      obs.readyReplicas < obs.currentReplicas
        ? 0
        : Math.min(
            (backlog * (1 + policy.headroom)) / best.requestsPerSecond,
            Math.max(1, obs.readyReplicas),
          );
    // With a queue, every batch is full because of the queue: running then says nothing about demand.
    const byConcurrency = queued ? 0 : (running * coverage * (1 + policy.headroom)) / best.requests;
    need = Math.max(byArrivals + byBacklog, byConcurrency);
    steady = Math.max(bySmoothedArrivals + byBacklog, byConcurrency);
    raw = Math.ceil(need - 1e-9);
    reasonNote = `demand ${round(arrivalRate, 2)} req/s, ${round(queue, 1)} in flight; a replica keeps the SLOs up to ${best.requests} requests (${round(best.requestsPerSecond, 2)} req/s) at tau ${round(tau, 2)}`;
  }
  // Measured breach: at least one more replica, whatever the model says.
  const breach =
    (policy.slo.tpotP95 !== undefined && s.tpotP95 !== null && s.tpotP95 > policy.slo.tpotP95) ||
    (policy.slo.ttftP95 !== undefined && s.ttftP95 !== null && s.ttftP95 > policy.slo.ttftP95);
  const raisedByBreach = breach && raw <= obs.currentReplicas && obs.readyReplicas >= obs.currentReplicas;
  if (raisedByBreach) raw = obs.currentReplicas + 1;
  const recommendation = clamp(raw, policy.minReplicas, policy.maxReplicas);
  figures.recommendation = recommendation;
  next.recommendations = [
    ...state.recommendations.filter(
      (r) =>
        obs.now - r.time < Math.max(policy.scaleDownStabilizationSeconds, policy.scaleUpStabilizationSeconds),
    ),
    // The need is not raised to minReplicas here: the floor below adds the tolerance first and then
    // the minimum, or a fleet at its minimum's need could never come down to the minimum.
    {
      time: obs.now,
      replicas: recommendation,
      need: clamp(need, 0, policy.maxReplicas),
      steady: clamp(raisedByBreach ? raw : Math.min(need, steady), 0, policy.maxReplicas),
    },
  ];
  const current = obs.currentReplicas;
  const decision = (desired: number, reason: DecisionReason, message: string): ReplicaDecision => ({
    desiredReplicas: desired,
    currentReplicas: current,
    reason,
    message,
    metricsAvailable: true,
    figures,
  });
  const within = (seconds: number) => next.recommendations.filter((r) => obs.now - r.time <= seconds);

  // Tolerance compares the fractional need with the current count (as HPA compares its metric
  // ratio), so a need of 2.05 replicas does not turn 2 into 3; a measured breach overrides it.
  if (recommendation > current) {
    if (
      (breach ? raw : need) <= Math.max(1, current) * (1 + policy.tolerance) &&
      !breach &&
      current >= policy.minReplicas
    )
      return { decision: decision(current, "WithinTolerance", reasonNote), state: next };
    // Fast up: the lowest recommendation of the (short) up window.
    const stable = Math.min(...within(policy.scaleUpStabilizationSeconds).map((r) => r.replicas));
    if (stable <= current) return { decision: decision(current, "Stabilizing", reasonNote), state: next };
    const added = next.scaleEvents
      .filter((e) => obs.now - e.time < 60 && e.to > e.from)
      .reduce((a, e) => a + e.to - e.from, 0);
    const allowed = Math.max(0, policy.maxScaleUpPerMinute - added);
    const target = Math.min(stable, current + allowed);
    if (target <= current) return { decision: decision(current, "RateLimited", reasonNote), state: next };
    next.scaleEvents = [
      ...next.scaleEvents.filter((e) => obs.now - e.time < 600),
      { time: obs.now, from: current, to: target },
    ];
    return {
      decision: decision(target, target < stable ? "RateLimited" : "ScaleUp", reasonNote),
      state: next,
    };
  }
  // (Here the recommendation is at most the current count.) A projection's noise alone does not
  // keep a replica the steady need has let go.
  const steadyRecommendation = clamp(
    Math.ceil(Math.min(need, steady) - 1e-9),
    policy.minReplicas,
    policy.maxReplicas,
  );
  if (Math.min(recommendation, steadyRecommendation) < current) {
    if (obs.now - (next.startedAt ?? obs.now) < policy.scaleDownStabilizationSeconds)
      return { decision: decision(current, "Stabilizing", reasonNote), state: next };
    // Never cancel a scale-up still on its way: pods starting now were asked for by a recent demand.
    if (obs.readyReplicas < current)
      return {
        decision: decision(current, "Stabilizing", `${reasonNote}; pods still starting`),
        state: next,
      };
    // Slow down: the highest recommendation of the down window, judged by the steady need (the
    // smoothed rate, unprojected) where it is known.
    const window = within(policy.scaleDownStabilizationSeconds);
    const steadyOf = (r: AutoscalerState["recommendations"][number]) =>
      r.steady === undefined
        ? r.replicas
        : clamp(Math.ceil(r.steady - 1e-9), policy.minReplicas, policy.maxReplicas);
    const stable = Math.max(...window.map(steadyOf));
    if (stable >= current) return { decision: decision(current, "Stabilizing", reasonNote), state: next };
    // Down only to a count that keeps the tolerance above the window's highest need, so that the
    // next ordinary wobble does not call for the replica back.
    const stableNeed = Math.max(...window.map((r) => r.steady ?? r.need ?? r.replicas));
    const floor = Math.max(policy.minReplicas, Math.ceil(stableNeed * (1 + policy.tolerance) - 1e-9));
    if (floor >= current && current <= policy.maxReplicas)
      return { decision: decision(current, "WithinTolerance", reasonNote), state: next };
    const lastEvent = next.scaleEvents[next.scaleEvents.length - 1];
    if (lastEvent && obs.now - lastEvent.time < (policy.scaleDownIntervalSeconds ?? 0))
      return {
        decision: decision(
          current,
          "Stabilizing",
          `${reasonNote}; last scale event ${obs.now - lastEvent.time}s ago`,
        ),
        state: next,
      };
    const removed = next.scaleEvents
      .filter((e) => obs.now - e.time < 60 && e.to < e.from)
      .reduce((a, e) => a + e.from - e.to, 0);
    const allowed = Math.max(0, policy.maxScaleDownPerMinute - removed);
    const target = Math.max(stable, floor, current - allowed);
    if (target >= current) return { decision: decision(current, "RateLimited", reasonNote), state: next };
    next.scaleEvents = [
      ...next.scaleEvents.filter((e) => obs.now - e.time < 600),
      { time: obs.now, from: current, to: target },
    ];
    return {
      decision: decision(target, target > stable ? "RateLimited" : "ScaleDown", reasonNote),
      state: next,
    };
  }
  return {
    decision: decision(
      current,
      recommendation === policy.maxReplicas || recommendation === policy.minReplicas ? "AtLimit" : "Steady",
      reasonNote,
    ),
    state: next,
  };
}
