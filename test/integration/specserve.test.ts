// The SpecServe controller on a real API server: the operator runs in-process as a user holding
// exactly the generated ClusterRole, the real Deployment and ReplicaSet controllers and garbage
// collector run in kube-controller-manager, and the fake kubelet plays the pods (test edge: no
// container runtime, no GPU). LeaderWorkerSet's CRD is a stand-in written from its API facts (the
// module proxy refuses sigs.k8s.io/lws): no LWS controller runs, the test writes LWS status itself.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AppsV1Api, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import yaml from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpecServes } from "../../operator/src/controllers/specserve/controller.ts";
import { ANNOTATIONS } from "../../operator/src/controllers/specserve/plan.ts";
import { AUTOSCALER_FIELD_MANAGER, writeReplicas } from "../../operator/src/controllers/specserve/scale.ts";
import { KubeClient } from "../../operator/src/lib/client.ts";
import { OPERATOR_RBAC_RULES } from "../../operator/src/rbac.ts";
import { FakeKubelet } from "../controlplane/kubelet.ts";
import { EXAMPLES_DIR } from "../fixtures/examples.ts";
import { ensureNamespace, installCrds, kubeConfig, kubeRequest, restrictedKubeConfig } from "./kube.ts";
import { type OperatorUnderTest, startOperator, until } from "./operator-harness.ts";

const NS = "ss-tests";
const PROGRESS_PORT = 9090;
let kc: KubeConfig;
let operatorKc: KubeConfig;
let kubelet: FakeKubelet;
let operator: OperatorUnderTest;
let core: CoreV1Api;
let apps: AppsV1Api;
let client: KubeClient;

const ssPath = (name = "", sub = "") =>
  `/apis/specops.dev/v1alpha1/namespaces/${NS}/specserves${name ? `/${name}` : ""}${sub ? `/${sub}` : ""}`;
const getSs = async (name: string) => (await kubeRequest(kc, "GET", ssPath(name))).body;
const cond = async (name: string, type: string) =>
  (await getSs(name))?.status?.conditions?.find((c: any) => c.type === type);

function manifest(name: string, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: "specops.dev/v1alpha1",
    kind: "SpecServe",
    metadata: { name, namespace: NS },
    spec: {
      target: { uri: "hf://Qwen/Qwen3-8B", credentialsSecretRef: { name: "hf-token" } },
      draft: { source: { uri: "hf://org/Qwen3-8B-eagle3" } },
      method: "eagle3",
      engine: "vllm",
      speculative: { numSpeculativeTokens: 3 },
      resources: { gpusPerReplica: 1 },
      ...spec,
    },
  };
}

async function create(m: object) {
  const res = await kubeRequest(kc, "POST", ssPath(), m);
  expect(res.body?.message).toBeUndefined();
  return res.body;
}
const mergePatch = (name: string, body: object) =>
  kubeRequest(kc, "PATCH", ssPath(name), body, "application/merge-patch+json");

const deploymentOf = (name: string) => apps.readNamespacedDeployment({ name, namespace: NS });
async function replicaSetsOf(name: string) {
  const list = await apps.listNamespacedReplicaSet({
    namespace: NS,
    labelSelector: `specops.dev/specserve=${name}`,
  });
  return list.items.filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.name === name));
}
const readyAt = (name: string, replicas: number) =>
  until(
    `${name} ready with ${replicas} replicas`,
    async () => {
      const s = (await getSs(name))?.status;
      return s?.readyReplicas === replicas && s?.replicas === replicas && s?.state === "Ready"
        ? s
        : undefined;
    },
    45_000,
  );

beforeAll(async () => {
  kc = kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  apps = kc.makeApiClient(AppsV1Api);
  client = new KubeClient(kc);
  await installCrds(kc);
  await ensureNamespace(kc, NS);
  await core
    .createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: "hf-token" }, stringData: { HF_TOKEN: "x" } },
    })
    .catch(() => undefined);
  kubelet = new FakeKubelet(kc, { nodeName: "ss-test-node" });
  await kubelet.start();
  operatorKc = await restrictedKubeConfig(kc, "specops-operator-ss-test", OPERATOR_RBAC_RULES);
  operator = await startOperator(operatorKc, { namespace: NS, progressPort: PROGRESS_PORT });
});

afterAll(async () => {
  await operator?.stop();
  await kubelet?.stop();
});

describe("SpecServe serving objects", () => {
  it("builds the Deployment, Service, PDB and serve Task, and reports Ready with the scale selector", async () => {
    await create(manifest("chat", { apiKeySecretRef: { name: "endpoint-key", key: "key" } }));
    // The API key Secret is missing first: a condition says so, nothing starts.
    const missing = await until("SecretNotFound", async () => {
      const c = await cond("chat", "Ready");
      return c?.reason === "SecretNotFound" ? c : undefined;
    });
    expect(missing.message).toMatch(/endpoint-key/);
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: "endpoint-key" }, stringData: { key: "s3cret" } },
    });
    await mergePatch("chat", { metadata: { annotations: { poke: "1" } } });

    const d = await until("the Deployment", () => deploymentOf("chat"));
    const c = d.spec?.template.spec?.containers[0];
    expect(c?.image).toBe("specops-runtime:test");
    expect(c?.resources?.limits).toEqual({ "nvidia.com/gpu": "1" });
    expect(c?.startupProbe?.failureThreshold).toBeGreaterThan(100);
    expect(c?.env?.find((e) => e.name === "VLLM_API_KEY")?.valueFrom?.secretKeyRef).toEqual({
      name: "endpoint-key",
      key: "key",
    });
    expect(JSON.stringify(d)).not.toContain("s3cret");
    const svc = await core.readNamespacedService({ name: "chat", namespace: NS });
    expect(svc.spec?.ports?.map((p) => [p.name, p.port])).toEqual([
      ["openai", 8000],
      ["metrics", PROGRESS_PORT],
    ]);
    const pdb = await kubeRequest(kc, "GET", `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/chat`);
    expect(pdb.body.spec.maxUnavailable).toBe(1);
    const cm = await core.readNamespacedConfigMap({ name: "chat-task", namespace: NS });
    const task = JSON.parse(cm.data?.["task.json"] ?? "{}");
    expect(task).toMatchObject({
      kind: "serve",
      backend: "vllm",
      params: {
        method: "eagle3",
        draft: { uri: "hf://org/Qwen3-8B-eagle3" },
        speculative: { numSpeculativeTokens: 3 },
      },
    });

    const status = await readyAt("chat", 1);
    expect(status).toMatchObject({
      selector: "specops.dev/specserve=chat",
      endpoint: `http://chat.${NS}.svc:8000/v1`,
      draft: "hf://org/Qwen3-8B-eagle3",
      observedGeneration: 1,
    });
    // kubectl get ss: the printer columns read these.
    const table = await kubeRequest(kc, "GET", ssPath("chat"), undefined);
    expect(table.status).toBe(200);
    // The fake kubelet's pod IPs serve no /metrics: the scrape's deadline passes, the operator goes
    // on and says why there are no signals.
    const metrics = await until(
      "MetricsAvailable False",
      async () => {
        const m = await cond("chat", "MetricsAvailable");
        return m?.status === "False" ? m : undefined;
      },
      20_000,
    );
    expect(metrics.reason).toBe("ScrapeFailed");
    expect(metrics.message).toMatch(/no serving pod's \/metrics could be read: chat-/);
  });

  it("a deleted Service, PDB or serve Task comes back at once, though unchanged children are not re-applied", async () => {
    const paths = [
      `/api/v1/namespaces/${NS}/services/chat`,
      `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/chat`,
      `/api/v1/namespaces/${NS}/configmaps/chat-task`,
    ];
    const uids = await Promise.all(
      paths.map(async (p) => (await kubeRequest(kc, "GET", p)).body.metadata.uid),
    );
    for (const p of paths) expect((await kubeRequest(kc, "DELETE", p)).status).toBe(200);
    // Each deletion is an event of an informer the controller owns: its SpecServe is reconciled and
    // the child, no longer cached at the version last applied, is applied again (well before any resync).
    for (const [i, p] of paths.entries())
      await until(
        `${p} re-created`,
        async () => {
          const got = await kubeRequest(kc, "GET", p);
          return got.status === 200 && got.body.metadata.uid !== uids[i] ? true : undefined;
        },
        20_000,
      );
  });

  it("the scale subresource works as kubectl scale; replicas alone restart no pod", async () => {
    const before = await replicaSetsOf("chat");
    expect(before).toHaveLength(1);
    // kubectl scale --replicas=3: a PATCH of /scale.
    const scaled = await kubeRequest(
      kc,
      "PATCH",
      ssPath("chat", "scale"),
      { spec: { replicas: 3 } },
      "application/merge-patch+json",
    );
    expect(scaled.status).toBe(200);
    await readyAt("chat", 3);
    const scale = (await kubeRequest(kc, "GET", ssPath("chat", "scale"))).body;
    expect(scale).toMatchObject({
      kind: "Scale",
      spec: { replicas: 3 },
      status: { replicas: 3, selector: "specops.dev/specserve=chat" },
    });
    const after = await replicaSetsOf("chat");
    expect(after.map((rs) => rs.metadata?.name)).toEqual(before.map((rs) => rs.metadata?.name));
    // The autoscaler's write path: /scale under its own field manager.
    await writeReplicas(client, SpecServes, { namespace: NS, name: "chat", replicas: 2 });
    await readyAt("chat", 2);
    const full = (await kubeRequest(kc, "GET", `${ssPath("chat")}?showManagedFields=true`)).body;
    const owner = full.metadata.managedFields.find((f: any) => f.fieldsV1?.["f:spec"]?.["f:replicas"]);
    expect(owner).toMatchObject({ manager: AUTOSCALER_FIELD_MANAGER, subresource: "scale" });
    // The operator never writes the SpecServe's spec.
    expect(
      full.metadata.managedFields.filter(
        (f: any) => f.manager.startsWith("specops-specserve") && !f.subresource,
      ),
    ).toEqual([]);
  });

  it("changing engine args rolls the Deployment; a new operator build with another default image does not", async () => {
    const template = JSON.stringify((await deploymentOf("chat")).spec?.template);
    const generation = (await deploymentOf("chat")).metadata?.generation;
    await operator.stop();
    operator = await startOperator(operatorKc, {
      namespace: NS,
      progressPort: PROGRESS_PORT,
      env: { SPECOPS_RUNTIME_IMAGE: "specops-runtime:next" },
    });
    await mergePatch("chat", { metadata: { annotations: { poke: "2" } } });
    await create(manifest("fresh"));
    const fresh = await until("the new SpecServe's Deployment", () => deploymentOf("fresh"));
    expect(fresh.spec?.template.spec?.containers[0]?.image).toBe("specops-runtime:next");
    const d = await deploymentOf("chat");
    expect(JSON.stringify(d.spec?.template)).toBe(template);
    expect(d.metadata?.generation).toBe(generation);

    await mergePatch("chat", { spec: { extraEngineArgs: ["--max-model-len=4096"] } });
    await until("a new ReplicaSet", async () =>
      (await replicaSetsOf("chat")).length === 2 ? true : undefined,
    );
    const cm = await core.readNamespacedConfigMap({ name: "chat-task", namespace: NS });
    expect(JSON.parse(cm.data?.["task.json"] ?? "{}").params.extraEngineArgs).toEqual([
      "--max-model-len=4096",
    ]);
    // The rolled template still runs the image the server was created with.
    expect((await deploymentOf("chat")).spec?.template.spec?.containers[0]?.image).toBe(
      "specops-runtime:test",
    );
    await readyAt("chat", 2);
  });

  it("the pause annotation stops reconciling one SpecServe", async () => {
    await mergePatch("fresh", { metadata: { annotations: { [ANNOTATIONS.paused]: "true" } } });
    await until("Paused", async () =>
      (await getSs("fresh"))?.status?.state === "Paused" ? true : undefined,
    );
    const template = JSON.stringify((await deploymentOf("fresh")).spec?.template);
    await mergePatch("fresh", { spec: { speculative: { numSpeculativeTokens: 5 } } });
    await new Promise((r) => setTimeout(r, 1500));
    expect(JSON.stringify((await deploymentOf("fresh")).spec?.template)).toBe(template);
    await mergePatch("fresh", { metadata: { annotations: { [ANNOTATIONS.paused]: null } } });
    await until("the change applied after unpausing", async () =>
      JSON.stringify((await deploymentOf("fresh")).spec?.template) !== template ? true : undefined,
    );
  });

  it("waits with a condition for a DraftTraining that does not exist", async () => {
    await create(manifest("from-dt", { draft: { draftTrainingRef: { name: "not-yet" } } }));
    const c = await until("DraftTrainingNotFound", async () => {
      const r = await cond("from-dt", "Ready");
      return r?.reason === "DraftTrainingNotFound" ? r : undefined;
    });
    expect(c.message).toMatch(/not-yet/);
    expect((await getSs("from-dt")).status.state).toBe("WaitingForDraft");
    await expect(deploymentOf("from-dt")).rejects.toThrow();
  });
});

describe("multi-node replicas as a LeaderWorkerSet (stand-in CRD, no LWS controller)", () => {
  const lwsPath = (name: string, sub = "") =>
    `/apis/leaderworkerset.x-k8s.io/v1/namespaces/${NS}/leaderworkersets/${name}${sub ? `/${sub}` : ""}`;

  it("says so when the CRD is missing, builds the LWS once it is installed and reads its status", async () => {
    await create(manifest("big", { replicas: 2, resources: { gpusPerReplica: 8, nodesPerReplica: 2 } }));
    await until("LeaderWorkerSetNotInstalled", async () =>
      (await cond("big", "Ready"))?.reason === "LeaderWorkerSetNotInstalled" ? true : undefined,
    );
    const crd = yaml.load(
      readFileSync(join(EXAMPLES_DIR, "../test/fixtures/lws/leaderworkerset-crd-standin.yaml"), "utf8"),
    ) as any;
    const res = await kubeRequest(
      kc,
      "PATCH",
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}?fieldManager=specops-tests&force=true`,
      crd,
      "application/apply-patch+yaml",
    );
    expect(res.status).toBeLessThan(300);
    await until("the CRD established", async () => {
      const r = await kubeRequest(
        kc,
        "GET",
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`,
      );
      return (
        r.body?.status?.conditions?.some((c: any) => c.type === "Established" && c.status === "True") ||
        undefined
      );
    });
    await mergePatch("big", { metadata: { annotations: { poke: "1" } } });
    const lws = await until("the LeaderWorkerSet", async () => {
      const r = await kubeRequest(kc, "GET", lwsPath("big"));
      return r.status === 200 ? r.body : undefined;
    });
    expect(lws.spec.replicas).toBe(2);
    expect(lws.spec.leaderWorkerTemplate.size).toBe(2);
    expect(
      lws.spec.leaderWorkerTemplate.leaderTemplate.spec.containers[0].resources.limits["nvidia.com/gpu"],
    ).toBe("8");
    expect(lws.spec.leaderWorkerTemplate.workerTemplate.metadata.labels["specops.dev/role"]).toBe("worker");
    await expect(deploymentOf("big")).rejects.toThrow();
    // Play the LWS controller: its status as upstream reports it.
    const st = await kubeRequest(
      kc,
      "PATCH",
      lwsPath("big", "status"),
      { status: { replicas: 2, readyReplicas: 2, updatedReplicas: 2, hpaPodSelector: "x=y" } },
      "application/merge-patch+json",
    );
    expect(st.status).toBe(200);
    await mergePatch("big", { metadata: { annotations: { poke: "2" } } });
    await readyAt("big", 2);
    // Scaling the SpecServe scales the groups.
    await writeReplicas(client, SpecServes, { namespace: NS, name: "big", replicas: 3 });
    await until("LWS replicas 3", async () =>
      (await kubeRequest(kc, "GET", lwsPath("big"))).body.spec.replicas === 3 ? true : undefined,
    );
    // No canary for multi-node replicas: status.rollout says so, and a new draft rolls directly with
    // a Warning Event rather than silently skipping the acceptance gate.
    const rollout = (await kubeRequest(kc, "GET", ssPath("big"))).body.status.rollout;
    expect(rollout.message).toMatch(/canary rollouts are not supported for multi-node replicas/);
    await mergePatch("big", { spec: { draft: { source: { uri: "hf://org/draft-next" } } } });
    await until("the LWS serving the new draft directly", async () => {
      const ss = (await kubeRequest(kc, "GET", ssPath("big"))).body;
      return ss.status?.rollout?.currentDraft === "hf://org/draft-next" &&
        ss.status.rollout.state === "Stable"
        ? true
        : undefined;
    });
    await until("the DraftRolledUngated Event", async () => {
      const events = await kubeRequest(kc, "GET", `/apis/events.k8s.io/v1/namespaces/${NS}/events`);
      return events.body.items.some(
        (e: any) =>
          e.reason === "DraftRolledUngated" && e.regarding?.name === "big" && /multi-node/.test(e.note),
      )
        ? true
        : undefined;
    });
    expect(
      await kubeRequest(kc, "GET", `/apis/apps/v1/namespaces/${NS}/deployments/big-canary`),
    ).toMatchObject({
      status: 404,
    });
  });
});

describe("GitOps co-ownership (autoscaling on: spec.replicas is the autoscaler's)", () => {
  it("client-side and server-side appliers re-applying the manifest never fight the scale path", async () => {
    const gitManifest = () =>
      manifest("gitops", {
        autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 5 },
        extraEngineArgs: ["--max-model-len=8192"],
      });
    const withoutReplicas = gitManifest();
    expect((withoutReplicas.spec as any).replicas).toBeUndefined();

    // Server-side apply with its own field manager, as Argo CD with ServerSideApply=true or Flux.
    const ssa = async (m: object) => {
      const r = await kubeRequest(
        kc,
        "PATCH",
        `${ssPath("gitops")}?fieldManager=argocd-controller`,
        m,
        "application/apply-patch+yaml",
      );
      if (r.status >= 300) throw new Error(`server-side apply: ${r.status} ${r.body?.message}`);
    };
    // Client-side apply as kubectl does it: a JSON merge patch of the manifest plus the
    // last-applied annotation, nulling what the previous manifest had and this one drops.
    let lastApplied: any;
    const csa = async (m: any) => {
      const patch = structuredClone(m);
      if (lastApplied)
        for (const k of Object.keys(lastApplied.spec)) if (!(k in m.spec)) patch.spec[k] = null;
      patch.metadata.annotations = { "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify(m) };
      const r = await kubeRequest(
        kc,
        "PATCH",
        `${ssPath("gitops")}?fieldManager=kubectl-client-side-apply`,
        patch,
        "application/merge-patch+json",
      );
      if (r.status >= 300) throw new Error(`client-side apply: ${r.status} ${r.body?.message}`);
      lastApplied = m;
    };
    await ssa(withoutReplicas);
    await readyAt("gitops", 1);

    const seen: number[] = [(await getSs("gitops")).spec.replicas];
    const errors: string[] = [];
    let stop = false;
    const appliers = [ssa, csa].map(async (applyOnce) => {
      while (!stop) {
        await applyOnce(gitManifest()).catch((err) => errors.push(String(err)));
        await new Promise((r) => setTimeout(r, 300));
      }
    });
    const watcher = (async () => {
      while (!stop) {
        const r = (await getSs("gitops"))?.spec?.replicas;
        if (seen.at(-1) !== r) seen.push(r);
        await new Promise((res) => setTimeout(res, 50));
      }
    })();
    for (const n of [2, 4, 3]) {
      await writeReplicas(client, SpecServes, { namespace: NS, name: "gitops", replicas: n });
      await readyAt("gitops", n);
      await new Promise((r) => setTimeout(r, 1000));
    }
    stop = true;
    await Promise.all([...appliers, watcher]);
    expect(errors).toEqual([]);
    // No flapping: spec.replicas only ever took the values the scale path wrote, in order.
    expect(seen).toEqual([1, 2, 4, 3]);
    expect((await deploymentOf("gitops")).spec?.replicas).toBe(3);
    // No rollout from the re-applies: still one ReplicaSet.
    expect(await replicaSetsOf("gitops")).toHaveLength(1);

    // A Git change converges too, without touching replicas.
    await ssa(
      manifest("gitops", {
        autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 5 },
        extraEngineArgs: ["--max-model-len=4096"],
      }),
    );
    await until("the Git change rolled out", async () =>
      (await replicaSetsOf("gitops")).length === 2 ? true : undefined,
    );
    expect((await getSs("gitops")).spec.replicas).toBe(3);
    await readyAt("gitops", 3);
  });
});
