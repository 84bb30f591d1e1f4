// One scrape per serving pod per window, on a real API server with both readers of the pods'
// /metrics running in the operator: the SpecServe controller (status.signals) and the autoscaler.
// Test edge (no engine): each pod's /metrics is a loopback server on the pod's own IP, speaking
// vLLM's metric names and counting the GETs it answers; the fake kubelet plays the pods, the real
// kube-controller-manager their Deployment and ReplicaSet.
import { createServer, type Server } from "node:http";
import type { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPERATOR_RBAC_RULES } from "../../operator/src/rbac.ts";
import { FakeKubelet } from "../controlplane/kubelet.ts";
import { apiServerRequests, requestsBetween } from "../support/apiserver-requests.ts";
import {
  ensureNamespace,
  installCrds,
  kubeConfig,
  kubeRequest,
  kubeRequestText,
  restrictedKubeConfig,
} from "./kube.ts";
import { type OperatorUnderTest, startOperator, until } from "./operator-harness.ts";
import { vllmSpecServe } from "./specserve-fixture.ts";

const NS = "scrape-shared";
const NAME = "shared";
const IPS = ["127.0.0.31", "127.0.0.32", "127.0.0.33"];
const WINDOW_S = 1;

let kc: KubeConfig;
let kubelet: FakeKubelet;
let operator: OperatorUnderTest;
const servers: Server[] = [];
let port = 0;
/** GETs of /metrics answered, by pod IP. */
const gets = new Map<string, number>();
/** Pod name → the IP it was given (each pod its own, as a cluster gives them). */
const podIPs = new Map<string, string>();
const started = Date.now();

/** One vLLM engine at a steady load: counters advance with wall time, tau 3. */
function metricsText(): string {
  const t = (Date.now() - started) / 1000;
  const l = 'engine="0",model_name="qwen3-8b"';
  const drafts = 50 * t;
  return [
    "# TYPE vllm:num_requests_running gauge",
    `vllm:num_requests_running{${l}} 8`,
    "# TYPE vllm:num_requests_waiting gauge",
    `vllm:num_requests_waiting{${l}} 0`,
    "# TYPE vllm:request_success counter",
    `vllm:request_success_total{${l},finished_reason="stop"} ${0.5 * t}`,
    "# TYPE vllm:generation_tokens counter",
    `vllm:generation_tokens_total{${l}} ${150 * t}`,
    "# TYPE vllm:prompt_tokens counter",
    `vllm:prompt_tokens_total{${l}} ${50 * t}`,
    "# TYPE vllm:spec_decode_num_drafts counter",
    `vllm:spec_decode_num_drafts_total{${l}} ${drafts}`,
    "# TYPE vllm:spec_decode_num_accepted_tokens counter",
    `vllm:spec_decode_num_accepted_tokens_total{${l}} ${2 * drafts}`,
    "",
  ].join("\n");
}

const ssPath = `/apis/specops.dev/v1alpha1/namespaces/${NS}/specserves/${NAME}`;
const getSs = async () => (await kubeRequest(kc, "GET", ssPath)).body;

beforeAll(async () => {
  kc = kubeConfig();
  await installCrds(kc);
  await ensureNamespace(kc, NS);
  for (const ip of IPS) {
    const server = createServer((req, res) => {
      if (req.url !== "/metrics") return void res.writeHead(404).end();
      gets.set(ip, (gets.get(ip) ?? 0) + 1);
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
      res.end(metricsText());
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(port, ip, r));
    port = (server.address() as { port: number }).port;
  }
  kubelet = new FakeKubelet(kc, {
    nodeName: "scrape-shared-node",
    podIP: (pod) => {
      const name = pod.metadata?.name ?? "";
      const taken = new Set(podIPs.values());
      const ip = podIPs.get(name) ?? IPS.find((x) => !taken.has(x)) ?? "127.0.0.30";
      podIPs.set(name, ip);
      return ip;
    },
  });
  await kubelet.start();
  const operatorKc = await restrictedKubeConfig(kc, "specops-operator-scrape-test", OPERATOR_RBAC_RULES);
  operator = await startOperator(operatorKc, { namespace: NS, progressPort: 9090 });
  const created = await kubeRequest(
    kc,
    "POST",
    `/apis/specops.dev/v1alpha1/namespaces/${NS}/specserves`,
    vllmSpecServe(NAME, NS, port, {
      speculative: { numSpeculativeTokens: 2 },
      resources: { gpusPerReplica: 1 },
      // Two replicas held (min = max): the pods stay the same while the GETs are counted.
      autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 2, window: `${WINDOW_S}s` },
    }),
  );
  expect(created.body?.message).toBeUndefined();
}, 60_000);

afterAll(async () => {
  await operator?.stop();
  await kubelet?.stop();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

describe("status.signals and the autoscaler share their scrapes (test edge: scripted vLLM /metrics)", () => {
  it("each ready pod answers one GET per window while both read it", async () => {
    // Both readers have measured a window: status.signals and the autoscaler's figures.
    await until(
      "status.signals and an autoscaler decision, both at tau 3",
      async () => {
        const ss = await getSs();
        return ss?.status?.signals?.tau === 3 && ss?.status?.autoscaling?.tau === 3 ? true : undefined;
      },
      45_000,
    );
    // The IPs of the SpecServe's pods that are Ready now (a pod replaced mid-window would read 0).
    const readyIPs = async () => {
      const list = (await kubeRequest(kc, "GET", `/api/v1/namespaces/${NS}/pods`)).body.items as {
        metadata: { name: string; deletionTimestamp?: string };
        status?: { conditions?: { type: string; status: string }[] };
      }[];
      return list
        .filter(
          (p) =>
            !p.metadata.deletionTimestamp &&
            p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        )
        .map((p) => podIPs.get(p.metadata.name) ?? "")
        .sort()
        .join(",");
    };
    // Measured over a window in which the same two pods served throughout (retried if one changed).
    let pods: string[] = [];
    let perWindow = new Map<string, number>();
    for (let attempt = 0; attempt < 3; attempt++) {
      const at = await readyIPs();
      const before = new Map(at.split(",").map((ip) => [ip, gets.get(ip) ?? 0]));
      const from = Date.now();
      await new Promise((r) => setTimeout(r, 12_000));
      const windows = (Date.now() - from) / 1000 / WINDOW_S;
      if ((await readyIPs()) !== at) continue;
      pods = at.split(",");
      perWindow = new Map(pods.map((ip) => [ip, ((gets.get(ip) ?? 0) - (before.get(ip) ?? 0)) / windows]));
      break;
    }
    expect(pods).toHaveLength(2);
    for (const ip of pods) {
      // Two readers scraping on their own would make this 2.
      expect(perWindow.get(ip), `GETs per window of the pod at ${ip}`).toBeGreaterThan(0.7);
      expect(perWindow.get(ip), `GETs per window of the pod at ${ip}`).toBeLessThan(1.3);
    }
    // Both kept reading: the figures are still there and the operator scraped through one cache.
    const ss = await getSs();
    expect(ss.status.signals.tau).toBe(3);
    expect(ss.status.autoscaling.tau).toBe(3);
    const text = await operator.manager.metrics.registry.metrics();
    expect(text).toMatch(/specops_pod_scrape_duration_seconds_count\{result="ok"\} \d+/);
  }, 90_000);

  it("a window that changes no child applies none: the serving children are applied once, not every pass", async () => {
    // Each window runs SpecServe passes (the signals clock, status writes of both controllers);
    // only the operator server-side applies these kinds here (kube-controller-manager updates).
    const children = ["deployments", "configmaps", "services", "poddisruptionbudgets"];
    const count = async () =>
      apiServerRequests(await kubeRequestText(kc, "/metrics"), [...children, "specserves"]);
    const specServePasses = async () => {
      const text = await operator.manager.metrics.registry.metrics();
      let n = 0;
      for (const m of text.matchAll(
        /^controller_runtime_reconcile_total\{controller="specserve",[^}]*\} (\d+)/gm,
      ))
        n += Number(m[1]);
      return n;
    };
    const [before, passesBefore] = [await count(), await specServePasses()];
    const from = Date.now();
    await new Promise((r) => setTimeout(r, 8000));
    const windows = (Date.now() - from) / 1000 / WINDOW_S;
    const grown = requestsBetween(before, await count());
    const applies = children.reduce((n, r) => n + (grown.get(`APPLY ${r}`) ?? 0), 0);
    // The passes kept running (one a window at least: the signals clock).
    expect((await specServePasses()) - passesBefore).toBeGreaterThan(windows * 0.8);
    // Before: four applies per pass (Deployment, task ConfigMap, Service, PDB), 4+ per window.
    expect(applies / windows, `child applies per window (${JSON.stringify([...grown])})`).toBeLessThan(0.5);
    // The figures still follow the pods.
    expect((await getSs()).status.signals.tau).toBe(3);
  }, 30_000);
});
