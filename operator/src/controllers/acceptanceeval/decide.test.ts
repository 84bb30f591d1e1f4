// The AcceptanceEval state machine: waiting on a draft, starting a generation's Job, folding a
// result into status (figures, summary, verdict, conditions, Events), failures with the runtime's
// words, and a new generation replacing the old Job.
import { describe, expect, it } from "vitest";
import { acceptanceEval } from "../../../../test/fixtures/acceptanceeval.ts";
import type { AcceptanceEval } from "../../api/kinds.ts";
import { type JobObservation, parseTermination } from "../drafttraining/observe.ts";
import { type AcceptanceEvalStatus, decide, type Observed } from "./decide.ts";
import { outputLayout } from "./plan.ts";

const NOW = Date.parse("2026-12-01T10:00:00Z");
const draft = { name: "tiny-dflash", uri: "pvc://tiny-dflash-storage/x/step_latest", step: 400 };

const tiny = (edit?: (spec: any) => void, generation = 1) =>
  acceptanceEval("tiny-acceptanceeval.yaml", edit, generation);

function observed(ae: AcceptanceEval, over: Partial<Observed> = {}): Observed {
  return {
    draft: { state: "ready", draft },
    staleJobs: [],
    output: outputLayout(ae),
    ...over,
  };
}

const evaluation = {
  results: [
    {
      name: "tiny-math",
      samples: 32,
      tau: 2.812345678,
      acceptanceByPosition: [0.9, 0.61234567, 0.3],
      verifyRate: 0.7,
      tokensPerSecond: 123.456,
      baselineTokensPerSecond: 100,
      speedup: 1.23456,
    },
    { name: "tiny-chat", samples: 32, tau: 1.4, speedup: 0.9 },
  ],
};

function job(over: Partial<JobObservation> & { message?: object; exitCode?: number } = {}): JobObservation {
  const { message, exitCode = 0, ...rest } = over;
  return {
    name: "tiny-dflash-acceptance-g1",
    generation: 0,
    suspended: false,
    complete: false,
    failed: false,
    active: 1,
    failedPods: 0,
    pods: 1,
    startTime: "2026-12-01T09:59:00Z",
    ...(message
      ? {
          termination: parseTermination(
            exitCode,
            JSON.stringify({ apiVersion: "runtime.specops.dev/v1", kind: "Result", ...message }),
          ),
        }
      : {}),
    ...rest,
  };
}

const withStatus = (ae: AcceptanceEval, status: AcceptanceEvalStatus) =>
  ({ ...ae, status }) as AcceptanceEval;
const cond = (s: AcceptanceEvalStatus, type: string) => s.conditions?.find((c) => c.type === type);

describe("AcceptanceEval decisions", () => {
  it("waits on a running DraftTraining with a condition and one Event", () => {
    const ae = tiny();
    const waiting = {
      state: "waiting" as const,
      reason: "DraftTrainingRunning",
      message: "waiting for DraftTraining tiny-dflash to finish (stage Train)",
    };
    const d = decide(ae, observed(ae, { draft: waiting }), NOW);
    expect(d.actions).toEqual([]);
    expect(d.status.phase).toBe("Pending");
    expect(cond(d.status, "DraftReady")).toMatchObject({ status: "False", reason: "DraftTrainingRunning" });
    expect(d.events.map((e) => e.reason)).toEqual(["WaitingForDraft"]);
    const again = decide(withStatus(ae, d.status), observed(ae, { draft: waiting }), NOW + 1000);
    expect(again.events).toEqual([]);
    expect(again.status).toEqual(d.status);
  });

  it("fails when the referenced training failed, naming why", () => {
    const ae = tiny();
    const failed = {
      state: "failed" as const,
      reason: "DraftTrainingFailed",
      message: "DraftTraining x failed",
    };
    const d = decide(ae, observed(ae, { draft: failed }), NOW);
    expect(d.status.phase).toBe("Failed");
    expect(cond(d.status, "Succeeded")).toMatchObject({ status: "False", reason: "DraftTrainingFailed" });
    expect(d.events).toEqual([{ type: "Warning", reason: "Failed", message: "DraftTraining x failed" }]);
  });

  it("starts this generation's Job once the draft is ready", () => {
    const ae = tiny();
    const d = decide(ae, observed(ae), NOW);
    expect(d.actions).toEqual([{ type: "runEval", draft }]);
    expect(d.status).toMatchObject({
      phase: "Running",
      job: "tiny-dflash-acceptance-g1",
      draft,
      startTime: "2026-12-01T10:00:00.000Z",
      observedGeneration: 1,
    });
    expect(d.events.map((e) => e.reason)).toEqual(["Started"]);
  });

  it("says why a running Job's pod does not start, in the kubelet's words", () => {
    const ae = tiny();
    const stuck = job({
      containerProblem: {
        pod: "tiny-dflash-acceptance-g1-x",
        reason: "CreateContainerConfigError",
        message: 'secret "hf-token" not found',
      },
    });
    const d = decide(ae, observed(ae, { job: stuck }), NOW);
    expect(d.actions).toEqual([{ type: "runEval", draft }]);
    expect(cond(d.status, "ContainersStarted")).toMatchObject({ status: "False", reason: "SecretMissing" });
    expect(d.events.map((e) => e.reason)).toEqual(["Started", "SecretMissing"]);
  });

  it("folds a finished Job's figures into status with the summary, verdict and Events", () => {
    const ae = tiny((s) => {
      s.gate = { minTau: 1.5, minTauPerTask: { "tiny-chat": 1.5 } };
    });
    const running = decide(ae, observed(ae), NOW).status;
    const done = job({
      complete: true,
      active: 0,
      completionTime: "2026-12-01T10:01:00Z",
      message: { status: "succeeded", exitCode: 0, reason: "success", evaluation },
    });
    const d = decide(withStatus(ae, running), observed(ae, { job: done }), NOW + 60_000);
    expect(d.status.phase).toBe("Succeeded");
    expect(d.status.results?.[0]).toEqual({
      name: "tiny-math",
      samples: 32,
      tau: 2.8123,
      acceptanceByPosition: [0.9, 0.6123, 0.3],
      verifyRate: 0.7,
      tokensPerSecond: 123.46,
      baselineTokensPerSecond: 100,
      speedup: 1.2346,
    });
    expect(d.status.summary).toEqual({ macroTau: 2.1062, macroSpeedup: 1.0673, samples: 64 });
    expect(d.status.gate).toEqual({ verdict: "Failed", reasons: ["tiny-chat: tau 1.4 < 1.5"] });
    expect(cond(d.status, "Passed")).toMatchObject({
      status: "False",
      reason: "ThresholdsMissed",
      message: "tiny-chat: tau 1.4 < 1.5",
    });
    expect(d.status.completionTime).toBe("2026-12-01T10:01:00Z");
    expect(d.events.map((e) => [e.type, e.reason])).toEqual([
      ["Normal", "Succeeded"],
      ["Warning", "GateFailed"],
    ]);
    expect(d.events[0]?.message).toBe("macro tau 2.1062 over 64 samples (tiny-math 2.8123, tiny-chat 1.4)");
    // Level-triggered: the same observation again writes the same status and emits nothing.
    const again = decide(withStatus(ae, d.status), observed(ae, { job: done }), NOW + 120_000);
    expect(again.status).toEqual(d.status);
    expect(again.events).toEqual([]);
  });

  it("reads the figures of a Job that failed only because the gate was missed", () => {
    const ae = tiny((s) => {
      s.gate = { minTau: 3 };
    });
    const gateMissed = job({
      failed: true,
      active: 0,
      failureReason: "PodFailurePolicy",
      exitCode: 14,
      message: { status: "failed", exitCode: 14, reason: "gateFailed", message: "gate failed", evaluation },
    });
    const d = decide(ae, observed(ae, { job: gateMissed }), NOW);
    expect(d.status.phase).toBe("Succeeded");
    expect(d.status.gate).toEqual({ verdict: "Failed", reasons: ["macro tau 2.106 < minTau 3"] });
    expect(d.events.map((e) => e.reason)).toEqual(["Succeeded", "GateFailed"]);
  });

  it("fails at once with the runtime's message on a terminal exit", () => {
    const ae = tiny();
    const broken = job({
      failed: true,
      active: 0,
      failureReason: "PodFailurePolicy",
      exitCode: 11,
      message: {
        status: "failed",
        exitCode: 11,
        reason: "missingInput",
        message: "params.draft.uri: no checkpoint at /mnt/x",
      },
    });
    const d = decide(ae, observed(ae, { job: broken }), NOW);
    expect(d.status.phase).toBe("Failed");
    expect(cond(d.status, "Succeeded")).toMatchObject({
      status: "False",
      reason: "MissingInput",
      message: "missingInput (exit 11): status.draft.uri: no checkpoint at /mnt/x",
    });
    expect(d.events.map((e) => e.reason)).toEqual(["Failed"]);
  });

  it("names the spec's field when an object-store input fails", () => {
    const ae = tiny();
    const refused = job({
      failed: true,
      active: 0,
      failureReason: "PodFailurePolicy",
      exitCode: 10,
      message: {
        status: "failed",
        exitCode: 10,
        reason: "invalidTask",
        message:
          "params.tasks[1].source.uri: reading s3://evals/chat.jsonl: the store refused the credentials (credentialsSecretRef): Forbidden",
      },
    });
    const d = decide(ae, observed(ae, { job: refused }), NOW);
    expect(cond(d.status, "Succeeded")?.message).toBe(
      "invalidTask (exit 10): spec.tasks[1].source.uri: reading s3://evals/chat.jsonl: the store refused the credentials (credentialsSecretRef): Forbidden",
    );
  });

  it("says so when the result did not fit the termination message", () => {
    const ae = tiny((s) => {
      s.output = { uri: "pvc://results/tiny" };
    });
    const cut = job({
      complete: true,
      active: 0,
      message: {
        status: "succeeded",
        exitCode: 0,
        reason: "success",
        truncated: true,
        evaluation: {
          results: [{ name: "tiny-math", tau: 2.8 }],
          summary: { macroTau: 2.1, samples: 64 },
          gate: { verdict: "Passed" },
        },
      },
    });
    const d = decide(ae, observed(ae, { job: cut }), NOW);
    expect(d.status.summary).toEqual({ macroTau: 2.1, samples: 64 });
    expect(d.status.resultUri).toBe("pvc://results/tiny/result.json");
    expect(cond(d.status, "ResultComplete")).toMatchObject({ status: "False", reason: "ResultTruncated" });
    expect(d.events.map((e) => e.reason)).toContain("ResultTruncated");
  });

  const s3Output = (s: any) => {
    s.output = { uri: "s3://evals/runs/tiny", endpoint: "http://minio:9000", pathStyle: true };
  };
  const published = {
    uri: "s3://evals/runs/tiny/result.json",
    files: 1,
    sizeBytes: 2345,
    checksum: `sha256:${"ab".repeat(32)}`,
    copiedFiles: 1,
    skippedFiles: 0,
  };

  it("records the result JSON's verified copy in status.output, gate passed or missed", () => {
    const ae = tiny((s) => {
      s3Output(s);
      s.gate = { minTau: 3 };
    });
    const gateMissed = job({
      failed: true,
      active: 0,
      exitCode: 14,
      message: {
        status: "failed",
        exitCode: 14,
        reason: "gateFailed",
        message: "gate failed",
        evaluation,
        outputs: { published },
      },
    });
    const d = decide(ae, observed(ae, { job: gateMissed }), NOW);
    expect(d.status.phase).toBe("Succeeded");
    expect(d.status.output).toEqual({
      uri: "s3://evals/runs/tiny/result.json",
      files: 1,
      sizeBytes: 2345,
      checksum: published.checksum,
      completionTime: "2026-12-01T10:00:00.000Z",
    });
    expect(d.status.resultUri).toBe("s3://evals/runs/tiny/result.json");
    expect(cond(d.status, "Succeeded")?.message).toMatch(
      /; result copied to s3:\/\/evals\/runs\/tiny\/result\.json$/,
    );
    expect(d.status.gate?.verdict).toBe("Failed");
    const again = decide(withStatus(ae, d.status), observed(ae, { job: gateMissed }), NOW + 60_000);
    expect(again.status).toEqual(d.status);
  });

  it("a failed copy keeps the figures and fails with the store's message naming spec.output.uri", () => {
    const ae = tiny((s) => {
      s3Output(s);
      s.gate = { minTau: 1.5 };
    });
    const storeMessage =
      "publish.uri: listing s3://evals/runs/tiny/result.json: the store refused the credentials (credentialsSecretRef): An error occurred (InvalidAccessKeyId)";
    const copyFailed = job({
      failed: true,
      active: 0,
      failureReason: "PodFailurePolicy",
      exitCode: 16,
      message: { status: "failed", exitCode: 16, reason: "publishFailed", message: storeMessage, evaluation },
    });
    const d = decide(ae, observed(ae, { job: copyFailed }), NOW);
    expect(d.status.phase).toBe("Failed");
    expect(d.status.summary?.macroTau).toBe(2.1062);
    expect(d.status.results).toHaveLength(2);
    expect(d.status.output).toBeUndefined();
    expect(d.status.resultUri).toBeUndefined();
    const succeeded = cond(d.status, "Succeeded");
    expect(succeeded).toMatchObject({ status: "False", reason: "PublishFailed" });
    expect(succeeded?.message).toContain("not copied to spec.output.uri s3://evals/runs/tiny");
    expect(succeeded?.message).toContain(
      "spec.output.uri: listing s3://evals/runs/tiny/result.json: the store refused the credentials",
    );
    expect(succeeded?.message).not.toContain("publish.uri");
    expect(cond(d.status, "Passed")).toMatchObject({ status: "True" });
    expect(d.events).toEqual([{ type: "Warning", reason: "PublishFailed", message: succeeded?.message }]);
    // No further actions: the evaluation is not run again for a copy; nothing repeats.
    expect(d.actions).toEqual([]);
    const again = decide(withStatus(ae, d.status), observed(ae, { job: copyFailed }), NOW + 60_000);
    expect(again.status).toEqual(d.status);
    expect(again.events).toEqual([]);
  });

  it("a truncated result says where the full result lives: the object store copy, else scratch only", () => {
    const cutResult = (over: object) =>
      job({
        complete: true,
        active: 0,
        message: {
          status: "succeeded",
          exitCode: 0,
          reason: "success",
          truncated: true,
          resultPath: "/scratch/eval/result.json",
          evaluation: { results: [{ name: "tiny-math", tau: 2.8 }], summary: { macroTau: 2.1, samples: 64 } },
          ...over,
        },
      });
    const onStore = tiny(s3Output);
    const d = decide(onStore, observed(onStore, { job: cutResult({ outputs: { published } }) }), NOW);
    expect(cond(d.status, "ResultComplete")?.message).toMatch(
      /the full result is in s3:\/\/evals\/runs\/tiny\/result\.json$/,
    );
    const nowhere = tiny();
    const n = decide(nowhere, observed(nowhere, { job: cutResult({}) }), NOW);
    expect(cond(n.status, "ResultComplete")?.message).toMatch(
      /the full result is in \/scratch\/eval\/result\.json in the pod's scratch space only \(set spec\.output to keep it\)$/,
    );
    const failedCopy = cutResult({ status: "failed", exitCode: 16, reason: "publishFailed", message: "x" });
    const f = decide(
      onStore,
      observed(onStore, { job: { ...failedCopy, complete: false, failed: true } }),
      NOW,
    );
    expect(cond(f.status, "ResultComplete")?.message).toMatch(
      /scratch space only \(the copy to spec\.output failed\)$/,
    );
    expect(f.events.filter((e) => e.reason === "ResultTruncated")).toHaveLength(1);
    const g = decide(
      withStatus(onStore, f.status),
      observed(onStore, { job: { ...failedCopy, complete: false, failed: true } }),
      NOW,
    );
    expect(g.events).toEqual([]);
  });

  it("replaces an earlier generation's Job and starts afresh", () => {
    const ae = tiny(undefined, 2);
    const old: AcceptanceEvalStatus = {
      observedGeneration: 1,
      phase: "Succeeded",
      job: "tiny-dflash-acceptance-g1",
      summary: { macroTau: 2, samples: 64 },
    };
    const d = decide(withStatus(ae, old), observed(ae, { staleJobs: ["tiny-dflash-acceptance-g1"] }), NOW);
    expect(d.actions).toEqual([
      { type: "deleteJob", name: "tiny-dflash-acceptance-g1" },
      { type: "runEval", draft },
    ]);
    expect(d.status.summary).toBeUndefined();
    expect(d.status).toMatchObject({
      phase: "Running",
      job: "tiny-dflash-acceptance-g2",
      observedGeneration: 2,
    });
  });
});
