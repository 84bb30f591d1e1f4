import { describe, expect, it } from "vitest";
import { example } from "../../../../test/fixtures/examples.ts";
import { type DraftTraining, draftTrainingResource } from "../../api/kinds.ts";
import { parseTask } from "../../contract/task.ts";
import type { JobObservation } from "./observe.ts";
import { decide } from "./pipeline.ts";
import { plannedStages, storageLayout } from "./plan.ts";
import { stageTask } from "./runtimetasks.ts";

const NOW = Date.parse("2026-11-28T12:00:00Z");
const OUTPUT = {
  uri: "s3://ml-drafts/tiny/dflash",
  endpoint: "http://minio:9000",
  region: "us-east-1",
  pathStyle: true,
};

function dt(output?: object): DraftTraining {
  const m = example("tiny-drafttraining.yaml");
  m.metadata.namespace = "ns";
  delete m.spec.evaluation;
  if (output) m.spec.output = output;
  const parsed = draftTrainingResource.parse(m);
  return { ...parsed, metadata: { ...parsed.metadata, uid: "u", generation: 2 } };
}

const finished = (name: string, over: Partial<JobObservation> = {}): JobObservation => ({
  name,
  generation: 2,
  suspended: false,
  complete: true,
  failed: false,
  active: 0,
  failedPods: 0,
  pods: 1,
  createdAt: "2026-11-28T11:00:00Z",
  completionTime: "2026-11-28T11:30:00Z",
  termination: {
    exitCode: 0,
    reason: "success",
    malformed: false,
    result: { apiVersion: "runtime.specops.dev/v1", kind: "Result", status: "succeeded", exitCode: 0 } as any,
  },
  ...over,
});
const trained = {
  PrepareData: finished("d"),
  Regenerate: finished("r"),
  TargetCache: finished("c"),
  Train: finished("t"),
};

describe("DraftTraining Publish stage", () => {
  it("runs last, only for an s3:// or gs:// output", () => {
    expect(plannedStages(dt(OUTPUT)).at(-1)).toBe("Publish");
    expect(plannedStages(dt({ uri: "gs://ml-drafts/x" })).at(-1)).toBe("Publish");
    expect(plannedStages(dt({ uri: "pvc://models/x" }))).not.toContain("Publish");
    expect(plannedStages(dt())).not.toContain("Publish");
  });

  it("copies the latest checkpoint with the output's store settings, as a valid publish task", () => {
    const d = dt(OUTPUT);
    const task = stageTask(d, "Publish", storageLayout(d));
    const parsed = parseTask(task);
    expect(parsed.ok ? [] : parsed.errors).toEqual([]);
    expect(task).toMatchObject({
      kind: "publish",
      publish: OUTPUT,
      params: { source: expect.stringMatching(/\/train\/checkpoints\/specops\/draft\/step_latest$/) },
    });
  });

  it("stages object-store inputs once, on the shared storage", () => {
    const d = dt(OUTPUT);
    const layout = storageLayout(d);
    expect(stageTask(d, "PrepareData", layout).storage?.stagingDir).toBe(`${layout.root}/staged`);
    expect(stageTask(d, "Train", layout).storage?.stagingDir).toBe(`${layout.root}/staged`);
  });

  it("starts after training and records URI, size and checksum once the copy is done", () => {
    expect(decide(dt(OUTPUT), { jobs: trained, checkpointUri: "pvc://c/x" }, NOW).actions[0]).toEqual({
      type: "runStage",
      stage: "Publish",
      suspend: false,
    });
    const published = { uri: OUTPUT.uri, files: 3, sizeBytes: 1234, checksum: "sha256:ab", copiedFiles: 3 };
    const publish = finished("p");
    (publish.termination?.result as any).outputs = { published };
    const d = decide(dt(OUTPUT), { jobs: { ...trained, Publish: publish }, checkpointUri: "pvc://c/x" }, NOW);
    expect(d.status.stage).toBe("Succeeded");
    expect(d.status.output).toEqual({
      uri: OUTPUT.uri,
      files: 3,
      sizeBytes: 1234,
      checksum: "sha256:ab",
      completionTime: "2026-11-28T11:30:00Z",
    });
    expect(d.status.conditions?.find((c) => c.type === "Succeeded")?.message).toContain(
      `copied to ${OUTPUT.uri}`,
    );
  });

  it("a failed copy fails the pipeline with the store's message in terms of spec.output", () => {
    const publish = finished("p", {
      complete: false,
      failed: true,
      termination: {
        exitCode: 10,
        reason: "invalidTask",
        malformed: false,
        message:
          "publish.uri: listing s3://ml-drafts/tiny/dflash: the store refused the credentials (credentialsSecretRef): InvalidAccessKeyId",
      } as any,
    });
    const d = decide(dt(OUTPUT), { jobs: { ...trained, Publish: publish }, checkpointUri: "pvc://c/x" }, NOW);
    expect(d.status.stage).toBe("Failed");
    const succeeded = d.status.conditions?.find((c) => c.type === "Succeeded");
    expect(succeeded).toMatchObject({ status: "False", reason: "PublishFailed" });
    expect(succeeded?.message).toMatch(/^spec\.output\.uri: .*refused the credentials.*InvalidAccessKeyId/);
    expect(d.status.stages?.filter((s) => s.state === "Succeeded").map((s) => s.name)).toEqual([
      "PrepareData",
      "Regenerate",
      "TargetCache",
      "Train",
    ]);
    expect(d.events.find((e) => e.reason === "PublishFailed")?.message).toContain("spec.output.uri");
  });
});
