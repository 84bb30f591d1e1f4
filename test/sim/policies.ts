// The policies compared by `npm run bench -- autoscaler`. Every one sees only what a real
// autoscaler would: the signals derived from the pods' /metrics text by the real parser, replica
// counts, and (the planners and SpecOps) an SPS table off by up to ±15% per row. Only the oracle
// reads the trace. Each baseline follows its system's published algorithm; its knobs are grid-searched.
import {
  DEFAULT_SHAPE,
  maxConcurrency,
  operatingPoint,
  type ReplicaShape,
} from "../../operator/src/autoscaler/capacity.ts";
import { decideReplicas, initialState, type ReplicaPolicy } from "../../operator/src/autoscaler/replicas.ts";
import {
  firstPrinciplesStepSeconds,
  type SpsFunction,
  spsFromTable,
  tableFrom,
} from "../../operator/src/autoscaler/sps.ts";
import { emptyLearned, learnFromWindow } from "../../operator/src/autoscaler/sps-online.ts";
import { SPECOPS_TUNING } from "../../operator/src/autoscaler/tuning.ts";
import type { SimParams } from "./params.ts";
import { rng } from "./rng.ts";
import type { PolicyFactory, PolicyInput } from "./simulate.ts";

export const shapeOf = (p: SimParams): ReplicaShape => ({
  ...DEFAULT_SHAPE,
  maxBatch: p.maxBatch,
  prefillChunk: p.prefillChunk,
  maxPrefillShare: p.maxPrefillShare,
});

/** The true SPS(B) of a replica (target step plus the draft's forward). */
export function trueSps(p: SimParams): SpsFunction {
  return (batch, context, requests) =>
    1 /
    (firstPrinciplesStepSeconds(p.model, batch, context, requests) +
      (p.numSpeculativeTokens > 0 ? p.draftSecondsPerStep : 0));
}

/** The table a profile would have measured, each row off by up to ±spsTableError (seeded). */
export function givenSps(p: SimParams): SpsFunction {
  const truth = trueSps(p);
  const batches = [1, 8, 16, 32, 64, 128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096];
  const table = tableFrom(truth, batches, [0, 500, 1000, 2000, 4000], (b) =>
    Math.max(1, b / (1 + p.numSpeculativeTokens)),
  );
  const noise = rng(p.seed + 7);
  for (const row of table.rows)
    row.stepsPerSecond *= p.spsTableBias * (1 + p.spsTableError * (2 * noise() - 1));
  return spsFromTable(table);
}

const sloOf = (p: SimParams) => ({
  ttftP95: p.slo.ttftP95,
  tpotP95: p.slo.tpotP95,
  minTokensPerSecondPerUser: p.slo.minTokensPerSecondPerUser,
});

// --- Static for the peak -------------------------------------------------------------------------
export const staticPolicy =
  (replicas: number): PolicyFactory =>
  () => ({ decide: () => replicas });

// --- KubeAI: ceil(movingAvg(active requests) / targetRequests) ---------------------------------------
export const kubeaiPolicy =
  (targetRequests: number, windowSeconds: number): PolicyFactory =>
  ({ params }) => {
    const samples: number[] = [];
    const size = Math.max(1, Math.round(windowSeconds / params.decisionIntervalSeconds));
    return {
      decide(i: PolicyInput) {
        const s = i.signals;
        if (!s || s.running === null || s.waiting === null || i.scrapedReplicas === 0)
          return i.currentReplicas;
        const active = ((s.running + s.waiting) * i.readyReplicas) / Math.max(1, i.scrapedReplicas);
        samples.push(active);
        if (samples.length > size) samples.shift();
        const avg = samples.reduce((a, b) => a + b, 0) / samples.length;
        return Math.max(1, Math.ceil(avg / targetRequests));
      },
    };
  };

// --- HPA/KEDA on average waiting requests per pod (vLLM production-stack: waiting > 5) -------------
export const queuePolicy =
  (targetWaiting: number): PolicyFactory =>
  () => {
    const history: { time: number; replicas: number }[] = [];
    return {
      decide(i: PolicyInput) {
        const s = i.signals;
        if (!s || s.waiting === null || i.scrapedReplicas === 0) return i.currentReplicas;
        const avgWaiting = s.waiting / i.scrapedReplicas;
        const ratio = avgWaiting / targetWaiting;
        // HPA: desired = ceil(current * metric / target), 10% tolerance, 300 s down-stabilisation.
        let want = Math.abs(ratio - 1) <= 0.1 ? i.currentReplicas : Math.ceil(i.readyReplicas * ratio);
        want = Math.max(1, want);
        history.push({ time: i.now, replicas: want });
        while (history.length && i.now - (history[0]?.time ?? 0) > 300) history.shift();
        if (want < i.currentReplicas) return Math.max(...history.map((h) => h.replicas), want);
        // HPA up rule: at most double, or +4 pods, per 15 s period.
        return Math.min(want, Math.max(2 * i.currentReplicas, i.currentReplicas + 4));
      },
    };
  };

// --- llm-d SLO-aware guide: s = max(p90 TTFT/SLO, p90 TPOT/SLO), bands up/down -----------------------
export const sloRatioPolicy =
  (up: number, down: number): PolicyFactory =>
  ({ params }) => {
    const recent: { time: number; s: number }[] = [];
    let lastUp = Number.NEGATIVE_INFINITY;
    let lastDown = Number.NEGATIVE_INFINITY;
    return {
      decide(i: PolicyInput) {
        const sig = i.signals;
        if (!sig || sig.ttftP90 === null || sig.tpotP90 === null) return i.currentReplicas;
        const s = Math.min(2, Math.max(sig.ttftP90 / params.slo.ttftP95, sig.tpotP90 / params.slo.tpotP95));
        recent.push({ time: i.now, s });
        while (recent.length && i.now - (recent[0]?.time ?? 0) > 45) recent.shift();
        const avg = recent.reduce((a, x) => a + x.s, 0) / recent.length;
        // In-flight credit on scale-up only: ready / provisioned.
        const upSignal = avg * (i.readyReplicas / Math.max(1, i.currentReplicas));
        if (upSignal > up && i.now - lastUp >= 60) {
          lastUp = i.now;
          const want = Math.ceil(i.currentReplicas * (upSignal / up));
          return Math.min(want, Math.max(2 * i.currentReplicas, i.currentReplicas + 4));
        }
        if (avg < down && i.now - lastDown >= 120 && i.now - lastUp >= 120) {
          lastDown = i.now;
          return i.currentReplicas - 1;
        }
        return i.currentReplicas;
      },
    };
  };

// --- Profiled-capacity SLA planner (Dynamo's), with or without the measured accept length ---------------
/**
 * Replicas = ceil(predicted request rate / per-replica rate at the SLO), the per-replica rate from the
 * profiled cost table inverted at the TPOT target divided by a correction factor (measured / expected
 * latency, as Dynamo's planner does). `profiledTau` fixed: acceptance-blind; null: the measured tau
 * discounts the decode cost (Dynamo since PR #10435).
 */
export const plannerPolicy =
  (headroom: number, profiledTau: number | null, intervalSeconds = 60): PolicyFactory =>
  ({ params, sps }) => {
    let correction = 1;
    let last = Number.NEGATIVE_INFINITY;
    let plan = -1;
    const shape = shapeOf(params);
    return {
      decide(i: PolicyInput) {
        const s = i.signals;
        if (plan < 0) plan = i.currentReplicas;
        if (!s || s.requestsPerSecond === null || s.running === null || i.scrapedReplicas === 0) return plan;
        if (i.now - last < intervalSeconds) return plan;
        last = i.now;
        const tau = profiledTau ?? s.tau ?? 1;
        const coverage = i.readyReplicas / i.scrapedReplicas;
        const work = {
          promptTokens:
            s.promptTokensPerSecond && s.requestsPerSecond
              ? s.promptTokensPerSecond / s.requestsPerSecond
              : 600,
          outputTokens:
            s.generationTokensPerSecond && s.requestsPerSecond
              ? s.generationTokensPerSecond / s.requestsPerSecond
              : 400,
        };
        const perReplica = (s.running * coverage) / Math.max(1, i.readyReplicas);
        if (s.tpotP95 !== null && perReplica >= 1) {
          const expected = operatingPoint(
            sps,
            perReplica,
            tau,
            params.numSpeculativeTokens,
            work,
            shape,
          ).tpotP95;
          correction = Math.min(3, Math.max(0.5, s.tpotP95 / expected));
        }
        const slo = sloOf(params);
        const best = maxConcurrency(sps, tau, params.numSpeculativeTokens, work, shape, {
          ...slo,
          tpotP95: Math.min(slo.tpotP95, 1 / slo.minTokensPerSecondPerUser) / correction,
          minTokensPerSecondPerUser: undefined,
        });
        const rate =
          s.requestsPerSecond * coverage + Math.max(0, (s.waiting ?? 0) * coverage) / intervalSeconds;
        plan = best
          ? Math.max(1, Math.ceil((rate * headroom) / best.requestsPerSecond))
          : i.currentReplicas + 1;
        return plan;
      },
    };
  };

// --- SpecOps ------------------------------------------------------------------------------------------
// The operator's own policy: the settings that are no spec field come from SPECOPS_TUNING, the object
// the controller reads; the spec fields are set as a SpecServe would set them.
export interface SpecOpsKnobs {
  headroom: number;
  scaleDownStabilizationSeconds: number;
  /** Tuning overrides of the replica policy's other rails (tolerance, rate limits, intervals). */
  rails?: Partial<ReplicaPolicy>;
  /** Correct the given SPS table online from the step figures (spec.autoscaling.spsLearning Online). */
  learnSps?: boolean;
}

/** The bench's reported setting: SpecOps' tuning, and the spec's default down-stabilisation (5m). */
export const SPECOPS_DEFAULTS: SpecOpsKnobs = {
  headroom: SPECOPS_TUNING.headroom,
  scaleDownStabilizationSeconds: 300,
};

/** The spec fields of the simulated SpecServe's spec.autoscaling (tolerance, stabilisation, rates). */
export const SIM_AUTOSCALING_SPEC = {
  tolerance: 0.1,
  scaleUpStabilizationSeconds: 0,
  maxScaleUpPerMinute: 8,
  maxScaleDownPerMinute: 8,
} as const;

/** The ReplicaPolicy SpecOps decides with in the simulator. */
export function specopsReplicaPolicy(
  params: SimParams,
  knobs: SpecOpsKnobs = SPECOPS_DEFAULTS,
): ReplicaPolicy {
  return {
    minReplicas: params.minReplicas,
    maxReplicas: params.maxReplicas,
    ...SIM_AUTOSCALING_SPEC,
    scaleDownStabilizationSeconds: knobs.scaleDownStabilizationSeconds,
    headroom: knobs.headroom,
    backlogDrainSeconds: SPECOPS_TUNING.backlogDrainSeconds,
    tauLookaheadSeconds: SPECOPS_TUNING.tauLookaheadSeconds,
    maxProjectedGrowth: SPECOPS_TUNING.maxProjectedGrowth,
    scaleDownIntervalSeconds: SPECOPS_TUNING.scaleDownIntervalSeconds,
    staleAfterSeconds: SPECOPS_TUNING.staleAfterWindows * params.decisionIntervalSeconds,
    slo: sloOf(params),
    shape: shapeOf(params),
    numSpeculativeTokens: params.numSpeculativeTokens,
    defaultWorkload: SPECOPS_TUNING.defaultWorkload,
    ...knobs.rails,
  };
}

export const specopsPolicy =
  (knobs: SpecOpsKnobs = SPECOPS_DEFAULTS): PolicyFactory =>
  ({ params, sps }) => {
    const policy = specopsReplicaPolicy(params, knobs);
    let state = initialState();
    let learned = emptyLearned("given table");
    return {
      decide(i: PolicyInput) {
        // The controller's learning step (decide.ts runs the same function), on by default as there.
        let decideWith = sps;
        if (knobs.learnSps !== false) {
          const l = learnFromWindow(
            learned,
            sps,
            i.signals,
            policy.defaultWorkload,
            policy.shape,
            policy.numSpeculativeTokens,
          );
          learned = l.state;
          decideWith = l.sps;
        }
        const r = decideReplicas(policy, decideWith, { ...i, signalsTime: i.signalsTime }, state);
        state = r.state;
        return r.decision.desiredReplicas;
      },
    };
  };

// --- Policies by name, so runs can be described as data (and run in worker threads) --------------------
export type PolicySpec =
  | { kind: "static"; replicas: number }
  | { kind: "kubeai"; targetRequests: number; windowSeconds: number }
  | { kind: "queue"; targetWaiting: number }
  | { kind: "slo-ratio"; up: number; down: number }
  | { kind: "planner"; headroom: number; profiledTau: number | null }
  | {
      kind: "specops";
      headroom: number;
      scaleDownStabilizationSeconds: number;
      /** Overrides of the replica policy's other settings (the tuning harness, test/sim/specops-run.ts). */
      rails?: Partial<ReplicaPolicy>;
      /** false: decide on the given table alone (no online correction). */
      learnSps?: boolean;
    }
  | { kind: "oracle" };

export function policyOf(spec: PolicySpec): PolicyFactory {
  switch (spec.kind) {
    case "static":
      return staticPolicy(spec.replicas);
    case "kubeai":
      return kubeaiPolicy(spec.targetRequests, spec.windowSeconds);
    case "queue":
      return queuePolicy(spec.targetWaiting);
    case "slo-ratio":
      return sloRatioPolicy(spec.up, spec.down);
    case "planner":
      return plannerPolicy(spec.headroom, spec.profiledTau);
    case "specops":
      return specopsPolicy(spec);
    case "oracle":
      throw new Error("the oracle is no policy: it searches the fleet itself (oracle.ts)");
  }
}

export function describeSpec(spec: PolicySpec): string {
  switch (spec.kind) {
    case "static":
      return `${spec.replicas} replicas`;
    case "kubeai":
      return `target ${spec.targetRequests} requests, ${spec.windowSeconds}s average`;
    case "queue":
      return `waiting > ${spec.targetWaiting} per pod`;
    case "slo-ratio":
      return `bands ${spec.up} / ${spec.down}`;
    case "planner":
      return `headroom x${spec.headroom}${spec.profiledTau === null ? ", measured tau" : `, profiled tau ${spec.profiledTau}`}`;
    case "specops":
      return `headroom ${spec.headroom}, down-stabilisation ${spec.scaleDownStabilizationSeconds}s`;
    case "oracle":
      return "fewest ready replicas per minute that meet the SLOs (searched with the true physics)";
  }
}
