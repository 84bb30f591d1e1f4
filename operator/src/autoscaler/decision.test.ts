import { describe, expect, it } from "vitest";
import { DEFAULT_SHAPE, maxConcurrency, operatingPoint, tauAt } from "./capacity.ts";
import { assessDrift, type DriftPolicy, driftStateAt } from "./drift.ts";
import {
  type AutoscalerState,
  decideReplicas,
  type FleetObservation,
  initialState,
  type ReplicaPolicy,
} from "./replicas.ts";
import type { Signals } from "./signals.ts";
import { type LengthTuningInput, tuneLength } from "./speculation.ts";
import {
  firstPrinciplesStepSeconds,
  loadSpsTable,
  QWEN3_8B_H200,
  SpsTableError,
  spsFromModel,
  spsFromTable,
} from "./sps.ts";

const sps = spsFromModel(QWEN3_8B_H200);
// Per-position survival of a code-like (tau ~5.3 at k=7) and a chat-like (tau ~3.3) mix.
const survival = (p: number, k = 7) => Array.from({ length: k }, (_, i) => p ** (i + 1));
const CODE = survival(0.88);
const CHAT = survival(0.72);
const work = { promptTokens: 600, outputTokens: 400 };
const slo = { ttftP95: 1.5, tpotP95: 0.012, minTokensPerSecondPerUser: 90 };

describe("SPS table", () => {
  it("loads the rows format, a bare list and the runtime's profile result", () => {
    expect(loadSpsTable({ gpuProduct: "NVIDIA-H200", rows: [{ batch: 1, steps_per_second: 200 }] })).toEqual({
      gpuProduct: "NVIDIA-H200",
      model: undefined,
      rows: [{ batch: 1, stepsPerSecond: 200 }],
    });
    expect(loadSpsTable([{ batch: 8, context: 2048, steps_per_second: 150 }]).rows).toEqual([
      { batch: 8, context: 2048, stepsPerSecond: 150 },
    ]);
    expect(
      loadSpsTable({
        profile: { points: [{ batchSize: 4, stepsPerSecond: 90 }] },
        details: { contextLength: 64 },
      }).rows,
    ).toEqual([{ batch: 4, context: 64, stepsPerSecond: 90 }]);
  });
  it("names the bad field", () => {
    expect(() =>
      loadSpsTable({
        rows: [
          { batch: 1, steps_per_second: 200 },
          { batch: 2, steps_per_second: -1 },
        ],
      }),
    ).toThrow(SpsTableError);
    expect(() =>
      loadSpsTable({
        rows: [
          { batch: 1, steps_per_second: 200 },
          { batch: 2, steps_per_second: -1 },
        ],
      }),
    ).toThrow(/rows\[1\]\.steps_per_second/);
    expect(() => loadSpsTable({ rows: [] })).toThrow(/rows/);
  });
  it("interpolates step time in batch and context, and extends past the last row", () => {
    const f = spsFromTable(
      loadSpsTable({
        rows: [
          { batch: 1, context: 1000, steps_per_second: 200 },
          { batch: 101, context: 1000, steps_per_second: 100 },
          { batch: 1, context: 3000, steps_per_second: 100 },
          { batch: 101, context: 3000, steps_per_second: 50 },
        ],
      }),
    );
    expect(1 / f(51, 1000, 1)).toBeCloseTo(0.0075); // halfway between 5 ms and 10 ms
    expect(1 / f(201, 1000, 1)).toBeCloseTo(0.015); // the last segment extended
    expect(1 / f(1, 2000, 1)).toBeCloseTo(0.0075); // halfway between contexts
    expect(f(1, 500, 1)).toBeCloseTo(200); // clamped below the first context
  });
  it("first-principles step: weight read at batch 1, compute-bound at large batch", () => {
    expect(firstPrinciplesStepSeconds(QWEN3_8B_H200, 1, 0, 1)).toBeCloseTo(0.001 + 16.4e9 / 4.3e12, 5);
    expect(firstPrinciplesStepSeconds(QWEN3_8B_H200, 2048, 0, 1)).toBeCloseTo(
      0.001 + (16.4e9 * 2048) / 790e12,
      5,
    );
  });
});

describe("capacity", () => {
  it("per-user speed is tau x SPS(B) without prefill", () => {
    const p = operatingPoint(
      sps,
      32,
      tauAt(CODE, 7),
      7,
      { promptTokens: 0, outputTokens: 400 },
      DEFAULT_SHAPE,
    );
    expect(p.tokensPerSecondPerUser).toBeCloseTo(tauAt(CODE, 7) * sps(32 * 8, 400 / 2, 32), 3);
  });
  it("a chat mix keeps the SLOs at far lower concurrency than a code mix", () => {
    const code = maxConcurrency(sps, tauAt(CODE, 7), 7, work, DEFAULT_SHAPE, slo);
    const chat = maxConcurrency(sps, tauAt(CHAT, 7), 7, work, DEFAULT_SHAPE, slo);
    expect(code && chat).toBeTruthy();
    expect((chat?.requestsPerSecond ?? 0) / (code?.requestsPerSecond ?? 1)).toBeLessThan(0.9);
    expect(chat?.requests ?? 0).toBeLessThan(code?.requests ?? 0);
  });
  it("none when even one request misses the SLO", () => {
    expect(maxConcurrency(sps, 1, 0, work, DEFAULT_SHAPE, { tpotP95: 0.001 })).toBeNull();
  });
});

const policy: ReplicaPolicy = {
  minReplicas: 2,
  maxReplicas: 20,
  tolerance: 0.1,
  scaleUpStabilizationSeconds: 0,
  scaleDownStabilizationSeconds: 300,
  maxScaleUpPerMinute: 4,
  maxScaleDownPerMinute: 1,
  headroom: 0.1,
  backlogDrainSeconds: 60,
  tauLookaheadSeconds: 300,
  staleAfterSeconds: 60,
  slo,
  shape: DEFAULT_SHAPE,
  numSpeculativeTokens: 7,
  defaultWorkload: work,
};

function signals(over: Partial<Signals>): Signals {
  const rps = over.requestsPerSecond ?? 100;
  return {
    engine: "vllm",
    windowSeconds: 30,
    tau: tauAt(CODE, 7),
    acceptanceRate: null,
    acceptanceByPosition: CODE,
    running: 300,
    waiting: 0,
    ttftP50: 0.2,
    ttftP90: 0.35,
    ttftP95: 0.4,
    tpotP50: 0.006,
    tpotP90: 0.0075,
    tpotP95: 0.008,
    tokensPerSecondPerUser: 150,
    generationTokensPerSecond: work.outputTokens * rps,
    promptTokensPerSecond: work.promptTokens * rps,
    requestsPerSecond: rps,
    kvCacheUsage: 0.4,
    pods: { scraped: 4, appeared: [], left: [], resetSeries: 0 },
    ...over,
  };
}

const observe = (over: Partial<FleetObservation>, s: Partial<Signals> = {}): FleetObservation => ({
  now: 1000,
  signals: signals(s),
  signalsTime: 1000,
  currentReplicas: 4,
  readyReplicas: 4,
  scrapedReplicas: 4,
  ...over,
});

/** The state after the fleet sat at `obs`'s demand for a while (arrival estimate settled). */
function settled(obs: FleetObservation): AutoscalerState {
  const s = obs.signals;
  if (!s) return initialState();
  return {
    ...initialState(),
    lastQueue: { time: obs.now - 15, requests: (s.running ?? 0) + (s.waiting ?? 0) },
  };
}

describe("replica decision", () => {
  const cases: { name: string; obs: FleetObservation; expect: { reason: string; desired?: number } }[] = [
    {
      name: "no signals: hold",
      obs: observe({ signals: null }),
      expect: { reason: "MetricsMissing", desired: 4 },
    },
    {
      name: "stale signals: hold",
      obs: observe({ signalsTime: 900 }),
      expect: { reason: "MetricsStale", desired: 4 },
    },
    {
      name: "most pods unscraped: hold",
      obs: observe({ scrapedReplicas: 1 }),
      expect: { reason: "TooFewPodsScraped", desired: 4 },
    },
    {
      name: "running figures missing: hold, never min",
      obs: observe({}, { running: null }),
      expect: { reason: "MetricsMissing", desired: 4 },
    },
    {
      name: "huge demand: up by at most maxScaleUpPerMinute",
      obs: observe({}, { running: 3000, requestsPerSecond: 1000 }),
      expect: { reason: "RateLimited", desired: 8 },
    },
    {
      name: "above max: clamped to max",
      obs: observe(
        { currentReplicas: 18, readyReplicas: 18, scrapedReplicas: 18 },
        { running: 30000, requestsPerSecond: 10000 },
      ),
      expect: { reason: "ScaleUp", desired: 20 },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { decision } = decideReplicas(policy, sps, c.obs, settled(c.obs));
      expect(decision.reason).toBe(c.expect.reason);
      if (c.expect.desired !== undefined) expect(decision.desiredReplicas).toBe(c.expect.desired);
      expect(decision.metricsAvailable).toBe(
        !["MetricsMissing", "MetricsStale", "TooFewPodsScraped"].includes(c.expect.reason),
      );
    });
  }

  it("a fall in tau at constant load raises replicas while latency still meets the SLO", () => {
    const load = { running: 450, requestsPerSecond: 125 };
    const before = observe({}, load);
    const a = decideReplicas(policy, sps, before, settled(before)).decision;
    expect(a.desiredReplicas).toBe(4);
    const after = observe({}, { ...load, tau: tauAt(CHAT, 7), acceptanceByPosition: CHAT });
    const b = decideReplicas(policy, sps, after, settled(after)).decision;
    expect(after.signals?.tpotP95).toBeLessThan(slo.tpotP95); // no breach yet
    expect(b.figures.recommendation).toBeGreaterThan(a.figures.recommendation ?? 0);
    expect(b.desiredReplicas).toBeGreaterThan(4);
    expect(b.figures.tau).toBeCloseTo(tauAt(CHAT, 7), 2);
    expect(b.message).toMatch(/tau 3\.\d/);
  });

  it("fast up, slow down: a lower recommendation waits for the stabilisation window, then steps by the rate", () => {
    const low = observe(
      { currentReplicas: 10, readyReplicas: 10, scrapedReplicas: 10 },
      { running: 20, requestsPerSecond: 5 },
    );
    let state: AutoscalerState = { ...settled(low), recommendations: [{ time: 900, replicas: 10 }] };
    const first = decideReplicas(policy, sps, low, state);
    expect(first.decision.reason).toBe("Stabilizing");
    expect(first.decision.desiredReplicas).toBe(10);
    state = first.state;
    const later = { ...low, now: 1300, signalsTime: 1300 };
    const second = decideReplicas(policy, sps, later, { ...state, lastQueue: { time: 1285, requests: 20 } });
    expect(second.decision.desiredReplicas).toBe(9); // maxScaleDownPerMinute 1
    expect(second.decision.reason).toBe("RateLimited");
    const third = decideReplicas(
      policy,
      sps,
      { ...later, now: 1310, signalsTime: 1310, currentReplicas: 9 },
      second.state,
    );
    expect(third.decision.desiredReplicas).toBe(9); // one per minute
    expect(third.decision.reason).toBe("RateLimited");
  });

  it("never below min on low load", () => {
    const idle = observe(
      { currentReplicas: 2, readyReplicas: 2, scrapedReplicas: 2 },
      { running: 0, requestsPerSecond: 0 },
    );
    const { decision } = decideReplicas(policy, sps, idle, settled(idle));
    expect(decision.desiredReplicas).toBe(2);
  });

  it("a small change stays within tolerance", () => {
    // Find a demand whose recommendation is current + 1 out of many replicas (within 10%).
    const base = observe({ currentReplicas: 12, readyReplicas: 12, scrapedReplicas: 12 });
    for (let rps = 100; rps < 2000; rps += 5) {
      const o = { ...base, signals: signals({ running: rps * 3, requestsPerSecond: rps }) };
      const d = decideReplicas(policy, sps, o, settled(o)).decision;
      if (d.figures.recommendation === 13) {
        expect(d.reason).toBe("WithinTolerance");
        expect(d.desiredReplicas).toBe(12);
        return;
      }
    }
    throw new Error("no demand recommends 13 replicas");
  });

  it("pods still starting count as capacity: no second scale-up for the same demand", () => {
    const o = observe({}, { running: 1200, requestsPerSecond: 400 });
    const first = decideReplicas(policy, sps, o, settled(o)).decision;
    const target = first.figures.recommendation ?? 0;
    expect(target).toBeGreaterThan(4);
    // The new pods are starting: spec says `target`, 4 are ready and carry the load.
    const o2 = { ...o, now: 1100, signalsTime: 1100, currentReplicas: target };
    const second = decideReplicas(policy, sps, o2, settled(o2)).decision;
    expect(second.desiredReplicas).toBe(target);
  });

  it("a falling tau is projected ahead: replicas rise before tau has finished falling", () => {
    const o1 = observe({}, { running: 450, requestsPerSecond: 125 });
    const s1 = decideReplicas(policy, sps, o1, settled(o1));
    expect(s1.decision.figures.projectedTau).toBeCloseTo(s1.decision.figures.tau ?? 0, 2);
    // 30 s later tau is 0.2 lower: the capacity is planned for tau one lookahead (300 s) further down.
    const o2 = {
      ...observe({}, { running: 450, requestsPerSecond: 125, tau: tauAt(CODE, 7) - 0.2 }),
      now: 1030,
      signalsTime: 1030,
    };
    const s2 = decideReplicas(policy, sps, o2, s1.state);
    expect(s2.decision.figures.projectedTau ?? 9).toBeLessThan((s2.decision.figures.tau ?? 0) - 0.5);
    const steady = decideReplicas(
      policy,
      sps,
      { ...o2, signals: signals({ running: 450, requestsPerSecond: 125, tau: tauAt(CODE, 7) - 0.2 }) },
      settled(o2),
    );
    expect(s2.decision.figures.recommendation ?? 0).toBeGreaterThan(
      steady.decision.figures.recommendation ?? 0,
    );
  });

  it("never cancels pods still starting, and never scales down before a full window after start", () => {
    const low = observe(
      { currentReplicas: 10, readyReplicas: 8, scrapedReplicas: 8 },
      { running: 20, requestsPerSecond: 5 },
    );
    const state = { ...settled(low), startedAt: 0 };
    const d = decideReplicas(policy, sps, low, state).decision;
    expect(d.desiredReplicas).toBe(10);
    expect(d.message).toMatch(/starting/);
    const fresh = decideReplicas(
      policy,
      sps,
      { ...low, readyReplicas: 10, scrapedReplicas: 10 },
      settled(low),
    ).decision;
    expect(fresh.desiredReplicas).toBe(10); // first decision: no history to stabilise on
  });

  it("a measured breach forces one more replica even when the model thinks capacity suffices", () => {
    const o = observe({}, { running: 40, requestsPerSecond: 10, tpotP95: 0.05 });
    const { decision } = decideReplicas({ ...policy, minReplicas: 1 }, sps, o, settled(o));
    expect(decision.desiredReplicas).toBe(5);
  });

  it("the replica a breach added stays for the down-stabilisation window after the breach ends", () => {
    const p = { ...policy, minReplicas: 1 };
    const breach = observe({}, { running: 40, requestsPerSecond: 10, tpotP95: 0.05 });
    // A fleet decided on for long before (no start-up stabilisation).
    const up = decideReplicas(p, sps, breach, { ...settled(breach), startedAt: breach.now - 3600 });
    expect(up.decision.desiredReplicas).toBe(5);
    // The breach is over and the model needs far fewer: held while the breach's recommendation is
    // in the down window (it counts at its own value, not at the model's low steady need)...
    const calm = (now: number) => ({
      ...observe(
        { currentReplicas: 5, readyReplicas: 5, scrapedReplicas: 5 },
        { running: 40, requestsPerSecond: 10 },
      ),
      now,
      signalsTime: now,
    });
    const held = decideReplicas(p, sps, calm(breach.now + 30), up.state);
    expect(held.decision.desiredReplicas).toBe(5);
    // ...and let go once it has left the window.
    const after = breach.now + p.scaleDownStabilizationSeconds + 30;
    const down = decideReplicas(p, sps, calm(after), {
      ...held.state,
      lastQueue: { time: after - 15, requests: 40 },
    });
    expect(down.decision.desiredReplicas).toBeLessThan(5);
  });
});

describe("replica decision: no needless churn", () => {
  /** The need (fractional replicas) a demand gives at 4 ready pods, from the decision's figures. */
  const at = (rps: number, over: Partial<FleetObservation> = {}) =>
    observe(over, { running: rps * 2, requestsPerSecond: rps });

  it("a p95 in the histogram's first bucket (interpolated from zero) teaches no correction", () => {
    const o = observe({}, { running: 300, requestsPerSecond: 100, tpotP95: 0.0095 });
    const learned = decideReplicas(policy, sps, o, settled(o)).decision.figures.correction?.tpot;
    const unresolved = observe(
      {},
      { running: 300, requestsPerSecond: 100, tpotP95: 0.0095, tpotP95Bucket: [0, 0.01] },
    );
    const kept = decideReplicas(policy, sps, unresolved, settled(unresolved)).decision.figures.correction;
    expect(kept?.tpot).toBe(initialState().correction.tpot);
    expect(learned).not.toBe(initialState().correction.tpot);
  });

  it("tolerance compares the fractional need: a need just above the count does not add a replica", () => {
    // Find a demand whose need lies in (4, 4.4]: ceil says 5, the tolerance says hold.
    for (let rps = 50; rps < 400; rps += 1) {
      const o = at(rps);
      const d = decideReplicas(policy, sps, o, settled(o)).decision;
      const need =
        ((d.figures.arrivalRate ?? 0) * (1 + policy.headroom)) / (d.figures.requestsPerSecondPerReplica ?? 1);
      if (d.figures.recommendation === 5 && need <= 4.4) {
        expect(d.reason).toBe("WithinTolerance");
        expect(d.desiredReplicas).toBe(4);
        return;
      }
    }
    throw new Error("no demand with a need just above 4 replicas");
  });

  it("scales down only to a count that keeps the tolerance above the window's highest need", () => {
    const current = { currentReplicas: 6, readyReplicas: 6, scrapedReplicas: 6 };
    // A window whose highest need is 3.95: ceil says 4, but 4 is within 10% of it, so down to 5.
    const o = at(1, current);
    const state: AutoscalerState = {
      ...settled(o),
      startedAt: 0,
      recommendations: [{ time: 900, replicas: 4, need: 3.95 }],
    };
    const fast = { ...policy, maxScaleDownPerMinute: 10 };
    const d = decideReplicas(fast, sps, o, state).decision;
    expect(d.desiredReplicas).toBe(5);
    const lower = decideReplicas(fast, sps, o, {
      ...state,
      recommendations: [{ time: 900, replicas: 4, need: 3.5 }],
    }).decision;
    expect(lower.desiredReplicas).toBe(4); // 3.5 x 1.1 = 3.85
  });

  it("an idle fleet comes down to minReplicas: the tolerance floor is not taken from the minimum itself", () => {
    const o = at(0, { currentReplicas: 3, readyReplicas: 3, scrapedReplicas: 3 });
    const floor = { ...policy, minReplicas: 2, maxScaleDownPerMinute: 10 };
    const state: AutoscalerState = { ...settled(o), startedAt: 0, recommendations: [] };
    expect(decideReplicas(floor, sps, o, state).decision.desiredReplicas).toBe(2);
  });

  it("no scale-down within scaleDownIntervalSeconds of the last scale event", () => {
    const o = at(1, { currentReplicas: 6, readyReplicas: 6, scrapedReplicas: 6 });
    const state: AutoscalerState = {
      ...settled(o),
      startedAt: 0,
      scaleEvents: [{ time: 900, from: 5, to: 6 }],
    };
    const spaced = { ...policy, scaleDownIntervalSeconds: 180 };
    const held = decideReplicas(spaced, sps, o, state).decision;
    expect(held.desiredReplicas).toBe(6);
    expect(held.message).toMatch(/last scale event 100s ago/);
    const later = { ...o, now: 1100, signalsTime: 1100 };
    expect(decideReplicas(spaced, sps, later, state).decision.desiredReplicas).toBeLessThan(6);
  });

  it("a queue while pods start asks for no more than the arrivals need (no overshoot on a burst)", () => {
    // 4 of 12 pods ready, full batches and a large queue: the running figure and the backlog are the
    // queue's doing; the arrivals alone size the fleet.
    const o = observe(
      { currentReplicas: 12, readyReplicas: 4, scrapedReplicas: 4 },
      { running: 4 * 256, waiting: 20000, requestsPerSecond: 120 },
    );
    const d = decideReplicas({ ...policy, maxScaleUpPerMinute: 100 }, sps, o, settled(o)).decision;
    const byArrivals = Math.ceil(
      ((d.figures.arrivalRate ?? 0) * (1 + policy.headroom)) / (d.figures.requestsPerSecondPerReplica ?? 1),
    );
    expect(d.figures.recommendation).toBe(byArrivals);
    expect(d.desiredReplicas).toBeLessThanOrEqual(Math.max(12, byArrivals));
    // Once they all serve, a backlog left counts again (at most as many replicas as are ready).
    const ready = { ...o, readyReplicas: 12, scrapedReplicas: 12 };
    const after = decideReplicas({ ...policy, maxScaleUpPerMinute: 100 }, sps, ready, settled(ready));
    expect(after.decision.figures.recommendation ?? 0).toBeGreaterThan(byArrivals);
  });
});

describe("speculation length tuned to load", () => {
  const input = (over: Partial<LengthTuningInput>): LengthTuningInput => ({
    mode: "Apply",
    acceptanceByPosition: CHAT,
    currentTokens: 7,
    maxTokens: 7,
    engine: "vllm",
    loadAdaptation: "Engine",
    currentBatch: 200,
    minGain: 0.05,
    slo: {},
    work,
    shape: DEFAULT_SHAPE,
    ...over,
  });
  it("long drafts at batch 1, shorter at high concurrency", () => {
    const t = tuneLength(sps, input({}));
    expect(t.ranges[0]?.tokens).toBe(7);
    const last = t.ranges[t.ranges.length - 1];
    expect(last?.tokens).toBeLessThan(7);
    expect(t.ranges[0]?.minBatch).toBe(1);
    expect(last?.maxBatch).toBe(DEFAULT_SHAPE.maxBatch);
    expect(t.predictedGain).toBeGreaterThan(0.05);
    expect(t.action).toBe("apply");
  });
  const modes: [string, Partial<LengthTuningInput>, string, RegExp][] = [
    ["Off", { mode: "Off" }, "none", /Off/],
    ["Recommend", { mode: "Recommend" }, "recommend", /Recommend/],
    ["SGLang", { engine: "sglang" }, "recommend", /vllm/],
    ["no engine load adaptation", { loadAdaptation: "Off" }, "recommend", /loadAdaptation/],
    [
      "user schedule",
      { userLengthByBatchSize: [{ minBatch: 1, maxBatch: 8, tokens: 3 }] },
      "recommend",
      /user/,
    ],
    ["small gain", { currentBatch: 1 }, "recommend", /not worth/],
    ["no per-position data", { acceptanceByPosition: null }, "none", /acceptance by position/],
  ];
  for (const [name, over, action, reason] of modes) {
    it(`${name}: ${action}`, () => {
      const t = tuneLength(sps, input(over));
      expect(t.action).toBe(action);
      expect(t.reason).toMatch(reason);
    });
  }
});

describe("acceptance drift", () => {
  const p: DriftPolicy = {
    enabled: true,
    baselineWindowSeconds: 600,
    tolerance: 0.15,
    windowSeconds: 120,
    minTau: 2.5,
  };
  function run(taus: [number, number][]) {
    let state = driftStateAt(0);
    const verdicts = [];
    for (const [t, tau] of taus) {
      const r = assessDrift(p, state, t, tau);
      state = r.state;
      verdicts.push(r.verdict);
    }
    return verdicts;
  }
  it("baseline from the window after promotion; a sustained drop beyond tolerance is drift", () => {
    const series: [number, number][] = [];
    for (let t = 0; t <= 600; t += 60) series.push([t, 5]);
    for (let t = 660; t <= 900; t += 60) series.push([t, 3.8]); // 24% below
    const v = run(series);
    expect(v[1]?.reason).toBe("BaselinePending");
    expect(v[11]?.reason).toBe("Healthy"); // first low sample: not yet a window
    const last = v[v.length - 1];
    expect(last?.healthy).toBe(false);
    expect(last?.reason).toBe("AcceptanceDrift");
    expect(last?.baselineTau).toBeCloseTo(5);
    expect(last?.drop).toBeCloseTo(0.24);
  });
  it("a drop within tolerance is healthy; below minTau for the window is not", () => {
    const ok = run([
      [0, 5],
      [600, 5],
      [700, 4.5],
      [900, 4.5],
    ]);
    expect(ok[ok.length - 1]?.healthy).toBe(true);
    const low = run([
      [0, 2.4],
      [60, 2.4],
      [200, 2.4],
    ]);
    expect(low[1]?.healthy).toBe(true);
    expect(low[2]?.reason).toBe("BelowMinTau");
  });
  it("recovers when tau comes back", () => {
    const v = run([
      [0, 5],
      [600, 5],
      [700, 3],
      [900, 3],
      [960, 5],
    ]);
    expect(v[3]?.healthy).toBe(false);
    expect(v[4]?.healthy).toBe(true);
  });
});

describe("scale-down judged by the steady need", () => {
  it("a rising-load projection holds no replica that the smoothed, unprojected need lets go", () => {
    const current = { currentReplicas: 6, readyReplicas: 6, scrapedReplicas: 6 };
    const fast = { ...policy, maxScaleDownPerMinute: 10 };
    // Find a demand that four replicas carry at the smoothed rate, and that a projection of 50% more
    // (a rate trend of +1 req/s per second, capped at maxProjectedGrowth's default) puts at six.
    for (let rps = 50; rps < 400; rps += 2) {
      const o = observe(current, { running: rps * 2, requestsPerSecond: rps });
      const base = { ...settled(o), startedAt: 0 };
      const flat = decideReplicas(fast, sps, o, {
        ...base,
        rateTrend: { time: o.now - 30, rate: rps, slope: 0 },
      }).decision;
      const rising = decideReplicas(fast, sps, o, {
        ...base,
        rateTrend: { time: o.now - 30, rate: rps, slope: 1 },
      }).decision;
      if (flat.figures.recommendation !== 4 || (rising.figures.recommendation ?? 0) < 6) continue;
      expect(flat.desiredReplicas).toBeLessThan(6);
      // The projection's recommendation is the current count, yet the steady need brings it down
      // as far as without the projection.
      expect(rising.reason).toBe("ScaleDown");
      expect(rising.desiredReplicas).toBe(flat.desiredReplicas);
      return;
    }
    throw new Error("no demand that four replicas carry and a projection puts at six");
  });
});

describe("a queue that just drained", () => {
  it("leaves neither its full batches in the running figure nor its latency in the correction", () => {
    // The previous window held a queue (full batches of 256, p95 TPOT far over the SLO); now the
    // queue is gone and 60 requests run per pod.
    const o = observe(
      { currentReplicas: 8, readyReplicas: 8, scrapedReplicas: 8 },
      { running: 8 * 60, waiting: 0, requestsPerSecond: 100, tpotP95: 0.03 },
    );
    const afterQueue: AutoscalerState = { ...settled(o), startedAt: 0, running: 8 * 256, queued: true };
    const fresh = { ...afterQueue, queued: false, running: 8 * 60 };
    const fast = { ...policy, maxScaleUpPerMinute: 100 };
    const d = decideReplicas(fast, sps, o, afterQueue);
    const steady = decideReplicas(fast, sps, o, fresh);
    expect(d.decision.figures.correction).toEqual(initialState().correction);
    expect(d.state.running).toBe(8 * 60);
    // Sized as if the queue had never been (the window's own p95 still counts as a breach: +1 at most).
    expect(d.decision.desiredReplicas).toBeLessThanOrEqual(Math.max(9, steady.decision.desiredReplicas));
    // Without the marker, the full batches would be averaged in and ask for far more.
    const averaged = decideReplicas(fast, sps, o, { ...afterQueue, queued: undefined });
    expect(averaged.decision.desiredReplicas).toBeGreaterThan(d.decision.desiredReplicas);
  });
});
