// speculative.lengthTuning Apply on a real API server: the autoscaler proposes a draft-length
// schedule from the live acceptance by position and SPS(B); the SpecServe controller tries it on a
// canary through the rollout gate and promotes it, or does nothing when the gain is small. Test
// edge (no GPU, no engine): every serving pod's /metrics is a loopback server speaking vLLM's
// metric names with a scripted load, acceptance and per-user speed, stable pods on 127.0.0.8 and
// canary pods on 127.0.0.9 (the fake kubelet reports those pod IPs). A GitOps applier re-applies
// the user's manifest throughout: the applied schedule lives in status, so nobody fights.
import { createServer, type Server } from "node:http";
import { AppsV1Api, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPERATOR_RBAC_RULES } from "../../operator/src/rbac.ts";
import { FakeKubelet } from "../controlplane/kubelet.ts";
import { ensureNamespace, installCrds, kubeConfig, kubeRequest, restrictedKubeConfig } from "./kube.ts";
import { type OperatorUnderTest, startOperator, until } from "./operator-harness.ts";
import { vllmSpecServe } from "./specserve-fixture.ts";

const NS = "length-tuning";
const NAME = "chat";
const STABLE_IP = "127.0.0.8";
const CANARY_IP = "127.0.0.9";
/** tau 2.4 at k = 4: long drafts waste verification at high batch. */
const WEAK = [0.7, 0.4, 0.2, 0.1];

/**
 * The pods of one side (stable or canary) as their /metrics show them: `running` requests per pod,
 * each generating `speed` tokens/s; counters advance with wall time, so every series is monotonic.
 */
class ScriptedSide {
  running = 8;
  speed = 45;
  acceptance = WEAK;
  private t = Date.now();
  private c = { gen: 0, drafts: 0, accepted: 0, perPos: [0, 0, 0, 0] };

  text(): string {
    const now = Date.now();
    const dt = (now - this.t) / 1000;
    this.t = now;
    const gen = this.running * this.speed * dt;
    const tau = 1 + this.acceptance.reduce((a, b) => a + b, 0);
    const drafts = gen / tau;
    this.c.gen += gen;
    this.c.drafts += drafts;
    this.c.accepted += drafts * (tau - 1);
    this.acceptance.forEach((p, i) => {
      this.c.perPos[i] = (this.c.perPos[i] ?? 0) + drafts * p;
    });
    const l = 'engine="0",model_name="qwen3-8b"';
    return `${[
      "# TYPE vllm:num_requests_running gauge",
      `vllm:num_requests_running{${l}} ${this.running}`,
      "# TYPE vllm:num_requests_waiting gauge",
      `vllm:num_requests_waiting{${l}} 0`,
      "# TYPE vllm:request_success counter",
      `vllm:request_success_total{${l},finished_reason="stop"} ${this.c.gen / 1000}`,
      "# TYPE vllm:generation_tokens counter",
      `vllm:generation_tokens_total{${l}} ${this.c.gen}`,
      "# TYPE vllm:prompt_tokens counter",
      `vllm:prompt_tokens_total{${l}} ${this.c.gen / 10}`,
      "# TYPE vllm:spec_decode_num_drafts counter",
      `vllm:spec_decode_num_drafts_total{${l}} ${this.c.drafts}`,
      "# TYPE vllm:spec_decode_num_accepted_tokens counter",
      `vllm:spec_decode_num_accepted_tokens_total{${l}} ${this.c.accepted}`,
      "# TYPE vllm:spec_decode_num_accepted_tokens_per_pos counter",
      ...this.c.perPos.map(
        (v, i) => `vllm:spec_decode_num_accepted_tokens_per_pos_total{${l},position="${i}"} ${v}`,
      ),
    ].join("\n")}\n`;
  }
}

let kc: KubeConfig;
let kubelet: FakeKubelet;
let operator: OperatorUnderTest;
let apps: AppsV1Api;
let core: CoreV1Api;
let port = 0;
const servers: Server[] = [];
const stable = new ScriptedSide();
const canary = new ScriptedSide();

/** The manifest in "Git": no lengthByBatchSize (the operator tunes it), replicas held at 2. */
const manifest = () =>
  vllmSpecServe(NAME, NS, port, {
    speculative: { numSpeculativeTokens: 4, loadAdaptation: "Engine", lengthTuning: "Apply" },
    autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 2, window: "1s" },
    rollout: { analysisWindow: "2s", minRounds: 100, canaryReplicas: 1 },
  });

const ssPath = () => `/apis/specops.dev/v1alpha1/namespaces/${NS}/specserves/${NAME}`;
const getSs = async () => (await kubeRequest(kc, "GET", ssPath())).body;
const task = async (cm: string) =>
  JSON.parse((await core.readNamespacedConfigMap({ name: cm, namespace: NS })).data?.["task.json"] ?? "{}");
const canaryExists = async () =>
  (await apps.listNamespacedDeployment({ namespace: NS })).items.some(
    (d) => d.metadata?.name === `${NAME}-canary`,
  );
async function events(reason: string) {
  const list = await kubeRequest(kc, "GET", `/apis/events.k8s.io/v1/namespaces/${NS}/events`);
  return (list.body.items ?? []).filter(
    (e: { reason: string; regarding: { name: string } }) => e.reason === reason && e.regarding.name === NAME,
  );
}

/** Argo CD-style server-side apply of the manifest every 500 ms (forcing conflicts). */
function gitOpsApplier() {
  const errors: string[] = [];
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const r = await kubeRequest(
        kc,
        "PATCH",
        `${ssPath()}?fieldManager=argocd-controller&force=true`,
        manifest(),
        "application/apply-patch+yaml",
      ).catch((err) => ({ status: 599, body: { message: String(err) } }));
      if (r.status >= 300) errors.push(`${r.status} ${r.body?.message}`);
      await new Promise((res) => setTimeout(res, 500));
    }
  })();
  return {
    errors,
    stop: async () => {
      stop = true;
      await loop;
    },
  };
}
let gitOps: ReturnType<typeof gitOpsApplier> | undefined;

function listen(host: string, side: ScriptedSide): Promise<number> {
  const server = createServer((req, res) => {
    if (req.url !== "/metrics") return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(side.text());
  });
  servers.push(server);
  return new Promise((r) => server.listen(port, host, () => r((server.address() as { port: number }).port)));
}

beforeAll(async () => {
  kc = kubeConfig();
  apps = kc.makeApiClient(AppsV1Api);
  core = kc.makeApiClient(CoreV1Api);
  await installCrds(kc);
  await ensureNamespace(kc, NS);
  port = await listen(STABLE_IP, stable);
  await listen(CANARY_IP, canary);
  kubelet = new FakeKubelet(kc, {
    nodeName: "length-tuning-node",
    podIP: (pod) => (pod.metadata?.labels?.["specops.dev/canary"] === "true" ? CANARY_IP : STABLE_IP),
  });
  await kubelet.start();
  const operatorKc = await restrictedKubeConfig(kc, "specops-operator-length", OPERATOR_RBAC_RULES);
  operator = await startOperator(operatorKc, { namespace: NS, progressPort: 9090 });
  const created = await kubeRequest(
    kc,
    "POST",
    `/apis/specops.dev/v1alpha1/namespaces/${NS}/specserves`,
    manifest(),
  );
  expect(created.body?.message).toBeUndefined();
  await until("two ready replicas", async () =>
    (await getSs())?.status?.readyReplicas === 2 ? true : undefined,
  );
}, 60_000);

afterAll(async () => {
  await gitOps?.stop();
  await operator?.stop();
  await kubelet?.stop();
  for (const s of servers) s.close();
});

describe("lengthTuning Apply (scripted vLLM metrics, test edge: no engine)", () => {
  it("does not act when the predicted gain is small: the schedule is only reported", async () => {
    const rec = await until("a recommendation at batch 8", async () => {
      const s = (await getSs())?.status?.autoscaling?.speculationLength;
      return s?.currentBatch === 8 ? s : undefined;
    });
    expect(rec.action).toBe("recommend");
    expect(rec.reason).toMatch(/below 10%, not worth a rolling restart/);
    expect(rec.ranges[0]).toMatchObject({ minBatch: 1, tokens: 4 });
    // Several more windows: still no canary, no schedule in the Task.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await canaryExists()).toBe(false);
    const ss = await getSs();
    expect(ss.status.rollout?.candidateKind).toBeUndefined();
    expect(ss.status.rollout?.lengths).toBeUndefined();
    expect((await task(`${NAME}-task`)).params.speculative.lengthByBatchSize).toBeUndefined();
  });

  it("rolls back a schedule the canary measures slower, and does not retry it while the figures hold", async () => {
    stable.running = 110;
    canary.running = 110;
    canary.speed = 40; // the engine does worse with the schedule than the model predicts
    const started = await until("a length canary", async () => {
      const r = (await getSs())?.status?.rollout;
      return r?.state === "Canary" && r.candidateKind === "Length" ? r : undefined;
    });
    expect(started.lengths.proposedBatch).toBe(110);
    const back = await until("the schedule rolled back", async () => {
      const r = (await getSs())?.status?.rollout;
      return r?.state === "RolledBack" && r.candidateKind === "Length" ? r : undefined;
    });
    expect(back.message).toMatch(/^SlowerPerUser: per-user speed/);
    expect(back.lengths).toMatchObject({ outcome: "RolledBack", candidate: started.lengths.candidate });
    expect(back.lengths.applied).toBeUndefined();
    await until("the canary gone", async () => ((await canaryExists()) ? undefined : true));
    const [event] = await events("LengthScheduleRolledBack");
    expect(event?.note).toMatch(/SlowerPerUser/);
    // Same figures: the proposal stays a recommendation (cool-down, then the rolled-back rule).
    const held = await until("the next recommendation", async () => {
      const s = (await getSs())?.status?.autoscaling?.speculationLength;
      return s && /cooling down/.test(s.reason) ? s : undefined;
    });
    expect(held.action).toBe("recommend");
    await new Promise((r) => setTimeout(r, 2000));
    expect(await canaryExists()).toBe(false);
    expect((await task(`${NAME}-task`)).params.speculative.lengthByBatchSize).toBeUndefined();
    expect(await events("LengthCanaryStarted")).toHaveLength(1);
  });

  it("once the load moves (2x per replica), rolls a schedule out through the gate and promotes it, with the user's manifest re-applied throughout", async () => {
    gitOps = gitOpsApplier();
    stable.running = 230;
    canary.running = 230;
    canary.speed = 60; // the shorter drafts at high batch speed every user up
    const started = await until(
      "a length canary after the cool-down",
      async () => {
        const r = (await getSs())?.status?.rollout;
        return r?.state === "Canary" && r.candidateKind === "Length" ? r : undefined;
      },
      40_000,
    );
    const candidate = started.lengths.candidate;
    expect(candidate[0]).toMatchObject({ minBatch: 1, tokens: 4 });
    expect(candidate.some((r: { tokens: number }) => r.tokens < 4)).toBe(true);
    expect(started.lengths.predictedGain).toBeGreaterThanOrEqual(0.1);
    expect(started.lengths.proposedBatch).toBe(230);
    expect(started.currentDraft).toBe("hf://org/Qwen3-8B-eagle3");
    expect(started.candidateDraft).toBe("hf://org/Qwen3-8B-eagle3");
    await until("the canary", () => canaryExists() || undefined);
    expect((await task(`${NAME}-canary-task`)).params.speculative.lengthByBatchSize).toEqual(candidate);
    expect((await task(`${NAME}-task`)).params.speculative.lengthByBatchSize).toBeUndefined();

    const promoted = await until(
      "the schedule promoted",
      async () => {
        const r = (await getSs())?.status?.rollout;
        return r?.state === "Promoted" && r.candidateKind === "Length" ? r : undefined;
      },
      30_000,
    );
    expect(promoted.lengths).toMatchObject({ applied: candidate, outcome: "Promoted" });
    expect(promoted.lengths.appliedTime).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(promoted.lengths.appliedGain).toBe(started.lengths.predictedGain);
    // Measured over the window from the scrapes of each side (the scripted 60 and 45 tokens/s).
    expect(Math.abs(promoted.lengths.candidateTokensPerSecondPerUser - 60)).toBeLessThan(3);
    expect(Math.abs(promoted.lengths.currentTokensPerSecondPerUser - 45)).toBeLessThan(3);
    expect(promoted.message).toMatch(
      /per-user speed [\d.]+ tokens\/s on the canary, [\d.]+ on the stable pods \(\+/,
    );
    await until("the stable pods on the schedule", async () => {
      const t = await task(`${NAME}-task`);
      const key = (rs: { minBatch: number; maxBatch: number; tokens: number }[] | undefined) =>
        JSON.stringify((rs ?? []).map((r) => [r.minBatch, r.maxBatch, r.tokens]));
      return key(t.params.speculative.lengthByBatchSize) === key(candidate) || undefined;
    });
    await until("the canary gone", async () => ((await canaryExists()) ? undefined : true));
    expect(await events("LengthCanaryStarted")).toHaveLength(2);
    const [promotedEvent] = await events("LengthSchedulePromoted");
    expect(promotedEvent?.note).toMatch(/applied, predicted goodput gain \d+\.\d%/);

    // The user's manifest never carried the schedule and never fought it.
    const ss = await getSs();
    expect(ss.spec.speculative.lengthByBatchSize).toBeUndefined();
    await gitOps.stop();
    expect(gitOps.errors).toEqual([]);

    // Hysteresis: the applied schedule is what runs now; nothing to gain, no second rollout.
    const after = await until("the next recommendation", async () => {
      const s = (await getSs())?.status?.autoscaling?.speculationLength;
      return s && /already applied|not worth/.test(s.reason) ? s : undefined;
    });
    expect(after.action).toBe("recommend");
    await new Promise((r) => setTimeout(r, 2000));
    expect(await canaryExists()).toBe(false);
    expect(await events("LengthCanaryStarted")).toHaveLength(2);
  });
});
