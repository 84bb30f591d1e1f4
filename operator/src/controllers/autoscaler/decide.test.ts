import { describe, expect, it } from "vitest";
import { type SpecServe, specServeResource } from "../../api/kinds.ts";
import { DEFAULT_SHAPE } from "../../autoscaler/capacity.ts";
import { noFigures, type Signals } from "../../autoscaler/signals.ts";
import { QWEN3_8B_H200, spsFromModel } from "../../autoscaler/sps.ts";
import type { EngineSteps, TokenIntervals } from "../../autoscaler/sps-online.ts";
import { type AutoscalerMemory, externalChange, initialMemory, type StepInput, step } from "./decide.ts";
import { driftPolicy, replicaPolicy } from "./policy.ts";
import { currentOwned, disabledStatus, withoutAutoscalerFields } from "./status.ts";

const sps = spsFromModel(QWEN3_8B_H200);
const T0 = Date.parse("2026-12-01T12:00:00Z");

function specServe(
  autoscaling: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): SpecServe {
  return specServeResource.parse({
    apiVersion: "specops.dev/v1alpha1",
    kind: "SpecServe",
    metadata: { name: "chat", namespace: "ns", generation: 2 },
    spec: {
      target: { uri: "hf://Qwen/Qwen3-8B" },
      draft: { source: { uri: "hf://org/draft" } },
      method: "eagle3",
      speculative: { numSpeculativeTokens: 4 },
      replicas: 1,
      autoscaling: {
        enabled: true,
        minReplicas: 1,
        maxReplicas: 6,
        window: "10s",
        scaleDownStabilization: "30s",
        slo: { tpotP95: "8ms" },
        ...autoscaling,
      },
      drift: { baselineWindow: "30s", tolerance: 0.2 },
      ...extra,
    },
    status: { draft: "hf://org/draft" },
  });
}

/** Fleet signals: 110 requests running, 16 req/s of 100-token prompts and 1000-token outputs. */
function signals(over: Partial<Signals> = {}): Signals {
  return {
    ...noFigures("vllm", 10, { scraped: 1, appeared: [], left: [], resetSeries: 0 }),
    tau: 4,
    acceptanceByPosition: [0.9, 0.8, 0.7, 0.6],
    running: 110,
    waiting: 0,
    tokensPerSecondPerUser: 140,
    generationTokensPerSecond: 16_000,
    promptTokensPerSecond: 1_600,
    requestsPerSecond: 16,
    ...over,
  };
}

/** Runs decisions every 10 s, applying each write and status as the API server would. */
function run(
  ss: SpecServe,
  windows: (Partial<Signals> | null)[],
  memory: AutoscalerMemory = initialMemory(),
  start = T0,
  spsSource = "first-principles model",
) {
  let obj = ss;
  let mem = memory;
  let t = start;
  const out = [];
  for (const w of windows) {
    const input: StepInput = {
      ss: obj,
      autoscaling: obj.spec.autoscaling as NonNullable<SpecServe["spec"]["autoscaling"]>,
      nowMs: t,
      signals: w === null ? null : signals(w),
      metricsError: w === null ? "1 of 1 pods unreachable: connection refused" : undefined,
      readyReplicas: obj.spec.replicas,
      scrapedReplicas: w === null ? 0 : obj.spec.replicas,
      sps,
      spsSource,
      memory: mem,
    };
    const r = step(input);
    out.push(r);
    mem = r.memory;
    obj = {
      ...obj,
      spec: { ...obj.spec, replicas: r.write ?? obj.spec.replicas },
      status: { ...obj.status, ...r.status },
    };
    t += 10_000;
  }
  return { out, ss: obj, memory: mem };
}

/**
 * One engine's step figures over a 10 s window of signals(): 110 running requests, k = 4, each step
 * `slower` times the model's (decode and the window's 16000 prompt tokens of chunked prefill).
 */
function slowSteps(slower: number): EngineSteps[] {
  const context = 100 + 1000 / 2;
  const decode = 1 / sps(110 * 5, context, 110);
  const steps0 = 10 / (decode * slower);
  const prefillPerStep =
    16_000 / steps0 / (DEFAULT_SHAPE.prefillChunk * sps(DEFAULT_SHAPE.prefillChunk, context, 110));
  const stepSeconds = (decode + prefillPerStep) * slower;
  const steps = 10 / stepSeconds;
  return [
    {
      steps,
      intervals: steps * 110,
      intervalSeconds: steps * 110 * stepSeconds,
      drafts: steps * 110,
      draftTokens: steps * 110 * 4,
      promptTokens: 16_000,
      running: 110,
    },
  ];
}

/**
 * The same engine as slowSteps() as SGLang times it: per output token (tau = 4 tokens per
 * request-step, the signals' tau), the verify window not exposed (the SpecServe's k = 4 stands in).
 */
function slowTokenTimes(slower: number): TokenIntervals[] {
  return slowSteps(slower).map((e) => ({
    tokens: e.intervals * 4,
    seconds: e.intervalSeconds,
    acceptLength: 4,
    promptTokens: e.promptTokens,
    running: e.running as number,
  }));
}

describe("SPS(B) learned online in the decision", () => {
  it("learns a slower engine, decides on it, and says so in status", () => {
    const ss = specServe();
    const prior = run(ss, [{}, {}]).out.at(-1)?.status.autoscaling;
    const { out, ss: after } = run(ss, [{ steps: slowSteps(1 / 0.7) }, { steps: slowSteps(1 / 0.7) }, {}]);
    const learned = out.at(-1)?.status.autoscaling;
    expect(prior?.spsLearned).toBeUndefined();
    expect(learned?.spsLearned).toMatchObject({
      prior: "first-principles model",
      windows: 2,
      buckets: [{ batch: 512, windows: 2, factor: expect.closeTo(0.7, 2) }],
    });
    expect(learned?.spsSource).toBe(
      "first-principles model; corrected online from 2 windows (factor 0.70 at B 512-1023)",
    );
    // 30% slower steps: fewer requests per replica keep the 8 ms TPOT.
    expect(learned?.maxConcurrencyPerReplica).toBeLessThan((prior?.maxConcurrencyPerReplica ?? 0) * 0.85);
    expect(after.status?.autoscaling?.spsLearned?.windows).toBe(2);
  });

  it("an SGLang SpecServe learns from its token times and decides on them as vLLM on its steps", () => {
    const sglang = specServe({}, { engine: "sglang" });
    const sg = (over: Partial<Signals>) => ({
      engine: "sglang" as const,
      acceptanceByPosition: null,
      ...over,
    });
    const prior = run(sglang, [sg({}), sg({})]).out.at(-1)?.status.autoscaling;
    const slow = sg({ tokenIntervals: slowTokenTimes(1 / 0.7) });
    const learned = run(sglang, [slow, slow, sg({})]).out.at(-1)?.status.autoscaling;
    const vllm = run(specServe(), [{ steps: slowSteps(1 / 0.7) }, { steps: slowSteps(1 / 0.7) }, {}]).out.at(
      -1,
    )?.status.autoscaling;
    expect(prior?.spsLearned).toBeUndefined();
    expect(learned?.spsLearned).toMatchObject({
      prior: "first-principles model",
      windows: 2,
      buckets: [{ batch: 512, windows: 2, factor: expect.closeTo(0.7, 2) }],
    });
    expect(learned?.spsSource).toBe(vllm?.spsSource);
    expect(learned?.maxConcurrencyPerReplica).toBe(vllm?.maxConcurrencyPerReplica);
    expect(learned?.maxConcurrencyPerReplica).toBeLessThan((prior?.maxConcurrencyPerReplica ?? 0) * 0.85);
    // Idle windows (no tokens timed) teach nothing: the prior as given.
    const idle = sg({
      tokenIntervals: slowTokenTimes(1 / 0.7).map((t) => ({ ...t, tokens: 0, seconds: 0 })),
    });
    expect(run(sglang, [idle, idle, sg({})]).out.at(-1)?.status.autoscaling.spsLearned).toBeUndefined();
  });

  it("a restarted operator resumes from status, not from scratch", () => {
    const learnedRun = run(specServe(), [{ steps: slowSteps(1 / 0.7) }, { steps: slowSteps(1 / 0.7) }]);
    // A fresh memory (a restart) and a window without step figures: the persisted factor still applies.
    const resumed = run(learnedRun.ss, [{}], initialMemory(), T0 + 60_000).out[0]?.status.autoscaling;
    const learned = learnedRun.out.at(-1)?.status.autoscaling;
    expect(resumed?.maxConcurrencyPerReplica).toBe(learned?.maxConcurrencyPerReplica);
    expect(resumed?.spsLearned).toEqual(learned?.spsLearned);
    // Another prior (a new table) starts over.
    const other = run(learnedRun.ss, [{}], initialMemory(), T0 + 60_000, "ConfigMap ns/sps").out[0]?.status
      .autoscaling;
    expect(other?.spsLearned).toBeUndefined();
    expect(other?.spsSource).toBe("ConfigMap ns/sps");
  });

  it("spsLearning Off decides on the prior as given", () => {
    const off = specServe({ spsLearning: "Off" });
    const { out } = run(off, [{ steps: slowSteps(1 / 0.7) }, { steps: slowSteps(1 / 0.7) }, {}]);
    const plain = run(specServe(), [{}, {}, {}]).out.at(-1)?.status.autoscaling;
    expect(out.at(-1)?.status.autoscaling.spsLearned).toBeUndefined();
    expect(out.at(-1)?.status.autoscaling.spsSource).toBe("first-principles model");
    expect(out.at(-1)?.status.autoscaling.maxConcurrencyPerReplica).toBe(plain?.maxConcurrencyPerReplica);
  });
});

describe("autoscaler policy from the spec", () => {
  it("reads durations, rates and the SLO", () => {
    const ss = specServe({
      scaleUpStabilization: "5s",
      maxScaleUpRate: 2,
      slo: { tpotP95: "25ms", ttftP95: "1.5s", minTau: 2 },
    });
    const p = replicaPolicy(ss, ss.spec.autoscaling as never);
    expect(p).toMatchObject({
      minReplicas: 1,
      maxReplicas: 6,
      scaleUpStabilizationSeconds: 5,
      scaleDownStabilizationSeconds: 30,
      maxScaleUpPerMinute: 2,
      staleAfterSeconds: 30,
      numSpeculativeTokens: 4,
      slo: { tpotP95: 0.025, ttftP95: 1.5 },
    });
    expect(driftPolicy(ss, ss.spec.autoscaling as never)).toEqual({
      enabled: true,
      baselineWindowSeconds: 30,
      tolerance: 0.2,
      windowSeconds: 10,
      minTau: 2,
    });
  });
});

describe("one autoscaler decision", () => {
  it("keeps one replica at tau 4 and scales up when tau falls to 2 at the same load, before any breach", () => {
    const { out } = run(specServe(), [{}, {}, { tau: 2, acceptanceByPosition: [0.6, 0.3, 0.1, 0] }]);
    expect(out[0]?.write).toBeUndefined();
    expect(out[1]?.status.autoscaling).toMatchObject({
      reason: expect.stringMatching(/Steady|AtLimit/),
      tau: 4,
      desiredReplicas: 1,
    });
    const up = out[2];
    expect(up?.write).toBeGreaterThanOrEqual(2);
    expect(up?.write).toBeLessThanOrEqual(6);
    expect(up?.status.autoscaling).toMatchObject({ reason: "ScaleUp", tau: 2 });
    expect(up?.status.autoscaling.predictedTokensPerSecondPerUser).toBeGreaterThan(0);
    expect(up?.events).toContainEqual(expect.objectContaining({ type: "Normal", reason: "ScaledUp" }));
    expect(up?.status.decisions?.[0]).toMatchObject({
      from: 1,
      to: up?.write,
      reason: expect.stringContaining("tau"),
    });
  });

  it("scales up on a measured TPOT breach even when the model says one replica is enough", () => {
    const { out } = run(specServe(), [
      { running: 20, requestsPerSecond: 3, generationTokensPerSecond: 3000, tpotP95: 0.012 },
    ]);
    expect(out[0]?.write).toBe(2);
  });

  it("never exceeds maxReplicas under pressure and never goes below minReplicas when idle", () => {
    const ss = specServe({
      maxReplicas: 3,
      minReplicas: 2,
      scaleDownStabilization: "0s",
      maxScaleDownRate: 10,
    });
    const hot = run(
      { ...ss, spec: { ...ss.spec, replicas: 2 } },
      Array(6).fill({
        running: 2000,
        waiting: 500,
        requestsPerSecond: 300,
        generationTokensPerSecond: 300_000,
        promptTokensPerSecond: 30_000,
      }),
    );
    expect(Math.max(...hot.out.map((r) => r.decision.desiredReplicas))).toBe(3);
    // Past the scale-down interval after the last scale-up.
    const idle = run(
      hot.ss,
      Array(30).fill({
        running: 0,
        waiting: 0,
        requestsPerSecond: 0,
        generationTokensPerSecond: 0,
        promptTokensPerSecond: 0,
      }),
      hot.memory,
    );
    expect(idle.ss.spec.replicas).toBe(2);
    expect(Math.min(...idle.out.map((r) => r.decision.desiredReplicas))).toBe(2);
  });

  it("scales down slowly: not within the down-stabilisation window, then one replica a minute", () => {
    const ss = specServe({ scaleDownStabilization: "30s", maxScaleDownRate: 1 });
    const start = { ...ss, spec: { ...ss.spec, replicas: 4 } };
    const quiet = {
      running: 5,
      requestsPerSecond: 1,
      generationTokensPerSecond: 1000,
      promptTokensPerSecond: 100,
    };
    const { out } = run(start, Array(45).fill(quiet));
    const writes = out.map((r, i) => [i * 10, r.write]).filter(([, w]) => w !== undefined);
    // First step down only after 30 s of low recommendations, then one replica at a time, at most
    // one per 60 s (and none within the scale-down interval of the last step).
    expect(writes[0]).toEqual([30, 3]);
    expect(writes.length).toBeGreaterThanOrEqual(2);
    expect(writes.every(([, w], i) => (w as number) === 3 - i)).toBe(true);
    for (let i = 1; i < writes.length; i++)
      expect((writes[i]?.[0] as number) - (writes[i - 1]?.[0] as number)).toBeGreaterThanOrEqual(
        Math.max(60, replicaPolicy(ss, ss.spec.autoscaling as never).scaleDownIntervalSeconds ?? 0),
      );
  });

  it("holds the scale on missing metrics with MetricsAvailable=False and the reason, never to min", () => {
    const ss = specServe();
    const { out } = run({ ...ss, spec: { ...ss.spec, replicas: 3 } }, [null, null]);
    for (const r of out) {
      expect(r.write).toBeUndefined();
      const c = r.status.conditions.find((x) => x.type === "ScalingActive");
      expect(c).toMatchObject({ status: "False", reason: "MetricsMissing", observedGeneration: 2 });
      expect(c?.message).toMatch(/connection refused; replicas held at 3/);
    }
    // One decisions entry when the hold starts, not one per window.
    expect(out[1]?.status.decisions).toHaveLength(1);
  });

  it("overrides kubectl scale at the next decision with an Event, from what it last set", () => {
    const first = run(specServe(), [{}, {}]);
    expect(first.ss.spec.replicas).toBe(1);
    const scaled = { ...first.ss, spec: { ...first.ss.spec, replicas: 5 } };
    const { out } = run(scaled, [{}], first.memory);
    expect(out[0]?.write).toBe(1);
    expect(out[0]?.events).toContainEqual(
      expect.objectContaining({
        type: "Warning",
        reason: "ScaleOverridden",
        message: expect.stringMatching(/set to 5.*set to 1/),
      }),
    );
    // After a restart (no memory) the last decision in status tells the same.
    const again = run(scaled, [{}]);
    expect(again.out[0]?.write).toBe(1);
  });

  it("takes spec.replicas as it is when autoscaling was just enabled, within min and max", () => {
    const ss = specServe({ minReplicas: 2 });
    const { out } = run(ss, [null]);
    expect(out[0]?.write).toBe(2);
    expect(out[0]?.events.map((e) => e.reason)).toEqual(["ScaledUp"]);
  });

  it("sets AcceptanceHealthy=False with the figures and one Event on drift, and back on recovery", () => {
    const low = { tau: 2.5, acceptanceByPosition: [0.7, 0.4, 0.3, 0.1] };
    const { out } = run(specServe({ maxReplicas: 1 }), [{}, {}, {}, {}, {}, low, low, low, {}, {}]);
    const cond = (i: number) => out[i]?.status.conditions.find((c) => c.type === "AcceptanceHealthy");
    expect(cond(1)).toMatchObject({ status: "True", reason: "BaselinePending" });
    expect(cond(4)).toMatchObject({ status: "True", reason: "Healthy" });
    const drifted = out.findIndex((r) => r.drift.reason === "AcceptanceDrift");
    expect(drifted).toBeGreaterThan(4);
    expect(cond(drifted)).toMatchObject({ status: "False", reason: "AcceptanceDrift" });
    expect(cond(drifted)?.message).toMatch(/live tau 2\.50, baseline 4\.00/);
    const warnings = out.flatMap((r) => r.events).filter((e) => e.reason === "AcceptanceDrift");
    expect(warnings).toHaveLength(1);
    const recovered = out.findIndex((r) => r.events.some((e) => e.reason === "AcceptanceRecovered"));
    expect(recovered).toBe(8); // the first healthy window after the drift
    expect(cond(8)).toMatchObject({ status: "True", reason: "Healthy" });
    expect(out[9]?.status.autoscaling.baselineTau).toBe(4);
  });

  it("recommends a draft length per batch range in status; Apply proposes it with the figures it came from", () => {
    const rec = run(specServe(), [{}]).out[0]?.status.autoscaling.speculationLength;
    expect(rec?.action).toBe("recommend");
    expect(rec?.ranges.length).toBeGreaterThan(0);
    const applySpec = specServe(
      { minReplicas: 1, maxReplicas: 1 },
      { speculative: { numSpeculativeTokens: 4, loadAdaptation: "Engine", lengthTuning: "Apply" } },
    );
    const weak = { acceptanceByPosition: [0.7, 0.4, 0.2, 0.1], tau: 2.4 };
    const apply = run(applySpec, [weak]).out[0]?.status.autoscaling.speculationLength;
    expect(apply).toMatchObject({ action: "apply", currentBatch: 110, tau: 2.4 });
    expect(apply?.predictedGain).toBeGreaterThanOrEqual(0.1);
    expect(apply?.acceptanceByPosition).toEqual([0.7, 0.4, 0.2, 0.1]);
    expect(apply?.reason).toMatch(/predicted goodput gain/);
    // The same schedule once applied (status.rollout.lengths): the gain is against it, nothing to do.
    const applied = specServe(
      { minReplicas: 1, maxReplicas: 1 },
      { speculative: { numSpeculativeTokens: 4, loadAdaptation: "Engine", lengthTuning: "Apply" } },
    );
    applied.status = {
      ...applied.status,
      rollout: { state: "Promoted", currentDraft: "hf://org/draft", lengths: { applied: apply?.ranges } },
    };
    const after = run(applied, [weak]).out[0]?.status.autoscaling.speculationLength;
    expect(after).toMatchObject({ action: "recommend", reason: "this schedule is already applied" });
    const off = run(specServe({}, { speculative: { numSpeculativeTokens: 4, lengthTuning: "Off" } }), [{}]);
    expect(off.out[0]?.status.autoscaling.speculationLength).toBeUndefined();
  });

  it("a second identical window changes nothing it owns (status written only on change)", () => {
    const { out, ss } = run(specServe(), [{}, {}, {}]);
    const again = run(ss, [{}], out[2]?.memory, T0 + 30_000).out[0];
    expect(again?.status).toEqual(currentOwned(ss.status));
  });

  it("says so when autoscaling is off, touching nothing else", () => {
    const ss = specServe({ enabled: false });
    const s = disabledStatus(ss, T0);
    expect(s.autoscaling.reason).toBe("Disabled");
    expect(s.conditions.map((c) => [c.type, c.status])).toEqual([
      ["ScalingActive", "False"],
      ["AcceptanceHealthy", "Unknown"],
    ]);
  });
});

describe("status ownership between the two controllers", () => {
  it("the SpecServe controller's status leaves out every field the autoscaler owns", () => {
    const { ss } = run(specServe(), [{}, { tau: 2, acceptanceByPosition: [0.6, 0.3, 0.1, 0] }]);
    const status = {
      ...ss.status,
      state: "Ready" as const,
      conditions: [
        ...(ss.status?.conditions ?? []),
        { type: "Ready", status: "True" as const, reason: "Serving", message: "", lastTransitionTime: "x" },
      ],
    };
    const theirs = withoutAutoscalerFields(status);
    expect(theirs?.autoscaling).toBeUndefined();
    expect(theirs?.decisions).toBeUndefined();
    expect(theirs?.conditions?.map((c) => c.type)).toEqual(["Ready"]);
    expect(theirs?.state).toBe("Ready");
    expect(ss.status?.decisions?.length).toBeGreaterThan(0);
  });
});

describe("what counts as kubectl scale", () => {
  const base = specServe();
  const at = (spec: number, inStatus?: number) => ({
    ...base,
    spec: { ...base.spec, replicas: spec },
    status: {
      ...base.status,
      ...(inStatus === undefined ? {} : { autoscaling: { reason: "Steady", desiredReplicas: inStatus } }),
    },
  });
  it("a value the autoscaler wrote, known from memory or from status, is its own", () => {
    // The status write failed after the /scale write: memory knows.
    expect(externalChange(at(4, 3), { ...initialMemory(), lastWritten: 4 })).toEqual({ overridden: false });
    // Another operator replica led meanwhile and wrote 5: its status says so, this replica's memory is old.
    expect(externalChange(at(5, 5), { ...initialMemory(), lastWritten: 3 })).toEqual({ overridden: false });
    // Just enabled: nothing known, spec.replicas is taken as it is.
    expect(externalChange(at(2), initialMemory())).toEqual({ overridden: false });
  });
  it("anything else is someone else's, overridden back to the last decision", () => {
    expect(externalChange(at(7, 3), { ...initialMemory(), lastWritten: 3 })).toEqual({
      overridden: true,
      believed: 3,
    });
    expect(externalChange(at(7, 3), initialMemory())).toEqual({ overridden: true, believed: 3 });
  });
});
