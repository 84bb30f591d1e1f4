// The DraftTraining controller end to end on a real API server: the operator runs in-process, the
// real Job controller and garbage collector run in kube-controller-manager, the fake kubelet plays
// the pods and a loopback server plays their progress endpoint (test edge: no real kubelet node).
import { BatchV1Api, CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

const NS = "dt-tests";
let kc: KubeConfig;
let operatorKc: KubeConfig;
let kubelet: FakeKubelet;
let progress: FakeProgressServer;
let operator: OperatorUnderTest;
let core: CoreV1Api;
let batch: BatchV1Api;

const dtPath = (name = "") =>
  `/apis/specops.dev/v1alpha1/namespaces/${NS}/drafttrainings${name ? `/${name}` : ""}`;
const getDt = async (name: string) => (await kubeRequest(kc, "GET", dtPath(name))).body;

function tiny(name: string, edit?: (spec: any) => void): Manifest {
  const m = example("tiny-drafttraining.yaml");
  m.metadata = { name, namespace: NS };
  edit?.(m.spec);
  return m;
}

async function create(m: Manifest) {
  const res = await kubeRequest(kc, "POST", dtPath(), m);
  expect(res.body?.message).toBeUndefined();
  return res.body;
}

const result = (taskKind: string, extra: object = {}) =>
  JSON.stringify({
    apiVersion: "runtime.specops.dev/v1",
    kind: "Result",
    taskKind,
    backend: "reference",
    status: "succeeded",
    exitCode: 0,
    reason: "success",
    startTime: "2026-11-28T12:00:00Z",
    completionTime: "2026-11-28T12:01:00Z",
    durationSeconds: 60,
    ...extra,
  });

async function runningPod(job: string): Promise<V1Pod> {
  return until(`a running pod of ${job}`, async () => {
    const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: `job-name=${job}` });
    return pods.items.find((p) => p.status?.phase === "Running");
  });
}

async function finishStage(job: string, exitCode = 0, message?: string) {
  const pod = await runningPod(job);
  await kubelet.finish(NS, pod.metadata?.name ?? "", { exitCode, message: message ?? result("x") });
}

const stageOf = async (name: string) => (await getDt(name))?.status?.stage;
const condition = async (name: string, type: string) =>
  (await getDt(name))?.status?.conditions?.find((c: any) => c.type === type);

beforeAll(async () => {
  kc = kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  batch = kc.makeApiClient(BatchV1Api);
  await installCrds(kc);
  await ensureNamespace(kc, NS);
  progress = await fakeProgressServer();
  kubelet = new FakeKubelet(kc, { nodeName: "dt-test-node", podIP: () => "127.0.0.1" });
  await kubelet.start();
  // The operator runs as a user holding exactly the generated ClusterRole: a missing rule fails here.
  operatorKc = await restrictedKubeConfig(kc, "specops-operator-test", OPERATOR_RBAC_RULES);
  operator = await startOperator(operatorKc, {
    namespace: NS,
    progressPort: progress.port,
    env: { SPECOPS_LEADER_ELECT: "true" },
  });
});

afterAll(async () => {
  await operator?.stop();
  await kubelet?.stop();
  await progress?.close();
});

describe("DraftTraining pipeline", () => {
  it("runs every stage to success, reports progress and folds the evaluation into status", async () => {
    await create(tiny("happy"));
    // Storage and the first stage appear with the expected pod spec.
    const dataJob = await until("the data Job", () =>
      batch.readNamespacedJob({ name: "happy-data", namespace: NS }),
    );
    const pod = dataJob.spec?.template.spec;
    expect(pod?.containers[0]).toMatchObject({
      image: "specops-runtime:test",
      args: ["--task", "/etc/specops/task.json"],
      resources: { limits: { cpu: "2", memory: "4Gi" }, requests: { cpu: "2", memory: "4Gi" } },
    });
    expect(pod?.volumes?.map((v) => v.persistentVolumeClaim?.claimName ?? v.configMap?.name)).toEqual([
      "happy-data-task",
      "happy-storage",
    ]);
    const pvc = await core.readNamespacedPersistentVolumeClaim({ name: "happy-storage", namespace: NS });
    expect(pvc.spec?.resources?.requests?.storage).toBe("1Gi");
    const task = JSON.parse(
      (await core.readNamespacedConfigMap({ name: "happy-data-task", namespace: NS })).data?.["task.json"] ??
        "{}",
    );
    expect(task).toMatchObject({
      kind: "prepare-data",
      backend: "reference",
      params: { prompts: { uri: "builtin://tiny-mix" } },
    });
    expect(await stageOf("happy")).toBe("PrepareData");

    await finishStage("happy-data");
    await until("regeneration", () => batch.readNamespacedJob({ name: "happy-regen", namespace: NS }));
    await finishStage("happy-regen");
    await until("target cache", () => batch.readNamespacedJob({ name: "happy-cache", namespace: NS }));
    await finishStage("happy-cache");
    await until("training", () => batch.readNamespacedJob({ name: "happy-train", namespace: NS }));

    // Progress flows from the (fake) pod endpoint into status with an ETA.
    progress.report = {
      kind: "train",
      backend: "reference",
      state: "running",
      step: 50,
      total: 200,
      epoch: 0.5,
      loss: 1.75,
      acceptanceByPosition: [0.8, 0.6, 0.4, 0.2],
      tauEstimate: 3.0,
      startTime: new Date(Date.now() - 50_000).toISOString(),
      time: new Date().toISOString(),
    };
    const withProgress = await until("progress in status", async () => {
      const dt = await getDt("happy");
      return dt.status?.progress?.step === 50 ? dt : undefined;
    });
    expect(withProgress.status.progress).toMatchObject({
      stage: "Train",
      step: 50,
      totalSteps: 200,
      percent: 25,
      loss: 1.75,
      tauEstimate: 3,
    });
    expect(withProgress.status.progress.eta).toBeDefined();

    await finishStage(
      "happy-train",
      0,
      result("train", { outputs: { checkpoint: { path: "/x", step: 200 } } }),
    );
    // The evaluation gate: an AcceptanceEval owned by the DraftTraining, whose controller runs the
    // eval Job; the (fake) pod reports the figures the runtime would.
    const ae = await until("the AcceptanceEval", async () => {
      const r = await kubeRequest(
        kc,
        "GET",
        `/apis/specops.dev/v1alpha1/namespaces/${NS}/acceptanceevals/happy-eval`,
      );
      return r.status === 200 ? r.body : undefined;
    });
    expect(ae.spec.draft.source.uri).toBe(
      "pvc://happy-storage/specops/drafttrainings/happy/train/checkpoints/specops/draft/step_latest",
    );
    expect(ae.metadata.ownerReferences[0]).toMatchObject({
      kind: "DraftTraining",
      name: "happy",
      controller: true,
    });
    await finishStage(
      "happy-eval-g1",
      0,
      result("eval", {
        evaluation: {
          results: [
            { name: "tiny-math", samples: 32, tau: 2.8 },
            { name: "tiny-chat", samples: 32, tau: 2.4 },
          ],
        },
      }),
    );
    const done = await until("success", async () => {
      const dt = await getDt("happy");
      return dt.status?.stage === "Succeeded" ? dt : undefined;
    });
    expect(done.status.stages.map((s: any) => s.state)).toEqual([
      "Succeeded",
      "Succeeded",
      "Succeeded",
      "Succeeded",
      "Succeeded",
    ]);
    expect(done.status.evaluation).toEqual({ acceptanceEval: "happy-eval", macroTau: 2.6, passed: true });
    expect(done.status.checkpoint).toEqual({
      uri: "pvc://happy-storage/specops/drafttrainings/happy/train/checkpoints/specops/draft/step_latest",
      step: 200,
    });
    expect(done.status.conditions.find((c: any) => c.type === "Succeeded")).toMatchObject({
      status: "True",
      observedGeneration: 1,
    });
    expect(done.metadata.finalizers).toContain("specops.dev/drafttraining-cleanup");

    // kubectl's columns tell the story.
    const table = await fetchTable("happy");
    expect(table).toMatchObject({ Name: "happy", Method: "dflash", Stage: "Succeeded", Succeeded: "True" });

    // Events on the resource for the transitions.
    const events = await kubeRequest(kc, "GET", `/apis/events.k8s.io/v1/namespaces/${NS}/events`);
    const reasons = events.body.items
      .filter((e: any) => e.regarding?.name === "happy")
      .map((e: any) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(["PrepareDataSucceeded", "TrainSucceeded"]));

    // Deleting a finished DraftTraining: children go with it; the claim (Delete policy) too.
    await kubeRequest(kc, "DELETE", dtPath("happy"));
    await until("the DraftTraining gone", async () =>
      (await kubeRequest(kc, "GET", dtPath("happy"))).status === 404 ? true : undefined,
    );
    await until("its Jobs gone", async () => {
      const jobs = await batch.listNamespacedJob({
        namespace: NS,
        labelSelector: "specops.dev/drafttraining=happy",
      });
      return jobs.items.length === 0 ? true : undefined;
    });
  });

  it("fails at once on a terminal runtime exit, with the runtime's message", async () => {
    await create(tiny("terminal"));
    const message = result("prepare-data", {
      status: "failed",
      exitCode: 10,
      reason: "invalidTask",
      message: "params.prompts.uri: unknown builtin dataset",
    });
    await finishStage("terminal-data", 10, message);
    const failed = await until("failure", async () =>
      (await stageOf("terminal")) === "Failed" ? getDt("terminal") : undefined,
    );
    expect(failed.status.conditions.find((c: any) => c.type === "Succeeded")).toMatchObject({
      status: "False",
      reason: "PrepareDataFailed",
      message: "spec.data.prompts.uri: unknown builtin dataset",
    });
    const job = await batch.readNamespacedJob({ name: "terminal-data", namespace: NS });
    expect(job.status?.conditions?.find((c) => c.type === "Failed")?.reason).toBe("PodFailurePolicy");
    expect(job.status?.failed).toBe(1);
  });

  it("retries a retriable exit and then continues", async () => {
    await create(tiny("retriable"));
    await finishStage(
      "retriable-data",
      13,
      result("prepare-data", {
        status: "failed",
        exitCode: 13,
        reason: "retriableInfrastructure",
        message: "NCCL timeout",
      }),
    );
    // The Job controller starts a second pod; the stage stays Running with two attempts.
    await until("a second attempt", async () => {
      const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: "job-name=retriable-data" });
      return pods.items.length === 2 && pods.items.some((p) => p.status?.phase === "Running")
        ? true
        : undefined;
    });
    await finishStage("retriable-data");
    await until("next stage", () => batch.readNamespacedJob({ name: "retriable-regen", namespace: NS }));
    // The next stage's Job is applied before the pass writes status, so status may lag it a moment.
    const stage = await until("the data stage's status", async () => {
      const s = (await getDt("retriable")).status?.stages?.[0];
      return s?.state === "Succeeded" ? s : undefined;
    });
    expect(stage).toMatchObject({ name: "PrepareData", state: "Succeeded", attempts: 2 });
  });

  it("records a broken progress report as a condition and an event, without crashing", async () => {
    progress.report = "{not json";
    await create(tiny("badprogress"));
    const cond = await until("ProgressAvailable=False", async () => {
      const c = await condition("badprogress", "ProgressAvailable");
      return c?.status === "False" ? c : undefined;
    });
    expect(cond.reason).toBe("BadProgressReport");
    // The pipeline itself carries on.
    await finishStage("badprogress-data");
    await until("next stage", () => batch.readNamespacedJob({ name: "badprogress-regen", namespace: NS }));
  });

  it("reports a missing Secret from the pod's status (the fake kubelet's CreateContainerConfigError), with no Secret access, then proceeds once it exists", async () => {
    // The operator runs with exactly the generated ClusterRole, which grants nothing on Secrets.
    expect(OPERATOR_RBAC_RULES.some((r) => r.resources.includes("secrets"))).toBe(false);
    await create(
      tiny(
        "secretless",
        // The data stage reads the prompts, so its pods need the prompts' Secret (not the target's).
        (s) => (s.data.prompts = { uri: "builtin://tiny-mix", credentialsSecretRef: { name: "hf-token" } }),
      ),
    );
    const cond = await until("SecretMissing", async () => {
      const c = await condition("secretless", "Ready");
      return c?.reason === "SecretMissing" ? c : undefined;
    });
    expect(cond.message).toMatch(
      /^pod secretless-data-\w+ of Job secretless-data cannot start \(CreateContainerConfigError\): secret "hf-token" not found$/,
    );
    expect((await condition("secretless", "ContainersStarted"))?.reason).toBe("SecretMissing");
    const warned = await until("a SecretMissing Event", async () => {
      const events = await kubeRequest(kc, "GET", `/apis/events.k8s.io/v1/namespaces/${NS}/events`);
      return events.body.items.find(
        (e: any) => e.regarding?.name === "secretless" && e.reason === "SecretMissing",
      );
    });
    expect(warned.type).toBe("Warning");
    expect(warned.note).toContain('secret "hf-token" not found');
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: "hf-token" }, stringData: { HF_TOKEN: "hf_not_a_real_token" } },
    });
    const pod = await runningPod("secretless-data");
    expect(pod.spec?.containers[0]?.envFrom).toEqual([{ secretRef: { name: "hf-token" } }]);
    await until("the condition gone", async () =>
      (await condition("secretless", "ContainersStarted")) === undefined &&
      (await condition("secretless", "Ready"))?.reason === "InProgress"
        ? true
        : undefined,
    );
    const dt = await getDt("secretless");
    expect(JSON.stringify(dt.status)).not.toContain("hf_not_a_real_token");
  });

  it("suspends the running stage and resumes it", async () => {
    await create(tiny("pausable"));
    await until("the data Job", () => batch.readNamespacedJob({ name: "pausable-data", namespace: NS }));
    await kubeRequest(
      kc,
      "PATCH",
      dtPath("pausable"),
      { spec: { suspend: true } },
      "application/merge-patch+json",
    );
    await until("suspended Job", async () =>
      (await batch.readNamespacedJob({ name: "pausable-data", namespace: NS })).spec?.suspend
        ? true
        : undefined,
    );
    expect(
      await until("Suspended stage", async () =>
        (await stageOf("pausable")) === "Suspended" ? true : undefined,
      ),
    ).toBe(true);
    await kubeRequest(
      kc,
      "PATCH",
      dtPath("pausable"),
      { spec: { suspend: false } },
      "application/merge-patch+json",
    );
    await until("resumed Job", async () =>
      (await batch.readNamespacedJob({ name: "pausable-data", namespace: NS })).spec?.suspend === false
        ? true
        : undefined,
    );
    await until("running stage", async () =>
      (await stageOf("pausable")) === "PrepareData" ? true : undefined,
    );
  });

  it("resumes after an operator restart without duplicating Jobs", async () => {
    await create(tiny("restart"));
    await until("the data Job", () => batch.readNamespacedJob({ name: "restart-data", namespace: NS }));
    await operator.stop();
    await finishStage("restart-data");
    operator = await startOperator(operatorKc, { namespace: NS, progressPort: progress.port });
    await until("regeneration", () => batch.readNamespacedJob({ name: "restart-regen", namespace: NS }));
    const jobs = await batch.listNamespacedJob({
      namespace: NS,
      labelSelector: "specops.dev/drafttraining=restart",
    });
    expect(jobs.items.map((j) => j.metadata?.name).sort()).toEqual(["restart-data", "restart-regen"]);
  });

  it("cleans up children on deletion while a stage runs", async () => {
    await create(tiny("doomed"));
    await runningPod("doomed-data");
    await kubeRequest(kc, "DELETE", dtPath("doomed"));
    await until("the DraftTraining gone", async () =>
      (await kubeRequest(kc, "GET", dtPath("doomed"))).status === 404 ? true : undefined,
    );
    await until("its Jobs gone", async () => {
      const jobs = await batch.listNamespacedJob({
        namespace: NS,
        labelSelector: "specops.dev/drafttraining=doomed",
      });
      return jobs.items.length === 0 ? true : undefined;
    });
  });
});

async function fetchTable(name: string): Promise<Record<string, unknown>> {
  const { Agent, fetch } = await import("undici");
  const cluster = kc.getCurrentCluster();
  const res = await fetch(`${cluster?.server}${dtPath(name)}`, {
    headers: {
      accept: "application/json;as=Table;v=v1;g=meta.k8s.io",
      authorization: `Bearer ${kc.getCurrentUser()?.token}`,
    },
    dispatcher: new Agent({ connect: { ca: Buffer.from(cluster?.caData ?? "", "base64") } }),
  });
  const table = (await res.json()) as { columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
  return Object.fromEntries(table.columnDefinitions.map((c, i) => [c.name, table.rows[0]?.cells[i]]));
}
