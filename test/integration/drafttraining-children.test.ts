// DraftTraining children on a real API server, level-triggered: a deleted child of the running
// stage comes back, suspend keeps the regeneration server (at zero replicas) and resume brings it
// back, a failed run whose spec changes runs again, Kueue's admission shows in status, a long name
// works, and an admission denial or a missing permission shows in status and Events. The operator runs as a user holding
// exactly the generated ClusterRole; the fake kubelet plays the pods (no container runtime here).
import { AppsV1Api, BatchV1Api, CoreV1Api, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { childNames } from "../../operator/src/controllers/drafttraining/plan.ts";
import { labelValue } from "../../operator/src/controllers/shared/names.ts";
import { OPERATOR_RBAC_RULES } from "../../operator/src/rbac.ts";
import { FakeKubelet } from "../controlplane/kubelet.ts";
import { example, type Manifest } from "../fixtures/examples.ts";
import { ensureNamespace, installCrds, kubeConfig, kubeRequest, restrictedKubeConfig } from "./kube.ts";
import {
  type FakeProgressServer,
  fakeProgressServer,
  type OperatorUnderTest,
  startOperator,
  until,
} from "./operator-harness.ts";

const NS = "dt-children-tests";
const MANAGER = "specops-drafttraining";
let kc: KubeConfig;
let kubelet: FakeKubelet;
let progress: FakeProgressServer;
let operator: OperatorUnderTest;
let core: CoreV1Api;
let batch: BatchV1Api;
let apps: AppsV1Api;

const dtPath = (name = "") =>
  `/apis/specops.dev/v1alpha1/namespaces/${NS}/drafttrainings${name ? `/${name}` : ""}`;
const getDt = async (name: string) => (await kubeRequest(kc, "GET", dtPath(name))).body;
const condition = async (name: string, type: string) =>
  (await getDt(name))?.status?.conditions?.find((c: any) => c.type === type);
const patchSpec = (name: string, spec: object) =>
  kubeRequest(kc, "PATCH", dtPath(name), { spec }, "application/merge-patch+json");

function tiny(name: string, edit?: (spec: any) => void): Manifest {
  const m = example("tiny-drafttraining.yaml");
  m.metadata = { name, namespace: NS };
  edit?.(m.spec);
  return m;
}

/** The DeepSpec backend with regeneration (its temporary target server), without Secrets or gate. */
function deepspec(name: string): Manifest {
  const m = example("drafttraining-qwen3-8b-dspark.yaml");
  m.metadata = { name, namespace: NS };
  delete m.spec.target.credentialsSecretRef;
  delete m.spec.data.prompts.credentialsSecretRef;
  delete m.spec.output;
  delete m.spec.evaluation;
  delete m.spec.placement.priorityClassName;
  m.spec.data.regenerate.replicas = 2;
  return m;
}

async function create(m: Manifest) {
  const res = await kubeRequest(kc, "POST", dtPath(), m);
  expect(res.body?.message).toBeUndefined();
  return res.body;
}

async function runningPod(job: string): Promise<V1Pod> {
  return until(`a running pod of ${job}`, async () => {
    const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: `job-name=${job}` });
    return pods.items.find((p) => p.status?.phase === "Running");
  });
}

async function finishStage(job: string, exitCode = 0, message?: string) {
  const pod = await runningPod(job);
  await kubelet.finish(NS, pod.metadata?.name ?? "", { exitCode, message });
}

const readJob = (name: string) => batch.readNamespacedJob({ name, namespace: NS });
const uidOf = async (read: () => Promise<{ metadata?: { uid?: string } }>) =>
  (await read().catch(() => undefined))?.metadata?.uid;

beforeAll(async () => {
  kc = kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  batch = kc.makeApiClient(BatchV1Api);
  apps = kc.makeApiClient(AppsV1Api);
  await installCrds(kc);
  await ensureNamespace(kc, NS);
  progress = await fakeProgressServer({});
  kubelet = new FakeKubelet(kc, { nodeName: "dt-children-node", podIP: () => "127.0.0.1" });
  await kubelet.start();
  const operatorKc = await restrictedKubeConfig(kc, "specops-operator-children", OPERATOR_RBAC_RULES);
  operator = await startOperator(operatorKc, { namespace: NS, progressPort: progress.port });
});

afterAll(async () => {
  await operator?.stop();
  await kubelet?.stop();
  await progress?.close();
});

describe("level-triggered children", () => {
  it("re-creates a running stage's deleted ConfigMaps and Service, and keeps the regeneration server through suspend and resume", async () => {
    await create(deepspec("regen"));
    const names = childNames({ metadata: { name: "regen" } } as never);
    await until("the data Job", () => readJob(names.job("PrepareData")));
    await finishStage(names.job("PrepareData"));
    await until("the regeneration Job", () => readJob(names.job("Regenerate")));
    const deployment = await until("the regeneration server", () =>
      apps.readNamespacedDeployment({ name: names.regenServer, namespace: NS }),
    );
    expect(deployment.spec?.replicas).toBe(2);

    // Delete three children of the running stage: each comes back (a new object, same name).
    const children = [
      () => core.readNamespacedConfigMap({ name: names.taskConfigMap("Regenerate"), namespace: NS }),
      () => core.readNamespacedConfigMap({ name: names.regenServerTask, namespace: NS }),
      () => core.readNamespacedService({ name: names.regenServer, namespace: NS }),
    ];
    const before = await Promise.all(children.map((read) => uidOf(read)));
    expect(before.every(Boolean)).toBe(true);
    await core.deleteNamespacedConfigMap({ name: names.taskConfigMap("Regenerate"), namespace: NS });
    await core.deleteNamespacedConfigMap({ name: names.regenServerTask, namespace: NS });
    await core.deleteNamespacedService({ name: names.regenServer, namespace: NS });
    for (const [i, read] of children.entries()) {
      await until(`child ${i} re-created`, async () => {
        const uid = await uidOf(read);
        return uid && uid !== before[i] ? true : undefined;
      });
    }

    // Suspend: the Job stops, the server's objects stay at zero replicas (GPUs free).
    await patchSpec("regen", { suspend: true });
    await until("the Job suspended", async () =>
      (await readJob(names.job("Regenerate"))).spec?.suspend ? true : undefined,
    );
    await until("the server at zero replicas", async () =>
      (await apps.readNamespacedDeployment({ name: names.regenServer, namespace: NS })).spec?.replicas === 0
        ? true
        : undefined,
    );
    await until("stage Suspended", async () =>
      (await getDt("regen")).status?.stage === "Suspended" ? true : undefined,
    );
    expect(await uidOf(children[2] as never)).toBeDefined();
    // Suspension went through server-side apply with the controller's field manager.
    const job = await readJob(names.job("Regenerate"));
    const ours = job.metadata?.managedFields?.filter((f) => f.manager === MANAGER) ?? [];
    expect(ours.map((f) => f.operation)).toEqual(["Apply"]);
    expect(JSON.stringify(ours[0]?.fieldsV1)).toContain('"f:suspend"');

    // Resume: the Job runs again and the server scales back.
    await patchSpec("regen", { suspend: false });
    await until("the Job resumed", async () =>
      (await readJob(names.job("Regenerate"))).spec?.suspend === false ? true : undefined,
    );
    await until("the server scaled back", async () =>
      (await apps.readNamespacedDeployment({ name: names.regenServer, namespace: NS })).spec?.replicas === 2
        ? true
        : undefined,
    );
    await until("stage Regenerate", async () =>
      (await getDt("regen")).status?.stage === "Regenerate" ? true : undefined,
    );
    // Regeneration done: the server goes.
    await finishStage(names.job("Regenerate"));
    await until("the server gone", async () =>
      (await apps
        .readNamespacedDeployment({ name: names.regenServer, namespace: NS })
        .catch(() => undefined)) === undefined
        ? true
        : undefined,
    );
  });

  it("runs a failed DraftTraining again from the failed stage once its spec changes", async () => {
    await create(tiny("rerun"));
    const failedUid = (await until("the data Job", () => readJob("rerun-data"))).metadata?.uid;
    await finishStage("rerun-data", 10, "invalid task");
    await until("Failed", async () => ((await getDt("rerun")).status?.stage === "Failed" ? true : undefined));
    await patchSpec("rerun", { data: { maxSamples: 7 } });
    const job = await until("a new data Job", async () => {
      const j = await readJob("rerun-data").catch(() => undefined);
      return j && j.metadata?.uid !== failedUid ? j : undefined;
    });
    expect(job.metadata?.annotations?.["specops.dev/generation"]).toBe("2");
    const task = await core.readNamespacedConfigMap({ name: "rerun-data-task", namespace: NS });
    expect(JSON.parse(task.data?.["task.json"] ?? "{}").params.maxSamples).toBe(7);
    const dt = await until("running again", async () => {
      const d = await getDt("rerun");
      return d.status?.stage === "PrepareData" ? d : undefined;
    });
    expect(dt.status.observedGeneration).toBe(2);
    await finishStage("rerun-data");
    await until("next stage", () => readJob("rerun-regen"));
  });

  it("keeps a condition another writer set: status apply sends only this controller's fields", async () => {
    await create(tiny("shared-status"));
    await until("status", async () => ((await getDt("shared-status")).status?.stage ? true : undefined));
    const foreign = {
      type: "ExternalCheck",
      status: "True",
      reason: "Checked",
      message: "by another tool",
      lastTransitionTime: "2026-12-01T00:00:00Z",
    };
    const res = await kubeRequest(
      kc,
      "PATCH",
      `${dtPath("shared-status")}/status?fieldManager=another-tool&force=true`,
      {
        apiVersion: "specops.dev/v1alpha1",
        kind: "DraftTraining",
        metadata: { name: "shared-status" },
        status: { conditions: [foreign] },
      },
      "application/apply-patch+yaml",
    );
    expect(res.status).toBe(200);
    // Make the operator write status again: the stage moves on.
    await finishStage("shared-status-data");
    await until("next stage", async () =>
      (await getDt("shared-status")).status?.stage === "Regenerate" ? true : undefined,
    );
    const dt = await getDt("shared-status");
    expect(dt.status.conditions.find((c: any) => c.type === "ExternalCheck")).toMatchObject({
      message: "by another tool",
    });
    const ours = dt.metadata.managedFields.find(
      (f: any) => f.manager === MANAGER && f.subresource === "status",
    );
    expect(JSON.stringify(ours.fieldsV1)).not.toContain("ExternalCheck");
  });
});

describe("Kueue", () => {
  it("submits Jobs to the named queue and shows admission, with the test standing in for Kueue", async () => {
    await create(tiny("queued", (s) => (s.queueName = "team-a")));
    const job = await until("the data Job", () => readJob("queued-data"));
    expect(job.metadata?.labels?.["kueue.x-k8s.io/queue-name"]).toBe("team-a");
    expect(job.spec?.suspend).toBe(true);
    const waiting = await until("waiting for quota", async () => {
      const c = await condition("queued", "Admitted");
      return c?.reason === "WaitingForQuota" ? c : undefined;
    });
    expect(waiting.message).toContain("team-a");
    // Kueue admits a Job by unsuspending it.
    const admit = await kubeRequest(
      kc,
      "PATCH",
      `/apis/batch/v1/namespaces/${NS}/jobs/queued-data?fieldManager=kueue-stand-in`,
      { spec: { suspend: false } },
      "application/merge-patch+json",
    );
    expect(admit.status).toBe(200);
    await until("admitted", async () =>
      (await condition("queued", "Admitted"))?.reason === "Admitted" ? true : undefined,
    );
    await runningPod("queued-data");
    // The operator leaves the suspension alone: still running after further passes.
    await patchSpec("queued", { progressInterval: "1s" });
    await new Promise((r) => setTimeout(r, 1500));
    expect((await readJob("queued-data")).spec?.suspend).toBe(false);
    expect((await getDt("queued")).status.stages[0].state).toBe("Running");
  });
});

describe("names and errors", () => {
  it("runs a DraftTraining with a valid 75-character name (hash-shortened names and label values)", async () => {
    const name = `qwen3-8b-dspark-${"x".repeat(53)}-run.1`;
    expect(name.length).toBe(75);
    await create(tiny(name));
    const names = childNames({ metadata: { name } } as never);
    const job = await until("the data Job", () => readJob(names.job("PrepareData")));
    expect(job.metadata?.labels?.["specops.dev/drafttraining"]).toBe(labelValue(name));
    const dt = await until("a stage in status", async () => {
      const d = await getDt(name);
      return d.status?.stage ? d : undefined;
    });
    expect(dt.status.stage).toBe("PrepareData");
    expect(dt.status.conditions.find((c: any) => c.type === "Reconciled")).toBeUndefined();
  });

  it("shows an admission denial in status and as a Warning Event with the server's message, then recovers", async () => {
    const policy = {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: { name: "no-denied-configmaps" },
      spec: {
        failurePolicy: "Fail",
        matchConstraints: {
          resourceRules: [
            {
              apiGroups: [""],
              apiVersions: ["v1"],
              operations: ["CREATE", "UPDATE"],
              resources: ["configmaps"],
            },
          ],
        },
        validations: [
          {
            expression:
              "!has(object.metadata.labels) || !('specops.dev/drafttraining' in object.metadata.labels) || object.metadata.labels['specops.dev/drafttraining'] != 'denied'",
            message: "task documents of 'denied' are not allowed here",
          },
        ],
      },
    };
    const binding = {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { name: "no-denied-configmaps" },
      spec: { policyName: "no-denied-configmaps", validationActions: ["Deny"] },
    };
    const vap = "/apis/admissionregistration.k8s.io/v1";
    for (const [plural, obj] of [
      ["validatingadmissionpolicies", policy],
      ["validatingadmissionpolicybindings", binding],
    ] as const) {
      const r = await kubeRequest(kc, "POST", `${vap}/${plural}`, obj);
      expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
    }
    // The policy takes effect once the API server has loaded it.
    await until("the policy enforced", async () => {
      const r = await kubeRequest(kc, "POST", `/api/v1/namespaces/${NS}/configmaps?dryRun=All`, {
        metadata: { name: "probe", labels: { "specops.dev/drafttraining": "denied" } },
      });
      return r.status >= 400 ? true : undefined;
    });
    try {
      await create(tiny("denied"));
      const cond = await until("Reconciled=False", async () => {
        const c = await condition("denied", "Reconciled");
        return c?.status === "False" ? c : undefined;
      });
      expect(cond.reason).toBe("AdmissionDenied");
      expect(cond.message).toContain("task documents of 'denied' are not allowed here");
      expect(cond.message).toContain("applying ConfigMap denied-data-task");
      const dt = await getDt("denied");
      expect(dt.status.stage).toBe("PrepareData");
      const event = await until("a Warning Event", async () => {
        const events = await kubeRequest(kc, "GET", `/apis/events.k8s.io/v1/namespaces/${NS}/events`);
        return events.body.items.find(
          (e: any) => e.regarding?.name === "denied" && e.reason === "AdmissionDenied",
        );
      });
      expect(event.type).toBe("Warning");
      expect(event.note).toContain("not allowed here");
    } finally {
      await kubeRequest(kc, "DELETE", `${vap}/validatingadmissionpolicybindings/no-denied-configmaps`);
      await kubeRequest(kc, "DELETE", `${vap}/validatingadmissionpolicies/no-denied-configmaps`);
    }
    // The retry (with backoff) applies the ConfigMap once the denial is lifted.
    await until(
      "the task ConfigMap",
      () => core.readNamespacedConfigMap({ name: "denied-data-task", namespace: NS }),
      45_000,
    );
    await until(
      "Reconciled cleared",
      async () => ((await condition("denied", "Reconciled")) === undefined ? true : undefined),
      45_000,
    );
  });
});

describe("a missing permission", () => {
  it("shows in status and as a Warning Event, naming the verb and resource the server refused", async () => {
    const ns = "dt-rbac-tests";
    await ensureNamespace(kc, ns);
    // Its own identity (a ServiceAccount token), so the other tests' roles do not add up with this one.
    const sa = "specops-missing-rbac";
    await core
      .createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } })
      .catch((err) => {
        if (err?.code !== 409) throw err;
      });
    const rules = OPERATOR_RBAC_RULES.map((r) =>
      r.resources.includes("configmaps")
        ? { ...r, verbs: r.verbs.filter((v) => v !== "create" && v !== "patch") }
        : r,
    );
    for (const [plural, obj] of [
      [
        "clusterroles",
        { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: sa }, rules },
      ],
      [
        "clusterrolebindings",
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRoleBinding",
          metadata: { name: sa },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: sa },
          subjects: [{ kind: "ServiceAccount", name: sa, namespace: ns }],
        },
      ],
    ] as const) {
      const r = await kubeRequest(
        kc,
        "PATCH",
        `/apis/rbac.authorization.k8s.io/v1/${plural}/${sa}?fieldManager=specops-tests&force=true`,
        obj,
        "application/apply-patch+yaml",
      );
      expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
    }
    const token = await kubeRequest(kc, "POST", `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds: 3600 },
    });
    expect(token.status, JSON.stringify(token.body)).toBe(201);
    const saKc = new KubeConfig();
    const cluster = kc.getCurrentCluster();
    saKc.loadFromOptions({
      clusters: [{ name: "c", server: cluster?.server ?? "", caData: cluster?.caData }],
      users: [{ name: sa, token: token.body.status.token }],
      contexts: [{ name: "c", cluster: "c", user: sa }],
      currentContext: "c",
    });
    const limited = await startOperator(saKc, { namespace: ns, progressPort: progress.port });
    try {
      const m = tiny("no-configmaps");
      m.metadata.namespace = ns;
      const res = await kubeRequest(
        kc,
        "POST",
        `/apis/specops.dev/v1alpha1/namespaces/${ns}/drafttrainings`,
        m,
      );
      expect(res.status).toBe(201);
      const path = `/apis/specops.dev/v1alpha1/namespaces/${ns}/drafttrainings/no-configmaps`;
      const cond = await until("Reconciled=False", async () => {
        const dt = (await kubeRequest(kc, "GET", path)).body;
        const c = dt?.status?.conditions?.find((x: any) => x.type === "Reconciled");
        return c?.status === "False" ? c : undefined;
      });
      expect(cond.reason).toBe("Forbidden");
      expect(cond.message).toContain("applying ConfigMap no-configmaps-data-task");
      expect(cond.message).toContain('cannot patch resource "configmaps"');
      const event = await until("a Warning Event", async () => {
        const events = await kubeRequest(kc, "GET", `/apis/events.k8s.io/v1/namespaces/${ns}/events`);
        return events.body.items.find(
          (e: any) => e.regarding?.name === "no-configmaps" && e.reason === "Forbidden",
        );
      });
      expect(event.type).toBe("Warning");
    } finally {
      await limited.stop();
    }
  });
});
