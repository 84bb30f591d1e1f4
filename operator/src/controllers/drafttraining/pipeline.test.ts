import { describe, expect, it } from "vitest";
import { example } from "../../../../test/fixtures/examples.ts";
import { type DraftTraining, draftTrainingResource } from "../../api/kinds.ts";
import type { JobObservation } from "./observe.ts";
import { decide, type Observed } from "./pipeline.ts";

const NOW = Date.parse("2026-11-28T12:00:00Z");

function dt(edit?: (spec: any) => void, status?: any): DraftTraining {
  const m = example("tiny-drafttraining.yaml");
  m.metadata.namespace = "ns";
  edit?.(m.spec);
  const parsed = draftTrainingResource.parse(m);
  return { ...parsed, metadata: { ...parsed.metadata, uid: "u", generation: 2 }, status };
}

const job = (name: string, over: Partial<JobObservation> = {}): JobObservation => ({
  name,
  generation: 2,
  suspended: false,
  complete: false,
  failed: false,
  active: 1,
  failedPods: 0,
  pods: 1,
  createdAt: "2026-11-28T11:59:00Z",
  ...over,
});
const result = (outputs: object = {}) =>
  ({
    apiVersion: "runtime.specops.dev/v1",
    kind: "Result",
    status: "succeeded",
    exitCode: 0,
    outputs,
  }) as any;
const done = (name: string, outputs?: object) =>
  job(name, {
    complete: true,
    active: 0,
    completionTime: "2026-11-28T11:00:00Z",
    termination: { exitCode: 0, reason: "success", result: result(outputs), malformed: false },
  });
const observed = (jobs: Observed["jobs"], extra: Partial<Observed> = {}): Observed => ({
  jobs,
  checkpointUri: "pvc://c/train/step_latest",
  ...extra,
});

describe("DraftTraining pipeline", () => {
  it("starts with data preparation", () => {
    const d = decide(dt(), observed({}), NOW);
    expect(d.actions).toEqual([{ type: "runStage", stage: "PrepareData", suspend: false }]);
    expect(d.status.stage).toBe("PrepareData");
    expect(d.status.stages?.map((s) => s.state)).toEqual([
      "Pending",
      "Pending",
      "Pending",
      "Pending",
      "Pending",
    ]);
    expect(d.status.conditions?.find((c) => c.type === "Progressing")).toMatchObject({
      status: "True",
      observedGeneration: 2,
    });
    expect(d.active).toBe(true);
  });

  it("moves to the next stage when a Job completes, and tears down the regen server after regeneration", () => {
    const d = decide(dt(), observed({ PrepareData: done("t-data"), Regenerate: done("t-regen") }), NOW);
    expect(d.actions).toEqual([
      { type: "runStage", stage: "TargetCache", suspend: false },
      { type: "tearDownRegenServer" },
    ]);
    expect(d.status.stages?.slice(0, 2).map((s) => s.state)).toEqual(["Succeeded", "Succeeded"]);
    expect(d.events.map((e) => e.reason)).toEqual(["PrepareDataSucceeded", "RegenerateSucceeded"]);
  });

  it("keeps a finished stage finished when its Job is gone (restart, deleted Job)", () => {
    const previous = decide(dt(), observed({ PrepareData: done("t-data") }), NOW).status;
    const d = decide(dt(undefined, previous), observed({}), NOW + 1000);
    expect(d.status.stages?.[0]?.state).toBe("Succeeded");
    expect(d.actions[0]).toEqual({ type: "runStage", stage: "Regenerate", suspend: false });
    expect(d.events).toEqual([]);
  });

  it("fails at once with the runtime's message on a terminal exit", () => {
    const failed = job("t-data", {
      failed: true,
      active: 0,
      failedPods: 1,
      failureReason: "PodFailurePolicy",
      termination: {
        exitCode: 10,
        reason: "invalidTask",
        message: "params.prompts.uri: not found",
        malformed: false,
      },
    });
    const d = decide(dt(), observed({ PrepareData: failed }), NOW);
    expect(d.status.stage).toBe("Failed");
    expect(d.actions).toEqual([]);
    expect(d.status.conditions?.find((c) => c.type === "Succeeded")).toMatchObject({
      status: "False",
      reason: "PrepareDataFailed",
      // The runtime named its task's field; status names the spec's.
      message: "spec.data.prompts.uri: not found",
    });
    expect(d.events).toContainEqual(
      expect.objectContaining({ type: "Warning", reason: "PrepareDataFailed" }),
    );
    expect(d.active).toBe(false);
  });

  it("counts retriable attempts while the Job retries", () => {
    const retrying = job("t-data", { failedPods: 2, active: 1 });
    const d = decide(dt(), observed({ PrepareData: retrying }), NOW);
    expect(d.status.stages?.[0]).toMatchObject({ state: "Running", attempts: 3 });
  });

  it("suspends the running stage and resumes it", () => {
    const suspended = decide(
      dt((s) => (s.suspend = true)),
      observed({ PrepareData: done("d"), Regenerate: job("r") }),
      NOW,
    );
    expect(suspended.actions[0]).toEqual({ type: "runStage", stage: "Regenerate", suspend: true });
    expect(suspended.status.stage).toBe("Suspended");
    expect(suspended.events.map((e) => e.reason)).toContain("Suspended");
    const resumed = decide(
      dt(undefined, suspended.status),
      observed({ PrepareData: done("d"), Regenerate: job("r", { suspended: true }) }),
      NOW,
    );
    expect(resumed.actions[0]).toEqual({ type: "runStage", stage: "Regenerate", suspend: false });
    expect(resumed.events.map((e) => e.reason)).toContain("Resumed");
  });

  it("creates the evaluation after training and fails on a missed gate", () => {
    const jobs = { PrepareData: done("a"), Regenerate: done("b"), TargetCache: done("c"), Train: done("d") };
    expect(decide(dt(), observed(jobs), NOW).actions[0]).toEqual({ type: "runEvaluation" });
    const gateFailed = decide(
      dt(),
      observed(jobs, {
        evaluation: {
          name: "t-eval",
          generation: 2,
          phase: "Succeeded",
          verdict: "Failed",
          macroTau: 1.2,
          reasons: ["macro tau 1.20 < 1.5"],
        },
      }),
      NOW,
    );
    expect(gateFailed.status.stage).toBe("Failed");
    expect(gateFailed.status.conditions?.find((c) => c.type === "Succeeded")).toMatchObject({
      reason: "GateFailed",
      message: "gate failed: macro tau 1.20 < 1.5",
    });
  });

  it("shows training's final figures once the run has succeeded", () => {
    const train = done("d");
    train.termination = {
      exitCode: 0,
      malformed: false,
      result: { ...result(), training: { step: 400, totalSteps: 400, loss: 1.1, tauEstimate: 2.5 } },
    };
    const jobs = { PrepareData: done("a"), Regenerate: done("b"), TargetCache: done("c"), Train: train };
    const previous = { progress: { stage: "Train" as const, step: 356, totalSteps: 400, percent: 89 } };
    const d = decide(
      dt(undefined, previous),
      observed(jobs, { evaluation: { name: "e", generation: 2, phase: "Succeeded", macroTau: 2 } }),
      NOW,
    );
    expect(d.status.progress).toEqual({
      stage: "Train",
      step: 400,
      totalSteps: 400,
      percent: 100,
      loss: 1.1,
      tauEstimate: 2.5,
      lastUpdateTime: "2026-11-28T11:00:00Z",
    });
  });

  it("succeeds with the checkpoint and the evaluation summary", () => {
    const jobs = { PrepareData: done("a"), Regenerate: done("b"), TargetCache: done("c"), Train: done("d") };
    const d = decide(
      dt(),
      observed(jobs, {
        evaluation: { name: "t-eval", generation: 2, phase: "Succeeded", verdict: "Passed", macroTau: 2.4 },
      }),
      NOW,
    );
    expect(d.status.stage).toBe("Succeeded");
    expect(d.status.checkpoint).toEqual({ uri: "pvc://c/train/step_latest" });
    expect(d.status.evaluation).toEqual({ acceptanceEval: "t-eval", macroTau: 2.4, passed: true });
    expect(d.status.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
  });

  it("says a referenced Secret is missing in the kubelet's words, once, from the pod's waiting state", () => {
    const waiting = job("t-data", {
      active: 1,
      containerProblem: {
        reason: "CreateContainerConfigError",
        message: 'secret "hf-token" not found',
        pod: "t-data-abcde",
      },
    });
    const d = decide(dt(), observed({ PrepareData: waiting }), NOW);
    const expected = {
      status: "False",
      reason: "SecretMissing",
      message:
        'pod t-data-abcde of Job t-data cannot start (CreateContainerConfigError): secret "hf-token" not found',
    };
    expect(d.status.conditions?.find((c) => c.type === "ContainersStarted")).toMatchObject(expected);
    expect(d.status.conditions?.find((c) => c.type === "Ready")).toMatchObject(expected);
    expect(d.events.filter((e) => e.reason === "SecretMissing")).toHaveLength(1);
    const again = decide(dt(undefined, d.status), observed({ PrepareData: waiting }), NOW + 5000);
    expect(again.events).toEqual([]);
    expect(again.status.conditions).toEqual(d.status.conditions);
    // Once the Secret exists the kubelet starts the container and the condition goes.
    const started = decide(dt(undefined, d.status), observed({ PrepareData: job("t-data") }), NOW + 9000);
    expect(started.status.conditions?.find((c) => c.type === "ContainersStarted")).toBeUndefined();
    expect(started.status.conditions?.find((c) => c.type === "Ready")?.reason).toBe("InProgress");
  });

  it("runs a failed stage again when the spec changed since it failed, and not before", () => {
    const failedJob = (generation: number) =>
      job("t-data", {
        generation,
        failed: true,
        active: 0,
        failedPods: 1,
        failureReason: "BackoffLimitExceeded",
      });
    const failed = decide(dt(), observed({ PrepareData: failedJob(2) }), NOW);
    expect(failed.status.stage).toBe("Failed");
    const changed = dt(undefined, failed.status);
    changed.metadata.generation = 3;
    const rerun = decide(changed, observed({ PrepareData: failedJob(2) }), NOW);
    expect(rerun.actions).toEqual([{ type: "restartStage", stage: "PrepareData" }]);
    expect(rerun.status.stage).toBe("PrepareData");
    expect(rerun.status.stages?.[0]).toMatchObject({ state: "Pending" });
    expect(rerun.events.map((e) => e.reason)).toContain("Rerunning");
    // Once the old Job is gone the stage starts with the new spec.
    const next = decide({ ...changed, status: rerun.status }, observed({}), NOW);
    expect(next.actions[0]).toEqual({ type: "runStage", stage: "PrepareData", suspend: false });
  });

  it("runs a failed evaluation gate again once the spec changes (e.g. a new minTau)", () => {
    const jobs = { PrepareData: done("a"), Regenerate: done("b"), TargetCache: done("c"), Train: done("d") };
    const gate = {
      name: "t-eval",
      generation: 2,
      phase: "Succeeded" as const,
      verdict: "Failed" as const,
      reasons: ["low"],
    };
    const failed = decide(dt(), observed(jobs, { evaluation: gate }), NOW);
    expect(failed.status.stage).toBe("Failed");
    const changed = dt(undefined, failed.status);
    changed.metadata.generation = 3;
    const rerun = decide(changed, observed(jobs, { evaluation: gate }), NOW);
    expect(rerun.actions[0]).toEqual({ type: "restartStage", stage: "Evaluate" });
    expect(rerun.status.stage).toBe("Evaluate");
  });

  it("keeps the regeneration server while regeneration is suspended", () => {
    const d = decide(
      dt((s) => (s.suspend = true)),
      observed({ PrepareData: done("d"), Regenerate: job("r", { suspended: true, active: 0 }) }),
      NOW,
    );
    expect(d.status.stages?.[1]?.state).toBe("Suspended");
    expect(d.actions).toEqual([{ type: "runStage", stage: "Regenerate", suspend: true }]);
  });

  it("leaves suspension to Kueue and shows its admission (the test plays Kueue's part)", () => {
    const queued = (s: any) => (s.queueName = "team-a");
    const waiting = decide(
      dt(queued),
      observed({ PrepareData: job("t-data", { queue: "team-a", suspended: true, active: 0, pods: 0 }) }),
      NOW,
    );
    expect(waiting.actions).toEqual([{ type: "runStage", stage: "PrepareData" }]);
    expect(waiting.status.stages?.[0]).toMatchObject({
      state: "Pending",
      message: "waiting for quota in Kueue queue team-a",
    });
    expect(waiting.status.conditions?.find((c) => c.type === "Admitted")).toMatchObject({
      status: "False",
      reason: "WaitingForQuota",
    });
    // No NoPods warning while Kueue holds the Job.
    expect(waiting.status.conditions?.find((c) => c.type === "PodsScheduled")).toBeUndefined();
    const admitted = decide(
      dt(queued, waiting.status),
      observed({ PrepareData: job("t-data", { queue: "team-a" }) }),
      NOW,
    );
    expect(admitted.status.stages?.[0]?.state).toBe("Running");
    expect(admitted.status.conditions?.find((c) => c.type === "Admitted")).toMatchObject({
      status: "True",
      reason: "Admitted",
    });
  });

  it("warns once when a stage succeeds without a valid result", () => {
    const bare = job("d", {
      complete: true,
      active: 0,
      termination: { exitCode: 0, message: "log tail", malformed: true },
    });
    const d = decide(dt(), observed({ PrepareData: bare }), NOW);
    expect(d.events).toContainEqual(expect.objectContaining({ type: "Warning", reason: "MissingResult" }));
    expect(decide(dt(undefined, d.status), observed({ PrepareData: bare }), NOW).events).toEqual([]);
  });

  it("records the checkpoint and its step as soon as training succeeds", () => {
    const jobs = {
      PrepareData: done("a"),
      Regenerate: done("b"),
      TargetCache: done("c"),
      Train: done("d", { checkpoint: { path: "/x/step_200", step: 200 } }),
    };
    const d = decide(dt(), observed(jobs), NOW);
    expect(d.status.stage).toBe("Evaluate");
    expect(d.status.checkpoint).toEqual({ uri: "pvc://c/train/step_latest", step: 200 });
  });

  it("leaves a user's AcceptanceEval of the gate's name alone and says so, then runs once the name is free", () => {
    const jobs = {
      PrepareData: done("a"),
      Regenerate: done("b"),
      TargetCache: done("c"),
      Train: done("d", { checkpoint: { path: "/x/step_200", step: 200 } }),
    };
    const taken = { name: "tiny-dflash-eval", generation: 0, foreign: true };
    const d = decide(dt(), observed(jobs, { evaluation: taken }), NOW);
    expect(d.status.stage).toBe("Evaluate");
    expect(d.actions).not.toContainEqual({ type: "runEvaluation" });
    expect(d.active).toBe(true);
    const progressing = d.status.conditions?.find((c) => c.type === "Progressing");
    expect(progressing).toMatchObject({ status: "False", reason: "EvaluationNameTaken" });
    expect(progressing?.message).toMatch(
      /^AcceptanceEval tiny-dflash-eval already exists and is not this DraftTraining's/,
    );
    expect(d.events.filter((e) => e.reason === "EvaluationNameTaken")).toEqual([
      { type: "Warning", reason: "EvaluationNameTaken", message: progressing?.message },
    ]);
    const again = decide(dt(undefined, d.status), observed(jobs, { evaluation: taken }), NOW + 1000);
    expect(again.events).toEqual([]);
    expect(again.status.conditions).toEqual(d.status.conditions);
    // Renamed or deleted: the gate's own AcceptanceEval is made.
    const free = decide(dt(undefined, d.status), observed(jobs), NOW + 2000);
    expect(free.actions).toContainEqual({ type: "runEvaluation" });
    expect(free.status.conditions?.find((c) => c.type === "Progressing")?.reason).toBe("EvaluateRunning");
  });

  it("says why a stage's pods do not start: unschedulable, or no pod at all after a grace period", () => {
    const unschedulable = job("t-data", {
      unschedulable: "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
    });
    const d = decide(dt(), observed({ PrepareData: unschedulable }), NOW);
    expect(d.status.conditions?.find((c) => c.type === "PodsScheduled")).toMatchObject({
      status: "False",
      reason: "Unschedulable",
      message:
        "pods of Job t-data cannot be scheduled: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
    });
    expect(d.events).toContainEqual(expect.objectContaining({ type: "Warning", reason: "Unschedulable" }));

    const noPods = (createdAt: string) => job("t-data", { pods: 0, active: 0, createdAt });
    const young = decide(dt(), observed({ PrepareData: noPods("2026-11-28T11:59:30Z") }), NOW);
    expect(young.status.conditions?.find((c) => c.type === "PodsScheduled")).toBeUndefined();
    const old = decide(dt(), observed({ PrepareData: noPods("2026-11-28T11:50:00Z") }), NOW);
    expect(old.status.conditions?.find((c) => c.type === "PodsScheduled")?.reason).toBe("NoPods");

    // Once pods run, the condition goes away.
    const running = decide(dt(undefined, old.status), observed({ PrepareData: job("t-data") }), NOW);
    expect(running.status.conditions?.find((c) => c.type === "PodsScheduled")).toBeUndefined();
  });

  it("keeps lastTransitionTime while conditions hold", () => {
    const first = decide(dt(), observed({ PrepareData: job("a") }), NOW);
    const second = decide(dt(undefined, first.status), observed({ PrepareData: job("a") }), NOW + 60_000);
    expect(second.status).toEqual(first.status);
  });
});
