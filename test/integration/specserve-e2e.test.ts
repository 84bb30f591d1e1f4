// End to end through the local-process kubelet: a tiny SpecServe on the reference engine runs the
// project's real runtime (agent + reference backend, real PyTorch speculative decoding on CPU) as a
// local process for its pod, and an OpenAI request sent to its Service (the kubelet's stand-in: a
// local port forwarding to the pod process) returns exactly the text the target alone produces
// under greedy decoding, while /metrics counts the speculative rounds. Test edge: no container
// runtime, so the pod's container is a local process rather than an image.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { KubeConfig } from "@kubernetes/client-node";
import { fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RUNTIME_API_VERSION } from "../../operator/src/contract/constants.ts";
import { ProcessKubelet } from "../controlplane/process-kubelet.ts";
import { ensureNamespace, installCrds, kubeConfig, kubeRequest } from "./kube.ts";
import { type OperatorUnderTest, startOperator, until } from "./operator-harness.ts";

const NS = "ss-e2e";
const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const python = join(root, "runtime/.venv/bin/python");
let kc: KubeConfig;
let kubelet: ProcessKubelet;
let operator: OperatorUnderTest;
let work: string;
const PROMPT = "The quick brown fox";
const MAX_TOKENS = 24;
const API_KEY = "e2e-endpoint-key";

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
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { choices: { text: string }[] }).choices[0]?.text;
}

/** The target alone: the same runtime serving a Task with no method (no speculation). */
async function targetAloneText(): Promise<string | undefined> {
  const port = await freePort();
  const dir = join(work, "target-alone");
  const task = {
    apiVersion: RUNTIME_API_VERSION,
    kind: "serve",
    backend: "reference",
    output: { path: join(dir, "out") },
    params: { target: { uri: "builtin://tiny-qwen3" }, port },
  };
  rmSync(dir, { recursive: true, force: true });
  const { mkdirSync } = await import("node:fs");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "task.json"), JSON.stringify(task));
  const child = spawn(python, ["-m", "specops_runtime.agent", "--task", join(dir, "task.json")], {
    cwd: join(root, "runtime"),
    env: {
      ...process.env,
      SPECOPS_PROGRESS_PORT: String(await freePort()),
      SPECOPS_TERMINATION_LOG: join(dir, "term"),
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
  kc = kubeConfig();
  work = mkdtempSync(join(tmpdir(), "specserve-e2e-"));
  await installCrds(kc);
  await ensureNamespace(kc, NS);
  kubelet = new ProcessKubelet(kc, { storageRoot: join(work, "pvc") });
  await kubelet.start();
  operator = await startOperator(kc, { namespace: NS, progressPort: 9090 });
});

afterAll(async () => {
  await operator?.stop();
  await kubelet?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe("tiny SpecServe through the local-process kubelet", () => {
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
    const addr = await until("a pod process behind the Service", async () => {
      const a = await kubelet.serviceAddress(NS, "tiny", "openai");
      return a;
    });
    const base = `http://${addr.host}:${addr.port}`;
    const speculative = await until(
      "a completion through the Service",
      () => complete(base, API_KEY),
      150_000,
    );
    await expect(complete(base)).rejects.toThrow(/HTTP 401/);
    expect(speculative?.length).toBeGreaterThan(0);
    const alone = await targetAloneText();
    expect(speculative).toBe(alone);

    const metrics = await (await fetch(`${base}/metrics`)).text();
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
    const ssPath = `/apis/specops.dev/v1alpha1/namespaces/${NS}/specserves/tiny`;
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
});
