import { describe, expect, it } from "vitest";
import { example } from "../../../../test/fixtures/examples.ts";
import { draftTrainingResource } from "../../api/kinds.ts";
import { asStarted, drifted, withAppliedHash } from "./children.ts";
import type { DraftTrainingObject } from "./controller.ts";
import { stageJob, taskConfigMap } from "./desired.ts";
import { storageLayout } from "./plan.ts";
import { stageTask } from "./runtimetasks.ts";

function dt(edit?: (spec: any) => void): DraftTrainingObject {
  const m = example("tiny-drafttraining.yaml");
  m.metadata = { name: "t", namespace: "ns", uid: "u", generation: 1 } as typeof m.metadata;
  edit?.(m.spec);
  return draftTrainingResource.parse(m) as DraftTrainingObject;
}
const cm = (d: DraftTrainingObject) =>
  withAppliedHash(taskConfigMap(d, "PrepareData", stageTask(d, "PrepareData", storageLayout(d))));

describe("drift of a child against the cache", () => {
  it("is missing, a changed applied content, or a task document edited by someone else", () => {
    const desired = cm(dt());
    expect(drifted(desired, undefined)).toBe(true);
    expect(drifted(desired, structuredClone(desired))).toBe(false);
    expect(drifted(cm(dt((s) => (s.data.maxSamples = 7))), desired)).toBe(true);
    const edited = structuredClone(desired);
    edited.data = { "task.json": "{}" };
    expect(drifted(desired, edited)).toBe(true);
    expect(
      drifted(desired, {
        ...structuredClone(desired),
        metadata: { ...desired.metadata, deletionTimestamp: "x" },
      }),
    ).toBe(true);
  });
});

describe("a stage as it was started", () => {
  it("rebuilds the stage's objects from the spec and generation its Job recorded", () => {
    const started = dt();
    const job = stageJob(
      started,
      "PrepareData",
      storageLayout(started),
      { defaultImage: "i", progressPort: 1 },
      { suspend: false },
    );
    const edited = dt((s) => (s.data.maxSamples = 7));
    edited.metadata.generation = 2;
    const again = asStarted(edited, job as never);
    expect(again.spec).toEqual(started.spec);
    expect(again.metadata.generation).toBe(1);
    expect(asStarted(edited, undefined)).toBe(edited);
  });
});
