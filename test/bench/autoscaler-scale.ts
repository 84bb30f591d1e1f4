// Autoscaler at fleet scale: 100 autoscaled SpecServes with 10 serving pods each on the real control
// plane (kube-apiserver + etcd), the operator as its own process (as in a pod, with its image's
// NODE_OPTIONS and MALLOC_ARENA_MAX), deciding every 15 s for all 1000 pods. Test edge (no GPU, no
// engine): the pods are created through the API with their status written (Running, Ready, a podIP
// of their own on loopback, 127.0.x.y) and no kube-controller-manager runs, so the pod set stays
// put whatever the autoscaler decides; each pod's /metrics is a local server on its IP speaking
// vLLM v1's metric families (the fixture test/fixtures/metrics/vllm-dp2-t0.prom names its upstream
// source; the other request histograms are the ones vLLM lists in docs/design/metrics.md), with
// counters advancing with wall time and a load that moves a little every window.
// Measured over BENCH_CYCLES windows after two of warm-up: the operator's scrape p99 (its
// specops_pod_scrape_duration_seconds histogram), the cycle time (from the first GET of a window to
// the last SpecServe's decision written, seen by a watch), GETs per pod per window (status.signals
// and the autoscaler share one), the operator's CPU seconds per cycle (/proc) and its RSS.

import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig, Watch } from "@kubernetes/client-node";
import yaml from "js-yaml";
import { Agent, fetch } from "undici";
import { histogramQuantile } from "../../operator/src/autoscaler/signals.ts";
import { OPERATOR_RBAC_RULES } from "../../operator/src/rbac.ts";
import { freePort, startControlPlane, TEST_USERS_GROUP } from "../controlplane/controlplane.ts";
import { apiServerRequests } from "../support/apiserver-requests.ts";
import { filledCompileCache, operatorImageSettings } from "./operator-image-settings.ts";
import { startOperatorProcess } from "./operator-process.ts";

const SPECSERVES = Number(process.env.BENCH_SPECSERVES ?? 100);
const PODS_PER = Number(process.env.BENCH_PODS_PER_SPECSERVE ?? 10);
const WINDOW_S = Number(process.env.BENCH_WINDOW_S ?? 15);
const CYCLES = Number(process.env.BENCH_CYCLES ?? 6);
const PODS = SPECSERVES * PODS_PER;
const NS = "bench-as";
const OPERATOR_USER = "specops-operator";
const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const goals = { cycleS: 5, cpuPerCycle: 1.5, rssMb: 300 };

// ---- the fake fleet's /metrics (vLLM v1 families, one engine per pod) ----

const L = 'engine="0",model_name="Qwen/Qwen3-8B"';
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
const TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
const LATENCY_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960];
const TOKEN_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
const ITERATION_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];
/** Cumulative share of observations at or below each bucket: a smooth spread around `median`. */
const cdf = (buckets: number[], median: number) => buckets.map((b) => 1 / (1 + (median / b) ** 3));
const ACCEPT_BY_POSITION = [0.8, 0.6, 0.45, 0.3];
const started = Date.now();
const created = Math.floor(started / 1000);

interface PodLoad {
  rps: number;
  outTokens: number;
  tau: number;
  runningBase: number;
  phase: number;
}

function fleetText(p: PodLoad): string {
  const t = (Date.now() - started) / 1000;
  // The load moves a little every window (so each decision's figures, and status, change).
  const wobble = 1 + 0.05 * Math.sin(t / 40 + p.phase);
  const requests = p.rps * t;
  const gen = requests * p.outTokens;
  const drafts = gen / p.tau;
  const out: string[] = [];
  const fmt = (v: number) => (Number.isInteger(v) ? `${v}.0` : v.toFixed(3));
  const help = (name: string, type: string, text: string) =>
    out.push(`# HELP ${name} ${text}`, `# TYPE ${name} ${type}`);
  const gauge = (name: string, v: number, text: string) => {
    help(name, "gauge", text);
    out.push(`${name}{${L}} ${fmt(v)}`);
  };
  const counter = (name: string, v: number, text: string, extra = [""], values = [v]) => {
    help(`${name}_total`, "counter", text);
    // Counters of events and tokens are whole numbers, as vLLM writes them (e.g. 1234.0).
    extra.forEach((e, i) => void out.push(`${name}_total{${L}${e}} ${fmt(Math.floor(values[i] ?? 0))}`));
    help(`${name}_created`, "gauge", text);
    for (const e of extra) out.push(`${name}_created{${L}${e}} ${created}`);
  };
  const hist = (name: string, buckets: number[], median: number, count: number, text: string) => {
    help(name, "histogram", text);
    const shares = cdf(buckets, median);
    buckets.forEach(
      (b, i) => void out.push(`${name}_bucket{${L},le="${b}"} ${fmt(Math.floor(count * (shares[i] ?? 1)))}`),
    );
    out.push(`${name}_bucket{${L},le="+Inf"} ${fmt(Math.floor(count))}`);
    out.push(`${name}_count{${L}} ${fmt(Math.floor(count))}`, `${name}_sum{${L}} ${fmt(count * median)}`);
    help(`${name}_created`, "gauge", text);
    out.push(`${name}_created{${L}} ${created}`);
  };
  out.push(
    "# HELP python_gc_objects_collected_total Objects collected during gc",
    "# TYPE python_gc_objects_collected_total counter",
    ...[0, 1, 2].map((g) => `python_gc_objects_collected_total{generation="${g}"} ${1000 + g}.0`),
    "# HELP process_resident_memory_bytes Resident memory size in bytes.",
    "# TYPE process_resident_memory_bytes gauge",
    "process_resident_memory_bytes 4.2e+09",
    "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
    "# TYPE process_cpu_seconds_total counter",
    `process_cpu_seconds_total ${fmt(t * 1.2)}`,
  );
  help("vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig");
  out.push(
    `vllm:cache_config_info{block_size="16",cache_dtype="auto",enable_prefix_caching="True",engine="0",gpu_memory_utilization="0.9",num_gpu_blocks="27000"} 1.0`,
  );
  gauge(
    "vllm:num_requests_running",
    p.runningBase * wobble,
    "Number of requests in model execution batches.",
  );
  gauge("vllm:num_requests_waiting", 0, "Number of requests waiting to be processed.");
  gauge("vllm:kv_cache_usage_perc", 0.3 * wobble, "KV-cache usage. 1 means 100 percent usage.");
  counter("vllm:num_preemptions", 0, "Cumulative number of preemption from the engine.");
  counter("vllm:prompt_tokens", requests * 600, "Number of prefill tokens processed.");
  counter("vllm:generation_tokens", gen, "Number of generation tokens processed.");
  counter(
    "vllm:request_success",
    0,
    "Count of successfully processed requests.",
    [',finished_reason="stop"', ',finished_reason="length"', ',finished_reason="abort"'],
    [requests * 0.9, requests * 0.1, 0],
  );
  counter(
    "vllm:prefix_cache_queries",
    requests * 600,
    "Prefix cache queries, in terms of number of queried tokens.",
  );
  counter(
    "vllm:prefix_cache_hits",
    requests * 200,
    "Prefix cache hits, in terms of number of cached tokens.",
  );
  counter("vllm:spec_decode_num_drafts", drafts, "Number of spec decoding drafts.");
  counter("vllm:spec_decode_num_draft_tokens", drafts * 4, "Number of draft tokens.");
  counter("vllm:spec_decode_num_accepted_tokens", drafts * (p.tau - 1), "Number of accepted tokens.");
  const perPos = ACCEPT_BY_POSITION.map((a) => (a * (p.tau - 1)) / 2.15);
  counter(
    "vllm:spec_decode_num_accepted_tokens_per_pos",
    0,
    "Accepted tokens per draft position.",
    perPos.map((_, i) => `,position="${i}"`),
    perPos.map((a) => drafts * a),
  );
  hist(
    "vllm:iteration_tokens_total",
    ITERATION_BUCKETS,
    64,
    requests * 40,
    "Histogram of number of tokens per engine_step.",
  );
  hist(
    "vllm:time_to_first_token_seconds",
    TTFT_BUCKETS,
    0.09,
    requests,
    "Histogram of time to first token in seconds.",
  );
  hist(
    "vllm:request_time_per_output_token_seconds",
    TPOT_BUCKETS,
    0.02,
    requests,
    "Histogram of time_per_output_token_seconds per request.",
  );
  hist(
    "vllm:inter_token_latency_seconds",
    TPOT_BUCKETS,
    0.02,
    gen,
    "Histogram of inter-token latency in seconds.",
  );
  hist(
    "vllm:e2e_request_latency_seconds",
    LATENCY_BUCKETS,
    6,
    requests,
    "Histogram of e2e request latency in seconds.",
  );
  hist(
    "vllm:request_queue_time_seconds",
    LATENCY_BUCKETS,
    0.3,
    requests,
    "Histogram of time spent in WAITING phase for request.",
  );
  hist(
    "vllm:request_inference_time_seconds",
    LATENCY_BUCKETS,
    6,
    requests,
    "Histogram of time spent in RUNNING phase for request.",
  );
  hist(
    "vllm:request_prefill_time_seconds",
    LATENCY_BUCKETS,
    0.08,
    requests,
    "Histogram of time spent in PREFILL phase for request.",
  );
  hist(
    "vllm:request_decode_time_seconds",
    LATENCY_BUCKETS,
    6,
    requests,
    "Histogram of time spent in DECODE phase for request.",
  );
  hist("vllm:request_prompt_tokens", TOKEN_BUCKETS, 600, requests, "Number of prefill tokens processed.");
  hist(
    "vllm:request_generation_tokens",
    TOKEN_BUCKETS,
    p.outTokens,
    requests,
    "Number of generation tokens processed.",
  );
  hist(
    "vllm:request_max_num_generation_tokens",
    TOKEN_BUCKETS,
    1000,
    requests,
    "Histogram of maximum number of requested generation tokens.",
  );
  hist("vllm:request_params_n", [1, 2, 5, 10, 20], 1, requests, "Histogram of the n request parameter.");
  hist(
    "vllm:request_params_max_tokens",
    TOKEN_BUCKETS,
    1000,
    requests,
    "Histogram of the max_tokens request parameter.",
  );
  return `${out.join("\n")}\n`;
}

/** Pod k's IP: its own loopback address, 127.0.1.1 onwards. */
const podIP = (k: number) => `127.0.${1 + Math.floor(k / 250)}.${1 + (k % 250)}`;
const loads: PodLoad[] = Array.from({ length: PODS }, (_, k) => {
  const ss = Math.floor(k / PODS_PER);
  return { rps: 0.12, outTokens: 300, tau: 2.6 + 0.2 * (ss % 5), runningBase: 36, phase: ss };
});
/** GET times (ms since start) per pod. */
const gets: number[][] = Array.from({ length: PODS }, () => []);
let textBytes = 0;

async function listenAll(port: number): Promise<Server[]> {
  const servers: Server[] = [];
  try {
    for (let k = 0; k < PODS; k++) {
      const server = createServer((req, res) => {
        if (req.url !== "/metrics") return void res.writeHead(404).end();
        gets[k]?.push(Date.now() - started);
        const text = fleetText(loads[k] as PodLoad);
        textBytes = text.length;
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
        res.end(text);
      });
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, podIP(k), () => resolve());
      });
    }
    return servers;
  } catch (err) {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    throw err;
  }
}
let metricsServers: Server[] | undefined;
let metricsPort = 0;
for (let tries = 0; !metricsServers; tries++) {
  metricsPort = await freePort();
  metricsServers = await listenAll(metricsPort).catch((err) => {
    if (tries > 5) throw err;
    return undefined;
  });
}

// ---- the control plane and the objects ----

const cp = await startControlPlane({
  controllerManager: false,
  startTimeoutSeconds: 180,
  users: [OPERATOR_USER],
});
const kc = new KubeConfig();
kc.loadFromFile(cp.kubeconfigPath);
const dispatcher = new Agent({ connect: { ca: cp.caPem }, connections: 32 });
async function req(method: string, path: string, body?: unknown, contentType = "application/json") {
  const res = await fetch(`${cp.server}${path}`, {
    method,
    dispatcher,
    headers: { authorization: `Bearer ${cp.token}`, "content-type": contentType, accept: "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : undefined;
}
async function inLanes<T>(items: T[], lanes: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}
for (const file of ["acceptanceevals", "drafttrainings", "specserves"]) {
  const crd = yaml.load(readFileSync(join(root, `crds/${file}.specops.dev.yaml`), "utf8")) as object;
  await req("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
}
await new Promise((r) => setTimeout(r, 3000)); // CRDs established
await req("POST", "/api/v1/namespaces", { metadata: { name: NS } });
await req("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
  metadata: { name: "specops-operator" },
  rules: OPERATOR_RBAC_RULES,
});
await req("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
  metadata: { name: "specops-operator" },
  roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "specops-operator" },
  subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: TEST_USERS_GROUP }],
});

const ssName = (i: number) => `fleet-${i}`;
const ssPath = `/apis/specops.dev/v1alpha1/namespaces/${NS}/specserves`;
const setupStart = performance.now();
await inLanes(
  Array.from({ length: SPECSERVES }, (_, i) => i),
  16,
  async (i) => {
    await req("POST", ssPath, {
      apiVersion: "specops.dev/v1alpha1",
      kind: "SpecServe",
      metadata: { name: ssName(i), namespace: NS },
      spec: {
        target: { uri: "hf://Qwen/Qwen3-8B" },
        draft: { source: { uri: "hf://org/Qwen3-8B-eagle3" } },
        method: "eagle3",
        engine: "vllm",
        port: metricsPort,
        replicas: PODS_PER,
        speculative: { numSpeculativeTokens: 4 },
        resources: { gpusPerReplica: 1 },
        autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 40, window: `${WINDOW_S}s` },
      },
    });
  },
);
await inLanes(
  Array.from({ length: PODS }, (_, k) => k),
  16,
  async (k) => {
    const name = `${ssName(Math.floor(k / PODS_PER))}-pod-${k % PODS_PER}`;
    await req("POST", `/api/v1/namespaces/${NS}/pods`, {
      metadata: {
        name,
        labels: {
          "app.kubernetes.io/managed-by": "specops-operator",
          "app.kubernetes.io/name": "specserve",
          "specops.dev/specserve": ssName(Math.floor(k / PODS_PER)),
        },
      },
      spec: { nodeName: "bench-node", containers: [{ name: "server", image: "specops-runtime:bench" }] },
    });
    const now = new Date().toISOString();
    await req(
      "PATCH",
      `/api/v1/namespaces/${NS}/pods/${name}/status`,
      {
        status: {
          phase: "Running",
          podIP: podIP(k),
          podIPs: [{ ip: podIP(k) }],
          hostIP: "10.0.0.10",
          startTime: now,
          conditions: [
            { type: "PodScheduled", status: "True", lastTransitionTime: now },
            { type: "Initialized", status: "True", lastTransitionTime: now },
            { type: "ContainersReady", status: "True", lastTransitionTime: now },
            { type: "Ready", status: "True", lastTransitionTime: now },
          ],
        },
      },
      "application/merge-patch+json",
    );
  },
);
const setupSeconds = (performance.now() - setupStart) / 1000;

// ---- the operator, as its own process (as test/bench/operator.ts runs it) ----

const { nodeArgs, nodeOptions, mallocArenas } = operatorImageSettings(root);
const compileCache = filledCompileCache(root, nodeArgs);
const op = await startOperatorProcess({
  root,
  kubeconfigPath: cp.users[OPERATOR_USER]?.kubeconfigPath,
  namespaces: NS,
  compileCache: compileCache.dir,
});
const operatorReadyMs = Date.now() - started;
const operatorMetrics = () => op.metrics();
const cpuSeconds = () => op.cpuSeconds();
const memoryMb = (field: "VmRSS" | "VmHWM") => op.memory(field);

// Decisions as written: a change of status.autoscaling, seen by a watch (ms since start, per SpecServe).
const decisions = new Map<string, number[]>();
const lastAutoscaling = new Map<string, string>();
let watching = true;
const watches: AbortController[] = [];
const watchDecisions = (): void => {
  void new Watch(kc)
    .watch(
      ssPath,
      {},
      (_type, obj: { metadata: { name: string }; status?: { autoscaling?: { reason?: string } } }) => {
        const a = obj.status?.autoscaling;
        if (!a || a.reason === "Measuring") return;
        const json = JSON.stringify(a);
        if (lastAutoscaling.get(obj.metadata.name) === json) return;
        lastAutoscaling.set(obj.metadata.name, json);
        const list = decisions.get(obj.metadata.name) ?? [];
        list.push(Date.now() - started);
        decisions.set(obj.metadata.name, list);
      },
      () => {
        if (watching) setTimeout(watchDecisions, 100);
      },
    )
    .then((c) => watches.push(c));
};
watchDecisions();

/** The scrape histogram's cumulative buckets (le → count) for result="ok" and "error". */
async function scrapeHistogram() {
  const text = await operatorMetrics();
  const buckets = new Map<number, number>();
  let errors = 0;
  for (const line of text.split("\n")) {
    const ok = line.match(/^specops_pod_scrape_duration_seconds_bucket\{le="([^"]+)",result="ok"\} (\S+)/);
    if (ok) buckets.set(ok[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(ok[1]), Number(ok[2]));
    const err = line.match(/^specops_pod_scrape_duration_seconds_count\{result="error"\} (\S+)/);
    if (err) errors = Number(err[1]);
  }
  return { buckets, errors };
}

/** The API server's request counts on the bench's kinds, by verb, resource and subresource. */
const apiRequests = async () =>
  apiServerRequests(
    await (
      await fetch(`${cp.server}/metrics`, { dispatcher, headers: { authorization: `Bearer ${cp.token}` } })
    ).text(),
    ["specserves", "deployments", "configmaps", "services", "poddisruptionbudgets", "pods", "events"],
  );
/** The operator's reconciles so far, by controller (controller_runtime_reconcile_total). */
async function reconciles(): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const m of (await operatorMetrics()).matchAll(
    /^controller_runtime_reconcile_total\{controller="([^"]+)",[^}]*\} (\S+)/gm,
  ))
    counts.set(m[1] as string, (counts.get(m[1] as string) ?? 0) + Number(m[2]));
  return counts;
}
const perWindow = (after: Map<string, number>, before: Map<string, number>) =>
  [...after]
    .map(([k, n]) => [k, (n - (before.get(k) ?? 0)) / CYCLES] as const)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);

// Warm-up: the first window only measures, the second decides; then CYCLES windows measured.
const firstGetMs = async () => {
  for (;;) {
    const all = gets.flat();
    if (all.length) return Math.min(...all);
    await new Promise((r) => setTimeout(r, 100));
  }
};
const t0 = await firstGetMs();
const measureFrom = t0 + 2 * WINDOW_S * 1000 - 2000; // just before the third window's scrapes
await new Promise((r) => setTimeout(r, Math.max(0, measureFrom - (Date.now() - started))));
const cpuBefore = cpuSeconds();
const histBefore = await scrapeHistogram();
const [apiBefore, reconcilesBefore] = [await apiRequests(), await reconciles()];
const measureTo = measureFrom + CYCLES * WINDOW_S * 1000;
await new Promise((r) => setTimeout(r, Math.max(0, measureTo - (Date.now() - started))));
const cpuPerCycle = (cpuSeconds() - cpuBefore) / CYCLES;
const histAfter = await scrapeHistogram();
const apiPerWindow = perWindow(await apiRequests(), apiBefore);
const reconcilesPerWindow = perWindow(await reconciles(), reconcilesBefore);
const rss = memoryMb("VmRSS");
const peakRss = memoryMb("VmHWM");
const heapMb =
  Number((await operatorMetrics()).match(/^nodejs_heap_size_used_bytes (\S+)/m)?.[1] ?? Number.NaN) /
  1024 /
  1024;
const load = loadavg();

// Cycles: window k starts at the first GET at or after measureFrom + k * window; it ends at the
// last decision written before the next window's start.
const allGets = gets.flat().sort((a, b) => a - b);
const allDecisions = [...decisions.values()].flat().sort((a, b) => a - b);
const cycles: { start: number; seconds: number; decided: number; gets: number }[] = [];
for (let k = 0; k < CYCLES; k++) {
  const from = measureFrom + k * WINDOW_S * 1000;
  const to = from + WINDOW_S * 1000;
  const inWindow = allGets.filter((g) => g >= from && g < to);
  const decided = allDecisions.filter((d) => d >= from && d < to);
  if (!inWindow.length) continue;
  const start = inWindow[0] as number;
  const end = Math.max(decided.at(-1) ?? start, inWindow.at(-1) ?? start);
  cycles.push({ start, seconds: (end - start) / 1000, decided: decided.length, gets: inWindow.length });
}
const cycleSeconds = Math.max(...cycles.map((c) => c.seconds));
// Each decision's own latency: from the first GET of its SpecServe's pods for it to the decision
// written. The cycle above also holds how far apart the SpecServes' windows
// lie: each decides a window after its previous decision, so the spread of the first windows stays.
const latencies: number[] = [];
for (const [name, times] of decisions) {
  const i = Number(name.slice("fleet-".length));
  const podGets = gets.slice(i * PODS_PER, (i + 1) * PODS_PER);
  for (const d of times) {
    if (d < measureFrom || d >= measureTo) continue;
    // Each pod's last GET before the decision; the earliest of those is where the decision began.
    const lastGets = podGets.map((list) => Math.max(...list.filter((g) => g <= d)));
    const first = Math.min(...lastGets);
    if (Number.isFinite(first) && d - first < WINDOW_S * 1000) latencies.push((d - first) / 1000);
  }
}
latencies.sort((a, b) => a - b);
const latencyAt = (q: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
const decidedPerCycle = cycles.map((c) => c.decided);
const getsPerPodPerWindow = allGets.filter((g) => g >= measureFrom && g < measureTo).length / PODS / CYCLES;
const delta = new Map<number, number>();
for (const [le, n] of histAfter.buckets) delta.set(le, n - (histBefore.buckets.get(le) ?? 0));
const scrapes = delta.get(Number.POSITIVE_INFINITY) ?? 0;
const p99 = histogramQuantile(0.99, delta);
const p50 = histogramQuantile(0.5, delta);
const scrapeErrors = histAfter.errors - histBefore.errors;

watching = false;
for (const w of watches) w.abort();
await op.stop();
await cp.stop();
await Promise.all(metricsServers.map((s) => new Promise((r) => s.close(r))));
compileCache.remove();

const ms = (s: number | null) => (s === null ? "n/a" : `${(s * 1000).toFixed(1)} ms`);
const mark = (ok: boolean) => (ok ? "met" : "NOT met");
console.log(`
autoscaler at fleet scale: ${SPECSERVES} SpecServes x ${PODS_PER} pods = ${PODS} pods, window ${WINDOW_S} s,
${CYCLES} windows measured after 2 of warm-up; operator as node ${nodeArgs.join(" ")} with NODE_OPTIONS="${nodeOptions}" MALLOC_ARENA_MAX=${mallocArenas ?? "unset"},
default concurrency; each pod's /metrics ${(textBytes / 1024).toFixed(1)} KB of vLLM v1 families; load average ${load.map((l) => l.toFixed(2)).join(" ")}
  setup: ${SPECSERVES} SpecServes and ${PODS} pods with status through the API    ${setupSeconds.toFixed(1)} s
  operator ready (caches synced), since the bench started           ${(operatorReadyMs / 1000).toFixed(1)} s

  window  first GET (s)  cycle (s)  GETs   decisions written
${cycles.map((c, i) => `  ${String(i + 1).padEnd(6)}  ${(c.start / 1000).toFixed(1).padStart(12)}  ${c.seconds.toFixed(2).padStart(9)}  ${String(c.gets).padStart(5)}  ${String(c.decided).padStart(6)}`).join("\n")}

  scrapes by the operator in the measured windows   ${scrapes} ok, ${scrapeErrors} failed
  scrape duration p50 / p99 (operator's histogram)  ${ms(p50)} / ${ms(p99)}
  GETs per pod per window (both readers)            ${getsPerPodPerWindow.toFixed(2)} (one shared scrape: 1.00)
  cycle time, slowest window                        ${cycleSeconds.toFixed(2)} s (goal < ${goals.cycleS}: ${mark(cycleSeconds < goals.cycleS)})
  decision latency p50 / p99 / max (its pods' GETs to its status)  ${latencyAt(0.5).toFixed(2)} / ${latencyAt(0.99).toFixed(2)} / ${(latencies.at(-1) ?? Number.NaN).toFixed(2)} s
  operator CPU per cycle                            ${cpuPerCycle.toFixed(2)} s (goal < ${goals.cpuPerCycle}: ${mark(cpuPerCycle < goals.cpuPerCycle)})
  operator RSS at the end (peak)                    ${rss.toFixed(0)} MB (${peakRss.toFixed(0)} MB; JS heap ${heapMb.toFixed(0)} MB) (goal < ${goals.rssMb}: ${mark(peakRss < goals.rssMb)})
  decisions written per window                      ${decidedPerCycle.join(" ")} (status written on change only)
  reconciles per window, by controller              ${reconcilesPerWindow.map(([k, n]) => `${k} ${n.toFixed(0)}`).join(", ")}
  API requests per window (the operator's; the bench's watch aside), by verb and resource:
${apiPerWindow.map(([k, n]) => `    ${k.padEnd(40)} ${n.toFixed(1)}`).join("\n")}
`);
console.log(
  `BENCH autoscaler-scale scrape_p99_ms=${p99 === null ? "nan" : (p99 * 1000).toFixed(1)} cycle_s=${cycleSeconds.toFixed(2)} cpu_s_per_cycle=${cpuPerCycle.toFixed(2)} rss_mb=${rss.toFixed(0)} decision_p99_s=${latencyAt(0.99).toFixed(2)} pods=${PODS} specserves=${SPECSERVES}`,
);
