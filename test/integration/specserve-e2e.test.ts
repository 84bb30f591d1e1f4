// End to end on the best node here (e2e-node.ts): a tiny SpecServe on the reference engine runs the
// project's real runtime (agent + reference backend, real PyTorch speculative decoding on CPU) in its
// pod — a container of the reference image on the real node (kubelet, kube-proxy, CoreDNS), else a
// local process of this checkout's runtime on the local-process kubelet — and an OpenAI request
// sent to its Service returns exactly the text the target alone produces under greedy decoding,
// while /metrics counts the speculative rounds. Scaled through its scale subresource, it runs a
// second pod, Ready by its readiness probe, and goes back to one.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { Agent, fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RUNTIME_API_VERSION } from "../../operator/src/contract/constants.ts";
import { podmanOk } from "../images/podman.ts";
import { chooseE2eNode, type E2eNode, nodeTitle, startE2eNode } from "./e2e-node.ts";
import { ensureNamespace, installCrds, kubeRequest } from "./kube.ts";
import { type OperatorUnderTest, startOperator, until } from "./operator-harness.ts";

const NS = "ss-e2e";
const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const python = join(root, "runtime/.venv/bin/python");
const choice = chooseE2eNode();
let kc: KubeConfig;
let node: E2eNode;
let operator: OperatorUnderTest;
let work: string;
const PROMPT = "The quick brown fox";
const MAX_TOKENS = 24;
const API_KEY = "e2e-endpoint-key";
// A new connection per request: a kept-alive connection opened while kube-proxy had not yet routed
// the ClusterIP would keep going where it first went (on this VM an egress answering HTTP 404, the
// cause of this file's timeouts on the real node in 2 of 3 full runs), whatever the rules say later.
const newConnectionEachRequest = new Agent({ pipelining: 0 });

const tinySpecServe = {
  apiVersion: "specops.dev/v1alpha1",
  kind: "SpecServe",
  metadata: { name: "tiny", namespace: NS },
  spec: {
    target: { uri: "builtin://tiny-qwen3" },
    draft: { source: { uri: "builtin://untrained-draft" } },
    method: "dflash",
    engine: "reference",
    speculative: { numSpeculativeTokens: 4 },
    resources: { gpusPerReplica: 0 },
    // Autoscaling stays off; its window is status.signals' measurement window (2m by default).
    autoscaling: { enabled: false, maxReplicas: 1, window: "2s" },
    // The endpoint requires a key; the operator's scrapes of /metrics work without it.
    apiKeySecretRef: { name: "tiny-endpoint-key", key: "key" },
  },
};

/** kubectl get's request: the server renders the CRD's printer columns as a Table. */
const TABLE = "application/json;as=Table;g=meta.k8s.io;v=v1";

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

async function complete(base: string, apiKey?: string) {
  const res = await fetch(`${base}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
    body: JSON.stringify({
      model: "builtin://tiny-qwen3",
      prompt: PROMPT,
      max_tokens: MAX_TOKENS,
      temperature: 0,
    }),
    signal: AbortSignal.timeout(60_000),
    dispatcher: newConnectionEachRequest,
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { choices: { text: string }[] }).choices[0]?.text;
}

/** The target alone: the same runtime serving a Task with no method (no speculation). */
/**
 * A cache folder holding the image's own trained tiny target (builtin://tiny-qwen3), so that the
 * target alone runs on the very weights the pods serve: the image trains it at build time, and a
 * copy trained on this machine need not match it bit for bit (on a fresh machine it did not).
 */
async function imageTargetCache(image: string): Promise<string> {
  const cache = join(work, "image-cache");
  rmSync(cache, { recursive: true, force: true });
  mkdirSync(join(cache, "reference"), { recursive: true });
  const container = await podmanOk(["create", image]);
  try {
    // The image's SPECOPS cache: runtime/Dockerfile copies the tiny-target stage's cache there.
    await podmanOk([
      "cp",
      `${container}:/home/specops/.cache/specops/reference/targets`,
      join(cache, "reference", "targets"),
    ]);
  } finally {
    await podmanOk(["rm", container]);
  }
  return cache;
}

async function targetAloneText(): Promise<string | undefined> {
  const port = await freePort();
  const dir = join(work, "target-alone");
  // On the local-process kubelet the pods use this machine's cache, as the target alone does.
  const cache = node.kind === "real" ? { SPECOPS_CACHE_DIR: await imageTargetCache(node.runtimeImage) } : {};
  const task = {
    apiVersion: RUNTIME_API_VERSION,
    kind: "serve",
    backend: "reference",
    output: { path: join(dir, "out") },
    params: { target: { uri: "builtin://tiny-qwen3" }, port },
  };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "task.json"), JSON.stringify(task));
  const child = spawn(python, ["-m", "specops_runtime.agent", "--task", join(dir, "task.json")], {
    cwd: join(root, "runtime"),
    env: {
      ...process.env,
      SPECOPS_PROGRESS_PORT: String(await freePort()),
      SPECOPS_TERMINATION_LOG: join(dir, "term"),
      ...cache,
    },
    stdio: "ignore",
  });
  try {
    return await until("the target alone answering", () => complete(`http://127.0.0.1:${port}`), 120_000);
  } finally {
    child.kill("SIGTERM");
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "specserve-e2e-"));
  node = await startE2eNode(choice, { name: "specserve-e2e", storageRoot: join(work, "pvc") });
  kc = node.kc;
  await installCrds(kc);
  await ensureNamespace(kc, NS);
  operator = await startOperator(kc, {
    namespace: NS,
    progressPort: 9090,
    env: { SPECOPS_RUNTIME_IMAGE: node.runtimeImage },
  });
}, 600_000); // a real node's own control plane, and a first import of the image where it is new

afterAll(async () => {
  await operator?.stop();
  await node?.stop();
  rmSync(work, { recursive: true, force: true });
}, 180_000);

const ssPath = `/apis/specops.dev/v1alpha1/namespaces/${NS}/specserves/tiny`;

/** The SpecServe's pods that are Ready, by the kubelet's readiness probe (or the stand-in's word). */
async function readyPods(): Promise<V1Pod[]> {
  const pods = await kc
    .makeApiClient(CoreV1Api)
    .listNamespacedPod({ namespace: NS, labelSelector: "specops.dev/specserve=tiny" });
  return pods.items.filter(
    (p) =>
      !p.metadata?.deletionTimestamp &&
      p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
  );
}

describe(`tiny SpecServe on ${nodeTitle(choice.kind)}`, () => {
  it("answers an OpenAI request through its Service losslessly; /metrics shows speculative counters", async () => {
    await kubeRequest(kc, "POST", `/api/v1/namespaces/${NS}/secrets`, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "tiny-endpoint-key", namespace: NS },
      stringData: { key: API_KEY },
    });
    const created = await kubeRequest(
      kc,
      "POST",
      `/apis/specops.dev/v1alpha1/namespaces/${NS}/specserves`,
      tinySpecServe,
    );
    expect(created.body?.message).toBeUndefined();
    await until(
      "the Service",
      async () =>
        (await kubeRequest(kc, "GET", `/api/v1/namespaces/${NS}/services/tiny`)).status === 200 || undefined,
    );
    // On the real node, once kube-proxy routes the ClusterIP to the Ready pod.
    const addr = await until(
      "a pod behind the Service",
      () => node.serviceAddress(NS, "tiny", "openai"),
      150_000,
      500,
    );
    const base = `http://${addr.host}:${addr.port}`;
    // The local-process kubelet's pod is Ready at once, its engine maybe still loading.
    const speculative = await until(
      "a completion through the Service",
      () => complete(base, API_KEY),
      150_000,
    );
    await expect(complete(base)).rejects.toThrow(/HTTP 401/);
    expect(speculative?.length).toBeGreaterThan(0);
    const alone = await targetAloneText();
    expect(speculative).toBe(alone);

    const metrics = await (await fetch(`${base}/metrics`, { dispatcher: newConnectionEachRequest })).text();
    const drafts = Number(
      metrics.match(/^vllm:spec_decode_num_drafts_total\{[^}]*\} ([0-9.e+]+)$/m)?.[1] ?? 0,
    );
    expect(drafts).toBeGreaterThan(0);
    expect(metrics).toMatch(/^vllm:spec_decode_num_accepted_tokens_total\{/m);
    const ss = (await kubeRequest(kc, "GET", `/apis/specops.dev/v1alpha1/namespaces/${NS}/specserves/tiny`))
      .body;
    expect(ss.status).toMatchObject({ readyReplicas: 1, draft: "builtin://untrained-draft" });

    // status.signals while serving: the operator scrapes the pod every window; once it holds a first
    // scrape, the next requests' rounds give tau, and kubectl get ss shows it in the Tau column.
    await until("a first scrape of the pod", async () => {
      const c = (await kubeRequest(kc, "GET", ssPath)).body?.status?.conditions?.find(
        (x: { type: string }) => x.type === "MetricsAvailable",
      );
      return c?.status === "True" ? c : undefined;
    });
    for (let i = 0; i < 3; i++) await complete(base, API_KEY);
    const signals = await until(
      "status.signals.tau",
      async () => {
        const s = (await kubeRequest(kc, "GET", ssPath)).body?.status?.signals;
        return s?.tau > 0 && s?.rounds > 0 ? s : undefined;
      },
      60_000,
    );
    // The reference engine's acceptance of an untrained draft: tau between 1 (nothing accepted) and k+1.
    expect(signals.tau).toBeGreaterThanOrEqual(1);
    expect(signals.tau).toBeLessThanOrEqual(5);
    expect(signals.acceptanceByPosition).toHaveLength(4);
    expect(signals).toMatchObject({ window: "2s" });
    expect(Date.parse(signals.tauTime)).toBeGreaterThan(Date.now() - 120_000);
    const table = (await kubeRequest(kc, "GET", ssPath, undefined, "application/json", TABLE)).body;
    expect(table.kind).toBe("Table");
    const columns = (table.columnDefinitions as { name: string }[]).map((c) => c.name);
    const row = table.rows[0].cells as unknown[];
    const cell = (name: string) => row[columns.indexOf(name)];
    expect(cell("Name")).toBe("tiny");
    expect(cell("Ready")).toBe(1);
    expect(cell("Draft")).toBe("builtin://untrained-draft");
    expect(cell("State")).toBe("Ready");
    // The Tau cell is the status value at the time of this read (a later window may have moved it).
    const tauNow = (await kubeRequest(kc, "GET", ssPath)).body.status.signals.tau;
    expect([signals.tau, tauNow]).toContain(cell("Tau"));
  }, 300_000);

  it("scales to two serving pods through its scale subresource, both Ready and answering, then back to one", async () => {
    const scale = (replicas: number) =>
      kubeRequest(kc, "PATCH", `${ssPath}/scale`, { spec: { replicas } }, "application/merge-patch+json");
    expect((await scale(2)).status).toBe(200);
    const two = await until(
      "two Ready pods",
      async () => {
        const pods = await readyPods();
        const ss = (await kubeRequest(kc, "GET", ssPath)).body;
        return pods.length === 2 && ss.status?.readyReplicas === 2 ? pods : undefined;
      },
      180_000,
    );
    const ips = two.map((p) => p.status?.podIP);
    expect(new Set(ips).size).toBe(2);
    if (node.kind === "real")
      for (const p of two) {
        // Containers run by containerd, Ready by the kubelet's own HTTP probe of the engine.
        expect(p.status?.containerStatuses?.[0]?.containerID).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
        expect(p.spec?.containers[0]?.readinessProbe?.httpGet).toBeDefined();
      }
    // Each pod answers on its own address (the stand-in's pod address forwards to its process), the
    // same greedy text; the stand-in reports a pod Ready at once, so its engine may still be loading.
    const texts = await Promise.all(
      two.map((p) => {
        const port = p.spec?.containers[0]?.ports?.find((x) => x.name === "openai")?.containerPort;
        return until(
          `pod ${p.metadata?.name} answering`,
          () => complete(`http://${p.status?.podIP}:${port}`, API_KEY),
          150_000,
        );
      }),
    );
    expect(texts[0]).toBe(texts[1]);
    const addr = await node.serviceAddress(NS, "tiny", "openai");
    expect(await complete(`http://${addr.host}:${addr.port}`, API_KEY)).toBe(texts[0]);

    expect((await scale(1)).status).toBe(200);
    const left = await until(
      "one pod left",
      async () => {
        const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({
          namespace: NS,
          labelSelector: "specops.dev/specserve=tiny",
        });
        return pods.items.length === 1 ? pods.items : undefined;
      },
      120_000,
    );
    expect(two.map((p) => p.metadata?.name)).toContain(left[0]?.metadata?.name);
    // The SpecServe's status follows its Deployment's, a moment after the pods.
    await until("status at one replica", async () => {
      const ss = (await kubeRequest(kc, "GET", ssPath)).body;
      return ss.status?.replicas === 1 && ss.status?.readyReplicas === 1 ? true : undefined;
    });
  }, 420_000);
});
