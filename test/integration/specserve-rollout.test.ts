// The acceptance-gated draft rollout on a real API server. Test edge (no GPU, no engine): each
// serving pod's /metrics is a loopback server speaking vLLM's counter names with scripted
// acceptance, stable pods on 127.0.0.2 and canary pods on 127.0.0.3 (the fake kubelet reports those
// pod IPs); the operator scrapes them per pod and measures through the project's signal parser.
import { createServer, type Server } from "node:http";
import { AppsV1Api, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPERATOR_RBAC_RULES } from "../../operator/src/rbac.ts";
import { FakeKubelet } from "../controlplane/kubelet.ts";
import { ensureNamespace, installCrds, kubeConfig, kubeRequest, restrictedKubeConfig } from "./kube.ts";
import { type OperatorUnderTest, startOperator, until } from "./operator-harness.ts";
import { vllmSpecServe } from "./specserve-fixture.ts";

const NS = "ss-rollout";
let kc: KubeConfig;
let operatorKc: KubeConfig;
let kubelet: FakeKubelet;
let operator: OperatorUnderTest;
let apps: AppsV1Api;
let core: CoreV1Api;
let port = 0;
const servers: Server[] = [];

/** A vLLM-like counter set that grows by `rounds` verification rounds at each scrape. */
class ScriptedEngine {
  acceptance: number[];
  drafts = 0;
  accepted = 0;
  generated = 0;
  perPos: number[];
  constructor(acceptance: number[]) {
    this.acceptance = acceptance;
    this.perPos = acceptance.map(() => 0);
  }
  scrape(rounds = 2000): string {
    this.drafts += rounds;
    this.acceptance.forEach((a, i) => {
      const n = Math.round(rounds * a);
      this.perPos[i] = (this.perPos[i] ?? 0) + n;
      this.accepted += n;
      this.generated += n;
    });
    this.generated += rounds;
    const l = 'engine="0",model_name="m"';
    return [
      "# TYPE vllm:spec_decode_num_drafts counter",
      `vllm:spec_decode_num_drafts_total{${l}} ${this.drafts}`,
      "# TYPE vllm:spec_decode_num_accepted_tokens counter",
      `vllm:spec_decode_num_accepted_tokens_total{${l}} ${this.accepted}`,
      "# TYPE vllm:spec_decode_num_accepted_tokens_per_pos counter",
      ...this.perPos.map(
        (v, i) => `vllm:spec_decode_num_accepted_tokens_per_pos_total{${l},position="${i}"} ${v}`,
      ),
      "# TYPE vllm:generation_tokens counter",
      `vllm:generation_tokens_total{${l}} ${this.generated}`,
      "",
    ].join("\n");
  }
}
const GOOD = [0.9, 0.8, 0.7, 0.6]; // tau 4.0
let stableEngine = new ScriptedEngine(GOOD);
let canaryEngine = new ScriptedEngine(GOOD);

function listen(host: string, engine: () => ScriptedEngine): Promise<number> {
  const server = createServer((req, res) => {
    if (req.url !== "/metrics") return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(engine().scrape());
  });
  servers.push(server);
  return new Promise((r) => server.listen(port, host, () => r((server.address() as { port: number }).port)));
}

const ssPath = (name = "") =>
  `/apis/specops.dev/v1alpha1/namespaces/${NS}/specserves${name ? `/${name}` : ""}`;
const getSs = async (name: string) => (await kubeRequest(kc, "GET", ssPath(name))).body;
const patch = (name: string, body: object) =>
  kubeRequest(kc, "PATCH", ssPath(name), body, "application/merge-patch+json");
const taskDraft = async (cm: string) =>
  JSON.parse((await core.readNamespacedConfigMap({ name: cm, namespace: NS })).data?.["task.json"] ?? "{}")
    .params.draft?.uri;
const canaryExists = async (name: string) =>
  (await apps.listNamespacedDeployment({ namespace: NS })).items.some(
    (d) => d.metadata?.name === `${name}-canary`,
  );

beforeAll(async () => {
  kc = kubeConfig();
  apps = kc.makeApiClient(AppsV1Api);
  core = kc.makeApiClient(CoreV1Api);
  await installCrds(kc);
  await ensureNamespace(kc, NS);
  port = await listen("127.0.0.2", () => stableEngine);
  await listen("127.0.0.3", () => canaryEngine);
  kubelet = new FakeKubelet(kc, {
    nodeName: "ss-rollout-node",
    podIP: (pod) => (pod.metadata?.labels?.["specops.dev/canary"] === "true" ? "127.0.0.3" : "127.0.0.2"),
  });
  await kubelet.start();
  operatorKc = await restrictedKubeConfig(kc, "specops-operator-ss-rollout", OPERATOR_RBAC_RULES);
  operator = await startOperator(operatorKc, { namespace: NS, progressPort: 9090 });
  await kubeRequest(
    kc,
    "POST",
    ssPath(),
    vllmSpecServe("chat", NS, port, {
      draft: { source: { uri: "hf://org/draft-a" } },
      replicas: 2,
      rollout: { analysisWindow: "1s", minRounds: 1000, canaryReplicas: 1, maxTauDrop: 0.05 },
    }),
  );
  await until("serving draft a", async () =>
    (await getSs("chat"))?.status?.readyReplicas === 2 ? true : undefined,
  );
});

afterAll(async () => {
  await operator?.stop();
  await kubelet?.stop();
  for (const s of servers) s.close();
});

async function rolloutState(name: string, state: string) {
  return until(
    `rollout ${state}`,
    async () => {
      const r = (await getSs(name))?.status?.rollout;
      return r?.state === state ? r : undefined;
    },
    30_000,
  );
}

describe("draft rollout gated on acceptance", () => {
  it("blocks a clearly worse draft: canary removed, current draft kept, both taus recorded, an Event", async () => {
    canaryEngine = new ScriptedEngine([0.6, 0.4, 0.3, 0.2]); // tau 2.5
    await patch("chat", { spec: { draft: { source: { uri: "hf://org/draft-worse" } } } });
    await rolloutState("chat", "Canary");
    expect(await until("the canary", () => canaryExists("chat") || undefined)).toBe(true);
    expect(await taskDraft("chat-canary-task")).toBe("hf://org/draft-worse");
    expect(await taskDraft("chat-task")).toBe("hf://org/draft-a");
    const r = await rolloutState("chat", "RolledBack");
    expect(r).toMatchObject({ currentDraft: "hf://org/draft-a", candidateDraft: "hf://org/draft-worse" });
    expect(r.candidateTau).toBeCloseTo(2.5, 1);
    expect(r.currentTau).toBeCloseTo(4.0, 1);
    expect(r.candidateRounds).toBeGreaterThanOrEqual(1000);
    await until("the canary gone", async () => ((await canaryExists("chat")) ? undefined : true));
    expect(await taskDraft("chat-task")).toBe("hf://org/draft-a");
    expect((await getSs("chat")).status.draft).toBe("hf://org/draft-a");
    const events = await kubeRequest(kc, "GET", `/apis/events.k8s.io/v1/namespaces/${NS}/events`);
    expect(
      events.body.items.some((e: any) => e.reason === "DraftRolledBack" && /tau 2\.5/.test(e.note)),
    ).toBe(true);
  });

  it("promotes a better draft, and an operator restart mid-analysis neither loses nor doubles the canary", async () => {
    canaryEngine = new ScriptedEngine([0.95, 0.9, 0.8, 0.7]); // tau 4.35
    await patch("chat", {
      spec: { draft: { source: { uri: "hf://org/draft-better" } }, rollout: { analysisWindow: "3s" } },
    });
    const started = await rolloutState("chat", "Canary");
    await until("the canary", () => canaryExists("chat") || undefined);
    // The analysis window has begun (the canary pods' first scrape); its counters are stored.
    const analysisStart = await until("the analysis window's start", async () => {
      const r = (await getSs("chat"))?.status?.rollout;
      return r?.state === "Canary" && r.analysisStartTime ? r.analysisStartTime : undefined;
    });
    const baseline = await core.readNamespacedConfigMap({ name: "chat-rollout-baseline", namespace: NS });
    expect(baseline.data?.candidate).toBe("hf://org/draft-better");
    expect(Object.keys(baseline.data ?? {}).filter((k) => k.startsWith("canary."))).toHaveLength(1);
    expect(Object.keys(baseline.data ?? {}).filter((k) => k.startsWith("stable."))).toHaveLength(2);
    expect(baseline.data?.[Object.keys(baseline.data).find((k) => k.startsWith("canary.")) ?? ""]).toMatch(
      /^vllm:spec_decode_num_drafts_total\{/m,
    );
    // Restart more than a second into the window, so a window begun afresh would show a later start.
    await new Promise((r) => setTimeout(r, 1200));
    await operator.stop();
    operator = await startOperator(operatorKc, { namespace: NS, progressPort: 9090 });
    const after = (await getSs("chat")).status.rollout;
    expect(after).toMatchObject({ state: "Canary", startTime: started.startTime });
    const canaries = (await apps.listNamespacedDeployment({ namespace: NS })).items.filter((d) =>
      d.metadata?.name?.includes("canary"),
    );
    expect(canaries).toHaveLength(1);
    const r = await rolloutState("chat", "Promoted");
    // The restarted operator resumed the window from the stored baseline instead of restarting it.
    expect(r).toMatchObject({ currentDraft: "hf://org/draft-better", analysisStartTime: analysisStart });
    expect(r.candidateTau).toBeGreaterThan(r.currentTau);
    await until("the stable pods on the new draft", async () =>
      (await taskDraft("chat-task")) === "hf://org/draft-better" ? true : undefined,
    );
    await until("the canary gone", async () => ((await canaryExists("chat")) ? undefined : true));
    await until("the baseline ConfigMap gone", async () =>
      (await core.listNamespacedConfigMap({ namespace: NS })).items.some(
        (c) => c.metadata?.name === "chat-rollout-baseline",
      )
        ? undefined
        : true,
    );
    stableEngine = new ScriptedEngine([0.95, 0.9, 0.8, 0.7]);
  });
});
