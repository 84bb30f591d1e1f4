// The test control plane itself: the real Job controller and garbage collector run, and the fake
// kubelet (test edge: no real kubelet node here) binds pods, runs them and ends them with the exit
// code and termination message asked for, as a kubelet reports them.
import { BatchV1Api, CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeKubelet, type PodOutcome } from "../controlplane/kubelet.ts";
import { ensureNamespace, kubeConfig } from "./kube.ts";

const NS = "controlplane-tests";
let kc: KubeConfig;
let kubelet: FakeKubelet;
const outcomes = new Map<string, PodOutcome>();

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  kc = kubeConfig();
  await ensureNamespace(kc, NS);
  kubelet = new FakeKubelet(kc, {
    nodeName: "cp-test-node",
    policy: (pod: V1Pod) => outcomes.get(pod.metadata?.labels?.["job-name"] ?? ""),
  });
  await kubelet.start();
});

afterAll(async () => {
  await kubelet.stop();
});

const job = (name: string, backoffLimit = 0) => ({
  metadata: { name, namespace: NS },
  spec: {
    backoffLimit,
    template: {
      spec: {
        restartPolicy: "Never",
        containers: [
          { name: "main", image: "runtime:test", resources: { limits: { "nvidia.com/gpu": "2" } } },
        ],
      },
    },
  },
});

describe("fake kubelet with the real Job controller", () => {
  it("registers a Ready node with GPU capacity", async () => {
    const node = await kc.makeApiClient(CoreV1Api).readNode({ name: "cp-test-node" });
    expect(node.status?.allocatable?.["nvidia.com/gpu"]).toBe("1024");
    expect(node.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
  });

  it("runs a Job's pod to success and the Job completes", async () => {
    outcomes.set("ok-job", { exitCode: 0, message: '{"tau":3.1}' });
    const batch = kc.makeApiClient(BatchV1Api);
    await batch.createNamespacedJob({ namespace: NS, body: job("ok-job") });
    const done = await until("job completion", async () => {
      const j = await batch.readNamespacedJob({ name: "ok-job", namespace: NS });
      return j.status?.conditions?.find((c) => c.type === "Complete" && c.status === "True") ? j : undefined;
    });
    expect(done.status?.succeeded).toBe(1);
    const pods = await kc
      .makeApiClient(CoreV1Api)
      .listNamespacedPod({ namespace: NS, labelSelector: "job-name=ok-job" });
    const terminated = pods.items[0]?.status?.containerStatuses?.[0]?.state?.terminated;
    expect(pods.items[0]?.spec?.nodeName).toBe("cp-test-node");
    expect(terminated).toMatchObject({ exitCode: 0, message: '{"tau":3.1}', reason: "Completed" });
  });

  it("reports a failing exit code and message, and the Job fails after its backoff limit", async () => {
    outcomes.set("bad-job", {
      exitCode: 3,
      message: "invalid task: params.training.learningRate must be > 0",
    });
    const batch = kc.makeApiClient(BatchV1Api);
    await batch.createNamespacedJob({ namespace: NS, body: job("bad-job") });
    const failed = await until("job failure", async () => {
      const j = await batch.readNamespacedJob({ name: "bad-job", namespace: NS });
      return j.status?.conditions?.find((c) => c.type === "Failed" && c.status === "True") ? j : undefined;
    });
    expect(failed.status?.failed).toBe(1);
    const pods = await kc
      .makeApiClient(CoreV1Api)
      .listNamespacedPod({ namespace: NS, labelSelector: "job-name=bad-job" });
    expect(pods.items[0]?.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({
      exitCode: 3,
      message: "invalid task: params.training.learningRate must be > 0",
    });
  });

  it("garbage-collects a Job's pods when the Job is deleted", async () => {
    const batch = kc.makeApiClient(BatchV1Api);
    await batch.createNamespacedJob({ namespace: NS, body: job("gc-job") });
    const core = kc.makeApiClient(CoreV1Api);
    await until("a running pod", async () => {
      const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: "job-name=gc-job" });
      return pods.items[0]?.status?.phase === "Running" ? true : undefined;
    });
    await batch.deleteNamespacedJob({ name: "gc-job", namespace: NS, propagationPolicy: "Background" });
    await until("pods gone", async () => {
      const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: "job-name=gc-job" });
      return pods.items.length === 0 ? true : undefined;
    });
  });
});
