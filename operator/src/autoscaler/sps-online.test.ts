import { describe, expect, it } from "vitest";
import { DEFAULT_SHAPE } from "./capacity.ts";
import { noFigures, type Signals } from "./signals.ts";
import { QWEN3_8B_H200, type SpsFunction, spsFromModel } from "./sps.ts";
import {
  correctedSps,
  describeLearned,
  type EngineSteps,
  emptyLearned,
  factorAt,
  learn,
  learnFromWindow,
  MAX_BUCKETS,
  observe,
  restoreLearned,
  type SpsLearned,
  type TokenIntervals,
  tokenIntervalSteps,
} from "./sps-online.ts";

const work = { promptTokens: 600, outputTokens: 400 };
const prior = spsFromModel(QWEN3_8B_H200);
/** The true curve: 20% slower than the prior at small batches, 35% slower near saturation. */
const truth: SpsFunction = (b, c, r) => prior(b, c, r) * (b < 512 ? 0.8 : 0.65);

/** Noise-free-ish seeded uniform in [-1, 1]. */
function noise(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (2 * s) / 2 ** 31 - 1;
  };
}

/** What one engine's counters say over a 30 s window at `requests` requests of k=7, step times per `sps`. */
function window(sps: SpsFunction, requests: number, jitter = 0, promptPerStep = 20): EngineSteps {
  const k = 7;
  const batch = requests * (1 + k);
  const context = work.promptTokens + work.outputTokens / 2;
  const decode = 1 / sps(batch, context, requests);
  const prefill =
    promptPerStep / (DEFAULT_SHAPE.prefillChunk * sps(DEFAULT_SHAPE.prefillChunk, context, requests));
  const stepSeconds = (decode + prefill) * (1 + jitter);
  const steps = 30 / stepSeconds;
  return {
    steps,
    intervals: steps * requests,
    intervalSeconds: steps * requests * stepSeconds,
    drafts: steps * requests,
    draftTokens: steps * requests * k,
    promptTokens: steps * promptPerStep,
  };
}

function learnFrom(state: SpsLearned, s: EngineSteps, kv: number | null = 0.5): SpsLearned {
  const o = observe(prior, [s], kv, work, DEFAULT_SHAPE);
  return "observations" in o ? o.observations.reduce(learn, state) : state;
}

describe("online SPS(B)", () => {
  it("an observation against the true prior reads a factor of 1", () => {
    const o = observe(prior, [window(prior, 32)], 0.5, work, DEFAULT_SHAPE);
    expect("observations" in o && o.observations[0]?.factor).toBeCloseTo(1, 6);
    expect("observations" in o && o.observations[0]?.batch).toBeCloseTo(256, 6);
  });

  it("judges each engine on its own figures: a loaded and a light engine are two observations", () => {
    const o = observe(prior, [window(truth, 4), window(truth, 100)], 0.5, work, DEFAULT_SHAPE);
    if (!("observations" in o)) throw new Error("expected observations");
    expect(o.observations.map((x) => Math.round(x.batch))).toEqual([32, 800]);
    expect(o.observations[0]?.factor).toBeCloseTo(0.8, 1);
    expect(o.observations[1]?.factor).toBeCloseTo(0.65, 1);
  });

  it("converges to the true curve from noisy windows, by batch-size bucket", () => {
    const next = noise(7);
    let state = emptyLearned("model");
    for (let i = 0; i < 200; i++) {
      const requests = [4, 12, 40, 100, 200][i % 5] as number;
      state = learnFrom(state, window(truth, requests, 0.08 * next()));
    }
    for (const [requests, want] of [
      [4, 0.8],
      [12, 0.8],
      [40, 0.8],
      [100, 0.65],
      [200, 0.65],
    ] as const)
      expect(factorAt(state, requests * 8), `B ${requests * 8}`).toBeCloseTo(want, 1);
    const sps = correctedSps(prior, state);
    expect(sps(1600, 800, 200) / truth(1600, 800, 200)).toBeGreaterThan(0.9);
    expect(sps(1600, 800, 200) / truth(1600, 800, 200)).toBeLessThan(1.1);
    expect(describeLearned(state)).toMatch(
      /corrected online from 200 windows \(factor 0\.6\d-0\.8\d at B 32-2047\)/,
    );
  });

  it("does not move on windows that cannot tell: idle, prefill-bound, KV cache full, no step figures", () => {
    const idle = { ...window(truth, 8), steps: 10, intervals: 10 };
    const prefillBound = window(truth, 8, 0, 4000);
    for (const [s, kv] of [
      [idle, 0.1],
      [prefillBound, 0.5],
      [window(truth, 64), 0.99],
      [null, 0.5],
    ] as const) {
      const o = observe(prior, s ? [s] : s, kv, work, DEFAULT_SHAPE);
      expect(o).toHaveProperty("skipped");
    }
    expect(learnFrom(emptyLearned("m"), idle)).toEqual(emptyLearned("m"));
  });

  it("towards saturation takes the lowest factor seen", () => {
    const slowAtMid: SpsFunction = (b, c, r) => prior(b, c, r) * (b < 64 ? 0.9 : 0.7);
    let state = emptyLearned("m");
    for (let i = 0; i < 6; i++) state = learnFrom(state, window(slowAtMid, i % 2 ? 3 : 12));
    expect(factorAt(state, 4000)).toBeCloseTo(Math.min(...state.buckets.map((b) => b.factor)), 6);
    expect(factorAt(state, 4000)).toBeLessThan(0.8);
  });

  it("extrapolates no optimism beyond the observed range; keeps pessimism", () => {
    const fast: SpsFunction = (b, c, r) => prior(b, c, r) * 1.3;
    let state = emptyLearned("m");
    for (let i = 0; i < 5; i++) state = learnFrom(state, window(fast, 4));
    expect(factorAt(state, 32)).toBeCloseTo(1.3, 2);
    // Saturation was never observed: the prior there, not 1.3x it; and the correction never raises the prior.
    expect(factorAt(state, 2048)).toBe(1);
    expect(correctedSps(prior, state)(32, 800, 4)).toBe(prior(32, 800, 4));
    let slow = emptyLearned("m");
    for (let i = 0; i < 5; i++) slow = learnFrom(slow, window(truth, 4));
    expect(factorAt(slow, 2048)).toBeCloseTo(0.8, 1);
    expect(factorAt(slow, 2048)).toBeLessThan(1);
    // One window is not trusted yet.
    expect(correctedSps(prior, learnFrom(emptyLearned("m"), window(truth, 4)))).toBe(prior);
  });

  it("forgets: a changed curve takes over within the memory", () => {
    let state = emptyLearned("m");
    for (let i = 0; i < 50; i++) state = learnFrom(state, window(truth, 4));
    for (let i = 0; i < 60; i++) state = learnFrom(state, window(prior, 4));
    expect(factorAt(state, 32)).toBeCloseTo(1, 1);
  });

  it("stays bounded and restarts from its persisted state; a different prior starts over", () => {
    let state = emptyLearned("cm/a");
    for (let i = 0; i < 40; i++)
      state = learn(state, {
        batch: 2 ** (i % 30),
        requests: 1,
        context: 0,
        promptTokensPerStep: 0,
        stepSeconds: 0.01,
        factor: 100,
      });
    expect(state.buckets.length).toBeLessThanOrEqual(MAX_BUCKETS);
    expect(Math.max(...state.buckets.map((b) => b.factor))).toBeLessThanOrEqual(4);
    const persisted = JSON.parse(JSON.stringify(state));
    expect(restoreLearned(persisted, "cm/a")).toEqual(state);
    expect(restoreLearned(persisted, "cm/b")).toEqual(emptyLearned("cm/b"));
    // Garbage in status is dropped, never thrown on.
    expect(
      restoreLearned({ prior: "cm/a", windows: 3, buckets: [{ batch: 3, factor: -1 }, null] }, "cm/a"),
    ).toEqual({
      prior: "cm/a",
      windows: 3,
      buckets: [],
    });
    expect(restoreLearned(undefined, "x")).toEqual(emptyLearned("x"));
  });
});

/**
 * What one SGLang engine's figures say over the same 30 s window as window(): per output token
 * (each request-step brings `tau` tokens; _sum gains the step's interval once per request).
 */
function sglangWindow(
  sps: SpsFunction,
  requests: number,
  tau: number,
  verifyTokens?: number,
): TokenIntervals {
  const w = window(sps, requests);
  return {
    tokens: w.intervals * tau,
    seconds: w.intervalSeconds,
    acceptLength: tau,
    ...(verifyTokens !== undefined ? { verifyTokens } : {}),
    promptTokens: w.promptTokens,
    running: requests,
  };
}

const sglangSignals = (tokenIntervals: TokenIntervals[]): Signals => ({
  ...noFigures("sglang", 30),
  kvCacheUsage: 0.5,
  tokenIntervals,
});

describe("online SPS(B) from SGLang's token times", () => {
  const learnSglang = (state: SpsLearned, t: TokenIntervals[], k?: number) =>
    learnFromWindow(state, prior, sglangSignals(t), work, DEFAULT_SHAPE, k);

  it("learns the same factors as from vLLM's step counts of the same engine", () => {
    let fromSglang = emptyLearned("m");
    let fromVllm = emptyLearned("m");
    for (let i = 0; i < 20; i++) {
      const requests = [4, 40, 100, 200][i % 4] as number;
      // k = 7: the verify window is 8 (spec_num_draft_tokens, bonus slot included).
      fromSglang = learnSglang(fromSglang, [sglangWindow(truth, requests, 3.2, 8)]).state;
      fromVllm = learnFrom(fromVllm, window(truth, requests));
    }
    expect(fromSglang.buckets.map((b) => b.batch)).toEqual(fromVllm.buckets.map((b) => b.batch));
    for (const [a, b] of fromSglang.buckets.map((x, i) => [x, fromVllm.buckets[i]] as const))
      expect(a.factor).toBeCloseTo(b?.factor ?? 0, 6);
    expect(factorAt(fromSglang, 32)).toBeCloseTo(0.8, 1);
    expect(factorAt(fromSglang, 1600)).toBeCloseTo(0.65, 1);
  });

  it("a per-token interval read as a step would be tau times too fast: the factor says tau x", () => {
    const t = sglangWindow(prior, 32, 3, 8);
    const o = learnSglang(emptyLearned("m"), [t]);
    expect(o.observations?.[0]?.factor).toBeCloseTo(1, 6);
    expect(o.observations?.[0]?.stepSeconds).toBeCloseTo((t.seconds / t.tokens) * 3, 9);
    // The misreading: one interval per token, as vLLM's are per request-step.
    const misread = { ...(tokenIntervalSteps(t, undefined) as EngineSteps), intervals: t.tokens };
    const wrong = observe(prior, [misread], 0.5, work, DEFAULT_SHAPE);
    expect("observations" in wrong && wrong.observations[0]?.factor).toBeCloseTo(3, 6);
  });

  it("takes the configured draft tokens where the engine does not expose its verify window", () => {
    const o = learnSglang(emptyLearned("m"), [sglangWindow(prior, 32, 3)], 7);
    expect(o.observations?.[0]?.batch).toBeCloseTo(256, 6);
    expect(o.observations?.[0]?.factor).toBeCloseTo(1, 6);
    expect(learnSglang(emptyLearned("m"), [sglangWindow(prior, 32, 3)]).skipped).toBe(
      "the verify window is unknown",
    );
  });

  it("learns nothing from a window its figures cannot tell: idle, no acceptance length, no running", () => {
    const busy = sglangWindow(truth, 16, 3, 8);
    for (const [t, why] of [
      [{ ...busy, tokens: 0, seconds: 0 }, "no decode steps in the window"],
      [{ ...busy, tokens: 90, seconds: 0.5 }, "too few engine steps in the window"],
      [{ ...busy, acceptLength: undefined }, "no acceptance length to count steps by"],
      [{ ...busy, running: 0 }, "no running requests to count steps by"],
    ] as const) {
      const l = learnSglang(emptyLearned("m"), [t]);
      expect(l.skipped).toBe(why);
      expect(l.state).toEqual(emptyLearned("m"));
    }
  });
});
