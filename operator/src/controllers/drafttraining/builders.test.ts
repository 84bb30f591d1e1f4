// Pure builders of the DraftTraining controller: tasks that the runtime contract accepts, and the
// exact pod specs of each stage's Job.
import { describe, expect, it } from "vitest";
import { example } from "../../../../test/fixtures/examples.ts";
import { type DraftTraining, draftTrainingResource } from "../../api/kinds.ts";
import { FAIL_JOB_EXIT_CODES } from "../../contract/exitCodes.ts";
import { parseTask } from "../../contract/task.ts";
import { credentialSecrets, stageJob, storageClaim, trainService } from "./desired.ts";
import { childNames, plannedStages, storageLayout } from "./plan.ts";
import { latestCheckpointUri, stageTask } from "./runtimetasks.ts";

const ctx = { defaultImage: "ghcr.io/specops/runtime:0.1.0", progressPort: 9090 };

function draftTraining(file: string, edit?: (spec: any) => void): DraftTraining {
  const m = example(file);
  m.metadata.namespace ??= "ml";
  edit?.(m.spec);
  const dt = draftTrainingResource.parse(m);
  return { ...dt, metadata: { ...dt.metadata, uid: "uid-1", generation: 1 } };
}

describe("stage plan", () => {
  it("runs regeneration and evaluation only when asked", () => {
    expect(plannedStages(draftTraining("drafttraining-qwen3-8b-dspark.yaml"))).toEqual([
      "PrepareData",
      "Regenerate",
      "TargetCache",
      "Train",
      "Evaluate",
    ]);
    const bare = draftTraining("drafttraining-qwen3-8b-dspark.yaml", (s) => {
      s.data.regenerate.enabled = false;
      delete s.evaluation;
    });
    expect(plannedStages(bare)).toEqual(["PrepareData", "TargetCache", "Train"]);
  });

  it("lays out storage on a created claim or under an existing claim's subPath", () => {
    const created = storageLayout(draftTraining("drafttraining-qwen3-8b-dspark.yaml"));
    expect(created).toEqual({
      claimName: "qwen3-8b-dspark-storage",
      created: true,
      mountPath: "/mnt/specops/pvc/qwen3-8b-dspark-storage",
      root: "/mnt/specops/pvc/qwen3-8b-dspark-storage/specops/drafttrainings/qwen3-8b-dspark",
      rootUri: "pvc://qwen3-8b-dspark-storage/specops/drafttrainings/qwen3-8b-dspark",
    });
    const existing = storageLayout(
      draftTraining("drafttraining-qwen3-8b-dspark.yaml", (s) => {
        s.storage = { existingClaim: { name: "shared", subPath: "/teams/a/" } };
      }),
    );
    expect(existing.root).toBe("/mnt/specops/pvc/shared/teams/a/specops/drafttrainings/qwen3-8b-dspark");
    expect(existing.created).toBe(false);
  });
});

describe("stage tasks", () => {
  for (const file of ["drafttraining-qwen3-8b-dspark.yaml", "tiny-drafttraining.yaml"]) {
    it(`are valid runtime tasks for ${file}`, () => {
      const dt = draftTraining(file);
      const layout = storageLayout(dt);
      for (const stage of plannedStages(dt).filter((s) => s !== "Evaluate")) {
        const parsed = parseTask(stageTask(dt, stage as Exclude<typeof stage, "Evaluate">, layout));
        expect(parsed.ok ? [] : parsed.errors, stage).toEqual([]);
      }
    });
  }

  it("chains stage outputs into the next stage's inputs", () => {
    const dt = draftTraining("drafttraining-qwen3-8b-dspark.yaml");
    const layout = storageLayout(dt);
    const regen = stageTask(dt, "Regenerate", layout) as any;
    const cache = stageTask(dt, "TargetCache", layout) as any;
    const train = stageTask(dt, "Train", layout) as any;
    expect(regen.params.inputPath).toBe(`${layout.root}/data/train.jsonl`);
    expect(regen.params.servers).toEqual(["qwen3-8b-dspark-regen-server.ml-serving.svc:8000"]);
    expect(cache.params.dataPaths).toEqual([`${layout.root}/regen/train_regen.jsonl`]);
    expect(train.params.targetCachePath).toBe(`${layout.root}/cache/target_cache`);
    expect(train.output.path).toBe(`${layout.root}/train`);
    expect(latestCheckpointUri(layout)).toBe(`${layout.rootUri}/train/checkpoints/specops/draft/step_latest`);
  });

  it("regenerates in-process on the reference backend", () => {
    const dt = draftTraining("tiny-drafttraining.yaml");
    expect((stageTask(dt, "Regenerate", storageLayout(dt)) as any).params.servers).toBeUndefined();
  });
});

describe("stage Jobs", () => {
  it("builds the single-node training Job with GPUs, placement, storage, credentials and failure policy", () => {
    const dt = draftTraining("drafttraining-qwen3-8b-dspark.yaml");
    const job = stageJob(dt, "Train", storageLayout(dt), ctx, { suspend: false }) as any;
    expect(job.metadata).toMatchObject({
      name: "qwen3-8b-dspark-train",
      namespace: "ml-serving",
      ownerReferences: [{ kind: "DraftTraining", name: "qwen3-8b-dspark", uid: "uid-1", controller: true }],
    });
    expect(job.spec).toMatchObject({
      completions: 1,
      parallelism: 1,
      completionMode: "NonIndexed",
      backoffLimit: 3,
      suspend: false,
    });
    expect(job.spec.podFailurePolicy.rules[0]).toEqual({
      action: "FailJob",
      onExitCodes: { containerName: "runtime", operator: "In", values: FAIL_JOB_EXIT_CODES },
    });
    const pod = job.spec.template.spec;
    expect(pod.restartPolicy).toBe("Never");
    expect(pod.nodeSelector).toEqual({
      "cloud.google.com/gke-accelerator": "nvidia-h200-141gb",
      "nvidia.com/gpu.product": "NVIDIA-H200",
    });
    expect(pod.tolerations).toEqual([{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);
    expect(pod.priorityClassName).toBe("training-batch");
    const [c] = pod.containers;
    expect(c.image).toBe("ghcr.io/specops/runtime:0.1.0");
    expect(c.args).toEqual(["--task", "/etc/specops/task.json"]);
    expect(c.resources).toEqual({
      limits: { "nvidia.com/gpu": "8", cpu: "96", memory: "1600Gi" },
      requests: { cpu: "96", memory: "1600Gi" },
    });
    expect(c.envFrom).toEqual([{ secretRef: { name: "hf-token" } }, { secretRef: { name: "s3-writer" } }]);
    expect(c.env).toEqual(
      expect.arrayContaining([
        { name: "RANK", value: "0" },
        { name: "WORLD_SIZE", value: "1" },
        { name: "MASTER_PORT", value: "29500" },
        { name: "SPECOPS_PROGRESS_PORT", value: "9090" },
      ]),
    );
    expect(c.volumeMounts).toEqual([
      { name: "task", mountPath: "/etc/specops", readOnly: true },
      { name: "storage", mountPath: "/mnt/specops/pvc/qwen3-8b-dspark-storage" },
    ]);
    expect(pod.volumes).toEqual([
      { name: "task", configMap: { name: "qwen3-8b-dspark-train-task" } },
      { name: "storage", persistentVolumeClaim: { claimName: "qwen3-8b-dspark-storage" } },
    ]);
    expect(c.terminationMessagePolicy).toBe("FallbackToLogsOnError");
  });

  it.each([1, 2, 4])("wires %i-node training as an Indexed Job behind a headless Service", (nodes) => {
    const dt = draftTraining("drafttraining-qwen3-8b-dspark.yaml", (s) => {
      s.resources.nodes = nodes;
    });
    const job = stageJob(dt, "Train", storageLayout(dt), ctx, { suspend: false }) as any;
    const pod = job.spec.template.spec;
    const env = Object.fromEntries(pod.containers[0].env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
    expect(job.spec.completions).toBe(nodes);
    expect(job.spec.parallelism).toBe(nodes);
    expect(env.WORLD_SIZE).toBe(String(nodes));
    if (nodes === 1) {
      expect(job.spec.completionMode).toBe("NonIndexed");
      expect(env.RANK).toBe("0");
      expect(pod.subdomain).toBeUndefined();
      return;
    }
    expect(job.spec.completionMode).toBe("Indexed");
    expect(env.RANK).toEqual({
      fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" },
    });
    expect(env.MASTER_ADDR).toBe("qwen3-8b-dspark-train-0.qwen3-8b-dspark-train.ml-serving.svc");
    expect(pod.subdomain).toBe("qwen3-8b-dspark-train");
    const svc = trainService(dt) as any;
    expect(svc.metadata.name).toBe(pod.subdomain);
    expect(svc.spec).toMatchObject({ clusterIP: "None", publishNotReadyAddresses: true });
    expect(svc.spec.selector).toEqual({
      "specops.dev/drafttraining": "qwen3-8b-dspark",
      "specops.dev/stage": "train",
    });
    expect(job.spec.template.metadata.labels).toMatchObject(svc.spec.selector);
  });

  it("gives data preparation no GPUs", () => {
    const dt = draftTraining("drafttraining-qwen3-8b-dspark.yaml");
    const job = stageJob(dt, "PrepareData", storageLayout(dt), ctx, { suspend: false }) as any;
    expect(job.spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"]).toBeUndefined();
  });

  it("owns a created claim only when retention is Delete", () => {
    const keep = draftTraining("drafttraining-qwen3-8b-dspark.yaml");
    expect((storageClaim(keep, storageLayout(keep)) as any).metadata.ownerReferences).toBeUndefined();
    const drop = draftTraining("tiny-drafttraining.yaml");
    expect((storageClaim(drop, storageLayout(drop)) as any).metadata.ownerReferences).toHaveLength(1);
    const existing = draftTraining("tiny-drafttraining.yaml", (s) => {
      s.storage = { existingClaim: { name: "shared" } };
    });
    expect(storageClaim(existing, storageLayout(existing))).toBeUndefined();
  });

  it("names every credential Secret and nothing else", () => {
    expect(credentialSecrets(draftTraining("drafttraining-qwen3-8b-dspark.yaml"))).toEqual([
      "hf-token",
      "s3-writer",
    ]);
    expect(credentialSecrets(draftTraining("tiny-drafttraining.yaml"))).toEqual([]);
  });

  it("keeps child names within 63 characters", () => {
    const dt = draftTraining("tiny-drafttraining.yaml");
    const long = { ...dt, metadata: { ...dt.metadata, name: "x".repeat(120) } };
    for (const n of [
      childNames(long).job("TargetCache"),
      childNames(long).taskConfigMap("Train"),
      childNames(long).regenServer,
    ]) {
      expect(n.length).toBeLessThanOrEqual(63);
    }
  });
});
