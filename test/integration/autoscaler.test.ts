// The autoscaler on a real API server against scripted metrics: the operator runs in-process as a
// user holding exactly the generated ClusterRole, the real Deployment and ReplicaSet controllers run
// in kube-controller-manager and the fake kubelet plays the pods. Test edge (no GPU, no engine): every
// serving pod's /metrics is one loopback server speaking vLLM's metric names with a scripted fleet
// (a load shared evenly by the pods the kubelet runs, a scripted acceptance and TPOT); the operator
// scrapes each pod, derives the window's signals through the project's parser and decides.
import { createServer, type Server } from "node:http";
import { AppsV1Api, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_SHAPE } from "../../operator/src/autoscaler/capacity.ts";
import { QWEN3_8B_H200, spsFromModel } from "../../operator/src/autoscaler/sps.ts";
import { OPERATOR_RBAC_RULES } from "../../operator/src/rbac.ts";
import { FakeKubelet } from "../controlplane/kubelet.ts";
import { ensureNamespace, installCrds, kubeConfig, kubeRequest, restrictedKubeConfig } from "./kube.ts";
import { type OperatorUnderTest, startOperator, until } from "./operator-harness.ts";
import { expectSpsLearnedAsModel, vllmSpecServe } from "./specserve-fixture.ts";

const NS = "as-tests";
const NAME = "fleet";
const POD_IP = "127.0.0.5";
const TAU4 = [0.9, 0.8, 0.7, 0.6];
const TAU2 = [0.6, 0.3, 0.1, 0];
const TPOT_BUCKETS = [0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05];

/**
 * A fleet of vLLM engines as its /metrics shows it: `running` requests in flight and `rps`
 * completions per second over the whole fleet, shared evenly by the pods that run; counters advance
 * with wall time, so every pod's series are monotonic whoever scrapes when.
 */
class ScriptedFleet {
  running = 110;
  waiting = 0;
  rps = 16;
  promptTokens = 100;
  outputTokens = 1000;
  acceptance = TAU4;
  /** p95 time per output token the engines report; null: no TPOT histogram. */
  tpot: number | null = null;
  failing = false;
  readonly pods = new Set<string>();
  private t = Date.now();
  private c = {
    req: 0,
    gen: 0,
    prompt: 0,
    drafts: 0,
    accepted: 0,
    perPos: [0, 0, 0, 0],
    tpotCount: 0,
    tpotSum: 0,
    draftTokens: 0,
    steps: 0,
    intervals: 0,
    intervalSeconds: 0,
  };
  private buckets = TPOT_BUCKETS.map(() => 0);

  private advance() {
    const now = Date.now();
    const dt = (now - this.t) / 1000;
    this.t = now;
    const share = 1 / Math.max(1, this.pods.size);
    const req = this.rps * dt * share;
    const gen = req * this.outputTokens;
    const tau = 1 + this.acceptance.reduce((a, b) => a + b, 0);
    const drafts = gen / tau;
    this.c.req += req;
    this.c.gen += gen;
    this.c.prompt += req * this.promptTokens;
    this.c.drafts += drafts;
    this.c.draftTokens += drafts * this.acceptance.length;
    this.c.accepted += drafts * (tau - 1);
    // Engine steps exactly as fast as the first-principles model (the autoscaler's prior when no
    // table is given) says for this pod's batch and prefill: the online correction reads 1.
    const running = this.running * share;
    if (running > 0 && dt > 0) {
      const sps = spsFromModel(QWEN3_8B_H200);
      const context = this.promptTokens + this.outputTokens / 2;
      const decode = 1 / sps(running * (1 + this.acceptance.length), context, running);
      const chunk = DEFAULT_SHAPE.prefillChunk;
      const prefillShare = ((req / dt) * this.promptTokens) / (chunk * sps(chunk, context, running));
      const steps = (dt * Math.max(0, 1 - prefillShare)) / decode;
      this.c.steps += steps;
      this.c.intervals += steps * running;
      this.c.intervalSeconds += dt * running;
    }
    this.acceptance.forEach((p, i) => {
      this.c.perPos[i] = (this.c.perPos[i] ?? 0) + drafts * p;
    });
    if (this.tpot !== null) {
      // Every request's TPOT just under the scripted p95's bucket top: the quantile lands in that bucket.
      const tpot = this.tpot;
      this.c.tpotCount += req;
      this.c.tpotSum += req * tpot;
      TPOT_BUCKETS.forEach((le, i) => {
        if (tpot <= le) this.buckets[i] = (this.buckets[i] ?? 0) + req;
      });
    }
  }

  text(): string {
    this.advance();
    const share = 1 / Math.max(1, this.pods.size);
    const l = 'engine="0",model_name="qwen3-8b"';
    const lines = [
      "# TYPE vllm:num_requests_running gauge",
      `vllm:num_requests_running{${l}} ${this.running * share}`,
      "# TYPE vllm:num_requests_waiting gauge",
      `vllm:num_requests_waiting{${l}} ${this.waiting * share}`,
      "# TYPE vllm:request_success counter",
      `vllm:request_success_total{${l},finished_reason="stop"} ${this.c.req}`,
      "# TYPE vllm:generation_tokens counter",
      `vllm:generation_tokens_total{${l}} ${this.c.gen}`,
      "# TYPE vllm:prompt_tokens counter",
      `vllm:prompt_tokens_total{${l}} ${this.c.prompt}`,
      "# TYPE vllm:spec_decode_num_drafts counter",
      `vllm:spec_decode_num_drafts_total{${l}} ${this.c.drafts}`,
      "# TYPE vllm:spec_decode_num_draft_tokens counter",
      `vllm:spec_decode_num_draft_tokens_total{${l}} ${this.c.draftTokens}`,
      // The step figures (histograms read for _count and _sum only; buckets left out).
      "# TYPE vllm:iteration_tokens_total histogram",
      `vllm:iteration_tokens_total_count{${l}} ${this.c.steps}`,
      `vllm:iteration_tokens_total_sum{${l}} ${this.c.gen + this.c.prompt}`,
      "# TYPE vllm:inter_token_latency_seconds histogram",
      `vllm:inter_token_latency_seconds_count{${l}} ${this.c.intervals}`,
      `vllm:inter_token_latency_seconds_sum{${l}} ${this.c.intervalSeconds}`,
      "# TYPE vllm:spec_decode_num_accepted_tokens counter",
      `vllm:spec_decode_num_accepted_tokens_total{${l}} ${this.c.accepted}`,
      "# TYPE vllm:spec_decode_num_accepted_tokens_per_pos counter",
      ...this.c.perPos.map(
        (v, i) => `vllm:spec_decode_num_accepted_tokens_per_pos_total{${l},position="${i}"} ${v}`,
      ),
    ];
    if (this.c.tpotCount > 0 && this.tpot !== null) {
      lines.push("# TYPE vllm:request_time_per_output_token_seconds histogram");
      for (const [i, le] of TPOT_BUCKETS.entries())
        lines.push(`vllm:request_time_per_output_token_seconds_bucket{${l},le="${le}"} ${this.buckets[i]}`);
      lines.push(
        `vllm:request_time_per_output_token_seconds_bucket{${l},le="+Inf"} ${this.c.tpotCount}`,
        `vllm:request_time_per_output_token_seconds_count{${l}} ${this.c.tpotCount}`,
        `vllm:request_time_per_output_token_seconds_sum{${l}} ${this.c.tpotSum}`,
      );
    }
    return `${lines.join("\n")}\n`;
  }
}

let kc: KubeConfig;
let kubelet: FakeKubelet;
let operator: OperatorUnderTest;
let apps: AppsV1Api;
let server: Server;
let port = 0;
const fleet = new ScriptedFleet();
/** spec.replicas as seen every 100 ms while autoscaling was on. */
const observed: number[] = [];
/**
 * ScalingActive=False seen while every pod served metrics, from the first steady decision on (before
 * it the first pod is still starting): a scale-up's new pods must not read as missing metrics.
 */
const inactiveWhileUp: string[] = [];
/**
 * When the watcher first saw a decision whose tau was below 3.95 (a window that saw some of tau 2),
 * or 0: the down-stabilisation counts from the last such decision, not from when the test changed
 * the load (on a loaded machine decisions can be more than a window apart).
 */
let oldLoadLastDecidedMs = 0;
let lastMessage: string | undefined;
let outage = true;
let watching = true;

/** The manifest in "Git": spec.replicas left out, the autoscaler owns it. */
const gitAutoscaling = {
  enabled: true,
  minReplicas: 1,
  maxReplicas: 4,
  window: "1s",
  scaleUpStabilization: "0s",
  scaleDownStabilization: "4s",
  maxScaleUpRate: 4,
  maxScaleDownRate: 1,
  slo: { tpotP95: "8ms" },
};
const gitManifest = () =>
  vllmSpecServe(NAME, NS, port, {
    resources: { gpusPerReplica: 1 },
    autoscaling: { ...gitAutoscaling },
    drift: { baselineWindow: "3s", tolerance: 0.2 },
  });

/**
 * Argo CD / Flux re-applying the Git manifest every 500 ms while the autoscaler scales: server-side
 * apply under its own field manager, forcing conflicts as Argo CD (ServerSideApply=true) and Flux do
 * (the SpecServe was created by another manager), and client-side apply as kubectl
 * does it (a merge patch with the last-applied annotation).
 */
function gitOpsAppliers() {
  const errors: string[] = [];
  let stop = false;
  const ssa = async () => {
    const r = await kubeRequest(
      kc,
      "PATCH",
      `${ssPath()}?fieldManager=argocd-controller&force=true`,
      gitManifest(),
      "application/apply-patch+yaml",
    );
    if (r.status >= 300) throw new Error(`server-side apply: ${r.status} ${r.body?.message}`);
  };
  const csa = async () => {
    const m = gitManifest();
    const body = {
      ...m,
      metadata: {
        ...m.metadata,
        annotations: { "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify(m) },
      },
    };
    const r = await kubeRequest(
      kc,
      "PATCH",
      `${ssPath()}?fieldManager=kubectl-client-side-apply`,
      body,
      "application/merge-patch+json",
    );
    if (r.status >= 300) throw new Error(`client-side apply: ${r.status} ${r.body?.message}`);
  };
  const loops = [ssa, csa].map(async (once) => {
    while (!stop) {
      await once().catch((err) => errors.push(String(err)));
      await new Promise((r) => setTimeout(r, 500));
    }
  });
  return {
    errors,
    stop: async () => {
      stop = true;
      await Promise.all(loops);
    },
  };
}
let gitOps: ReturnType<typeof gitOpsAppliers> | undefined;
/** Index into `observed` where the appliers started. */
let gitOpsFrom = 0;

const ssPath = (sub = "") =>
  `/apis/specops.dev/v1alpha1/namespaces/${NS}/specserves/${NAME}${sub ? `/${sub}` : ""}`;
const getSs = async () => (await kubeRequest(kc, "GET", ssPath())).body;
const patch = (body: object) => kubeRequest(kc, "PATCH", ssPath(), body, "application/merge-patch+json");
const kubectlScale = (replicas: number) =>
  kubeRequest(kc, "PATCH", ssPath("scale"), { spec: { replicas } }, "application/merge-patch+json");
const condition = async (type: string) =>
  (await getSs())?.status?.conditions?.find((c: { type: string }) => c.type === type);
async function events(reason: string) {
  const list = await kubeRequest(kc, "GET", `/apis/events.k8s.io/v1/namespaces/${NS}/events`);
  return (list.body.items ?? []).filter(
    (e: { reason: string; regarding: { name: string } }) => e.reason === reason && e.regarding.name === NAME,
  );
}
const replicasReach = (what: string, ok: (r: number) => boolean, timeoutMs = 30_000) =>
  until(
    what,
    async () => {
      const r = (await getSs())?.spec?.replicas;
      return typeof r === "number" && ok(r) ? r : undefined;
    },
    timeoutMs,
  );
/** Asserts spec.replicas stays `replicas` for `ms`. */
async function stays(replicas: number, ms: number) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    expect((await getSs())?.spec?.replicas).toBe(replicas);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  kc = kubeConfig();
  apps = kc.makeApiClient(AppsV1Api);
  await installCrds(kc);
  await ensureNamespace(kc, NS);
  server = createServer((req, res) => {
    if (req.url !== "/metrics") return void res.writeHead(404).end();
    if (fleet.failing) return void res.writeHead(503).end("engine unavailable");
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(fleet.text());
  });
  port = await new Promise<number>((r) =>
    server.listen(0, POD_IP, () => r((server.address() as { port: number }).port)),
  );
  kubelet = new FakeKubelet(kc, {
    nodeName: "as-test-node",
    podIP: () => POD_IP,
    onRunning: (pod) => fleet.pods.add(pod.metadata?.name ?? ""),
    onDeleting: (pod) => fleet.pods.delete(pod.metadata?.name ?? ""),
  });
  await kubelet.start();
  const operatorKc = await restrictedKubeConfig(kc, "specops-operator-as-test", OPERATOR_RBAC_RULES);
  operator = await startOperator(operatorKc, { namespace: NS, progressPort: 9090 });
  const created = await kubeRequest(
    kc,
    "POST",
    `/apis/specops.dev/v1alpha1/namespaces/${NS}/specserves`,
    gitManifest(),
  );
  expect(created.body?.message).toBeUndefined();
  void (async () => {
    while (watching) {
      const ss = await getSs().catch(() => undefined);
      if (ss?.spec?.autoscaling?.enabled && typeof ss.spec.replicas === "number") {
        observed.push(ss.spec.replicas);
        const c = ss.status?.conditions?.find((x: { type: string }) => x.type === "ScalingActive");
        if (!outage && c?.status === "False") inactiveWhileUp.push(`${c.reason}: ${c.message}`);
        const a = ss.status?.autoscaling;
        // A decision's message carries its figures, so a new message is a new decision first seen.
        if (a?.message !== lastMessage && typeof a?.tau === "number" && a.tau < 3.95)
          oldLoadLastDecidedMs = Date.now();
        lastMessage = a?.message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
}, 60_000);

afterAll(async () => {
  watching = false;
  await gitOps?.stop();
  await operator?.stop();
  await kubelet?.stop();
  server?.close();
});

describe("the autoscaler against scripted metrics (vLLM format, test edge: no engine)", () => {
  it("holds one replica at tau 4 with the figures in status, and its acceptance baseline", async () => {
    const s = await until(
      "a steady decision at tau 4",
      async () => {
        const a = (await getSs())?.status?.autoscaling;
        return a?.tau === 4 && ["Steady", "AtLimit"].includes(a.reason) ? a : undefined;
      },
      30_000,
    );
    expect(s).toMatchObject({ desiredReplicas: 1, spsSource: expect.stringContaining("first-principles") });
    // SPS(B) learned online from the step figures lands in status (the real API server's schema).
    await expectSpsLearnedAsModel(getSs, "SPS(B) learned online in status");
    expect(s.maxConcurrencyPerReplica).toBeGreaterThan(150);
    expect(s.speculationLength?.action).toBe("recommend");
    expect((await getSs()).spec.replicas).toBe(1);
    expect(await condition("ScalingActive")).toMatchObject({ status: "True", reason: "SignalsMeasured" });
    outage = false;
    await until(
      "the drift baseline",
      async () => (await condition("AcceptanceHealthy"))?.reason === "Healthy",
    );
    expect((await getSs()).status.autoscaling.baselineTau).toBeCloseTo(4, 1);
  });

  it("scales up when tau falls at constant load, before any latency breach; drift sets its condition and Event", async () => {
    gitOps = gitOpsAppliers();
    gitOpsFrom = observed.length;
    fleet.acceptance = TAU2;
    const r = await replicasReach("a scale-up on the tau drop", (n) => n >= 2);
    expect(r).toBeLessThanOrEqual(4);
    const ss = await getSs();
    expect(ss.status.decisions[0]).toMatchObject({
      from: 1,
      to: r,
      reason: expect.stringMatching(/^ScaleUp/),
    });
    expect((await events("ScaledUp")).length).toBeGreaterThan(0);
    const drift = await until("AcceptanceHealthy=False", async () => {
      const c = await condition("AcceptanceHealthy");
      return c?.status === "False" ? c : undefined;
    });
    expect(drift.reason).toBe("AcceptanceDrift");
    expect(drift.message).toMatch(/live tau 2\.00.*baseline 4\.00/);
    const ev = await until("the drift Event", async () => (await events("AcceptanceDrift"))[0]);
    expect(ev.type).toBe("Warning");
    expect(ev.note).toMatch(/below the baseline 4\.00/);
  });

  it("scales up on SLO pressure (measured TPOT p95 over the SLO) and never above maxReplicas", async () => {
    fleet.tpot = 0.012; // p95 in (10 ms, 15 ms]: over the 8 ms SLO whatever the model says
    await replicasReach("maxReplicas under pressure", (n) => n === 4);
    await stays(4, 3000);
    const text = await operator.manager.metrics.registry.metrics();
    expect(text).toContain(`specops_autoscaler_desired_replicas{namespace="${NS}",specserve="${NAME}"} 4`);
    expect(text).toMatch(/specops_autoscaler_tau\{namespace="as-tests",specserve="fleet"\} 2\b/);
    expect(text).toContain("specops_autoscaler_predicted_tokens_per_second_per_user");
    expect(text).toContain("specops_autoscaler_measured_tokens_per_second_per_user");
    // Cost: GPU-hours held so far (1 GPU per replica, no gpuProduct: no gpu_product label).
    const hours = text.match(
      /specops_autoscaler_gpu_hours_total\{namespace="as-tests",specserve="fleet"\} (\S+)/,
    );
    expect(Number(hours?.[1])).toBeGreaterThan(0);
    const perGpuHour = text.match(
      /specops_autoscaler_generated_tokens_per_gpu_hour\{namespace="as-tests",specserve="fleet"\} (\S+)/,
    );
    expect(Number(perGpuHour?.[1])).toBeGreaterThan(0);
  });

  it("scales down slowly when the load falls: after the down-stabilisation, one step, never below min", async () => {
    // minReplicas 3 (a change in Git, applied by the appliers): the model would need one replica.
    gitAutoscaling.minReplicas = 3;
    fleet.tpot = null;
    fleet.acceptance = TAU4;
    fleet.running = 20;
    fleet.rps = 3;
    await replicasReach("the first step down", (n) => n < 4);
    // 4 s of down-stabilisation after the last decision that saw some of the old load (less the
    // watcher's polling and reads, 1 s at most).
    expect(oldLoadLastDecidedMs).toBeGreaterThan(0);
    expect(Date.now() - oldLoadLastDecidedMs).toBeGreaterThanOrEqual(3000);
    expect((await getSs()).spec.replicas).toBe(3);
    await until(
      "held at minReplicas",
      async () => (await getSs())?.status?.autoscaling?.reason === "AtLimit",
    );
    await stays(3, 2500);
    expect((await events("ScaledDown")).length).toBeGreaterThan(0);
    await gitOps?.stop();
    expect(gitOps?.errors).toEqual([]);
    // No fight with the appliers: spec.replicas went up, then down, never back and forth.
    const runs = observed.slice(gitOpsFrom).filter((r, i, a) => i === 0 || a[i - 1] !== r);
    const peak = runs.indexOf(Math.max(...runs));
    expect(runs.slice(0, peak + 1)).toEqual([...runs.slice(0, peak + 1)].sort((a, b) => a - b));
    expect(runs.slice(peak)).toEqual([...runs.slice(peak)].sort((a, b) => b - a));
    expect(runs.at(-1)).toBe(3);
  });

  it("holds the scale on missing metrics with MetricsAvailable=False and ScalingActive=False", async () => {
    outage = true;
    fleet.failing = true;
    const c = await until("ScalingActive=False", async () => {
      const x = await condition("ScalingActive");
      return x?.status === "False" ? x : undefined;
    });
    expect(c.reason).toBe("MetricsMissing");
    expect(c.message).toMatch(/503.*replicas held at 3/);
    await until(
      "MetricsAvailable=False",
      async () => (await condition("MetricsAvailable"))?.status === "False",
    );
    await stays(3, 2500);
    fleet.failing = false;
    await until("metrics back", async () => (await condition("ScalingActive"))?.status === "True");
    outage = false;
  });

  it("overrides kubectl scale at the next decision, with an Event saying so", async () => {
    expect((await kubectlScale(1)).status).toBe(200);
    await replicasReach("kubectl scale overridden", (n) => n === 3, 15_000);
    const ev = await until("the override Event", async () => (await events("ScaleOverridden"))[0]);
    expect(ev.note).toMatch(/set to 1 outside the autoscaler.*set to 3/);
    const full = (await kubeRequest(kc, "GET", `${ssPath()}?showManagedFields=true`)).body;
    const owner = full.metadata.managedFields.find(
      (f: { fieldsV1?: { "f:spec"?: { "f:replicas"?: unknown } } }) => f.fieldsV1?.["f:spec"]?.["f:replicas"],
    );
    expect(owner).toMatchObject({ manager: "specops-autoscaler", subresource: "scale" });
  });

  it("honours kubectl scale exactly once autoscaling is off", async () => {
    await patch({ spec: { autoscaling: { enabled: false } } });
    await until(
      "autoscaling off in status",
      async () => (await getSs())?.status?.autoscaling?.reason === "Disabled",
    );
    expect(await condition("ScalingActive")).toMatchObject({
      status: "False",
      reason: "AutoscalingDisabled",
    });
    expect((await kubectlScale(2)).status).toBe(200);
    await until("the Deployment at 2", async () =>
      (await apps.readNamespacedDeployment({ name: NAME, namespace: NS })).spec?.replicas === 2
        ? true
        : undefined,
    );
    await stays(2, 3000);
    // While on, spec.replicas never left [min, max] (min 1, then 3 once raised; max 4).
    expect(observed.length).toBeGreaterThan(50);
    expect(Math.min(...observed)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...observed)).toBeLessThanOrEqual(4);
    expect(inactiveWhileUp).toEqual([]);
  });
  it("reads SPS(B) from the referenced ConfigMap, and says so (Event, status) when it cannot", async () => {
    await kubeRequest(kc, "POST", `/api/v1/namespaces/${NS}/configmaps`, {
      metadata: { name: "sps" },
      data: {
        "bad.json": JSON.stringify({ rows: [{ batch: 1, steps_per_second: -5 }] }),
        "sps.json": JSON.stringify({
          gpuProduct: "NVIDIA-H200",
          rows: [
            { batch: 1, steps_per_second: 160 },
            { batch: 512, steps_per_second: 90 },
            { batch: 2048, steps_per_second: 30 },
          ],
        }),
      },
    });
    await patch({
      spec: { autoscaling: { enabled: true, spsTable: { configMapName: "sps", key: "bad.json" } } },
    });
    const ev = await until("the SPS table Event", async () => (await events("SpsTableUnusable"))[0]);
    expect(ev.type).toBe("Warning");
    expect(ev.note).toMatch(/rows\[0\]\.steps_per_second/);
    await until("the model as fallback in status", async () =>
      /first-principles.*bad\.json/.test((await getSs())?.status?.autoscaling?.spsSource ?? ""),
    );
    await patch({ spec: { autoscaling: { spsTable: { key: "sps.json" } } } });
    const source = await until("the table in use", async () => {
      const s = (await getSs())?.status?.autoscaling?.spsSource;
      return s?.startsWith("ConfigMap") ? s : undefined;
    });
    expect(source).toMatch(
      /^ConfigMap sps\/sps\.json \(NVIDIA-H200\), 3 rows(; (learning|corrected) online .*)?$/,
    );
    // Another prior: the online correction starts over for it.
    await until("the correction learned anew for the table", async () =>
      (await getSs())?.status?.autoscaling?.spsLearned?.prior ===
      "ConfigMap sps/sps.json (NVIDIA-H200), 3 rows"
        ? true
        : undefined,
    );
  });
});
