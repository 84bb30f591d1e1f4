// The autoscaler with spec.autoscaling.signals.source: Prometheus on a real API server: the operator
// runs in-process as a user holding exactly the generated ClusterRole (plus, once granted, the
// chart's opt-in autoscaler.prometheusAuthSecrets rule), the real Deployment and ReplicaSet
// controllers run in kube-controller-manager, the fake kubelet plays the pods, and a real
// Prometheus 3.16.0 behind basic auth scrapes the fleet every 250 ms. Test edge (no GPU, no engine):
// the serving pods' metrics are one loopback server speaking vLLM's names with a scripted fleet;
// Prometheus reads every pod's series (with namespace and pod labels, as a PodMonitor attaches them),
// the SpecServe controller still reads /metrics directly for status.signals.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_SHAPE } from "../../operator/src/autoscaler/capacity.ts";
import { QWEN3_8B_H200, spsFromModel } from "../../operator/src/autoscaler/sps.ts";
import { PROMETHEUS_AUTH_RBAC_RULES } from "../../operator/src/controllers/autoscaler/rbac.ts";
import { OPERATOR_RBAC_RULES } from "../../operator/src/rbac.ts";
import { FakeKubelet } from "../controlplane/kubelet.ts";
import { PROMETHEUS_USER, type PrometheusServer, startPrometheus } from "../prometheus/server.ts";
import { TAU2, VllmFleet } from "../prometheus/vllm-fleet.ts";
import { ensureNamespace, installCrds, kubeConfig, kubeRequest, restrictedKubeConfig } from "./kube.ts";
import { type OperatorUnderTest, startOperator, until } from "./operator-harness.ts";
import { expectSpsLearnedAsModel, vllmSpecServe } from "./specserve-fixture.ts";

const NS = "as-prom-tests";
const NAME = "fleet";
const POD_IP = "127.0.0.7";
const SECRETS_ROLE = "specops-operator-as-prom-secrets";

let kc: KubeConfig;
let kubelet: FakeKubelet;
let operator: OperatorUnderTest;
let server: Server;
let prometheus: PrometheusServer;
let work: string;
let port = 0;
const fleet = new VllmFleet(1);
// Engine steps exactly as fast as the first-principles model (the autoscaler's prior when no table is
// given) says for the engine's batch and prefill: SPS(B) learned online through Prometheus reads 1.
const prior = spsFromModel(QWEN3_8B_H200);
fleet.stepSeconds = ({ running, promptTokensPerSecond }) => {
  const context = fleet.promptTokens + fleet.outputTokens / 2;
  const decode = 1 / prior(running * (1 + fleet.acceptance.length), context, running);
  const chunk = DEFAULT_SHAPE.prefillChunk;
  return decode / (1 - promptTokensPerSecond / (chunk * prior(chunk, context, running)));
};

const ssPath = () => `/apis/specops.dev/v1alpha1/namespaces/${NS}/specserves/${NAME}`;
const getSs = async () => (await kubeRequest(kc, "GET", ssPath())).body;
const condition = async (type: string) =>
  (await getSs())?.status?.conditions?.find((c: { type: string }) => c.type === type);
const scalingActive = (status: "True" | "False", message: RegExp) =>
  until(
    `ScalingActive=${status} matching ${message}`,
    async () => {
      const c = await condition("ScalingActive");
      return c?.status === status && message.test(c.message) ? c : undefined;
    },
    30_000,
  );

beforeAll(async () => {
  kc = kubeConfig();
  await installCrds(kc);
  await ensureNamespace(kc, NS);
  server = createServer((req, res) => {
    // /fleet: what Prometheus scrapes; /metrics: the SpecServe controller's direct scrape of a pod.
    if (req.url !== "/fleet" && req.url !== "/metrics") return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(req.url === "/fleet" ? fleet.fleetText(NS) : fleet.podText(fleet.podNames()[0] ?? ""));
  });
  port = await new Promise<number>((r) =>
    server.listen(0, POD_IP, () => r((server.address() as { port: number }).port)),
  );
  work = mkdtempSync(join(tmpdir(), "specops-as-prom-"));
  prometheus = await startPrometheus({
    dir: work,
    targets: [`${POD_IP}:${port}`],
    metricsPath: "/fleet",
    scrapeInterval: "250ms",
    basicAuth: true,
  });
  kubelet = new FakeKubelet(kc, {
    nodeName: "as-prom-test-node",
    podIP: () => POD_IP,
    onRunning: (pod) => fleet.addPod(pod.metadata?.name ?? ""),
    onDeleting: (pod) => fleet.removePod(pod.metadata?.name ?? ""),
  });
  await kubelet.start();
  const operatorKc = await restrictedKubeConfig(kc, "specops-operator-as-prom-test", OPERATOR_RBAC_RULES);
  operator = await startOperator(operatorKc, { namespace: NS, progressPort: 9090 });
  const secret = await kubeRequest(kc, "POST", `/api/v1/namespaces/${NS}/secrets`, {
    metadata: { name: "prometheus-auth" },
    stringData: { username: PROMETHEUS_USER.username, password: PROMETHEUS_USER.password },
  });
  expect(secret.body?.message).toBeUndefined();
  const created = await kubeRequest(
    kc,
    "POST",
    `/apis/specops.dev/v1alpha1/namespaces/${NS}/specserves`,
    vllmSpecServe(NAME, NS, port, {
      resources: { gpusPerReplica: 1 },
      autoscaling: {
        enabled: true,
        minReplicas: 1,
        maxReplicas: 4,
        window: "2s",
        scaleUpStabilization: "0s",
        slo: { tpotP95: "8ms" },
        signals: {
          source: "Prometheus",
          prometheus: {
            url: prometheus.url,
            basicAuthSecretRef: { name: "prometheus-auth" },
            matchers: { job: "engines" },
          },
        },
      },
    }),
  );
  expect(created.body?.message).toBeUndefined();
}, 600_000);

afterAll(async () => {
  await operator?.stop();
  await kubelet?.stop();
  await prometheus?.stop();
  server?.close();
  // The opt-in Secret rule is this file's alone: later files' operator holds the default role.
  for (const plural of ["clusterrolebindings", "clusterroles"])
    await kubeRequest(kc, "DELETE", `/apis/rbac.authorization.k8s.io/v1/${plural}/${SECRETS_ROLE}`).catch(
      () => undefined,
    );
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the autoscaler reading its signals from a real Prometheus (test edge: scripted vLLM engines)", () => {
  it("holds, saying why, while the operator may not read the auth Secret (the chart's opt-in)", async () => {
    const c = await scalingActive(
      "False",
      /Prometheus auth Secret prometheus-auth: the operator may not read Secrets/,
    );
    expect(c.reason).toBe("MetricsMissing");
    expect(c.message).toMatch(/autoscaler\.prometheusAuthSecrets=true/);
    expect((await getSs()).spec.replicas).toBe(1);
  });

  it("decides from Prometheus once granted: one replica at tau 4, the figures in status", async () => {
    await restrictedKubeConfig(kc, SECRETS_ROLE, PROMETHEUS_AUTH_RBAC_RULES);
    const s = await until(
      "a steady decision at tau 4",
      async () => {
        const a = (await getSs())?.status?.autoscaling;
        return a?.tau === 4 && ["Steady", "AtLimit"].includes(a.reason) ? a : undefined;
      },
      45_000,
    );
    expect(s.desiredReplicas).toBe(1);
    expect(await condition("ScalingActive")).toMatchObject({ status: "True", reason: "SignalsMeasured" });
    // SPS(B) is learned online from the step figures Prometheus holds, as from a direct scrape.
    await expectSpsLearnedAsModel(getSs, "SPS(B) learned online through Prometheus");
    // The password never reaches status or Events.
    const events = await kubeRequest(kc, "GET", `/apis/events.k8s.io/v1/namespaces/${NS}/events`);
    expect(JSON.stringify([await getSs(), events.body])).not.toContain(PROMETHEUS_USER.password);
  });

  it("scales up when tau falls at constant load", async () => {
    fleet.acceptance = TAU2;
    const r = await until(
      "a scale-up on the tau drop",
      async () => {
        const n = (await getSs())?.spec?.replicas;
        return typeof n === "number" && n >= 2 ? n : undefined;
      },
      30_000,
    );
    expect(r).toBeLessThanOrEqual(4);
    // spec.replicas is written (through /scale) before the status that explains it.
    const ss = await until("the scale-up in status", async () => {
      const x = await getSs();
      return /^ScaleUp/.test(x?.status?.decisions?.[0]?.reason ?? "") ? x : undefined;
    });
    expect(ss.status.decisions[0]).toMatchObject({ from: 1, to: r });
    expect(ss.status.autoscaling.tau).toBeLessThan(4);
  });

  it("holds the scale while Prometheus is down (the pods still serve /metrics), and resumes when it is back", async () => {
    await prometheus.stop();
    const c = await scalingActive("False", /Prometheus http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
    expect(c.reason).toBe("MetricsMissing");
    // Whatever the last decision left (the scale-up may still have been settling): held from now on.
    const held = (await getSs()).spec.replicas;
    expect(held).toBeGreaterThanOrEqual(2);
    expect(c.message).toContain(`replicas held at ${held}`);
    const end = Date.now() + 3000;
    while (Date.now() < end) {
      expect((await getSs()).spec.replicas).toBe(held);
      await new Promise((r) => setTimeout(r, 200));
    }
    await prometheus.start();
    await scalingActive("True", /ready pods scraped over the window/);
  });
});
