// DraftTraining under harder conditions on the real API server: multi-node wiring accepted by the
// real Job controller, two operator replicas with leader election, and a concurrent writer.
import { BatchV1Api, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeKubelet } from "../controlplane/kubelet.ts";
import { example, type Manifest } from "../fixtures/examples.ts";
import { ensureNamespace, installCrds, kubeConfig, kubeRequest } from "./kube.ts";
import { type FakeProgressServer, fakeProgressServer, startOperator, until } from "./operator-harness.ts";

const NS = "dt-ha-tests";
let kc: KubeConfig;
let kubelet: FakeKubelet;
let progress: FakeProgressServer;
let core: CoreV1Api;
let batch: BatchV1Api;

const dtPath = (name = "") =>
  `/apis/specops.dev/v1alpha1/namespaces/${NS}/drafttrainings${name ? `/${name}` : ""}`;

function deepspec(name: string, nodes: number): Manifest {
  const m = example("drafttraining-qwen3-8b-dspark.yaml");
  m.metadata = { name, namespace: NS };
  delete m.spec.target.credentialsSecretRef;
  delete m.spec.data.prompts.credentialsSecretRef;
  delete m.spec.output;
  m.spec.data.regenerate.enabled = false;
  delete m.spec.evaluation;
  m.spec.resources.nodes = nodes;
  // No PriorityClass exists in the test cluster (admission would refuse the pods).
  delete m.spec.placement.priorityClassName;
  return m;
}

async function finishRunning(job: string) {
  const pod = await until(`a running pod of ${job}`, async () => {
    const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: `job-name=${job}` });
    return pods.items.find((p) => p.status?.phase === "Running");
  });
  await kubelet.finish(NS, pod.metadata?.name ?? "", { exitCode: 0 });
}

beforeAll(async () => {
  kc = kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  batch = kc.makeApiClient(BatchV1Api);
  await installCrds(kc);
  await ensureNamespace(kc, NS);
  progress = await fakeProgressServer({});
  kubelet = new FakeKubelet(kc, { nodeName: "dt-ha-node", podIP: () => "127.0.0.1" });
  await kubelet.start();
});

afterAll(async () => {
  await kubelet?.stop();
  await progress?.close();
});

describe("multi-node training", () => {
  it.each([2, 4])("runs %i ranks as an Indexed Job behind a headless Service", async (nodes) => {
    const operator = await startOperator(kc, { namespace: NS, progressPort: progress.port });
    try {
      const name = `multi-${nodes}`;
      const created = await kubeRequest(kc, "POST", dtPath(), deepspec(name, nodes));
      expect(created.body?.message).toBeUndefined();
      await finishRunning(`${name}-data`);
      await finishRunning(`${name}-cache`);
      const job = await until("the training Job", () =>
        batch.readNamespacedJob({ name: `${name}-train`, namespace: NS }),
      );
      expect(job.spec).toMatchObject({ completionMode: "Indexed", completions: nodes, parallelism: nodes });
      const svc = await core.readNamespacedService({ name: `${name}-train`, namespace: NS });
      expect(svc.spec?.clusterIP).toBe("None");
      // The real Job controller creates one pod per rank with its index and hostname.
      const pods = await until("all ranks", async () => {
        const list = await core.listNamespacedPod({ namespace: NS, labelSelector: `job-name=${name}-train` });
        return list.items.length === nodes ? list.items : undefined;
      });
      const ranks = pods
        .map((p) => p.metadata?.annotations?.["batch.kubernetes.io/job-completion-index"])
        .sort();
      expect(ranks).toEqual(Array.from({ length: nodes }, (_, i) => String(i)));
      for (const p of pods) {
        expect(p.spec?.subdomain).toBe(`${name}-train`);
        expect(p.spec?.hostname).toBe(
          `${name}-train-${p.metadata?.annotations?.["batch.kubernetes.io/job-completion-index"]}`,
        );
        expect(p.spec?.containers[0]?.resources?.limits?.["nvidia.com/gpu"]).toBe("8");
        const env = Object.fromEntries((p.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
        expect(env).toMatchObject({
          WORLD_SIZE: String(nodes),
          MASTER_ADDR: `${name}-train-0.${name}-train.${NS}.svc`,
          MASTER_PORT: "29500",
        });
      }
    } finally {
      await operator.stop();
    }
  });
});

describe("two operator replicas", () => {
  it("only the leader acts, and the standby takes over when the leader stops", async () => {
    const env = {
      SPECOPS_LEADER_ELECT: "true",
      SPECOPS_LEADER_ELECTION_ID: "specops-ha-test",
      SPECOPS_LEASE_DURATION: "4s",
      SPECOPS_RENEW_DEADLINE: "3s",
      SPECOPS_RETRY_PERIOD: "500ms",
    };
    const a = await startOperator(kc, { namespace: NS, progressPort: progress.port, env });
    const b = await startOperator(kc, { namespace: NS, progressPort: progress.port, env });
    try {
      await until("a leader", () => a.manager.isLeader() || b.manager.isLeader() || undefined);
      expect([a.manager.isLeader(), b.manager.isLeader()].filter(Boolean)).toHaveLength(1);
      const [leader, standby] = a.manager.isLeader() ? [a, b] : [b, a];
      await kubeRequest(kc, "POST", dtPath(), deepspec("ha-one", 1));
      await until("the data Job", () => batch.readNamespacedJob({ name: "ha-one-data", namespace: NS }));
      await leader.stop();
      // Released on shutdown: the standby leads well within one lease.
      await until("the standby leading", () => standby.manager.isLeader() || undefined, 8000);
      await finishRunning("ha-one-data");
      await until("the next stage", () => batch.readNamespacedJob({ name: "ha-one-cache", namespace: NS }));
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe("a concurrent writer", () => {
  it("does not stop the pipeline: conflicts are retried", async () => {
    const operator = await startOperator(kc, { namespace: NS, progressPort: progress.port });
    let writes = 0;
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        await kubeRequest(
          kc,
          "PATCH",
          dtPath("contended"),
          { metadata: { annotations: { "example.com/touched": String(writes++) } } },
          "application/merge-patch+json",
        );
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      await kubeRequest(kc, "POST", dtPath(), deepspec("contended", 1));
      await finishRunning("contended-data");
      await finishRunning("contended-cache");
      await until("the training Job", () =>
        batch.readNamespacedJob({ name: "contended-train", namespace: NS }),
      );
      // A pass applies a stage's Job before it writes that stage to status: wait for the status.
      const dt = await until("the Train stage in status", async () => {
        const d = (await kubeRequest(kc, "GET", dtPath("contended"))).body;
        return d?.status?.stage === "Train" ? d : undefined;
      });
      expect(dt.status.stage).toBe("Train");
      expect(dt.metadata.finalizers).toEqual(["specops.dev/drafttraining-cleanup"]);
      expect(writes).toBeGreaterThan(10);
    } finally {
      stop = true;
      await writer;
      await operator.stop();
    }
  });
});
