import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DEFAULT_SHAPE } from "./capacity.ts";
import { signalsCli } from "./cli.ts";
import { engineMetrics, readSeriesFilter } from "./engines.ts";
import { ExpositionError, parseExposition } from "./exposition.ts";
import { deriveSignals, histogramBucket, histogramQuantile } from "./signals.ts";
import { QWEN3_8B_H200, spsFromModel } from "./sps.ts";
import { type EngineSteps, observe, tokenIntervalSteps } from "./sps-online.ts";

const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/fixtures/metrics/${name}`, import.meta.url), "utf8");
const vllm0 = fixture("vllm-dp2-t0.prom");
const vllm1 = fixture("vllm-dp2-t1.prom");

/** Replaces the value of every series whose line starts with `series` (name and labels prefix). */
function setValue(text: string, series: string, value: number): string {
  return text
    .split("\n")
    .map((l) => (l.startsWith(series) ? `${l.slice(0, l.lastIndexOf(" "))} ${value}` : l))
    .join("\n");
}

describe("exposition parser", () => {
  it("reads names, labels in any order, escapes, special values and timestamps", () => {
    const { samples, types } = parseExposition(
      [
        "# HELP x_total A counter.",
        "# TYPE x_total counter",
        'x_total{a="1",b="q\\"uote\\\\ \\n"} 3.5e2 1700000000000',
        "y NaN",
        'z_bucket{le="+Inf"} +Inf',
        "",
      ].join("\n"),
    );
    expect(types.get("x_total")).toBe("counter");
    expect(samples[0]).toEqual({ name: "x_total", labels: { a: "1", b: 'q"uote\\ \n' }, value: 350 });
    expect(samples[1]?.value).toBeNaN();
    expect(samples[2]?.value).toBe(Number.POSITIVE_INFINITY);
  });

  it("keeps histogram labels and _sum/_count whatever the label order (vLLM puts le last)", () => {
    const { samples } = parseExposition(vllm1);
    const count = samples.filter((s) => s.name === "vllm:time_to_first_token_seconds_count");
    expect(count.map((s) => s.labels.engine)).toEqual(["0", "1"]);
    const bucket = samples.find((s) => s.name === "vllm:time_to_first_token_seconds_bucket");
    expect(bucket?.labels).toEqual({ model_name: "Qwen/Qwen3-8B", engine: "0", le: "0.001" });
  });

  it("names the line of malformed input", () => {
    expect(() => parseExposition("ok 1\nbad{a=1} 2")).toThrow(ExpositionError);
    expect(() => parseExposition("ok 1\nbad{a=1} 2")).toThrow(/line 2/);
    expect(() => parseExposition("x one")).toThrow(/bad value/);
  });
});

describe("histogramQuantile", () => {
  it("interpolates linearly inside the bucket like Prometheus", () => {
    const b = new Map([
      [0.1, 10],
      [0.2, 30],
      [Number.POSITIVE_INFINITY, 40],
    ]);
    expect(histogramQuantile(0.5, b)).toBeCloseTo(0.15);
    expect(histogramQuantile(0.9, b)).toBe(0.2); // in +Inf: the highest finite bound
    expect(histogramQuantile(0.5, new Map([[Number.POSITIVE_INFINITY, 0]]))).toBeNull();
  });
  it("names the bucket the quantile fell in (the first one from zero: an upper bound only)", () => {
    const b = new Map([
      [0.1, 10],
      [0.2, 30],
      [Number.POSITIVE_INFINITY, 40],
    ]);
    expect(histogramBucket(0.2, b)).toEqual([0, 0.1]);
    expect(histogramBucket(0.5, b)).toEqual([0.1, 0.2]);
    expect(histogramBucket(0.9, b)).toEqual([0.2, Number.POSITIVE_INFINITY]);
    expect(histogramBucket(0.5, new Map([[Number.POSITIVE_INFINITY, 0]]))).toBeNull();
  });
});

describe("vLLM signals", () => {
  it("sums counters over data-parallel engines: tau, acceptance by position, latency, load", () => {
    const s = deriveSignals([{ pod: "a", text: vllm0 }], [{ pod: "a", text: vllm1 }], 30);
    expect(s.engine).toBe("vllm");
    // drafts +600 +400, accepted +1260 +740: tau = 1 + 2000/1000.
    expect(s.tau).toBeCloseTo(3.0);
    expect(s.acceptanceRate).toBeCloseTo(2000 / 3000);
    expect(s.acceptanceByPosition?.map((v) => Number(v.toFixed(4)))).toEqual([0.88, 0.67, 0.45]);
    expect(s.running).toBe(16);
    expect(s.waiting).toBe(3);
    expect(s.kvCacheUsage).toBeCloseTo(0.36);
    expect(s.generationTokensPerSecond).toBeCloseTo(100);
    expect(s.requestsPerSecond).toBeCloseTo(100 / 30);
    expect(s.tokensPerSecondPerUser).toBeCloseTo(100 / 15);
    expect(s.ttftP50).toBeCloseTo(0.25);
    expect(s.ttftP95).toBeCloseTo(0.75);
    expect(s.tpotP50).toBeCloseTo(0.01 + (0.015 * 30) / 70);
    expect(s.tpotP95).toBeCloseTo(0.0375);
    expect(s.tpotP95Bucket).toEqual([0.025, 0.05]);
    expect(s.pods).toEqual({ scraped: 1, appeared: [], left: [], resetSeries: 0 });
  });

  it("counts a restarted engine from its restart, not as a negative delta", () => {
    const e1 = 'model_name="Qwen/Qwen3-8B",engine="1"';
    let t1 = vllm1;
    t1 = setValue(t1, `vllm:spec_decode_num_drafts_total{${e1}}`, 100);
    t1 = setValue(t1, `vllm:spec_decode_num_accepted_tokens_total{${e1}}`, 150);
    t1 = setValue(t1, `vllm:spec_decode_num_drafts_created{${e1}}`, 1764580100);
    t1 = setValue(t1, `vllm:spec_decode_num_accepted_tokens_created{${e1}}`, 1764580100);
    const s = deriveSignals([{ pod: "a", text: vllm0 }], [{ pod: "a", text: t1 }], 30);
    expect(s.tau).toBeCloseTo(1 + (1260 + 150) / (600 + 100));
    expect(s.pods.resetSeries).toBeGreaterThanOrEqual(2);
  });

  it("detects a restart from _created even when the counter climbed past its old value", () => {
    const e1 = 'model_name="Qwen/Qwen3-8B",engine="1"';
    let t1 = setValue(vllm1, `vllm:spec_decode_num_drafts_created{${e1}}`, 1764580100);
    t1 = setValue(t1, `vllm:spec_decode_num_accepted_tokens_created{${e1}}`, 1764580100);
    const s = deriveSignals([{ pod: "a", text: vllm0 }], [{ pod: "a", text: t1 }], 30);
    // engine 1 counts all of 900 drafts / 1640 accepted since its restart.
    expect(s.tau).toBeCloseTo(1 + (1260 + 1640) / (600 + 900));
  });

  it("a restarted engine's histogram counts from zero", () => {
    const e1 = 'model_name="Qwen/Qwen3-8B",engine="1"';
    let t1 = vllm1;
    for (const line of vllm1.split("\n")) {
      if (
        line.startsWith(`vllm:time_to_first_token_seconds_bucket{${e1}`) ||
        line.startsWith(`vllm:time_to_first_token_seconds_count{${e1}`)
      ) {
        t1 = t1.replace(line, `${line.slice(0, line.lastIndexOf(" "))} 0.0`);
      }
    }
    const s = deriveSignals([{ pod: "a", text: vllm0 }], [{ pod: "a", text: t1 }], 30);
    // Only engine 0's 60 observations: 6 <= 0.1, 30 <= 0.25, 48 <= 0.5, 57 <= 0.75, 60 <= 1.
    expect(s.ttftP50).toBeCloseTo(0.25);
    expect(s.ttftP95).toBeCloseTo(0.75);
  });

  it("a pod that appeared counts only when its _created places its start inside the window", () => {
    const t1 = 1764580000 + 100;
    const late = vllm1.replaceAll("1764580000", String(1764580000 + 80));
    const without = deriveSignals(
      [{ pod: "a", text: vllm0, time: t1 - 30 }],
      [
        { pod: "a", text: vllm1, time: t1 },
        { pod: "b", text: vllm1, time: t1 },
      ],
      30,
    );
    // b's counters started before the window began (created 1764580000 < t1 - 30): no baseline.
    expect(without.tau).toBeCloseTo(3.0);
    expect(without.pods.appeared).toEqual(["b"]);
    const withNew = deriveSignals(
      [{ pod: "a", text: vllm0, time: t1 - 30 }],
      [
        { pod: "a", text: vllm1, time: t1 },
        { pod: "b", text: late, time: t1 },
      ],
      30,
    );
    expect(withNew.tau).toBeCloseTo(1 + (2000 + 3260 + 1640) / (1000 + 1600 + 900));
    expect(withNew.running).toBe(32);
  });

  it("a pod that left is dropped, not averaged in", () => {
    const s = deriveSignals(
      [
        { pod: "a", text: vllm0 },
        { pod: "gone", text: vllm1 },
      ],
      [{ pod: "a", text: vllm1 }],
      30,
    );
    expect(s.tau).toBeCloseTo(3.0);
    expect(s.pods.left).toEqual(["gone"]);
  });

  it("a pod whose series change between scrapes is read by its new shape, window after window", () => {
    // The scrape path's filtered parse shares names and label sets between scrapes, so a pod's
    // layout is reused while its series stay the same; here they change every window.
    const parse = (t: string) => parseExposition(t, readSeriesFilter);
    const shapes = [
      vllm0,
      vllm1,
      // An engine's series gone (a data-parallel rank stopped), then back.
      vllm1
        .split("\n")
        .filter((l) => !l.includes('engine="1"'))
        .join("\n"),
      setValue(vllm1, 'vllm:spec_decode_num_drafts_total{engine="0"', 1e9),
    ].map(parse);
    for (let w = 1; w < shapes.length; w++) {
      const [start, end] = [shapes[w - 1], shapes[w]];
      const reused = deriveSignals(
        [{ pod: "same-pod", exposition: start }],
        [{ pod: "same-pod", exposition: end }],
        60,
      );
      // The same two scrapes under a pod name never seen: every index built afresh.
      const freshBoth = deriveSignals(
        [{ pod: `fresh-both-${w}`, exposition: start }],
        [{ pod: `fresh-both-${w}`, exposition: end }],
        60,
      );
      expect(reused).toEqual(freshBoth);
    }
    // And the windows read what changed: the missing rank's counters are not in the third window.
    const third = deriveSignals(
      [{ pod: "x", exposition: shapes[1] }],
      [{ pod: "x", exposition: shapes[2] }],
      60,
    );
    const full = deriveSignals(
      [{ pod: "x", exposition: shapes[0] }],
      [{ pod: "x", exposition: shapes[1] }],
      60,
    );
    expect(third.generationTokensPerSecond).not.toBe(full.generationTokensPerSecond);
  });

  it("reports null for what the scrapes cannot tell", () => {
    const s = deriveSignals([{ pod: "a", text: vllm1 }], [{ pod: "a", text: vllm1 }], 30);
    expect(s.tau).toBeNull(); // no drafts in the window
    expect(s.ttftP95).toBeNull();
    expect(s.running).toBe(16);
    const none = deriveSignals([], [{ pod: "a", text: "process_cpu_seconds_total 1" }], 30);
    expect(none.engine).toBeNull();
  });
});

describe("vLLM engine-step figures (the online SPS(B) estimate)", () => {
  const steps0 = fixture("vllm-steps-t0.prom");
  const steps1 = fixture("vllm-steps-t1.prom");
  const facts = JSON.parse(
    readFileSync(new URL("../../../runtime/tests/fixtures/upstream_facts.json", import.meta.url), "utf8"),
  ).vllm.metrics;

  it("reads the histograms vLLM 0.33.0 observes once per engine step and once per request-step", () => {
    const f = facts.stepFigures;
    expect(facts.names["vllm:iteration_tokens_total"]).toBe("histogram");
    expect(facts.names["vllm:inter_token_latency_seconds"]).toBe("histogram");
    // One observation per engine step (no loop in record(), one IterationStats per engine output batch).
    expect(f.iterationTokens.observations).toEqual([expect.objectContaining({ perItemOf: null })]);
    expect(f.iterationTokens.oneIterationStatsPerEngineOutputs).toBe(true);
    // One per request output of a step: the time since that request's last tokens.
    expect(f.interTokenLatency.observations[0].perItemOf).toMatch(/inter_token_latencies_iter/);
    expect(f.interTokenLatency.interval).toEqual(["itl = engine_core_timestamp - req_stats.last_token_ts"]);
    expect(f.numDraftsPerRequestStep).toBe(true);
    expect(f.iterationTokens.name).toBe("vllm:iteration_tokens_total");
    expect(f.interTokenLatency.name).toBe("vllm:inter_token_latency_seconds");
  });

  it("sums steps, request-step intervals, drafts and prompt tokens over data-parallel engines", () => {
    const s = deriveSignals([{ pod: "a", text: steps0 }], [{ pod: "a", text: steps1 }], 30);
    const engine = (steps: number, requests: number, seconds: number, prompt: number) => ({
      running: requests,
      steps: 30 * steps,
      intervals: 30 * steps * requests,
      intervalSeconds: expect.closeTo(30 * steps * requests * seconds, 6),
      drafts: 30 * steps * requests,
      draftTokens: 3 * 30 * steps * requests,
      promptTokens: 30 * prompt,
    });
    // One entry per data-parallel engine: each engine's batch goes with its own step time.
    expect(s.steps).toEqual([engine(1500, 10, 0.02, 3000), engine(1200, 6, 0.025, 1500)]);
  });

  it("a restarted engine's step figures count from its restart", () => {
    const restarted = steps1
      .split("\n")
      .map((l) =>
        l.includes('engine="1"') && l.includes("_created") ? l.replace(/ \S+$/, " 1764590000.0") : l,
      )
      .join("\n");
    const s = deriveSignals([{ pod: "a", text: steps0 }], [{ pod: "a", text: restarted }], 30);
    // Engine 1's whole count since its restart is taken (here its total), engine 0's increase.
    expect(s.steps?.map((e) => e.steps)).toEqual([30 * 1500, 80000 + 1200 * 30]);
  });

  it("is null where the engine exposes no step histograms (the older fixture, SGLang)", () => {
    expect(deriveSignals([{ pod: "a", text: vllm0 }], [{ pod: "a", text: vllm1 }], 30).steps).toBeNull();
  });
});

describe("SGLang signals", () => {
  const scrapes = (prefix: string) => {
    const f = (n: string) => fixture(n).replaceAll("sglang:", prefix);
    return [
      [
        { pod: "a", text: f("sglang-a-t0.prom") },
        { pod: "b", text: f("sglang-b-t0.prom") },
      ],
      [
        { pod: "a", text: f("sglang-a-t1.prom") },
        { pod: "b", text: f("sglang-b-t1.prom") },
      ],
    ] as const;
  };

  for (const prefix of ["sglang:", "sglang_"]) {
    it(`reads ${prefix} names; acceptance gauges are averaged by generated tokens, never differenced`, () => {
      const [t0, t1] = scrapes(prefix);
      const s = deriveSignals([...t0], [...t1], 30);
      expect(s.engine).toBe("sglang");
      // a: 3.4 over 3000 new tokens, b: 2.6 over 1000.
      expect(s.tau).toBeCloseTo((3.4 * 3000 + 2.6 * 1000) / 4000);
      expect(s.acceptanceByPosition).toBeNull();
      expect(s.acceptanceRate).toBeCloseTo(0.51);
      expect(s.running).toBe(16);
      expect(s.waiting).toBe(5);
      expect(s.kvCacheUsage).toBeCloseTo(0.4);
      expect(s.generationTokensPerSecond).toBeCloseTo(4000 / 30);
      expect(s.requestsPerSecond).toBeCloseTo(60 / 30);
      expect(s.ttftP95).toBeCloseTo(0.75);
      expect(s.tpotP95).toBeCloseTo(0.0375);
    });
  }
});

describe("SGLang TPOT", () => {
  it("is read from the per-request histogram where the engine has it, else from the inter-token latency", () => {
    const perRequest = (count: number, fast: number) =>
      [
        "# TYPE sglang:request_time_per_output_token_seconds histogram",
        ...[0.01, 0.02, 0.05, 0.1].map(
          (le) =>
            `sglang:request_time_per_output_token_seconds_bucket{le="${le}",model_name="m"} ${le < 0.1 ? fast : count}`,
        ),
        `sglang:request_time_per_output_token_seconds_bucket{le="+Inf",model_name="m"} ${count}`,
        `sglang:request_time_per_output_token_seconds_count{model_name="m"} ${count}`,
        `sglang:request_time_per_output_token_seconds_sum{model_name="m"} ${count * 0.03}`,
      ].join("\n");
    const [a0, a1] = [fixture("sglang-a-t0.prom"), fixture("sglang-a-t1.prom")];
    const window = (t0: string, t1: string) =>
      deriveSignals([{ pod: "a", text: t0 }], [{ pod: "a", text: t1 }], 30);
    // 100 requests in the window, none at or under 50 ms: p95 inside (0.05, 0.1].
    const withPerRequest = window(`${a0}\n${perRequest(0, 0)}`, `${a1}\n${perRequest(100, 0)}`);
    expect(withPerRequest.tpotP95).toBeGreaterThan(0.05);
    expect(withPerRequest.tpotP95).toBeLessThanOrEqual(0.1);
    expect(withPerRequest.tpotP95Bucket).toEqual([0.05, 0.1]);
    // Without it, the inter-token latency as before.
    expect(window(a0, a1).tpotP95).toBeCloseTo(0.0375);
  });
});

describe("SGLang token times (the online SPS(B) estimate)", () => {
  const facts = JSON.parse(
    readFileSync(new URL("../../../runtime/tests/fixtures/upstream_facts.json", import.meta.url), "utf8"),
  ).sglang.metrics;
  const f = facts.stepFigures;
  const t0 = fixture("sglang-steps-t0.prom");
  const t1 = fixture("sglang-steps-t1.prom");
  const window = (a: string, b: string, prefix = "sglang:") =>
    deriveSignals(
      [{ pod: "a", text: a.replaceAll("sglang:", prefix) }],
      [{ pod: "a", text: b.replaceAll("sglang:", prefix) }],
      30,
    );

  it("reads what SGLang 0.5.23 exposes: a per-token inter-token latency and tokens per request-step", () => {
    const e = engineMetrics("sglang");
    const name = (n: string | undefined) => `sglang:${n}`;
    expect(facts.names[name(e.histograms.tokenInterval)]).toBe("histogram");
    // Every TPOT histogram the parser reads is one SGLang 0.5.23 has (the per-request one first).
    for (const family of e.histograms.tpot) expect(facts.names[name(family)]).toBe("histogram");
    expect(facts.names[name(e.gauges.acceptLength)]).toBe("gauge");
    expect(facts.names[name(e.gauges.verifyTokens)]).toBe("gauge");
    expect(facts.names[name(e.gauges.running)]).toBe("gauge");
    expect(facts.names[`${name(e.counters.promptTokens)}_total`]).toBe("counter");
    expect(f.interTokenLatency.name).toBe(name(e.histograms.tokenInterval));
    // Each interval since a request's last output is divided by the tokens it brought: _sum gains
    // the interval once, _count the tokens (so _sum / _count is per token, not per step).
    expect(f.interTokenLatency).toMatchObject({
      newTokensSinceLastOutput: true,
      perTokenObservation: true,
      sumIncrementedByInterval: true,
      countIncrementedByTokens: true,
      observedTokensTimes: true,
    });
    // Tokens per request per verify forward (the forward count grows by the batch size).
    expect(f.acceptLength.name).toBe(name(e.gauges.acceptLength));
    expect(f.acceptLength.computed).toEqual([
      "spec_accept_length = self.spec_num_accept_tokens / self.spec_num_forward_ct",
    ]);
    expect(f.acceptLength.forwardCountPerRequest).toBe(true);
    expect(f.acceptLength.multiprocessMode).toBe("mostrecent");
    // The verify window holds the bonus slot: k = spec_num_draft_tokens - 1.
    expect(f.numDraftTokens.name).toBe(name(e.gauges.verifyTokens));
    expect(f.numDraftTokens.draftsPerRound).toContain(
      "draft_per_round = get_spec().speculative_num_draft_tokens - 1",
    );
    expect(f.tokenCountersAtFinish).toBe(true);
  });

  it("the fixture pair is in SGLang 0.5.23's format: its labels and buckets, no _created", () => {
    const samples = parseExposition(t1).samples;
    const itl = samples.filter((s) => s.name === "sglang:inter_token_latency_seconds_bucket");
    expect(itl.map((s) => Number(s.labels.le)).slice(0, -1)).toEqual(f.interTokenLatency.buckets);
    expect(Object.keys(itl[0]?.labels ?? {}).filter((l) => l !== "le")).toEqual(
      expect.arrayContaining(f.tokenizerLabels),
    );
    const running = samples.find((s) => s.name === "sglang:num_running_reqs");
    expect(Object.keys(running?.labels ?? {}).sort()).toEqual([...f.schedulerLabels].slice(0, 5).sort());
    expect(f.multiprocessRegistry).toBe(true);
    expect(samples.some((s) => s.name.endsWith("_created"))).toBe(false);
  });

  for (const prefix of ["sglang:", "sglang_"])
    it(`${prefix}: one pod's token times, acceptance length and verify window at the window's end`, () => {
      const s = window(t0, t1, prefix);
      expect(s.steps).toBeUndefined();
      expect(s.tokenIntervals).toEqual([
        {
          tokens: 49_500,
          seconds: expect.closeTo(330, 6),
          acceptLength: 3,
          verifyTokens: 4,
          promptTokens: 19_800,
          running: 11,
        },
      ]);
    });

  it("derives 20 ms steps of 11 requests x 4 verified tokens, not a 6.7 ms per-token step", () => {
    const [t] = window(t0, t1).tokenIntervals ?? [];
    if (!t) throw new Error("expected token times");
    const e = tokenIntervalSteps(t, undefined) as EngineSteps;
    expect(e.steps).toBeCloseTo(1500, 6);
    expect(e.intervals).toBeCloseTo(16_500, 6);
    expect(e.intervalSeconds / e.intervals).toBeCloseTo(0.02, 9);
    const prior = spsFromModel(QWEN3_8B_H200);
    const work = { promptTokens: 600, outputTokens: 1400 };
    const o = observe(prior, [e], 0.4, work, DEFAULT_SHAPE);
    if (!("observations" in o)) throw new Error(o.skipped);
    const [seen] = o.observations;
    expect(seen?.batch).toBeCloseTo(44, 9);
    expect(seen?.requests).toBeCloseTo(11, 9);
    expect(seen?.stepSeconds).toBeCloseTo(0.02, 9);
    expect(seen?.promptTokensPerStep).toBeCloseTo(19_800 / 1500, 9);
  });

  it("tells nothing idle, without the histogram or without an acceptance length", () => {
    const idle = window(t1, t1).tokenIntervals?.[0];
    expect(idle && tokenIntervalSteps(idle, 3)).toBe("no decode steps in the window");
    const noItl = (text: string) =>
      text
        .split("\n")
        .filter((l) => !l.includes("inter_token_latency"))
        .join("\n");
    expect(window(noItl(t0), noItl(t1)).tokenIntervals).toBeNull();
    const noAccept = (text: string) =>
      text
        .split("\n")
        .filter((l) => !l.startsWith("sglang:spec_accept_length"))
        .join("\n");
    const [t] = window(t0, noAccept(t1)).tokenIntervals ?? [];
    expect(t && tokenIntervalSteps(t, 3)).toBe("no acceptance length to count steps by");
  });

  it("an engine that does not expose its verify window takes the configured draft tokens", () => {
    const older = (text: string) =>
      text
        .split("\n")
        .filter((l) => !l.startsWith("sglang:spec_num_draft_tokens"))
        .join("\n");
    const [t] = window(older(t0), older(t1)).tokenIntervals ?? [];
    if (!t) throw new Error("expected token times");
    expect(t.verifyTokens).toBeUndefined();
    expect(tokenIntervalSteps(t, undefined)).toBe("the verify window is unknown");
    const e = tokenIntervalSteps(t, 5) as EngineSteps;
    expect(e.draftTokens / e.drafts).toBe(5);
  });
});

describe("npm run signals", () => {
  const path = (n: string) => new URL(`../../../test/fixtures/metrics/${n}`, import.meta.url).pathname;
  it("prints the documented keys as JSON", () => {
    const out = JSON.parse(
      signalsCli([path("vllm-dp2-t0.prom"), path("vllm-dp2-t1.prom"), "--window", "30s"]),
    );
    expect(Object.keys(out).slice(0, 8)).toEqual([
      "engine",
      "tau",
      "acceptanceByPosition",
      "running",
      "waiting",
      "ttftP95",
      "tpotP95",
      "generationTokensPerSecond",
    ]);
    expect(out.engine).toBe("vllm");
    expect(out.tau).toBeCloseTo(3);
    expect(out.generationTokensPerSecond).toBeCloseTo(100);
  });
  it("refuses a missing or bad --window", () => {
    expect(() => signalsCli([path("vllm-dp2-t0.prom"), path("vllm-dp2-t1.prom")])).toThrow(/--window/);
    expect(() =>
      signalsCli([path("vllm-dp2-t0.prom"), path("vllm-dp2-t1.prom"), "--window", "soon"]),
    ).toThrow(/--window/);
  });
});
