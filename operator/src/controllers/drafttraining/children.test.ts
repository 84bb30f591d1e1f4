import { describe, expect, it } from "vitest";
import { example } from "../../../../test/fixtures/examples.ts";
import { draftTrainingResource } from "../../api/kinds.ts";
import { STARTED_WITH_ANNOTATION, trimConfigMap, trimJob } from "../shared/informers.ts";
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
    // The cache holds what the informer's transform keeps of a ConfigMap (a digest of its data).
    const cached = (o: object) => trimConfigMap(structuredClone(o) as never);
    expect(drifted(desired, undefined)).toBe(true);
    expect(drifted(desired, cached(desired))).toBe(false);
    expect(drifted(cm(dt((s) => (s.data.maxSamples = 7))), cached(desired))).toBe(true);
    expect(drifted(desired, cached({ ...desired, data: { "task.json": "{}" } }))).toBe(true);
    expect(
      drifted(desired, cached({ ...desired, metadata: { ...desired.metadata, deletionTimestamp: "x" } })),
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

  it("is cached only while the Job runs: a finished Job's copy of the spec is dropped", () => {
    const d = dt();
    const job = stageJob(
      d,
      "PrepareData",
      storageLayout(d),
      { defaultImage: "i", progressPort: 1 },
      { suspend: false },
    );
    expect(trimJob(job as never).metadata?.annotations?.[STARTED_WITH_ANNOTATION]).toBeDefined();
    const done = { ...job, status: { conditions: [{ type: "Complete", status: "True" }] } };
    const trimmed = trimJob(done as never).metadata?.annotations ?? {};
    expect(trimmed[STARTED_WITH_ANNOTATION]).toBeUndefined();
    expect(trimmed["specops.dev/generation"]).toBe("1");
  });
});
