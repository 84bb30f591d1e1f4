// lengthTuning Apply on the SpecServe side, pure: a proposal starts a length canary beside the
// stable pods (same draft, the new schedule), a running one continues, a draft change supersedes
// it, the user's lengthByBatchSize stops it; the length gate promotes or rolls back on measured
// first-position acceptance, TPOT SLO and per-user speed; the Task carries the applied schedule.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type SpecServe, specServeResource } from "../../api/kinds.ts";
import { DEFAULT_SHAPE } from "../../autoscaler/capacity.ts";
import { tokensAt, tuneLength } from "../../autoscaler/speculation.ts";
import { QWEN3_8B_H200, spsFromModel } from "../../autoscaler/sps.ts";
import type { GateSettings } from "./gate.ts";
import {
  applyLengthVerdict,
  dataParallelSize,
  decideLengthRollout,
  type LengthMeasurement,
  lengthApplyUnsupported,
  planLengthRollout,
} from "./length-rollout.ts";
import { serveTask } from "./plan.ts";
import { planRollout, type ReadyDraft, type RolloutStatus } from "./rollout.ts";

const RANGES = [
  { minBatch: 1, maxBatch: 63, tokens: 4 },
  { minBatch: 64, maxBatch: 256, tokens: 2 },
];
const NOW = { iso: "2026-12-01T12:00:00Z", ms: Date.parse("2026-12-01T12:00:00Z") };
const proposal = {
  action: "apply" as const,
  ranges: RANGES,
  predictedGain: 0.36,
  tau: 2.4,
  currentBatch: 110,
  acceptanceByPosition: [0.7, 0.4, 0.2, 0.1],
  reason: "predicted goodput gain 36.0% at batch 110",
};

function specServe(spec: Record<string, unknown> = {}, status: Record<string, unknown> = {}): SpecServe {
  return specServeResource.parse({
    apiVersion: "specops.dev/v1alpha1",
    kind: "SpecServe",
    metadata: { name: "chat", namespace: "ns" },
    spec: {
      target: { uri: "hf://o/t" },
      draft: { source: { uri: "hf://o/a" } },
      method: "eagle3",
      speculative: { numSpeculativeTokens: 4, loadAdaptation: "Engine", lengthTuning: "Apply" },
      ...spec,
    },
    status: {
      autoscaling: { reason: "AtLimit", speculationLength: proposal },
      ...status,
    },
  });
}
const draft = (uri: string): ReadyDraft => ({ state: "ready", source: { uri }, display: uri });
const stable: RolloutStatus = { state: "Stable", currentDraft: "hf://o/a" };
const plan = (ss: SpecServe, previous: RolloutStatus | undefined, resolved = "hf://o/a") =>
  planLengthRollout(
    ss,
    planRollout(ss, draft(resolved), previous, { hasServer: true, now: NOW.iso }),
    previous,
    NOW,
  );

describe("planLengthRollout", () => {
  it("a proposal starts a length canary: same draft, the new schedule, the figures it came from", () => {
    const p = plan(specServe(), stable);
    expect(p.canary?.display).toBe("hf://o/a");
    expect(p.stable.display).toBe("hf://o/a");
    expect(p.canaryLengths).toEqual(RANGES);
    expect(p.stableLengths).toBeUndefined();
    expect(p.rollout).toMatchObject({
      state: "Canary",
      candidateKind: "Length",
      currentDraft: "hf://o/a",
      candidateDraft: "hf://o/a",
      startTime: NOW.iso,
      lengths: { candidate: RANGES, predictedGain: 0.36, proposedTau: 2.4, proposedBatch: 110 },
    });
    expect(p.rollout.message).toMatch(/1-63:4, 64-256:2 \(predicted gain \+36\.0%\)/);
  });

  it("continues a running length canary from status, and a draft change supersedes it", () => {
    const running = plan(specServe(), stable).rollout;
    const again = plan(specServe(), running);
    expect(again.rollout).toEqual(running);
    expect(again.canaryLengths).toEqual(RANGES);
    const drafted = plan(specServe({ draft: { source: { uri: "hf://o/b" } } }), running, "hf://o/b");
    expect(drafted.rollout).toMatchObject({ state: "Canary", candidateDraft: "hf://o/b" });
    expect(drafted.rollout.candidateKind).toBeUndefined();
    expect(drafted.rollout.lengths).toMatchObject({ outcome: "Superseded", endTime: NOW.iso });
    expect(drafted.canary?.display).toBe("hf://o/b");
  });

  it("carries the applied schedule onto the stable and a draft canary's Tasks", () => {
    const promoted: RolloutStatus = {
      state: "Promoted",
      currentDraft: "hf://o/a",
      candidateDraft: "hf://o/a",
      candidateKind: "Length",
      lengths: { applied: RANGES, outcome: "Promoted", endTime: NOW.iso },
    };
    const quiet = specServe({}, { autoscaling: { reason: "AtLimit" } });
    expect(plan(quiet, promoted).stableLengths).toEqual(RANGES);
    const drafted = plan(quiet, promoted, "hf://o/b");
    expect(drafted.canaryLengths).toEqual(RANGES);
    expect(drafted.rollout.lengths?.applied).toEqual(RANGES);
    const ss = specServe();
    const task = serveTask(ss, { uri: "hf://o/a" }, RANGES) as { params: { speculative: unknown } };
    expect(task.params.speculative).toMatchObject({ lengthByBatchSize: RANGES, lengthTuning: "Apply" });
    // Read back from the API server the keys come sorted; the Task (and its hash) must not change.
    const sorted = RANGES.map(({ minBatch, maxBatch, tokens }) => ({ maxBatch, minBatch, tokens }));
    expect(JSON.stringify(serveTask(ss, { uri: "hf://o/a" }, sorted))).toBe(JSON.stringify(task));
  });

  it("never over a user's lengthByBatchSize: it wins in the Task, stops a length canary, drops the applied", () => {
    const user = [{ minBatch: 1, maxBatch: 256, tokens: 3 }];
    const ss = specServe({
      speculative: {
        numSpeculativeTokens: 4,
        loadAdaptation: "Engine",
        lengthTuning: "Apply",
        lengthByBatchSize: user,
      },
    });
    const running = plan(specServe(), stable).rollout;
    const p = plan(ss, running);
    expect(p.canary).toBeUndefined();
    expect(p.rollout).toMatchObject({ state: "Stable", candidateKind: "Length" });
    expect(p.rollout.message).toMatch(/lengthByBatchSize is set and wins/);
    expect(p.rollout.lengths).toBeUndefined();
    const task = serveTask(ss, { uri: "hf://o/a" }, RANGES) as { params: { speculative: unknown } };
    expect(task.params.speculative).toMatchObject({ lengthByBatchSize: user });
    expect(plan(ss, stable).canary).toBeUndefined();
  });

  it("acts on nothing but an apply proposal, and not while blocked or unsupported", () => {
    const recommend = specServe(
      {},
      { autoscaling: { reason: "AtLimit", speculationLength: { ...proposal, action: "recommend" } } },
    );
    expect(plan(recommend, stable).canary).toBeUndefined();
    const cooling: RolloutStatus = {
      ...stable,
      state: "RolledBack",
      candidateDraft: "hf://o/a",
      candidateKind: "Length",
      lengths: {
        candidate: RANGES,
        outcome: "RolledBack",
        endTime: NOW.iso,
        proposedTau: 2.4,
        proposedBatch: 110,
      },
    };
    expect(plan(specServe(), cooling).canary).toBeUndefined();
    const dp = specServe({ extraEngineArgs: ["--data-parallel-size", "2"] });
    expect(plan(dp, stable).canary).toBeUndefined();
    expect(lengthApplyUnsupported(dp)).toMatch(/turns num_speculative_tokens_per_batch_size off/);
    expect(dataParallelSize(["--data-parallel-size=4"])).toBe(4);
    expect(dataParallelSize(["-dp", "2"])).toBe(2);
    expect(dataParallelSize(["--max-model-len=8192"])).toBe(1);
  });
});

const settings: GateSettings & { tpotP95?: number } = {
  maxTauDrop: 0.05,
  minRounds: 1000,
  confidence: 0.95,
  analysisWindowMs: 60_000,
};
const side = (over: Partial<LengthMeasurement> = {}): LengthMeasurement => ({
  rounds: 20_000,
  tokensPerSecondPerUser: 50,
  firstAcceptance: 0.7,
  firstStandardError: Math.sqrt((0.7 * 0.3) / 20_000),
  tpotP95: 0.02,
  ...over,
});

describe("the length gate", () => {
  it("promotes a schedule that holds acceptance and speeds users up", () => {
    const d = decideLengthRollout(side({ tokensPerSecondPerUser: 62 }), side(), settings, 60_000);
    expect(d).toMatchObject({ verdict: "Promote", reason: "SpeedHeld" });
    expect(d.message).toMatch(/62\.0 tokens\/s on the canary, 50\.0 on the stable pods \(\+24\.0%\)/);
  });
  it("waits for the window and the rounds; rolls back when traffic never comes", () => {
    expect(decideLengthRollout(side(), side(), settings, 30_000).verdict).toBe("Analyzing");
    const few = side({ rounds: 10 });
    expect(decideLengthRollout(few, side(), settings, 60_000)).toMatchObject({
      verdict: "Analyzing",
      reason: "WaitingForRounds",
    });
    expect(decideLengthRollout(few, side(), settings, 180_000)).toMatchObject({
      verdict: "RollBack",
      reason: "InsufficientTraffic",
    });
  });
  it("rolls back a schedule that slows users, breaks the TPOT SLO, or changes the draft's acceptance", () => {
    expect(decideLengthRollout(side({ tokensPerSecondPerUser: 45 }), side(), settings, 60_000)).toMatchObject(
      {
        verdict: "RollBack",
        reason: "SlowerPerUser",
      },
    );
    expect(
      decideLengthRollout(side({ tpotP95: 0.03 }), side(), { ...settings, tpotP95: 0.025 }, 60_000),
    ).toMatchObject({ verdict: "RollBack", reason: "SloBroken" });
    expect(decideLengthRollout(side({ firstAcceptance: 0.6 }), side(), settings, 60_000)).toMatchObject({
      verdict: "RollBack",
      reason: "AcceptanceDropped",
    });
    // A lower tau is no reason: only the first position, which no schedule dilutes, is compared.
    expect(decideLengthRollout(side({ firstAcceptance: 0.69 }), side(), settings, 60_000).verdict).toBe(
      "Promote",
    );
  });
  it("a promoted schedule becomes the applied one (when, gain, profile); a rolled-back one is remembered", () => {
    const started = plan(specServe(), stable);
    const promote = applyLengthVerdict(
      started,
      { verdict: "Promote", reason: "SpeedHeld", message: "faster" },
      side({ tokensPerSecondPerUser: 62 }),
      side(),
      "2026-12-01T12:10:00Z",
    );
    expect(promote.canary).toBeUndefined();
    expect(promote.stableLengths).toEqual(RANGES);
    expect(promote.rollout).toMatchObject({
      state: "Promoted",
      candidateKind: "Length",
      lengths: {
        applied: RANGES,
        appliedTime: "2026-12-01T12:10:00Z",
        appliedGain: 0.36,
        appliedAcceptanceByPosition: [0.7, 0.4, 0.2, 0.1],
        candidateTokensPerSecondPerUser: 62,
        currentTokensPerSecondPerUser: 50,
        outcome: "Promoted",
        endTime: "2026-12-01T12:10:00Z",
      },
    });
    const back = applyLengthVerdict(
      started,
      { verdict: "RollBack", reason: "SlowerPerUser", message: "slower" },
      side({ tokensPerSecondPerUser: 40 }),
      side(),
      "2026-12-01T12:10:00Z",
    );
    expect(back.canary).toBeUndefined();
    expect(back.stableLengths).toBeUndefined();
    expect(back.rollout).toMatchObject({ state: "RolledBack", message: "SlowerPerUser: slower" });
    expect(back.rollout.lengths).toMatchObject({
      candidate: RANGES,
      outcome: "RolledBack",
      proposedTau: 2.4,
    });
    expect(back.rollout.lengths?.applied).toBeUndefined();
  });
});

// What vLLM 0.33.0 does with the schedule, recorded from its wheel by runtime/scripts/record_upstream_facts.py.
const DYNAMIC = JSON.parse(
  readFileSync(join(import.meta.dirname, "../../../../runtime/tests/fixtures/upstream_facts.json"), "utf8"),
).vllm.dynamicSpeculation;

describe("the schedule as vLLM 0.33.0 takes it (recorded upstream facts)", () => {
  it("tuned ranges are sorted, contiguous from batch 1, K >= 0; the last range's K runs to the end", () => {
    expect(DYNAMIC).toMatchObject({
      key: "num_speculative_tokens_per_batch_size",
      firstRangeStartsAt1: true,
      rangesSortedNonOverlapping: true,
      tokensAtLeast0: true,
      lastRangeCarriedToMaxBatch: true,
    });
    const t = tuneLength(spsFromModel(QWEN3_8B_H200), {
      mode: "Apply",
      acceptanceByPosition: [0.7, 0.4, 0.2, 0.1],
      currentTokens: 4,
      maxTokens: 4,
      engine: "vllm",
      loadAdaptation: "Engine",
      currentBatch: 110,
      minGain: 0.1,
      slo: {},
      work: { promptTokens: 100, outputTokens: 1000 },
      shape: DEFAULT_SHAPE,
    });
    expect(t.ranges[0]?.minBatch).toBe(1);
    for (const [i, r] of t.ranges.entries()) {
      expect(r.tokens).toBeGreaterThanOrEqual(0);
      if (i > 0) expect(r.minBatch).toBe((t.ranges[i - 1]?.maxBatch ?? 0) + 1);
    }
    const last = t.ranges.at(-1);
    expect(tokensAt(t.ranges, 10_000, 99)).toBe(last?.tokens);
  });
  it("Apply is refused where vLLM turns the schedule off: data parallelism", () => {
    expect(DYNAMIC.disabledUnderDataParallel).toBe(true);
    expect(lengthApplyUnsupported(specServe({ extraEngineArgs: ["--data-parallel-size=2"] }))).toMatch(
      /data parallelism/,
    );
    expect(lengthApplyUnsupported(specServe())).toBeUndefined();
  });
});
