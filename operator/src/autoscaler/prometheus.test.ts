import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { validateResource } from "../api/validate.ts";
import { engineMetrics } from "./engines.ts";
import { type Exposition, parseExposition } from "./exposition.ts";
import {
  type FleetSelector,
  promNumber,
  promString,
  type QueryName,
  type QueryResults,
  seriesSelector,
  signalQueries,
  signalsFromResults,
  type VectorSample,
} from "./prometheus.ts";
import { deriveSignals, type Signals } from "./signals.ts";

const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/fixtures/metrics/${name}`, import.meta.url), "utf8");

interface PodPair {
  pod: string;
  t0: string;
  t1: string;
}

/**
 * What Prometheus answers to the queries signalQueries writes when its two samples of each series
 * sit exactly at the ends of the range (then increase() is the plain difference, with no
 * extrapolation, and a fall is a counter reset): a small evaluator of exactly those query shapes,
 * over the same two scrapes the direct parser reads. The real server's answers are compared in
 * test/integration/prometheus-signals.test.ts.
 */
function answer(query: string, pods: PodPair[], ns: string, windowSeconds: number): VectorSample[] {
  const m =
    /^(?:(sum|avg)(?: by \(([\w, ]+)\) )?\()?(last_over_time|avg_over_time|rate|increase)\((\{.*\})\[(\d+)ms\]\)\)?$/.exec(
      query,
    );
  if (!m) throw new Error(`the evaluator does not know ${query}`);
  const [, agg, by, fn, selector] = m;
  const matchers = [...(selector ?? "").matchAll(/(\w+)(=~|=)"((?:[^"\\]|\\.)*)"/g)].map(
    ([, label, op, raw]) => {
      const value = JSON.parse(`"${raw}"`) as string;
      const test =
        op === "=~" ? (v: string) => new RegExp(`^(?:${value})$`).test(v) : (v: string) => v === value;
      return { label: label as string, test };
    },
  );
  const labelled = (e: Exposition, pod: string) =>
    e.samples.map((s) => ({
      ...s,
      labels: { ...s.labels, __name__: s.name, namespace: ns, pod } as Record<string, string>,
    }));
  type Series = { labels: Record<string, string>; v0?: number; v1?: number };
  const series = new Map<string, Series>();
  for (const p of pods)
    for (const [end, text] of [
      ["v0", p.t0],
      ["v1", p.t1],
    ] as const)
      for (const s of labelled(parseExposition(text), p.pod)) {
        if (!matchers.every((x) => x.test(s.labels[x.label] ?? ""))) continue;
        const key = JSON.stringify(Object.entries(s.labels).sort());
        const entry: Series = series.get(key) ?? { labels: s.labels };
        entry[end] = s.value;
        series.set(key, entry);
      }
  const out: VectorSample[] = [];
  for (const { labels, v0, v1 } of series.values()) {
    if (v1 === undefined) continue;
    let value: number;
    if (fn === "last_over_time") value = v1;
    else if (fn === "avg_over_time") value = v0 === undefined ? v1 : (v0 + v1) / 2;
    else {
      if (v0 === undefined) continue; // one sample in the range: no increase
      const inc = v1 < v0 ? v1 : v1 - v0;
      value = fn === "rate" ? inc / windowSeconds : inc;
    }
    const { __name__, ...rest } = labels;
    out.push({ metric: fn === "last_over_time" ? labels : rest, value });
  }
  if (!agg) return out;
  const groups = new Map<string, VectorSample>();
  const counts = new Map<string, number>();
  const byLabels = by ? by.split(", ") : [];
  for (const s of out) {
    const metric: Record<string, string> = {};
    for (const l of byLabels) if (s.metric[l] !== undefined) metric[l] = s.metric[l];
    const key = JSON.stringify(metric);
    const g = groups.get(key) ?? { metric, value: 0 };
    g.value += s.value;
    groups.set(key, g);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  if (agg === "avg") for (const [k, g] of groups) g.value /= counts.get(k) ?? 1;
  return [...groups.values()];
}

function viaPrometheus(kind: "vllm" | "sglang", pods: PodPair[], windowSeconds: number): Signals {
  const fleet: FleetSelector = {
    namespaceLabel: "namespace",
    namespace: "serving",
    podLabel: "pod",
    pods: pods.map((p) => p.pod),
  };
  const queries = signalQueries(kind, fleet, windowSeconds);
  const results: QueryResults = {};
  for (const [name, q] of Object.entries(queries) as [QueryName, string][])
    results[name] = answer(q, pods, "serving", windowSeconds);
  return signalsFromResults(kind, results, windowSeconds, "pod");
}

const direct = (pods: PodPair[], windowSeconds: number) =>
  deriveSignals(
    pods.map((p) => ({ pod: p.pod, text: p.t0 })),
    pods.map((p) => ({ pod: p.pod, text: p.t1 })),
    windowSeconds,
  );

/** Every figure the decision reads, rounded to 9 significant digits. */
function figures(s: Signals) {
  const r = (v: number | null | undefined) => (v === null || v === undefined ? v : Number(v.toPrecision(9)));
  return {
    engine: s.engine,
    tau: r(s.tau),
    rounds: r(s.rounds),
    acceptanceRate: r(s.acceptanceRate),
    acceptanceByPosition: s.acceptanceByPosition?.map(r) ?? null,
    running: r(s.running),
    waiting: r(s.waiting),
    ttft: [s.ttftP50, s.ttftP90, s.ttftP95].map(r),
    tpot: [s.tpotP50, s.tpotP90, s.tpotP95].map(r),
    ttftP95Bucket: s.ttftP95Bucket,
    tpotP95Bucket: s.tpotP95Bucket,
    tokensPerSecondPerUser: r(s.tokensPerSecondPerUser),
    generationTokensPerSecond: r(s.generationTokensPerSecond),
    promptTokensPerSecond: r(s.promptTokensPerSecond),
    requestsPerSecond: r(s.requestsPerSecond),
    kvCacheUsage: r(s.kvCacheUsage),
    scraped: s.pods.scraped,
    // Per engine, in a fixed order (the direct parser lists them in scrape order).
    steps:
      s.steps
        ?.map((e) => Object.fromEntries(Object.entries(e).map(([k, v]) => [k, r(v)])))
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))) ?? null,
    tokenIntervals:
      s.tokenIntervals
        ?.map((e) => Object.fromEntries(Object.entries(e).map(([k, v]) => [k, r(v)])))
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))) ?? null,
  };
}

describe("signals from Prometheus equal the direct scrape's on the same samples", () => {
  const vllm0 = fixture("vllm-dp2-t0.prom");
  const vllm1 = fixture("vllm-dp2-t1.prom");

  it("vLLM: two pods of two data-parallel engines each, one of them restarted in the window", () => {
    // Pod b's engine 1 restarted: its counters fell (Prometheus and the parser both count from zero).
    const restarted = vllm1.replace(
      /^(vllm:spec_decode_num_drafts_total\{[^}]*engine="1"[^}]*\}) (\S+)$/m,
      (_l, series: string) => `${series} 7`,
    );
    const pods = [
      { pod: "serve-a", t0: vllm0, t1: vllm1 },
      { pod: "serve-b", t0: vllm0, t1: restarted },
    ];
    const scrapes = direct(pods, 30);
    expect(scrapes.pods.resetSeries).toBe(1);
    const fromPrometheus = figures(viaPrometheus("vllm", pods, 30));
    const fromScrapes = figures(scrapes);
    expect(fromPrometheus.tau).toBeGreaterThan(1);
    expect(fromPrometheus.acceptanceByPosition?.length).toBeGreaterThan(1);
    expect(fromPrometheus.tpot[2]).toBeGreaterThan(0);
    expect(fromPrometheus.scraped).toBe(2);
    expect(fromPrometheus.steps).toBeNull();
    expect(fromPrometheus).toEqual(fromScrapes);
  });

  it("vLLM step figures (online SPS(B)): per engine of two pods x two DP engines, one restarted", () => {
    const steps0 = fixture("vllm-steps-t0.prom");
    const steps1 = fixture("vllm-steps-t1.prom");
    // Pod b's engine 1 restarted within the window: every counter and histogram of it fell to what
    // it counted since (Prometheus' increase() and the parser both count from zero).
    const sinceRestart: Record<string, number> = {
      "vllm:iteration_tokens_total_count": 9000,
      "vllm:iteration_tokens_total_sum": 180000,
      "vllm:inter_token_latency_seconds_count": 54000,
      "vllm:inter_token_latency_seconds_sum": 1350,
      "vllm:spec_decode_num_drafts_total": 54000,
      "vllm:spec_decode_num_draft_tokens_total": 162000,
      "vllm:prompt_tokens_total": 13500,
    };
    const restarted = steps1
      .split("\n")
      .map((line) => {
        const name = line.slice(0, line.indexOf("{"));
        const value = sinceRestart[name];
        return value !== undefined && line.includes('engine="1"') ? line.replace(/ \S+$/, ` ${value}`) : line;
      })
      .join("\n");
    const pods = [
      { pod: "serve-a", t0: steps0, t1: steps1 },
      { pod: "serve-b", t0: steps0, t1: restarted },
    ];
    const scrapes = direct(pods, 30);
    expect(scrapes.pods.resetSeries).toBe(Object.keys(sinceRestart).length);
    expect(scrapes.steps?.length).toBe(4);
    const fromPrometheus = figures(viaPrometheus("vllm", pods, 30));
    // The restarted engine's figures are its counts since the restart; the others' the increase.
    expect(fromPrometheus.steps).toContainEqual(
      expect.objectContaining({ steps: 9000, intervals: 54000, intervalSeconds: 1350, promptTokens: 13500 }),
    );
    expect(fromPrometheus.steps?.filter((e) => e.steps === 30 * 1500)).toHaveLength(2);
    expect(fromPrometheus.steps?.every((e) => (e.running as number) > 0)).toBe(true);
    expect(fromPrometheus).toEqual(figures(scrapes));
  });

  it.each(["sglang:", "sglang_"])(
    "SGLang token times (%s, online SPS(B)): per pod, one of two pods restarted",
    (prefix) => {
      const f = (n: string) => fixture(n).replaceAll("sglang:", prefix);
      const t1 = f("sglang-steps-t1.prom");
      // Pod b restarted within the window: its histogram and counters fell to what it counted since.
      const sinceRestart: Record<string, number> = {
        inter_token_latency_seconds_count: 9000,
        inter_token_latency_seconds_sum: 60,
        prompt_tokens_total: 3000,
      };
      // Its 9000 tokens since, cumulative by bucket bound.
      const bucketSinceRestart = (le: number) =>
        le < 0.006 ? 0 : le < 0.008 ? 2000 : le < 0.01 ? 7000 : le < 0.015 ? 8500 : 9000;
      const restarted = t1
        .split("\n")
        .map((line) => {
          const name = line.slice(prefix.length, line.indexOf("{"));
          const le = /le="([^"]+)"/.exec(line)?.[1];
          const value =
            name === "inter_token_latency_seconds_bucket" && le
              ? bucketSinceRestart(Number(le))
              : sinceRestart[name];
          return value !== undefined ? line.replace(/ \S+$/, ` ${value}`) : line;
        })
        .join("\n");
      const pods = [
        { pod: "a", t0: f("sglang-steps-t0.prom"), t1 },
        { pod: "b", t0: f("sglang-steps-t0.prom"), t1: restarted },
      ];
      const fromPrometheus = figures(viaPrometheus("sglang", pods, 30));
      expect(fromPrometheus.tokenIntervals).toEqual([
        { tokens: 49_500, seconds: 330, acceptLength: 3, verifyTokens: 4, promptTokens: 19_800, running: 11 },
        { tokens: 9000, seconds: 60, acceptLength: 3, verifyTokens: 4, promptTokens: 3000, running: 11 },
      ]);
      expect(fromPrometheus).toEqual(figures(direct(pods, 30)));
    },
  );

  it.each(["sglang:", "sglang_"])("SGLang (%s): snapshot gauges weighted by each pod's tokens", (prefix) => {
    const f = (n: string) => fixture(n).replaceAll("sglang:", prefix);
    const pods = [
      { pod: "a", t0: f("sglang-a-t0.prom"), t1: f("sglang-a-t1.prom") },
      { pod: "b", t0: f("sglang-b-t0.prom"), t1: f("sglang-b-t1.prom") },
    ];
    const fromPrometheus = figures(viaPrometheus("sglang", pods, 30));
    expect(fromPrometheus.tau).toBeGreaterThan(1);
    expect(fromPrometheus).toEqual(figures(direct(pods, 30)));
  });
});

describe("PromQL the source writes", () => {
  const fleet: FleetSelector = {
    namespaceLabel: "namespace",
    namespace: "serving",
    podLabel: "pod",
    pods: ["fleet-0.a", "fleet-1"],
    matchers: { job: 'vl"lm' },
  };

  it("selects the fleet's pods (regex-escaped) and the extra matchers, quoting every value", () => {
    expect(seriesSelector(engineMetrics("vllm"), "num_requests_running", fleet)).toBe(
      '{__name__="vllm:num_requests_running",namespace="serving",pod=~"fleet-0\\\\.a|fleet-1",job="vl\\"lm"}',
    );
    expect(seriesSelector(engineMetrics("sglang"), "num_running_reqs", fleet)).toContain(
      '__name__=~"(sglang:|sglang_)num_running_reqs"',
    );
    expect(promString('a\\b"c\nd')).toBe('"a\\\\b\\"c\\nd"');
  });

  it("refuses label names PromQL would misread, and an empty pod list", () => {
    expect(() => seriesSelector(engineMetrics("vllm"), "x", { ...fleet, podLabel: "pod name" })).toThrow(
      /not a Prometheus label name/,
    );
    expect(() =>
      seriesSelector(engineMetrics("vllm"), "x", { ...fleet, matchers: { __name__: "y" } }),
    ).toThrow(/not a Prometheus label name/);
    expect(() => seriesSelector(engineMetrics("vllm"), "x", { ...fleet, pods: [] })).toThrow(/no pods/);
  });

  it("rates counters and histograms over the window, never SGLang's snapshot gauges", () => {
    const v = signalQueries("vllm", fleet, 2.5);
    expect(v.drafts).toMatch(
      /^sum\(increase\(\{__name__="vllm:spec_decode_num_drafts_total",.*\}\[2500ms\]\)\)$/,
    );
    expect(v.tpotBuckets0).toMatch(
      /^sum by \(le\) \(increase\(.*request_time_per_output_token_seconds_bucket/,
    );
    expect(v.running).toMatch(/^sum by \(pod\) \(last_over_time\(/);
    const s = signalQueries("sglang", fleet, 30);
    expect(s.acceptLength).toMatch(/^last_over_time\(\{__name__=~"\(sglang:\|sglang_\)spec_accept_length"/);
    expect(s.acceptRate).not.toMatch(/rate\(|increase\(/);
    expect(s.drafts).toBeUndefined();
    // The step figures per engine (the online SPS(B) estimate), vLLM only.
    expect(v.engineSteps).toMatch(
      /^sum by \(pod, engine\) \(increase\(\{__name__="vllm:iteration_tokens_total_count",.*\}\[2500ms\]\)\)$/,
    );
    expect(v.stepIntervalSeconds).toContain('"vllm:inter_token_latency_seconds_sum"');
    expect(v.engineRunning).toMatch(/^sum by \(pod, engine\) \(avg_over_time\(/);
    expect(s.engineSteps).toBeUndefined();
    // SGLang's token times per pod: histogram totals increased, the verify window never rate()d.
    expect(s.tokenIntervalCount).toMatch(
      /^sum by \(pod\) \(increase\(\{__name__=~"\(sglang:\|sglang_\)inter_token_latency_seconds_count",/,
    );
    expect(s.tokenIntervalSeconds).toContain('inter_token_latency_seconds_sum"');
    expect(s.engineRunning).toMatch(/^avg by \(pod\) \(avg_over_time\(/);
    expect(s.engineVerifyTokens).toMatch(/^avg by \(pod\) \(last_over_time\(.*spec_num_draft_tokens"/);
    expect(v.tokenIntervalCount).toBeUndefined();
  });

  it("maps empty answers to no figures (the decision then holds), not to zeros", () => {
    const s = signalsFromResults("vllm", {}, 30, "pod");
    expect(s).toMatchObject({ engine: null, tau: null, running: null, waiting: null, ttftP95: null });
    expect(s.pods.scraped).toBe(0);
    expect(() => signalsFromResults("vllm", {}, 0, "pod")).toThrow(/window/);
  });

  it("parses the API's sample values, special ones included", () => {
    expect(promNumber("1.5")).toBe(1.5);
    expect(promNumber("+Inf")).toBe(Number.POSITIVE_INFINITY);
    expect(promNumber("NaN")).toBeNaN();
    expect(() => promNumber("")).toThrow(/bad sample value/);
  });
});

describe("spec.autoscaling.signals", () => {
  const base = () => ({
    apiVersion: "specops.dev/v1alpha1",
    kind: "SpecServe",
    metadata: { name: "s", namespace: "n" },
    spec: {
      target: { uri: "hf://Qwen/Qwen3-8B" },
      draft: { source: { uri: "hf://org/Qwen3-8B-eagle3" } },
      method: "eagle3",
      engine: "vllm",
      autoscaling: { enabled: true, maxReplicas: 4 } as Record<string, unknown>,
    },
  });

  it("defaults to direct scrapes and fills the Prometheus defaults", () => {
    const plain = validateResource(base());
    expect(plain.ok && (plain.value as any).spec.autoscaling.signals).toEqual({ source: "Direct" });
    const m = base();
    m.spec.autoscaling.signals = {
      source: "Prometheus",
      prometheus: {
        url: "https://thanos.example/prometheus",
        basicAuthSecretRef: { name: "prom" },
        matchers: { job: "vllm" },
      },
    };
    const r = validateResource(m);
    expect(r.ok ? [] : r.errors).toEqual([]);
    expect(r.ok && (r.value as any).spec.autoscaling.signals.prometheus).toEqual({
      url: "https://thanos.example/prometheus",
      basicAuthSecretRef: { name: "prom", usernameKey: "username", passwordKey: "password" },
      namespaceLabel: "namespace",
      podLabel: "pod",
      matchers: { job: "vllm" },
    });
  });
});
