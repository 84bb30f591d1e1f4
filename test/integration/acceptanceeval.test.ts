// AcceptanceEval end to end on the real control plane: the operator (holding only its generated
// ClusterRole) runs training and eval Jobs whose pods run the real Python runtime (reference
// backend, tiny PyTorch models on CPU) on the best node here (e2e-node.ts): containers of the
// reference image on the real node (claims bound to host-path volumes, termination messages read by
// the kubelet), else local processes on the local-process kubelet. A tiny DraftTraining really
// trains a draft, its gate really measures it, and AcceptanceEvals of its checkpoint and of an
// untrained draft report real figures.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPERATOR_RBAC_RULES } from "../../operator/src/rbac.ts";
import { freePort } from "../controlplane/controlplane.ts";
import { example, type Manifest } from "../fixtures/examples.ts";
import { chooseE2eNode, type E2eNode, nodeTitle, startE2eNode } from "./e2e-node.ts";
import { ensureNamespace, installCrds, kubeRequest, restrictedKubeConfig } from "./kube.ts";
import { type OperatorUnderTest, startOperator, until } from "./operator-harness.ts";

const NS = "ae-tests";
const MINUTES = 60_000;
const choice = chooseE2eNode();
let kc: KubeConfig;
let node: E2eNode;
let operator: OperatorUnderTest;
let storageRoot: string;

const path = (plural: string, name = "") =>
  `/apis/specops.dev/v1alpha1/namespaces/${NS}/${plural}${name ? `/${name}` : ""}`;
const get = async (plural: string, name: string) => (await kubeRequest(kc, "GET", path(plural, name))).body;
const getAe = (name: string) => get("acceptanceevals", name);
const getDt = (name: string) => get("drafttrainings", name);

async function create(plural: string, m: Manifest) {
  const res = await kubeRequest(kc, "POST", path(plural), m);
  expect(res.body?.message).toBeUndefined();
}

const TASKS = ["tiny-math", "tiny-chat"].map((name) => ({
  name,
  samples: 12,
  source: { uri: `builtin://${name}` },
}));

/**
 * No CPU request (nor limit, which the operator sets to the same): the example's 2 CPUs per pod would
 * fill the real node's 2 and run its pods one at a time; without, they share the CPUs as processes do.
 */
function withoutCpu(m: Manifest): Manifest {
  delete m.spec.resources.cpu;
  return m;
}

/** The tiny DraftTraining, trained briefly; its gate evaluates on few samples. */
function training(name: string, edit?: (spec: any) => void): Manifest {
  const m = withoutCpu(example("tiny-drafttraining.yaml"));
  m.metadata = { name, namespace: NS };
  m.spec.progressInterval = "2s";
  m.spec.evaluation = { tasks: TASKS.map((t) => ({ ...t, samples: 8 })) };
  edit?.(m.spec);
  return m;
}

function evaluation(name: string, draft: object, edit?: (spec: any) => void): Manifest {
  const m = withoutCpu(example("tiny-acceptanceeval.yaml"));
  m.metadata = { name, namespace: NS };
  m.spec.draft = draft;
  m.spec.tasks = TASKS;
  m.spec.decoding = { maxNewTokens: 48 };
  edit?.(m.spec);
  return m;
}

const phaseOf = (name: string, phases: string[]) => async () => {
  const ae = await getAe(name);
  return phases.includes(ae?.status?.phase) ? ae : undefined;
};
const stageOf = (name: string, stages: string[]) => async () => {
  const dt = await getDt(name);
  return stages.includes(dt?.status?.stage) ? dt : undefined;
};
const condition = (obj: any, type: string) => obj.status?.conditions?.find((c: any) => c.type === type);

async function eventsOf(name: string): Promise<{ reason: string; note: string; type: string }[]> {
  const events = await kubeRequest(kc, "GET", `/apis/events.k8s.io/v1/namespaces/${NS}/events`);
  return events.body.items.filter((e: any) => e.regarding?.name === name);
}

beforeAll(async () => {
  storageRoot = mkdtempSync(join(tmpdir(), "specops-ae-"));
  node = await startE2eNode(choice, {
    name: "acceptanceeval",
    storageRoot,
    onOutput: (pod, line) => {
      if (process.env.SPECOPS_TEST_LOG_LEVEL) console.log(`[${pod}] ${line}`);
    },
  });
  kc = node.kc;
  await installCrds(kc);
  await ensureNamespace(kc, NS);
  // The claim an evaluation's spec.output names (pvc://results/...): a user's, made beforehand.
  await kc.makeApiClient(CoreV1Api).createNamespacedPersistentVolumeClaim({
    namespace: NS,
    body: {
      metadata: { name: "results" },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
    },
  });
  // The operator runs as a user holding exactly the generated ClusterRole: a missing rule fails here.
  const operatorKc = await restrictedKubeConfig(
    kc,
    "specops-operator-ae-test",
    OPERATOR_RBAC_RULES,
    node.restrictedUser,
  );
  operator = await startOperator(operatorKc, {
    namespace: NS,
    progressPort: await freePort(),
    env: { SPECOPS_RUNTIME_IMAGE: node.runtimeImage },
  });
}, 600_000); // a real node's own control plane, and a first import of the image where it is new

afterAll(async () => {
  await operator?.stop();
  await node?.stop();
  if (storageRoot) rmSync(storageRoot, { recursive: true, force: true });
}, 180_000);

describe(`AcceptanceEval on the reference runtime, on ${nodeTitle(choice.kind)}`, () => {
  it(
    "measures a trained draft above an untrained one; the training's gate passes; a referencing eval waits for it",
    async () => {
      await create(
        "drafttrainings",
        training("trained", (s) => (s.evaluation.minTau = 1.05)),
      );
      await create(
        "acceptanceevals",
        evaluation("of-trained", { draftTrainingRef: { name: "trained" } }, (s) => {
          s.output = { uri: "pvc://results/of-trained" };
        }),
      );
      await create(
        "acceptanceevals",
        evaluation("of-untrained", { source: { uri: "builtin://untrained-draft" } }),
      );

      // While the training runs, the evaluation of its draft waits and says why.
      const waiting = await until("the referencing eval waiting", async () => {
        const ae = await getAe("of-trained");
        return condition(ae, "DraftReady")?.reason === "DraftTrainingRunning" ? ae : undefined;
      });
      expect(waiting.status.phase).toBe("Pending");
      expect(condition(waiting, "DraftReady").message).toMatch(
        /^waiting for DraftTraining trained to finish/,
      );

      const untrained = await until(
        "the untrained draft measured",
        phaseOf("of-untrained", ["Succeeded", "Failed"]),
        4 * MINUTES,
      );
      expect(untrained.status.phase).toBe("Succeeded");

      // The training's own gate: its AcceptanceEval really ran, and the Evaluate stage completed from it.
      const dt = await until("the training done", stageOf("trained", ["Succeeded", "Failed"]), 6 * MINUTES);
      expect(dt.status.stage).toBe("Succeeded");
      expect(dt.status.evaluation).toMatchObject({ acceptanceEval: "trained-eval", passed: true });
      expect(dt.status.evaluation.macroTau).toBeGreaterThan(1.05);
      const gate = await getAe("trained-eval");
      expect(gate.status).toMatchObject({ phase: "Succeeded", gate: { verdict: "Passed" } });
      expect(gate.status.results).toHaveLength(2);

      const trained = await until(
        "the trained draft measured",
        phaseOf("of-trained", ["Succeeded", "Failed"]),
        4 * MINUTES,
      );
      expect(trained.status.phase).toBe("Succeeded");
      expect(trained.status.draft).toMatchObject({
        name: "trained",
        uri: "pvc://trained-storage/specops/drafttrainings/trained/train/checkpoints/specops/draft/step_latest",
      });
      // The point of training: the trained draft's acceptance beats an untrained one's, task by task.
      expect(trained.status.summary.macroTau).toBeGreaterThan(untrained.status.summary.macroTau);
      for (const r of trained.status.results) {
        const u = untrained.status.results.find((x: any) => x.name === r.name);
        expect(r.tau).toBeGreaterThan(u.tau);
        expect(r.samples).toBe(12);
        expect(r.acceptanceByPosition).toHaveLength(4);
        expect(r.verifyRate).toBeGreaterThan(0);
        expect(r.tokensPerSecond).toBeGreaterThan(0);
        expect(r.baselineTokensPerSecond).toBeGreaterThan(0);
        expect(r.speedup).toBeCloseTo(r.tokensPerSecond / r.baselineTokensPerSecond, 1);
      }
      expect(trained.status.gate).toEqual({ verdict: "Passed" });
      expect(condition(trained, "Passed")).toMatchObject({ status: "True", observedGeneration: 1 });

      // The full result JSON on spec.output, with the same figures.
      expect(trained.status.resultUri).toBe("pvc://results/of-trained/result.json");
      const full = JSON.parse(await node.readClaimFile(NS, "results", "of-trained/result.json"));
      expect(full.evaluation.results.map((r: any) => Math.round(r.tau * 1e4) / 1e4)).toEqual(
        trained.status.results.map((r: any) => r.tau),
      );

      // Comparable evaluations carry the same leaderboard labels, so one selector ranks them.
      const labels = trained.metadata.labels;
      expect(labels["specops.dev/method"]).toBe("dflash");
      expect(untrained.metadata.labels["specops.dev/task-set"]).toBe(labels["specops.dev/task-set"]);
      const selector = encodeURIComponent(
        `specops.dev/target=${labels["specops.dev/target"]},specops.dev/task-set=${labels["specops.dev/task-set"]}`,
      );
      const ranked = await kubeRequest(kc, "GET", `${path("acceptanceevals")}?labelSelector=${selector}`);
      expect(ranked.body.items.map((i: any) => i.metadata.name).sort()).toEqual([
        "of-trained",
        "of-untrained",
      ]);

      // kubectl's columns.
      const row = await fetchTable("of-trained");
      expect(row).toMatchObject({ Phase: "Succeeded", Draft: "trained", Verdict: "Passed" });
      expect(row.Tau).toBe(trained.status.summary.macroTau);

      // Events for start, success and verdict; figures exported as metrics.
      const reasons = (await eventsOf("of-trained")).map((e) => e.reason);
      expect(reasons).toEqual(
        expect.arrayContaining(["WaitingForDraft", "Started", "Succeeded", "GatePassed"]),
      );
      const metrics = await operator.manager.metrics.registry.metrics();
      const tau = trained.status.results.find((r: any) => r.name === "tiny-math").tau;
      expect(metrics).toContain(
        `specops_acceptance_tau{namespace="${NS}",acceptanceeval="of-trained",target="${labels["specops.dev/target"]}",method="dflash",task_set="${labels["specops.dev/task-set"]}",task="tiny-math"} ${tau}`,
      );
    },
    15 * MINUTES,
  );

  it(
    "fails the training when its gate cannot pass, with the figures",
    async () => {
      await create(
        "drafttrainings",
        training("hopeless", (s) => {
          s.data.maxSamples = 64;
          s.training.maxSteps = 20;
          s.training.checkpointInterval = 20;
          s.evaluation.minTau = 60;
        }),
      );
      const dt = await until(
        "the training failed",
        stageOf("hopeless", ["Succeeded", "Failed"]),
        6 * MINUTES,
      );
      expect(dt.status.stage).toBe("Failed");
      const succeeded = condition(dt, "Succeeded");
      expect(succeeded).toMatchObject({ status: "False", reason: "GateFailed" });
      expect(succeeded.message).toMatch(/^gate failed: macro tau \d+\.\d+ < minTau 60$/);
      const ae = await getAe("hopeless-eval");
      expect(ae.status).toMatchObject({ phase: "Succeeded", gate: { verdict: "Failed" } });
      expect(condition(ae, "Passed")).toMatchObject({ status: "False", reason: "ThresholdsMissed" });
      const failed = (await eventsOf("hopeless")).find((e) => e.reason === "EvaluateFailed");
      expect(failed?.note).toMatch(/macro tau \d+\.\d+ < minTau 60/);
    },
    10 * MINUTES,
  );

  it(
    "leaves a user's AcceptanceEval of the gate's name alone, says so, and runs the gate once the name is free",
    async () => {
      // Someone's own evaluation that happens to be called <training>-eval (it waits on a draft, idle).
      const theirs = { draftTrainingRef: { name: "not-there-yet" } };
      await create("acceptanceevals", evaluation("clash-eval", theirs));
      await create(
        "drafttrainings",
        training("clash", (s) => {
          s.data.maxSamples = 64;
          s.data.regenerate = { enabled: false };
          s.training.maxSteps = 6;
          s.training.checkpointInterval = 6;
        }),
      );
      const blocked = await until(
        "the gate to wait for its name",
        async () => {
          const dt = await getDt("clash");
          return condition(dt, "Progressing")?.reason === "EvaluationNameTaken" ? dt : undefined;
        },
        6 * MINUTES,
      );
      expect(blocked.status.stage).toBe("Evaluate");
      expect(condition(blocked, "Progressing").message).toMatch(
        /^AcceptanceEval clash-eval already exists and is not this DraftTraining's .*rename or delete/,
      );
      expect((await eventsOf("clash")).map((e) => e.reason)).toContain("EvaluationNameTaken");
      // Not taken over: no owner reference (so no garbage collection with the training), spec as written.
      const untouched = await getAe("clash-eval");
      expect(untouched.metadata.ownerReferences).toBeUndefined();
      expect(untouched.spec.draft).toEqual(theirs);

      await kubeRequest(kc, "DELETE", path("acceptanceevals", "clash-eval"));
      const dt = await until("the training done", stageOf("clash", ["Succeeded", "Failed"]), 6 * MINUTES);
      expect(dt.status.stage, JSON.stringify(dt.status)).toBe("Succeeded");
      const gate = await getAe("clash-eval");
      expect(gate.metadata.ownerReferences).toEqual([
        expect.objectContaining({ kind: "DraftTraining", name: "clash", controller: true }),
      ]);
      expect(gate.status.phase).toBe("Succeeded");
    },
    12 * MINUTES,
  );

  it(
    "fails an evaluation whose DraftTraining failed, saying so",
    async () => {
      await create(
        "drafttrainings",
        training("broken", (s) => {
          s.data.prompts = { uri: "builtin://no-such-prompts" };
        }),
      );
      await create("acceptanceevals", evaluation("of-broken", { draftTrainingRef: { name: "broken" } }));
      const ae = await until("the eval failed", phaseOf("of-broken", ["Failed", "Succeeded"]), 3 * MINUTES);
      expect(ae.status.phase).toBe("Failed");
      expect(condition(ae, "Succeeded")).toMatchObject({ status: "False", reason: "DraftTrainingFailed" });
      expect(condition(ae, "Succeeded").message).toMatch(/^DraftTraining broken failed: .*no-such-prompts/);
      expect((await eventsOf("of-broken")).map((e) => e.reason)).toContain("Failed");
    },
    5 * MINUTES,
  );
});

async function fetchTable(name: string): Promise<Record<string, unknown>> {
  const { Agent, fetch } = await import("undici");
  const cluster = kc.getCurrentCluster();
  const res = await fetch(`${cluster?.server}${path("acceptanceevals", name)}`, {
    headers: {
      accept: "application/json;as=Table;v=v1;g=meta.k8s.io",
      authorization: `Bearer ${kc.getCurrentUser()?.token}`,
    },
    dispatcher: new Agent({ connect: { ca: Buffer.from(cluster?.caData ?? "", "base64") } }),
  });
  const table = (await res.json()) as { columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
  return Object.fromEntries(table.columnDefinitions.map((c, i) => [c.name, table.rows[0]?.cells[i]]));
}
