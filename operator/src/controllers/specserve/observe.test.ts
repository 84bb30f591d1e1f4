import { describe, expect, it } from "vitest";
import { type SpecServe, specServeResource } from "../../api/kinds.ts";
import { foldStatus, podProblem } from "./observe.ts";

const ss: SpecServe = specServeResource.parse({
  apiVersion: "specops.dev/v1alpha1",
  kind: "SpecServe",
  metadata: { name: "chat", namespace: "serving", generation: 3 },
  spec: {
    target: { uri: "hf://Qwen/Qwen3-8B" },
    draft: { source: { uri: "hf://org/d" } },
    method: "eagle3",
    replicas: 2,
  },
});
const ready = { state: "ready" as const, source: { uri: "hf://org/d" }, display: "hf://org/d" };
const now = Date.parse("2026-12-01T10:00:00Z");
const cond = (s: ReturnType<typeof foldStatus>, type: string) => s.conditions?.find((c) => c.type === type);

const pod = (name: string, status: object) => ({ metadata: { name }, status }) as any;
const crashLooping = pod("chat-1", {
  containerStatuses: [
    {
      name: "runtime",
      image: "runtime:1",
      restartCount: 4,
      state: { waiting: { reason: "CrashLoopBackOff" } },
      lastState: {
        terminated: {
          exitCode: 12,
          message: JSON.stringify({ kind: "Result", message: "CUDA out of memory loading the target" }),
        },
      },
    },
  ],
});
const pulling = pod("chat-2", {
  containerStatuses: [
    {
      name: "runtime",
      image: "registry/runtime:9",
      state: { waiting: { reason: "ImagePullBackOff", message: "not found" } },
    },
  ],
});
const unschedulable = pod("chat-3", {
  conditions: [
    {
      type: "PodScheduled",
      status: "False",
      reason: "Unschedulable",
      message: "0/4 nodes are available: 4 Insufficient nvidia.com/gpu.",
    },
  ],
});

describe("foldStatus", () => {
  it("Ready when every desired replica is ready on the current generation", () => {
    const s = foldStatus(
      ss,
      {
        draft: ready,
        workload: {
          kind: "Deployment",
          generation: 2,
          observedGeneration: 2,
          replicas: 2,
          readyReplicas: 2,
          updatedReplicas: 2,
        },
        pods: [],
      },
      now,
    );
    expect(s).toMatchObject({
      observedGeneration: 3,
      replicas: 2,
      readyReplicas: 2,
      desiredReplicas: 2,
      selector: "specops.dev/specserve=chat",
      endpoint: "http://chat.serving.svc:8000/v1",
      state: "Ready",
      draft: "hf://org/d",
    });
    expect(cond(s, "Ready")).toMatchObject({ status: "True", observedGeneration: 3 });
    expect(cond(s, "Progressing")).toMatchObject({ status: "False", reason: "RolledOut" });
    expect(cond(s, "Degraded")).toMatchObject({ status: "False" });
  });

  it("rolling out while the Deployment has not caught up", () => {
    const s = foldStatus(
      ss,
      {
        draft: ready,
        workload: {
          kind: "Deployment",
          generation: 3,
          observedGeneration: 2,
          replicas: 2,
          readyReplicas: 2,
          updatedReplicas: 1,
        },
        pods: [],
      },
      now,
    );
    expect(cond(s, "Progressing")).toMatchObject({ status: "True", reason: "RollingOut" });
    expect(s.state).toBe("Progressing");
  });

  it("a crash loop names the runtime's exit code, its meaning and message", () => {
    const s = foldStatus(
      ss,
      {
        draft: ready,
        workload: {
          kind: "Deployment",
          generation: 1,
          observedGeneration: 1,
          replicas: 2,
          readyReplicas: 1,
          updatedReplicas: 2,
        },
        pods: [crashLooping, pulling],
      },
      now,
    );
    expect(cond(s, "Degraded")).toMatchObject({ status: "True", reason: "CrashLoop" });
    expect(cond(s, "Degraded")?.message).toMatch(/exited with code 12 \(outOfMemory\): CUDA out of memory/);
    expect(cond(s, "Ready")).toMatchObject({ status: "False", reason: "CrashLoop" });
    expect(s.state).toBe("Degraded");
  });

  it("image pulls and GPUs no node has are named with what to check", () => {
    expect(podProblem([pulling])).toMatchObject({
      reason: "ImagePullFailed",
      message: expect.stringContaining("registry/runtime:9"),
    });
    expect(podProblem([unschedulable])).toMatchObject({
      reason: "UnschedulableGPU",
      message: expect.stringContaining("Insufficient nvidia.com/gpu"),
    });
    expect(
      podProblem([
        pod("ok", { containerStatuses: [{ name: "runtime", restartCount: 0, state: { running: {} } }] }),
      ]),
    ).toBeUndefined();
  });

  it("waiting for a draft, a failed DraftTraining, missing LWS and missing Secrets block Ready", () => {
    const base = { workload: undefined, pods: [] };
    const waiting = foldStatus(
      ss,
      { ...base, draft: { state: "waiting", reason: "DraftTraining", message: "training" } },
      now,
    );
    expect(waiting.state).toBe("WaitingForDraft");
    expect(cond(waiting, "Progressing")).toMatchObject({ status: "True", reason: "WaitingForDraft" });
    const failed = foldStatus(
      ss,
      { ...base, draft: { state: "failed", reason: "DraftTrainingFailed", message: "x" } },
      now,
    );
    expect(failed.state).toBe("Failed");
    expect(cond(failed, "Degraded")).toMatchObject({ status: "True", reason: "DraftTrainingFailed" });
    const lws = foldStatus(ss, { ...base, draft: ready, lwsMissing: true }, now);
    expect(cond(lws, "Ready")).toMatchObject({ status: "False", reason: "LeaderWorkerSetNotInstalled" });
    const waitingOnSecret = pod("chat-4", {
      containerStatuses: [
        {
          name: "runtime",
          restartCount: 0,
          state: {
            waiting: { reason: "CreateContainerConfigError", message: 'secret "endpoint-key" not found' },
          },
        },
      ],
    });
    const secret = foldStatus(
      ss,
      {
        ...base,
        draft: ready,
        pods: [waitingOnSecret],
        workload: { kind: "Deployment", replicas: 2, readyReplicas: 0 },
      },
      now,
    );
    expect(cond(secret, "Ready")).toMatchObject({ status: "False", reason: "SecretNotFound" });
    expect(cond(secret, "Degraded")?.message).toMatch(/secret "endpoint-key" not found/);
  });

  it("an unchanged observation gives an identical status (no status churn)", () => {
    const o = {
      draft: ready,
      workload: {
        kind: "Deployment" as const,
        generation: 1,
        observedGeneration: 1,
        replicas: 2,
        readyReplicas: 2,
        updatedReplicas: 2,
      },
      pods: [],
    };
    const first = foldStatus(ss, o, now);
    const second = foldStatus({ ...ss, status: first }, o, now + 60_000);
    expect(second).toEqual(first);
  });
});
