// lengthTuning Apply's pure decision: the gain threshold, the refusals (engine, load adaptation, a
// user's schedule, deployments vLLM cannot switch lengths on), hysteresis against what runs, the
// cool-down after a rollout, and no retry of a rolled-back schedule until the figures move.
import { describe, expect, it } from "vitest";
import { DEFAULT_SHAPE } from "./capacity.ts";
import { type LengthRolloutState, lengthApplyBlocker, materialChange } from "./length-apply.ts";
import { type LengthTuningInput, tokensAt, tuneLength, undilutedAcceptance } from "./speculation.ts";
import { QWEN3_8B_H200, spsFromModel } from "./sps.ts";

const sps = spsFromModel(QWEN3_8B_H200);
const WEAK = [0.7, 0.4, 0.2, 0.1]; // tau 2.4 at k = 4: short drafts pay at high batch
const T = Date.parse("2026-12-01T12:00:00Z");
const MIN = 60_000;
const input = (over: Partial<LengthTuningInput> = {}): LengthTuningInput => ({
  mode: "Apply",
  acceptanceByPosition: WEAK,
  currentTokens: 4,
  maxTokens: 4,
  engine: "vllm",
  loadAdaptation: "Engine",
  currentBatch: 110,
  minGain: 0.1,
  slo: {},
  work: { promptTokens: 100, outputTokens: 1000 },
  shape: DEFAULT_SHAPE,
  nowMs: T,
  cooldownMs: 60 * MIN,
  ...over,
});
const proposal = () => tuneLength(sps, input());

describe("lengthTuning Apply: when a schedule is worth a rolling restart", () => {
  it("applies a schedule whose predicted goodput gain clears the threshold, in vLLM's form", () => {
    const t = proposal();
    expect(t.action).toBe("apply");
    expect(t.predictedGain).toBeGreaterThan(0.1);
    expect(t.reason).toMatch(/predicted goodput gain \d+\.\d% at batch 110/);
    // vLLM 0.33.0 accepts sorted, contiguous, non-overlapping ranges starting at batch 1.
    expect(t.ranges[0]?.minBatch).toBe(1);
    for (const [i, r] of t.ranges.slice(1).entries())
      expect(r.minBatch).toBe((t.ranges[i]?.maxBatch ?? 0) + 1);
    expect(t.tau).toBeCloseTo(2.4);
    expect(t.currentBatch).toBe(110);
  });

  it("does not act on a small gain, nor on a threshold the gain just misses", () => {
    const low = tuneLength(sps, input({ currentBatch: 8 }));
    expect(low.action).toBe("recommend");
    expect(low.reason).toMatch(/below 10%, not worth a rolling restart/);
    const gain = proposal().predictedGain ?? 0;
    expect(tuneLength(sps, input({ minGain: gain + 0.01 })).action).toBe("recommend");
    expect(tuneLength(sps, input({ minGain: gain - 0.01 })).action).toBe("apply");
  });

  const refusals: [string, Partial<LengthTuningInput>, RegExp][] = [
    ["SGLang", { engine: "sglang" }, /Apply needs engine vllm/],
    ["the reference engine", { engine: "reference" }, /Apply needs engine vllm/],
    ["loadAdaptation Off", { loadAdaptation: "Off" }, /Apply needs speculative\.loadAdaptation Engine/],
    [
      "a user's lengthByBatchSize",
      { userLengthByBatchSize: [{ minBatch: 1, maxBatch: 256, tokens: 4 }] },
      /set by the user; not overwritten/,
    ],
    ["an unsupported deployment", { unsupported: "--data-parallel-size 2: off" }, /Apply refused: --data/],
  ];
  for (const [name, over, reason] of refusals)
    it(`refuses with a clear reason: ${name}`, () => {
      const t = tuneLength(sps, input(over));
      expect(t.action).toBe("recommend");
      expect(t.reason).toMatch(reason);
      expect(t.ranges.length).toBeGreaterThan(0); // still reported
    });

  it("hysteresis: the gain is against what runs, so an applied schedule is not re-proposed or undone", () => {
    const applied = proposal().ranges;
    const rollout: LengthRolloutState = { state: "Promoted", lengths: { applied, outcome: "Promoted" } };
    const again = tuneLength(sps, input({ rollout }));
    expect(again.action).toBe("recommend");
    expect(again.reason).toMatch(/already applied/);
    // The load falls back to batch 8: the tuned schedule gives the same length there as what
    // runs, so nothing to gain and no flap back to the static length.
    const quiet = tuneLength(sps, input({ rollout, currentBatch: 8 }));
    expect(quiet.action).toBe("recommend");
    // The user's schedule, when set, is what runs: the gain is measured against it.
    const user = tuneLength(sps, input({ userLengthByBatchSize: applied }));
    expect(user.predictedGain).toBe(0);
  });

  it("cool-down after a length rollout ends; a rollout in flight blocks a new one", () => {
    const ranges = proposal().ranges;
    const ended = (
      minutesAgo: number,
      outcome: "Promoted" | "RolledBack" = "Promoted",
    ): LengthRolloutState => ({
      state: outcome,
      candidateKind: "Length",
      lengths: {
        applied: [{ minBatch: 1, maxBatch: 256, tokens: 3 }],
        outcome,
        endTime: new Date(T - minutesAgo * MIN).toISOString(),
        proposedTau: 3,
        proposedBatch: 20,
      },
    });
    const p = { ranges, tau: 2.4, batch: 110 };
    expect(lengthApplyBlocker(ended(10), p, T, 60 * MIN)).toMatch(/cooling down until 2026-12-01T12:50:00Z/);
    expect(lengthApplyBlocker(ended(61), p, T, 60 * MIN)).toBeUndefined();
    const t = tuneLength(sps, input({ rollout: ended(10) }));
    expect(t.action).toBe("recommend");
    expect(t.reason).toMatch(/but cooling down/);
    expect(lengthApplyBlocker({ state: "Canary", candidateKind: "Length" }, p, T, 0)).toMatch(/on a canary/);
    expect(lengthApplyBlocker({ state: "Canary", candidateDraft: "hf://o/new" }, p, T, 0)).toMatch(
      /draft hf:\/\/o\/new is on a canary/,
    );
    expect(
      lengthApplyBlocker(
        { state: "RolledBack", currentDraft: "hf://o/a", candidateDraft: "hf://o/b" },
        p,
        T,
        0,
      ),
    ).toMatch(/draft hf:\/\/o\/b was rolled back/);
  });

  it("a rolled-back schedule is not retried until tau or the load move materially", () => {
    const ranges = proposal().ranges;
    const rolledBack: LengthRolloutState = {
      state: "RolledBack",
      candidateKind: "Length",
      lengths: {
        candidate: ranges,
        outcome: "RolledBack",
        endTime: new Date(T - 120 * MIN).toISOString(),
        proposedTau: 2.4,
        proposedBatch: 110,
      },
    };
    const same = tuneLength(sps, input({ rollout: rolledBack }));
    expect(same.action).toBe("recommend");
    expect(same.reason).toMatch(/rolled back at .*; none is tried again until tau moves 10% from 2\.40/);
    const l = rolledBack.lengths ?? {};
    expect(materialChange(l, { ranges, tau: 2.5, batch: 150 })).toBe(false);
    expect(materialChange(l, { ranges, tau: 2.7, batch: 110 })).toBe(true);
    expect(materialChange(l, { ranges, tau: 2.4, batch: 230 })).toBe(true);
    // A clearly different acceptance (tau 2.4 -> 2.9) is a new situation: tried again.
    const moved = tuneLength(
      sps,
      input({ rollout: rolledBack, acceptanceByPosition: [0.8, 0.55, 0.35, 0.2] }),
    );
    expect(moved.tau).toBeCloseTo(2.9);
    expect(moved.action).toBe("apply");
  });

  it("reads diluted positions from the profile at proposal time under an applied schedule", () => {
    const applied = [
      { minBatch: 1, maxBatch: 63, tokens: 4 },
      { minBatch: 64, maxBatch: 256, tokens: 2 },
    ];
    // Live: positions 2 and 3 drafted only at low batch, so their per-draft rates read low.
    expect(undilutedAcceptance([0.7, 0.4, 0.05, 0.02], applied, WEAK)).toEqual([0.7, 0.4, 0.2, 0.1]);
    expect(undilutedAcceptance([0.7, 0.4, 0.05], undefined, WEAK)).toEqual([0.7, 0.4, 0.05]);
    expect(tokensAt(applied, 1, 9)).toBe(4);
    expect(tokensAt(applied, 64, 9)).toBe(2);
    expect(tokensAt(applied, 1000, 9)).toBe(2); // vLLM carries the last range's K to its maximum batch
  });
});
