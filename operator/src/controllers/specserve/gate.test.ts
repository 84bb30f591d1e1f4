import { describe, expect, it } from "vitest";
import { deriveSignals } from "../../autoscaler/signals.ts";
import {
  decideRollout,
  type GateSettings,
  measureTau,
  type TauMeasurement,
  verificationRounds,
  zFor,
} from "./gate.ts";

const settings: GateSettings = {
  maxTauDrop: 0.05,
  minRounds: 2000,
  confidence: 0.95,
  analysisWindowMs: 600_000,
};
const WINDOW = 600_000;

/** A measurement of n rounds whose accepted length per round has the given per-position acceptance. */
function measured(byPosition: number[], rounds: number): TauMeasurement {
  const mean = byPosition.reduce((a, b) => a + b, 0);
  const second = byPosition.reduce((a, p, i) => a + (2 * i + 1) * p, 0);
  return { tau: 1 + mean, rounds, standardError: Math.sqrt((second - mean * mean) / rounds) };
}
// Geometric-ish acceptance over k = 7 positions: tau = 1 + sum ~ 4.62.
const positions = (first: number, decay: number) => Array.from({ length: 7 }, (_, i) => first * decay ** i);
const current = positions(0.8, 0.85);
const scaleTo = (p: number[], ratio: number) => {
  // Scale acceptance so that the candidate's tau is ratio x the current one's.
  const target = (1 + p.reduce((a, b) => a + b, 0)) * ratio - 1;
  const f = target / p.reduce((a, b) => a + b, 0);
  return p.map((x) => Math.min(1, x * f));
};

describe("decideRollout: the decision table", () => {
  const cur = measured(current, 20_000);
  it("keeps analysing until the window has passed, whatever the figures", () => {
    expect(decideRollout(measured(current, 50_000), cur, settings, WINDOW - 1).verdict).toBe("Analyzing");
  });
  it("blocks a clearly worse draft", () => {
    const d = decideRollout(measured(scaleTo(current, 0.7), 5000), cur, settings, WINDOW);
    expect(d).toMatchObject({ verdict: "RollBack", reason: "TauDropped" });
    expect(d.message).toMatch(/candidate tau 3\.2\d+ over 5000 rounds, current 4\.6\d+ over 20000 rounds/);
  });
  it("promotes a better draft", () => {
    expect(decideRollout(measured(scaleTo(current, 1.1), 5000), cur, settings, WINDOW)).toMatchObject({
      verdict: "Promote",
      reason: "TauHeld",
    });
  });
  it("judges a draft only 3% worse by the bound: promoted on enough rounds, analysed on few", () => {
    const threePercentWorse = scaleTo(current, 0.97);
    // 3% is within maxTauDrop 5%: with enough rounds the lower bound clears the threshold.
    expect(
      decideRollout(measured(threePercentWorse, 200_000), measured(current, 200_000), settings, WINDOW)
        .verdict,
    ).toBe("Promote");
    // On barely enough rounds the bound straddles the threshold: keep measuring...
    const few = decideRollout(measured(threePercentWorse, 2000), measured(current, 2000), settings, WINDOW);
    expect(few).toMatchObject({ verdict: "Analyzing", reason: "WithinBound" });
    // ...and roll back if it still cannot tell after three windows.
    expect(
      decideRollout(measured(threePercentWorse, 2000), measured(current, 2000), settings, 3 * WINDOW),
    ).toMatchObject({
      verdict: "RollBack",
      reason: "Inconclusive",
    });
    // With a tighter allowance the same 3% drop is blocked.
    expect(
      decideRollout(
        measured(threePercentWorse, 200_000),
        measured(current, 200_000),
        { ...settings, maxTauDrop: 0.01 },
        WINDOW,
      ).verdict,
    ).toBe("RollBack");
  });
  it("a measurement wobbling around the threshold never flips between promote and roll back", () => {
    // Candidate tau moving within +-1% around the threshold on modest round counts.
    const verdicts = new Set<string>();
    for (const wobble of [0.94, 0.96, 0.945, 0.955, 0.95, 0.958, 0.942]) {
      verdicts.add(
        decideRollout(measured(scaleTo(current, wobble), 3000), measured(current, 3000), settings, WINDOW)
          .verdict,
      );
    }
    expect([...verdicts]).toEqual(["Analyzing"]);
  });
  it("waits for the minimum rounds on both sides; too little traffic for three windows rolls back", () => {
    expect(decideRollout(measured(current, 100), cur, settings, WINDOW)).toMatchObject({
      verdict: "Analyzing",
      reason: "WaitingForRounds",
    });
    expect(decideRollout(undefined, cur, settings, 3 * WINDOW)).toMatchObject({
      verdict: "RollBack",
      reason: "InsufficientTraffic",
    });
  });
  it("a candidate above the current draft but below minTau is rolled back", () => {
    expect(
      decideRollout(measured(scaleTo(current, 1.05), 50_000), cur, { ...settings, minTau: 5.5 }, WINDOW),
    ).toMatchObject({
      verdict: "RollBack",
      reason: "BelowMinTau",
    });
  });
});

describe("measureTau through the project's metrics parser", () => {
  const scrape = (drafts: number, accepted: number, perPos: number[], generated: number) =>
    [
      "# TYPE vllm:spec_decode_num_drafts counter",
      `vllm:spec_decode_num_drafts_total{engine="0",model_name="m"} ${drafts}`,
      "# TYPE vllm:spec_decode_num_accepted_tokens counter",
      `vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="m"} ${accepted}`,
      "# TYPE vllm:spec_decode_num_accepted_tokens_per_pos counter",
      ...perPos.map(
        (v, i) =>
          `vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="${i}"} ${v}`,
      ),
      "# TYPE vllm:generation_tokens counter",
      `vllm:generation_tokens_total{engine="0",model_name="m"} ${generated}`,
      "",
    ].join("\n");
  it("tau, rounds and the standard error from two vLLM scrapes of one pod", () => {
    // 1000 rounds in the window: 800 accepted position 0, 500 position 1, 200 position 2.
    const t0 = scrape(100, 150, [80, 50, 20], 250);
    const t1 = scrape(1100, 1650, [880, 550, 220], 2750);
    const signals = deriveSignals([{ pod: "p", text: t0 }], [{ pod: "p", text: t1 }], 60);
    const m = measureTau(signals, 3);
    expect(m?.tau).toBeCloseTo(2.5, 6);
    expect(m?.rounds).toBe(1000);
    // P(L>=1)=.8, P(L>=2)=.5, P(L>=3)=.2: E[L]=1.5, E[L^2]=.8+3*.5+5*.2=3.3, Var=1.05.
    expect(m?.standardError).toBeCloseTo(Math.sqrt(1.05 / 1000), 6);
  });
  it("rounds are vLLM's counted drafts, not generated tokens / tau (first tokens of requests are no rounds)", () => {
    // 1000 rounds, tau 2.5, and 500 requests' first tokens from prefill: 3000 generated in the window.
    const t0 = scrape(0, 0, [0, 0, 0], 0);
    const t1 = scrape(1000, 1500, [800, 500, 200], 3000);
    const signals = deriveSignals([{ pod: "p", text: t0 }], [{ pod: "p", text: t1 }], 60);
    expect(verificationRounds(signals)).toBe(1000);
    expect(measureTau(signals, 3)?.rounds).toBe(1000);
    // Without a round counter (SGLang), the estimate: 3000 tokens / tau 2.5.
    expect(verificationRounds({ ...signals, rounds: null })).toBe(1200);
  });
  it("no speculative counters: no measurement", () => {
    const plain =
      '# TYPE vllm:generation_tokens counter\nvllm:generation_tokens_total{engine="0",model_name="m"} 5\n';
    expect(
      measureTau(deriveSignals([{ pod: "p", text: plain }], [{ pod: "p", text: plain }], 60), 3),
    ).toBeUndefined();
  });
  it("z of the one-sided bound", () => {
    expect(zFor(0.95)).toBeCloseTo(1.645, 2);
    expect(zFor(0.975)).toBeCloseTo(1.96, 2);
  });
});
