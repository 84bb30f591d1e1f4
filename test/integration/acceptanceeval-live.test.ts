// The truth test: a live AcceptanceEval of a SpecServe reports the same acceptance as the offline
// evaluation of the same draft on the same prompts. On the real control plane, through the
// local-process kubelet (the real runtime runs each pod as a local process; the test edge is only
// that there is no container runtime and the Service is a local forwarder): the runtime trains a
// tiny draft, a SpecServe serves it on the reference engine behind an API key, an offline
// AcceptanceEval measures it in-process, and live AcceptanceEvals send the same prompts to the
// SpecServe's Service and read tau from the serving pod's /metrics text only (the operator's signal
// parser; nothing of the offline path past the decoder). At concurrency 1 live tau equals the
// offline tau in vLLM's convention exactly (at status precision); at concurrency 4 within 2%.
// tiny-math's answers end at EOS, so DeepSpec's and vLLM's conventions differ there.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RUNTIME_API_VERSION } from "../../operator/src/contract/constants.ts";
import { OPERATOR_RBAC_RULES } from "../../operator/src/rbac.ts";
import { freePort } from "../controlplane/controlplane.ts";
import { ProcessKubelet } from "../controlplane/process-kubelet.ts";
import { ensureNamespace, installCrds, kubeConfig, kubeRequest, restrictedKubeConfig } from "./kube.ts";
import { type OperatorUnderTest, startOperator, until } from "./operator-harness.ts";

const NS = "ae-live";
const MINUTES = 60_000;
const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const DRAFT = "pvc://drafts/train/checkpoints/specops/draft/step_latest";
const TASKS = [{ name: "tiny-math", samples: 12, source: { uri: "builtin://tiny-math" } }];
const DECODING = { maxNewTokens: 48, numSpeculativeTokens: 4, seed: 11, temperature: 1 };
let kc: KubeConfig;
let kubelet: ProcessKubelet;
let operator: OperatorUnderTest;
let storageRoot: string;

const path = (plural: string, name = "") =>
  `/apis/specops.dev/v1alpha1/namespaces/${NS}/${plural}${name ? `/${name}` : ""}`;
const getAe = async (name: string) => (await kubeRequest(kc, "GET", path("acceptanceevals", name))).body;
const condition = (obj: any, type: string) => obj.status?.conditions?.find((c: any) => c.type === type);
const finished = (name: string) => async () => {
  const ae = await getAe(name);
  return ["Succeeded", "Failed"].includes(ae?.status?.phase) ? ae : undefined;
};

async function create(plural: string, body: object, apiPath = path(plural)) {
  const res = await kubeRequest(kc, "POST", apiPath, body);
  expect(res.body?.message).toBeUndefined();
}

/** A runtime task run to completion as a local process (the draft's training, outside the cluster). */
async function runTask(name: string, task: object): Promise<void> {
  const dir = join(storageRoot, ".tasks", name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "task.json"), JSON.stringify({ apiVersion: RUNTIME_API_VERSION, ...task }));
  const child = spawn(
    join(root, "runtime/.venv/bin/python"),
    ["-m", "specops_runtime.agent", "--task", join(dir, "task.json")],
    {
      cwd: join(root, "runtime"),
      env: {
        ...process.env,
        SPECOPS_PVC_ROOT: storageRoot,
        SPECOPS_PROGRESS_PORT: "0",
        SPECOPS_TERMINATION_LOG: join(dir, "termination-log"),
      },
      stdio: "ignore",
    },
  );
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  if (code !== 0) throw new Error(`runtime task ${name} exited ${code}`);
}

/** The tiny dflash draft, trained by the runtime on the target's own answers to math prompts. */
async function trainDraft(): Promise<void> {
  const out = (p: string) => ({ path: join(storageRoot, "drafts", p) });
  const target = { uri: "builtin://tiny-qwen3" };
  await runTask("prep", {
    kind: "prepare-data",
    backend: "reference",
    output: out("prep"),
    params: { prompts: { uri: "builtin://tiny-math" }, maxSamples: 128 },
  });
  await runTask("regen", {
    kind: "regenerate",
    backend: "reference",
    output: out("regen"),
    params: { target, inputPath: join(storageRoot, "drafts/prep/train.jsonl"), maxTokens: 64 },
  });
  await runTask("train", {
    kind: "train",
    backend: "reference",
    output: out("train"),
    params: {
      target,
      method: "dflash",
      draft: { blockSize: 4, numLayers: 1 },
      dataPaths: [join(storageRoot, "drafts/regen/train_regen.jsonl")],
      training: { maxSteps: 100, globalBatchSize: 16 },
    },
  });
}

const specServe = {
  apiVersion: "specops.dev/v1alpha1",
  kind: "SpecServe",
  metadata: { name: "tiny", namespace: NS },
  spec: {
    target: { uri: "builtin://tiny-qwen3" },
    draft: { source: { uri: DRAFT } },
    method: "dflash",
    engine: "reference",
    speculative: { numSpeculativeTokens: 4 },
    resources: { gpusPerReplica: 0 },
    apiKeySecretRef: { name: "tiny-key", key: "token" },
  },
};

const evaluation = (name: string, spec: object) => ({
  apiVersion: "specops.dev/v1alpha1",
  kind: "AcceptanceEval",
  metadata: { name, namespace: NS },
  spec: { backend: "reference", tasks: TASKS, decoding: DECODING, resources: { gpus: 0 }, ...spec },
});

const live = (name: string, concurrency: number) =>
  evaluation(name, { draft: { specServeRef: { name: "tiny" } }, load: { concurrency } });

beforeAll(async () => {
  kc = kubeConfig();
  await installCrds(kc);
  await ensureNamespace(kc, NS);
  storageRoot = mkdtempSync(join(tmpdir(), "specops-ae-live-"));
  kubelet = new ProcessKubelet(kc, {
    storageRoot,
    onOutput: (pod, line) => {
      if (process.env.SPECOPS_TEST_LOG_LEVEL) console.log(`[${pod}] ${line}`);
    },
  });
  await kubelet.start();
  const operatorKc = await restrictedKubeConfig(kc, "specops-operator-ae-live-test", OPERATOR_RBAC_RULES);
  operator = await startOperator(operatorKc, { namespace: NS, progressPort: await freePort() });
  await trainDraft();
}, 5 * MINUTES);

afterAll(async () => {
  await operator?.stop();
  await kubelet?.stop();
  if (storageRoot) rmSync(storageRoot, { recursive: true, force: true });
});

describe("live AcceptanceEval against a SpecServe", () => {
  it(
    "measures, from /metrics alone, exactly the offline tau in vLLM's convention (concurrency 1) and within 2% under concurrency 4",
    async () => {
      // Created before its SpecServe exists: it waits and says so.
      await create("acceptanceevals", live("live-c1", 1));
      const waiting = await until("the live eval waiting for its SpecServe", async () => {
        const ae = await getAe("live-c1");
        return condition(ae, "DraftReady")?.reason === "SpecServeNotFound" ? ae : undefined;
      });
      expect(waiting.status.phase).toBe("Pending");

      await create(
        "secrets",
        {
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: "tiny-key" },
          stringData: { token: "live-test-key" },
        },
        `/api/v1/namespaces/${NS}/secrets`,
      );
      await create("specserves", specServe);
      await create(
        "acceptanceevals",
        evaluation("offline", {
          target: { uri: "builtin://tiny-qwen3" },
          draft: { source: { uri: DRAFT } },
          method: "dflash",
        }),
      );

      const offline = await until("the offline evaluation", finished("offline"), 5 * MINUTES);
      expect(offline.status.phase).toBe("Succeeded");
      const c1 = await until("the live evaluation at concurrency 1", finished("live-c1"), 6 * MINUTES);
      expect(condition(c1, "Succeeded")).toMatchObject({ status: "True", reason: "Measured" });

      const off = offline.status.results[0];
      const got = c1.status.results[0];
      // The prompts end at EOS often enough that the two conventions differ.
      expect(off.vllmConvention.tau - off.tau).toBeGreaterThan(0.05);
      expect(got).toMatchObject({ name: "tiny-math", samples: 12, convention: "vllm" });
      expect(got.tau).toBe(off.vllmConvention.tau);
      expect(got.acceptanceByPosition).toEqual(off.vllmConvention.acceptanceByPosition);
      expect(got.live).toMatchObject({ requests: 12, pods: 1 });
      for (const key of [
        "ttftP50Seconds",
        "ttftP95Seconds",
        "tpotP50Seconds",
        "tpotP95Seconds",
        "tokensPerSecondPerUser",
      ])
        expect(got.live[key]).toBeGreaterThan(0);
      expect(got.live.ttftP95Seconds).toBeGreaterThanOrEqual(got.live.ttftP50Seconds);
      expect(c1.status.live).toEqual({
        specServe: "tiny",
        endpoint: `http://tiny.${NS}.svc:8000/v1`,
        concurrency: 1,
        numSpeculativeTokens: 4,
        convention: "vllm",
      });
      expect(c1.status.summary).toEqual({ macroTau: got.tau, samples: 12 });
      // Same target, method and task set: one leaderboard selector finds both.
      expect(c1.metadata.labels).toMatchObject(offline.metadata.labels);

      // Windows of two evaluations of one SpecServe must not overlap, so the second starts now.
      await create("acceptanceevals", live("live-c4", 4));
      const c4 = await until("the live evaluation at concurrency 4", finished("live-c4"), 6 * MINUTES);
      expect(c4.status.phase).toBe("Succeeded");
      expect(c4.status.live.concurrency).toBe(4);
      const tau4 = c4.status.results[0].tau;
      expect(Math.abs(tau4 - off.vllmConvention.tau) / off.vllmConvention.tau).toBeLessThanOrEqual(0.02);

      const events = await kubeRequest(kc, "GET", `/apis/events.k8s.io/v1/namespaces/${NS}/events`);
      const reasons = events.body.items
        .filter((e: any) => e.regarding?.name === "live-c1")
        .map((e: any) => e.reason);
      expect(reasons).toEqual(expect.arrayContaining(["WaitingForSpecServe", "Started", "Succeeded"]));
    },
    15 * MINUTES,
  );
});
