// Simulator physics: the properties the benchmark's conclusions rest on.
import { describe, expect, it } from "vitest";
import { deriveSignals } from "../../operator/src/autoscaler/signals.ts";
import { firstPrinciplesStepSeconds } from "../../operator/src/autoscaler/sps.ts";
import { arrivalsFor, type Completion, Replica, renderMetrics, route, stepReplica, tauOf } from "./fleet.ts";
import { DEFAULT_PARAMS, type Domain, withOverrides } from "./params.ts";
import { gaussian, rng } from "./rng.ts";
import { parseTraces } from "./traces.ts";

const p = DEFAULT_PARAMS;

function steady(rate: number, mix: Record<Domain, number>, seconds = 240) {
  const r = new Replica("a", 0, 0);
  r.state = "ready";
  const noise = rng(3);
  const wobble = () => gaussian(noise);
  const done: Completion[] = [];
  for (let t = 0; t < seconds; t += p.stepSeconds) {
    r.queue.push(...arrivalsFor(p, rate * p.stepSeconds, mix, t, p.stepSeconds, 300, 500, wobble));
    for (const c of stepReplica(r, p, t, p.stepSeconds)) if (t > seconds / 2) done.push(c);
  }
  const n = done.reduce((a, c) => a + c.n, 0);
  const meanSpeed = done.reduce((a, c) => a + c.speed * c.n, 0) / n;
  return { r, done, n, meanSpeed };
}

const CODE = { math: 0, code: 1, chat: 0 };
const CHAT = { math: 0, code: 0, chat: 1 };

describe("fleet physics", () => {
  it("tau per domain follows Table 1's spread (math/code ~5-6, chat ~3-3.5)", () => {
    expect(tauOf(p.acceptance.math, 7)).toBeGreaterThan(5.2);
    expect(tauOf(p.acceptance.code, 7)).toBeGreaterThan(4.8);
    expect(tauOf(p.acceptance.chat, 7)).toBeGreaterThan(2.8);
    expect(tauOf(p.acceptance.chat, 7)).toBeLessThan(3.6);
  });

  it("completes what arrives when under capacity, and users are faster on code than on chat", () => {
    const code = steady(10, CODE);
    const chat = steady(10, CHAT);
    expect(code.n / 120).toBeCloseTo(10, 0);
    expect(code.meanSpeed / chat.meanSpeed).toBeGreaterThan(1.3);
  });

  it("per-user speed falls as concurrency rises (bigger verify batches are slower steps)", () => {
    expect(steady(5, CHAT).meanSpeed).toBeGreaterThan(steady(20, CHAT).meanSpeed * 1.2);
  });

  it("the same request rate overloads a replica on chat that it serves on code", () => {
    const rate = 32;
    const code = steady(rate, CODE);
    const chat = steady(rate, CHAT);
    const waiting = (r: Replica) => r.queue.reduce((a, c) => a + c.n, 0);
    expect(waiting(code.r)).toBeLessThan(5);
    expect(waiting(chat.r)).toBeGreaterThan(10);
  });

  it("its /metrics text gives back its tau and load through the real parser", () => {
    const r = new Replica("a", 0, 0);
    r.state = "ready";
    const noise = rng(5);
    let before = "";
    for (let t = 0; t < 120; t += p.stepSeconds) {
      if (t === 60) before = renderMetrics(r, p);
      r.queue.push(
        ...arrivalsFor(p, 10 * p.stepSeconds, CODE, t, p.stepSeconds, 300, 500, () => gaussian(noise)),
      );
      stepReplica(r, p, t, p.stepSeconds);
    }
    const s = deriveSignals([{ pod: "a", text: before }], [{ pod: "a", text: renderMetrics(r, p) }], 60);
    expect(s.engine).toBe("vllm");
    expect(s.tau).toBeGreaterThan(4.5);
    expect(s.tau).toBeLessThan(5.6);
    expect(s.requestsPerSecond).toBeGreaterThan(8);
    expect(s.requestsPerSecond).toBeLessThan(12);
    expect(s.acceptanceByPosition?.length).toBe(7);
    expect(s.tpotP95).not.toBeNull();
  });

  it("step time is the first-principles model", () => {
    expect(firstPrinciplesStepSeconds(p.model, 1, 0, 1)).toBeCloseTo(0.001 + 16.4e9 / 4.3e12, 5);
  });

  it("routing evens out outstanding requests", () => {
    const a = new Replica("a", 0, 0);
    const b = new Replica("b", 0, 0);
    a.queue.push(...arrivalsFor(p, 10, CODE, 0, 1, 300, 500, () => 0));
    const shares = route([a, b], 20);
    expect(shares[0]).toBeCloseTo(5);
    expect(shares[1]).toBeCloseTo(15);
  });
});

describe("simulator inputs", () => {
  it("--params overrides merge and refuse unknown keys or wrong types by name", () => {
    const q = withOverrides(p, { coldStartSeconds: { max: 600 }, scrapeFailureRate: 0.1 });
    expect(q.coldStartSeconds).toEqual({ min: p.coldStartSeconds.min, max: 600 });
    expect(q.scrapeFailureRate).toBe(0.1);
    expect(() => withOverrides(p, { coldStart: 1 })).toThrow(/params\.coldStart: unknown/);
    expect(() => withOverrides(p, { slo: { ttftP95: "1s" } })).toThrow(
      /params\.slo\.ttftP95: expected a number/,
    );
  });
  it("traces: a list or named lists, minutes filled between records, mix normalised, bad fields named", () => {
    const [t] = parseTraces([
      { minute: 0, rate: 5, out_tokens: 100, prompt_tokens: 50, mix: { code: 2, chat: 2 } },
      { minute: 3, rate: 9, out_tokens: 100, prompt_tokens: 50, mix: { chat: 1 } },
    ]);
    expect(t?.minutes.map((m) => m.rate)).toEqual([5, 5, 5, 9]);
    expect(t?.minutes[0]?.mix).toEqual({ math: 0, code: 0.5, chat: 0.5 });
    const named = parseTraces({
      a: [{ minute: 0, rate: 1, out_tokens: 1, prompt_tokens: 0, mix: { chat: 1 } }],
    });
    expect(named[0]?.name).toBe("a");
    expect(() =>
      parseTraces([{ minute: 0, rate: -1, out_tokens: 1, prompt_tokens: 0, mix: { chat: 1 } }]),
    ).toThrow(/\[0\]\.rate/);
    expect(() =>
      parseTraces([{ minute: 0, rate: 1, out_tokens: 1, prompt_tokens: 0, mix: { poetry: 1 } }]),
    ).toThrow(/mix\.poetry/);
  });
});
