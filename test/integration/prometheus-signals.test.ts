// The autoscaler's Prometheus signal source against a real Prometheus 3.16.0 (built from its Go
// module) scraping a scripted vLLM fleet every 250 ms: the signals it derives from Prometheus'
// answers equal, within rounding, the ones the direct parser derives from scraping the same pods
// at both ends of the window. Test edge: the engines are scripted (no GPU); the queries, the
// Prometheus server, its TSDB and its PromQL engine are real.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_SHAPE } from "../../operator/src/autoscaler/capacity.ts";
import {
  type QueryName,
  signalQueries,
  signalsFromResults,
} from "../../operator/src/autoscaler/prometheus.ts";
import { instantQueries } from "../../operator/src/autoscaler/prometheus-client.ts";
import { deriveSignals, type Signals } from "../../operator/src/autoscaler/signals.ts";
import { QWEN3_8B_H200, spsFromModel } from "../../operator/src/autoscaler/sps.ts";
import { type EngineSteps, observe } from "../../operator/src/autoscaler/sps-online.ts";
import { type PrometheusServer, startPrometheus } from "../prometheus/server.ts";
import { VllmFleet } from "../prometheus/vllm-fleet.ts";

const NS = "serving";
const fleet = new VllmFleet(2);
// Every engine its own step time, so that a figure joined to another engine's would show.
fleet.stepSeconds = ({ pod, engine }) => 0.02 + 0.005 * engine + (pod === "fleet-b" ? 0.002 : 0);
let server: Server;
let prometheus: PrometheusServer;
let work: string;
let port = 0;

beforeAll(async () => {
  for (const pod of ["fleet-a", "fleet-b"]) fleet.addPod(pod);
  server = createServer((req, res) => {
    const pod = /^\/pods\/([^/]+)\/metrics$/.exec(req.url ?? "")?.[1];
    if (req.url !== "/fleet" && !pod) return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(pod ? fleet.podText(pod) : fleet.fleetText(NS));
  });
  port = await new Promise<number>((r) =>
    server.listen(0, "127.0.0.1", () => r((server.address() as { port: number }).port)),
  );
  work = mkdtempSync(join(tmpdir(), "specops-prom-signals-"));
  prometheus = await startPrometheus({
    dir: work,
    targets: [`127.0.0.1:${port}`],
    metricsPath: "/fleet",
    scrapeInterval: "250ms",
  });
}, 600_000);

afterAll(async () => {
  await prometheus?.stop();
  server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const scrapeAll = async () =>
  Promise.all(
    fleet.podNames().map(async (pod) => ({
      pod,
      text: await (await fetch(`http://127.0.0.1:${port}/pods/${pod}/metrics`)).text(),
      time: Date.now() / 1000,
    })),
  );

async function fromPrometheus(windowSeconds: number): Promise<Signals> {
  const queries = signalQueries(
    "vllm",
    {
      namespaceLabel: "namespace",
      namespace: NS,
      podLabel: "pod",
      pods: fleet.podNames(),
      matchers: { job: "engines" },
    },
    windowSeconds,
  );
  const results = await instantQueries<QueryName>(queries, {
    url: prometheus.url,
    timeoutMs: 5000,
    signal: new AbortController().signal,
  });
  return signalsFromResults("vllm", results, windowSeconds, "pod");
}

describe("signals from a real Prometheus (test edge: scripted vLLM engines, 2 pods x 2 DP engines)", () => {
  it("equal the direct scrape's over the same window, within rounding", async () => {
    // Once Prometheus scrapes, let it hold a second of samples, then measure the same 3 s both ways.
    await prometheus.scraping();
    await new Promise((r) => setTimeout(r, 1000));
    const start = await scrapeAll();
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 3000));
    const end = await scrapeAll();
    const windowSeconds = (Date.now() - t0) / 1000;
    const direct = deriveSignals(start, end, windowSeconds);
    const viaPrometheus = await fromPrometheus(windowSeconds);

    expect(direct.tau).toBeCloseTo(4, 6);
    expect(viaPrometheus.engine).toBe("vllm");
    expect(viaPrometheus.pods.scraped).toBe(2);
    // Ratios of counters (both sides' extrapolation cancels) and gauges: equal to the digit.
    expect(viaPrometheus.tau).toBeCloseTo(direct.tau as number, 6);
    expect(viaPrometheus.acceptanceRate).toBeCloseTo(direct.acceptanceRate as number, 6);
    expect(viaPrometheus.acceptanceByPosition?.length).toBe(4);
    viaPrometheus.acceptanceByPosition?.forEach((p, i) => {
      expect(p).toBeCloseTo(direct.acceptanceByPosition?.[i] as number, 6);
    });
    expect(viaPrometheus.running).toBeCloseTo(110, 9);
    expect(viaPrometheus.waiting).toBe(direct.waiting);
    expect(viaPrometheus.kvCacheUsage).toBeCloseTo(direct.kvCacheUsage as number, 9);
    for (const k of ["ttftP50", "ttftP95", "tpotP50", "tpotP95"] as const) {
      expect(viaPrometheus[k]).toBeGreaterThan(0);
      expect(viaPrometheus[k]).toBeCloseTo(direct[k] as number, 6);
    }
    expect(viaPrometheus.ttftP95Bucket).toEqual(direct.ttftP95Bucket);
    // Rates: Prometheus' window and the scrapes' differ by a scrape's few ms.
    for (const k of ["generationTokensPerSecond", "promptTokensPerSecond", "requestsPerSecond"] as const) {
      const d = direct[k] as number;
      expect(d).toBeGreaterThan(0);
      expect(
        Math.abs((viaPrometheus[k] as number) / d - 1),
        `${k}: ${viaPrometheus[k]} vs ${d}`,
      ).toBeLessThan(0.03);
    }
    expect(viaPrometheus.generationTokensPerSecond).toBeCloseTo(16_000, -3);

    // The engine-step figures the online SPS(B) estimate reads, per engine: the counts within a
    // scrape's few ms as the rates, what the estimate makes of them (ratios of one engine's series,
    // whose extrapolation cancels, and its running gauge) to 6 digits, and so its factor.
    const stepTime = (e: EngineSteps) => e.intervalSeconds / e.intervals;
    const byStepTime = (s: Signals) => [...(s.steps ?? [])].sort((a, b) => stepTime(a) - stepTime(b));
    const [fromScrapes, fromProm] = [byStepTime(direct), byStepTime(viaPrometheus)];
    expect(fromScrapes.map((e) => Number(stepTime(e).toFixed(6)))).toEqual([0.02, 0.022, 0.025, 0.027]);
    expect(fromProm).toHaveLength(4);
    const off = (a: number, b: number) => Math.abs(a / b - 1);
    const prior = spsFromModel(QWEN3_8B_H200);
    const factor = (e: EngineSteps) => {
      const o = observe(
        prior,
        [e],
        viaPrometheus.kvCacheUsage,
        { promptTokens: 100, outputTokens: 1000 },
        DEFAULT_SHAPE,
      );
      if (!("observations" in o)) throw new Error(`window skipped: ${o.skipped}`);
      return (o.observations[0] as { factor: number }).factor;
    };
    fromScrapes.forEach((d, i) => {
      const p = fromProm[i] as EngineSteps;
      expect(off(p.steps, d.steps), `steps: ${p.steps} vs ${d.steps}`).toBeLessThan(0.03);
      expect(p.running).toBeCloseTo(d.running as number, 9);
      for (const [what, ratio] of [
        ["step time", stepTime],
        ["draft tokens per draft", (e: EngineSteps) => e.draftTokens / e.drafts],
        ["drafts per step", (e: EngineSteps) => e.drafts / e.steps],
        ["prompt tokens per step", (e: EngineSteps) => e.promptTokens / e.steps],
        ["SPS factor", factor],
      ] as const)
        expect(off(ratio(p), ratio(d)), `${what}: ${ratio(p)} vs ${ratio(d)}`).toBeLessThan(1e-6);
    });
  });

  it("has no figures for pods Prometheus does not know, so the decision holds", async () => {
    const queries = signalQueries(
      "vllm",
      { namespaceLabel: "namespace", namespace: NS, podLabel: "pod", pods: ["some-other-pod"] },
      3,
    );
    const results = await instantQueries<QueryName>(queries, {
      url: prometheus.url,
      timeoutMs: 5000,
      signal: new AbortController().signal,
    });
    const s = signalsFromResults("vllm", results, 3, "pod");
    expect(s).toMatchObject({ engine: null, running: null, waiting: null, tau: null });
    // SGLang's queries (a regex over both prefixes, snapshot gauges) are PromQL Prometheus accepts.
    const sglang = await instantQueries<QueryName>(
      signalQueries(
        "sglang",
        { namespaceLabel: "namespace", namespace: NS, podLabel: "pod", pods: ["a"] },
        3,
      ),
      { url: prometheus.url, timeoutMs: 5000, signal: new AbortController().signal },
    );
    expect(Object.keys(sglang).sort()).toContain("acceptLength");
    expect(Object.values(sglang).every((v) => Array.isArray(v) && v.length === 0)).toBe(true);
  });
});
