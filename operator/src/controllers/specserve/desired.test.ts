import { describe, expect, it } from "vitest";
import { type SpecServe, specServeResource } from "../../api/kinds.ts";
import { parseTask } from "../../contract/task.ts";
import * as desired from "./desired.ts";
import { ANNOTATIONS, LABELS, planDraft, serveTask } from "./plan.ts";

function specServe(spec: Record<string, unknown>, meta: Record<string, unknown> = {}): SpecServe {
  return specServeResource.parse({
    apiVersion: "specops.dev/v1alpha1",
    kind: "SpecServe",
    metadata: { name: "chat", namespace: "serving", uid: "u1", generation: 1, ...meta },
    spec: {
      target: { uri: "hf://Qwen/Qwen3-8B", credentialsSecretRef: { name: "hf-token" } },
      draft: { source: { uri: "hf://org/Qwen3-8B-dspark" } },
      method: "dspark",
      resources: { gpusPerReplica: 2, gpuProduct: "NVIDIA-H200", cpu: 8, memory: "64Gi" },
      ...spec,
    },
  });
}

function build(ss: SpecServe, image = "runtime:1") {
  const plan = planDraft(ss, undefined);
  if (plan.state !== "ready") throw new Error("draft not ready");
  const task = serveTask(ss, plan.source);
  return { task, ctx: { image, progressPort: 9090, task, draft: plan.display } };
}

const container = (obj: desired.DesiredObject) =>
  (obj as any).spec.template.spec.containers[0] as Record<string, any>;

describe("serve Task", () => {
  for (const engine of ["vllm", "sglang"] as const) {
    it(`${engine}: method, draft, k, load adaptation and verification pass through as a valid contract Task`, () => {
      const ss = specServe({
        engine,
        speculative: { numSpeculativeTokens: 7, loadAdaptation: "Off" },
        extraEngineArgs: ["--max-model-len=32768"],
      });
      const { task } = build(ss);
      const parsed = parseTask(task);
      expect(parsed.ok).toBe(true);
      expect(task).toMatchObject({
        kind: "serve",
        backend: engine,
        params: {
          method: "dspark",
          draft: { uri: "hf://org/Qwen3-8B-dspark" },
          speculative: { numSpeculativeTokens: 7, loadAdaptation: "Off", adaptiveVerification: false },
          extraEngineArgs: ["--max-model-len=32768"],
          tensorParallelSize: 2,
          port: 8000,
        },
      });
    });
  }
  it("a built-in draft passes the method and no draft model", () => {
    const ss = specServe({ method: "mtp", draft: { builtIn: {} } });
    const { task } = build(ss);
    expect(parseTask(task).ok).toBe(true);
    expect((task as any).params.draft).toBeUndefined();
    expect((task as any).params.method).toBe("mtp");
  });
  it("a pinned draft wins over the referenced DraftTraining", () => {
    const ss = specServe(
      { draft: { draftTrainingRef: { name: "dt" } } },
      { annotations: { [ANNOTATIONS.pinnedDraft]: "pvc://store/step_100" } },
    );
    expect(
      planDraft(ss, { exists: true, stage: "Succeeded", checkpointUri: "pvc://store/step_200" }),
    ).toEqual({
      state: "ready",
      source: { uri: "pvc://store/step_100" },
      display: "pvc://store/step_100",
    });
  });
});

describe("draft from a DraftTraining", () => {
  const ss = specServe({ draft: { draftTrainingRef: { name: "dt" } } });
  it("waits while it trains, fails when it failed, serves its checkpoint when it succeeded", () => {
    expect(planDraft(ss, { exists: false })).toMatchObject({
      state: "waiting",
      reason: "DraftTrainingNotFound",
    });
    expect(planDraft(ss, { exists: true, stage: "Train" })).toMatchObject({
      state: "waiting",
      reason: "DraftTraining",
      message: expect.stringContaining("stage Train"),
    });
    expect(planDraft(ss, { exists: true, stage: "Failed", failureMessage: "out of memory" })).toMatchObject({
      state: "failed",
      reason: "DraftTrainingFailed",
      message: expect.stringContaining("out of memory"),
    });
    expect(planDraft(ss, { exists: true, stage: "Succeeded", checkpointUri: "pvc://c/x" })).toMatchObject({
      state: "ready",
      source: { uri: "pvc://c/x" },
    });
  });
});

describe("Deployment", () => {
  it("GPU limits, placement, probes for long loads, credentials only by Secret reference", () => {
    const ss = specServe({
      apiKeySecretRef: { name: "endpoint-key", key: "token" },
      placement: { nodeSelector: { pool: "h200" }, tolerations: [{ key: "gpu", operator: "Exists" }] },
    });
    const { ctx } = build(ss);
    const d = desired.deployment(ss, ctx);
    const c = container(d);
    expect(c.resources.limits).toEqual({ "nvidia.com/gpu": "2", cpu: "8", memory: "64Gi" });
    expect((d as any).spec.template.spec.nodeSelector).toEqual({
      pool: "h200",
      "nvidia.com/gpu.product": "NVIDIA-H200",
    });
    // Startup may take an hour (a model load of many minutes); liveness only counts afterwards.
    expect(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold).toBeGreaterThanOrEqual(1800);
    expect(c.livenessProbe.httpGet).toEqual({ path: "/health", port: "openai" });
    expect(c.envFrom).toEqual([{ secretRef: { name: "hf-token" } }]);
    const keyEnv = c.env.filter((e: any) => e.valueFrom?.secretKeyRef);
    expect(keyEnv).toEqual([
      { name: "SPECOPS_API_KEY", valueFrom: { secretKeyRef: { name: "endpoint-key", key: "token" } } },
      { name: "VLLM_API_KEY", valueFrom: { secretKeyRef: { name: "endpoint-key", key: "token" } } },
    ]);
    expect(JSON.stringify(d)).not.toMatch(/"value":"[^"]*token/);
    expect((d as any).spec.replicas).toBe(1);
    expect((d as any).spec.strategy.rollingUpdate).toEqual({ maxSurge: 0, maxUnavailable: 1 });
  });

  it("the template depends on the spec only: another default image changes no template", () => {
    const ss = specServe({});
    const a = desired.deployment(ss, build(ss, "runtime:1").ctx);
    const b = desired.deployment(ss, build(ss, "runtime:1").ctx);
    expect((a as any).spec.template).toEqual((b as any).spec.template);
    // The image itself comes from the reconciler (the existing Deployment's annotation first).
    expect((a as any).metadata.annotations[ANNOTATIONS.runtimeImage]).toBe("runtime:1");
    const withImage = specServe({ runtime: { image: "mine:2" } });
    expect(container(desired.deployment(withImage, build(withImage).ctx)).image).toBe("mine:2");
  });

  it("engine, draft length and extra args change the template; replicas alone do not", () => {
    const base = specServe({ speculative: { numSpeculativeTokens: 5 } });
    const t = (ss: SpecServe) => (desired.deployment(ss, build(ss).ctx) as any).spec.template;
    const changed = [
      specServe({ engine: "sglang", speculative: { numSpeculativeTokens: 5 } }),
      specServe({ speculative: { numSpeculativeTokens: 6 } }),
      specServe({ speculative: { numSpeculativeTokens: 5 }, extraEngineArgs: ["--enforce-eager"] }),
    ];
    for (const ss of changed) expect(t(ss)).not.toEqual(t(base));
    expect(t(specServe({ speculative: { numSpeculativeTokens: 5 }, replicas: 7 }))).toEqual(t(base));
  });

  it("pods carry their draft in a label (canaries, InferencePool selection)", () => {
    const a = specServe({});
    const b = specServe({ draft: { source: { uri: "hf://org/other" } } });
    const label = (ss: SpecServe) =>
      (desired.deployment(ss, build(ss).ctx) as any).spec.template.metadata.labels;
    expect(label(a)[LABELS.draft]).toMatch(/^[0-9a-f]{10}$/);
    expect(label(a)[LABELS.draft]).not.toBe(label(b)[LABELS.draft]);
  });
});

describe("storage", () => {
  it("a DraftTraining checkpoint on pvc:// mounts its claim where the runtime resolves pvc:// URIs", () => {
    const ss = specServe({
      draft: { source: { uri: "pvc://tiny-dflash-storage/train/checkpoints/draft/latest" } },
    });
    const d = desired.deployment(ss, {
      ...build(ss).ctx,
      draftUri: "pvc://tiny-dflash-storage/train/checkpoints/draft/latest",
    }) as any;
    expect(d.spec.template.spec.volumes).toContainEqual({
      name: "storage",
      persistentVolumeClaim: { claimName: "tiny-dflash-storage" },
    });
    expect(container(d).volumeMounts).toContainEqual({
      name: "storage",
      mountPath: "/mnt/specops/pvc/tiny-dflash-storage",
    });
  });
});

describe("LeaderWorkerSet for multi-node replicas", () => {
  it("one group per replica; the leader serves and is probed, workers join it", () => {
    const ss = specServe({ replicas: 2, resources: { gpusPerReplica: 8, nodesPerReplica: 2 } });
    const lws = desired.leaderWorkerSet(ss, build(ss).ctx) as any;
    expect(lws.apiVersion).toBe("leaderworkerset.x-k8s.io/v1");
    expect(lws.spec.replicas).toBe(2);
    expect(lws.spec.leaderWorkerTemplate.size).toBe(2);
    expect(lws.spec.leaderWorkerTemplate.restartPolicy).toBe("RecreateGroupOnPodRestart");
    const leader = lws.spec.leaderWorkerTemplate.leaderTemplate;
    const worker = lws.spec.leaderWorkerTemplate.workerTemplate;
    expect(leader.spec.containers[0].readinessProbe).toBeDefined();
    expect(worker.spec.containers[0].readinessProbe).toBeUndefined();
    expect(worker.spec.containers[0].resources.limits["nvidia.com/gpu"]).toBe("8");
    // TP across both nodes.
    expect((build(ss).task as any).params.tensorParallelSize).toBe(16);
    expect(desired.service(ss, 9090).spec).toMatchObject({ selector: { "specops.dev/role": "leader" } });
  });
});

describe("Service and PodDisruptionBudget", () => {
  it("OpenAI and metrics ports; at most one replica disrupted at a time", () => {
    const ss = specServe({ port: 8080 });
    expect((desired.service(ss, 9090) as any).spec.ports).toEqual([
      { name: "openai", port: 8080, targetPort: "openai" },
      { name: "metrics", port: 9090, targetPort: "progress" },
    ]);
    expect((desired.podDisruptionBudget(ss) as any).spec).toEqual({
      maxUnavailable: 1,
      selector: { matchLabels: { [LABELS.owner]: "chat" } },
    });
    expect(desired.endpointOf(ss)).toBe("http://chat.serving.svc:8080/v1");
  });
});
