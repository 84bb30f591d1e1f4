// Pure builders of the AcceptanceEval controller: a Task the runtime contract accepts, the exact Job,
// leaderboard labels, and the verdict table.
import { describe, expect, it } from "vitest";
import { acceptanceEval } from "../../../../test/fixtures/acceptanceeval.ts";
import { example } from "../../../../test/fixtures/examples.ts";
import type { DraftTraining } from "../../api/kinds.ts";
import { validateResource } from "../../api/validate.ts";
import { EXIT_CODES } from "../../contract/exitCodes.ts";
import { parseTask } from "../../contract/task.ts";
import { credentialSecrets, evalJob, taskConfigMap } from "./desired.ts";
import {
  childNames,
  claims,
  leaderboardLabels,
  outputLayout,
  resolveDraft,
  taskSetFingerprint,
} from "./plan.ts";
import { evalTask } from "./runtimetasks.ts";
import { summarize, type TaskResult, verdict } from "./verdict.ts";

const ctx = { defaultImage: "ghcr.io/specops/runtime:0.1.0", progressPort: 9090 };

const checkpoint =
  "pvc://dt-storage/specops/drafttrainings/qwen3-8b-dspark/train/checkpoints/specops/draft/step_latest";
const trained = (stage = "Succeeded", uri: string | null = checkpoint) =>
  ({
    apiVersion: "specops.dev/v1alpha1",
    kind: "DraftTraining",
    metadata: { name: "qwen3-8b-dspark", namespace: "ml-serving" },
    spec: {},
    status: {
      stage,
      ...(uri ? { checkpoint: { uri, step: 1200 } } : {}),
      conditions: [
        {
          type: "Succeeded",
          status: stage === "Failed" ? "False" : "True",
          reason: "x",
          message: "stage Train failed: outOfMemory",
          lastTransitionTime: "2026-12-01T00:00:00Z",
        },
      ],
    },
  }) as unknown as DraftTraining;

describe("the draft an evaluation measures", () => {
  const ae = acceptanceEval("acceptanceeval-nine-tasks.yaml");
  it("waits while the referenced DraftTraining runs or does not exist yet", () => {
    expect(resolveDraft(ae, trained("Train"))).toMatchObject({
      state: "waiting",
      reason: "DraftTrainingRunning",
      message: "waiting for DraftTraining qwen3-8b-dspark to finish (stage Train)",
    });
    expect(resolveDraft(ae, undefined)).toMatchObject({ state: "waiting", reason: "DraftTrainingNotFound" });
  });
  it("fails clearly when the training failed or left no checkpoint", () => {
    expect(resolveDraft(ae, trained("Failed"))).toEqual({
      state: "failed",
      reason: "DraftTrainingFailed",
      message:
        "DraftTraining qwen3-8b-dspark failed: stage Train failed: outOfMemory; it produced no draft to measure",
    });
    expect(resolveDraft(ae, trained("Succeeded", null))).toMatchObject({
      state: "failed",
      reason: "NoCheckpoint",
    });
  });
  it("takes the checkpoint of a finished training, and a source as it is", () => {
    expect(resolveDraft(ae, trained())).toEqual({
      state: "ready",
      draft: { name: "qwen3-8b-dspark", uri: checkpoint, step: 1200 },
    });
    const bySource = acceptanceEval("acceptanceeval-nine-tasks.yaml", (s) => {
      s.draft = { source: { uri: "hf://z-lab/Qwen3-8B-DFlash-b16" } };
    });
    expect(resolveDraft(bySource, undefined)).toEqual({
      state: "ready",
      draft: { name: "hf://z-lab/Qwen3-8B-DFlash-b16", uri: "hf://z-lab/Qwen3-8B-DFlash-b16" },
    });
  });
  it("leaves a live evaluation to live.ts", () => {
    const live = acceptanceEval("acceptanceeval-nine-tasks.yaml", (s) => {
      s.draft = { specServeRef: { name: "qwen3" } };
      delete s.target;
      delete s.method;
    });
    expect(resolveDraft(live, undefined)).toMatchObject({
      state: "unsupported",
      reason: "LiveEvaluation",
    });
  });
});

describe("the eval Task and Job", () => {
  const ae = acceptanceEval("acceptanceeval-nine-tasks.yaml", (s) => {
    s.output = { uri: "pvc://results/evals/nine" };
    s.placement = { tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }] };
  });
  const draft = { name: "qwen3-8b-dspark", uri: checkpoint, step: 1200 };

  it("builds a Task the runtime contract accepts, writing result.json onto a pvc:// output", () => {
    const task = evalTask(ae, draft, outputLayout(ae));
    const parsed = parseTask(task);
    expect(parsed.ok).toBe(true);
    expect(task).toMatchObject({
      kind: "eval",
      backend: "deepspec",
      output: { path: "/mnt/specops/pvc/results/evals/nine", uri: "pvc://results/evals/nine" },
      params: {
        target: { uri: "hf://Qwen/Qwen3-8B" },
        draft: { uri: checkpoint },
        method: "dspark",
        decoding: { temperature: 1, maxNewTokens: 2048 },
        baseline: false,
        gate: { minTau: 4, minTauPerTask: { gsm8k: 5.5 } },
      },
    });
    expect((task.params as { tasks: unknown[] }).tasks).toHaveLength(9);
  });

  it("asks the runtime to copy the result JSON to an s3:// or gs:// output, with the store's options only", () => {
    for (const output of [
      {
        uri: "s3://ml-evals/qwen3-8b/nine",
        endpoint: "https://minio.storage.svc:9000",
        region: "us-east-1",
        pathStyle: true,
        credentialsSecretRef: { name: "s3-writer" },
      },
      { uri: "gs://ml-evals/qwen3-8b/nine.json" },
    ]) {
      const onStore = acceptanceEval("acceptanceeval-nine-tasks.yaml", (s) => {
        s.output = output;
      });
      const task = evalTask(onStore, draft, outputLayout(onStore));
      expect(parseTask(task).ok).toBe(true);
      const { credentialsSecretRef, ...store } = output as typeof output & { credentialsSecretRef?: unknown };
      expect(task.publish).toEqual(store);
      // The result is written to scratch, then copied; credentials reach the pod only as Secret env.
      expect(task.output).toEqual({ path: "/mnt/specops/scratch/eval", uri: output.uri });
      expect(JSON.stringify(task)).not.toContain("s3-writer");
      const env = (evalJob(onStore, draft, ctx) as any).spec.template.spec.containers[0].envFrom;
      expect(env).toEqual(
        [...(credentialsSecretRef ? ["s3-writer"] : []), "hf-token"]
          .sort()
          .map((name) => ({ secretRef: { name } })),
      );
    }
    expect(evalTask(ae, draft, outputLayout(ae)).publish).toBeUndefined();
  });

  it("writes to scratch without an output", () => {
    const bare = acceptanceEval("tiny-acceptanceeval.yaml");
    expect(outputLayout(bare)).toEqual({
      path: "/mnt/specops/scratch/eval",
      uri: undefined,
      onOutput: false,
    });
  });

  it("runs one pod with the spec's GPUs, placement and image, mounting every claim its URIs name", () => {
    const job = evalJob(ae, draft, ctx) as any;
    expect(job.metadata).toMatchObject({
      name: "qwen3-8b-dspark-nine-tasks-g1",
      namespace: "ml-serving",
      labels: {
        "app.kubernetes.io/managed-by": "specops-operator",
        "specops.dev/acceptanceeval": "qwen3-8b-dspark-nine-tasks",
        "specops.dev/generation": "1",
      },
      ownerReferences: [{ kind: "AcceptanceEval", uid: "uid-ae", controller: true }],
    });
    expect(job.spec.backoffLimit).toBe(2);
    expect(job.spec.podFailurePolicy.rules[0].onExitCodes.values).toContain(EXIT_CODES.gateFailed.code);
    const pod = job.spec.template.spec;
    expect(pod.containers[0].image).toBe(ctx.defaultImage);
    expect(pod.containers[0].resources.limits).toEqual({ "nvidia.com/gpu": "1" });
    expect(pod.nodeSelector).toEqual({ "nvidia.com/gpu.product": "NVIDIA-H200" });
    expect(pod.tolerations).toHaveLength(1);
    expect(pod.containers[0].envFrom).toEqual([{ secretRef: { name: "hf-token" } }]);
    expect(pod.volumes).toEqual([
      { name: "task", configMap: { name: "qwen3-8b-dspark-nine-tasks-g1-task" } },
      { name: "storage", persistentVolumeClaim: { claimName: "dt-storage" } },
      { name: "storage-1", persistentVolumeClaim: { claimName: "results" } },
      { name: "scratch", emptyDir: {} },
    ]);
    expect(pod.containers[0].volumeMounts.map((m: any) => m.mountPath)).toEqual([
      "/etc/specops",
      "/mnt/specops/pvc/dt-storage",
      "/mnt/specops/pvc/results",
      "/mnt/specops/scratch",
    ]);
    expect(claims(ae, draft.uri)).toEqual(["dt-storage", "results"]);
    expect(credentialSecrets(ae)).toEqual(["hf-token"]);
    expect(taskConfigMap(ae, {}).metadata.name).toBe(childNames(ae).taskConfigMap);
  });

  it("names each generation's Job apart, so a new generation re-runs", () => {
    const next = acceptanceEval("acceptanceeval-nine-tasks.yaml", undefined, 2);
    expect(childNames(next).job).toBe("qwen3-8b-dspark-nine-tasks-g2");
  });
});

describe("leaderboard labels", () => {
  const base = acceptanceEval("acceptanceeval-nine-tasks.yaml");
  it("label target, method and a fingerprint of the tasks and decoding settings", () => {
    const labels = leaderboardLabels(base);
    expect(labels["specops.dev/method"]).toBe("dspark");
    expect(labels["specops.dev/target"]).toMatch(/^qwen3-8b-[0-9a-f]{8}$/);
    expect(labels["specops.dev/task-set"]).toMatch(/^[0-9a-f]{12}$/);
  });
  it("match for another draft on the same tasks, and differ when the tasks or decoding differ", () => {
    const otherDraft = acceptanceEval("acceptanceeval-nine-tasks.yaml", (s) => {
      s.draft = { source: { uri: "hf://z-lab/Qwen3-8B-DFlash-b16" } };
      s.tasks.reverse();
    });
    expect(taskSetFingerprint(otherDraft)).toBe(taskSetFingerprint(base));
    const fewer = acceptanceEval("acceptanceeval-nine-tasks.yaml", (s) => s.tasks.pop());
    const hotter = acceptanceEval("acceptanceeval-nine-tasks.yaml", (s) => {
      s.decoding.temperature = 0;
    });
    expect(taskSetFingerprint(fewer)).not.toBe(taskSetFingerprint(base));
    expect(taskSetFingerprint(hotter)).not.toBe(taskSetFingerprint(base));
  });
});

describe("gate verdict", () => {
  const r = (name: string, tau: number, speedup?: number): TaskResult => ({
    name,
    samples: 10,
    tau,
    ...(speedup !== undefined ? { speedup } : {}),
  });
  const judge = (gate: any, results: TaskResult[]) => verdict(gate, results, summarize(results));
  it.each([
    ["no gate", undefined, [r("a", 1.2)], { verdict: "NotEvaluated" }],
    ["tau exactly at minTau passes", { minTau: 3 }, [r("a", 2.5), r("b", 3.5)], { verdict: "Passed" }],
    [
      "macro tau below minTau",
      { minTau: 3.2 },
      [r("a", 2.5), r("b", 3.5)],
      { verdict: "Failed", reasons: ["macro tau 3 < minTau 3.2"] },
    ],
    [
      "a task below its own threshold",
      { minTauPerTask: { a: 2.6, b: 3.5 } },
      [r("a", 2.5), r("b", 3.5)],
      { verdict: "Failed", reasons: ["a: tau 2.5 < 2.6"] },
    ],
    [
      "a gated task with no result",
      { minTauPerTask: { c: 2 } },
      [r("a", 2.5)],
      { verdict: "Failed", reasons: ["c: no result (minTau 2)"] },
    ],
    ["speedup at threshold", { minSpeedup: 2 }, [r("a", 3, 1.5), r("b", 3, 2.5)], { verdict: "Passed" }],
    [
      "speedup not measured",
      { minSpeedup: 1.1 },
      [r("a", 3)],
      { verdict: "Failed", reasons: ["macro speedup not measured (baseline off) < minSpeedup 1.1"] },
    ],
  ])("%s", (_name, gate, results, expected) => {
    expect(judge(gate, results)).toEqual(expected);
  });

  it("refuses a speedup gate without baseline at admission", () => {
    const m = example("acceptanceeval-nine-tasks.yaml");
    m.spec.baseline = false;
    m.spec.gate.minSpeedup = 1.5;
    const res = validateResource(m);
    expect(res.ok).toBe(false);
    expect(!res.ok && res.errors).toEqual([
      expect.objectContaining({
        field: "spec.gate.minSpeedup",
        message: "gate.minSpeedup needs baseline: true",
      }),
    ]);
  });
});
