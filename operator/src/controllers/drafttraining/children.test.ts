import { describe, expect, it } from "vitest";
import { example } from "../../../../test/fixtures/examples.ts";
import { draftTrainingResource } from "../../api/kinds.ts";
import { FakeClient } from "../../lib/fakeclient.ts";
import { Jobs } from "../../lib/rest.ts";
import { STARTED_WITH_ANNOTATION, stageSpecDigestOf, trimConfigMap, trimJob } from "../shared/informers.ts";
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
  it("rebuilds the stage's objects from the spec and generation its Job recorded", async () => {
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
    const client = new FakeClient();
    const again = await asStarted({ client }, edited, job as never);
    expect(again.spec).toEqual(started.spec);
    expect(again.metadata.generation).toBe(1);
    expect(await asStarted({ client }, edited, undefined)).toBe(edited);
  });

  it("from the cache's digest: the current spec costs no API call; an edited one, one read of the Job", async () => {
    const d = dt();
    const client = new FakeClient();
    const job = client.seed(
      Jobs,
      stageJob(
        d,
        "PrepareData",
        storageLayout(d),
        { defaultImage: "i", progressPort: 1 },
        { suspend: false },
      ) as never,
    );
    const cached = trimJob(structuredClone(job) as never) as never;
    expect(stageSpecDigestOf(cached)).toBeDefined();
    expect((await asStarted({ client }, d, cached)).spec).toBe(d.spec);
    expect(client.actions).toEqual([]);

    const edited = dt((s) => (s.data.maxSamples = 7));
    edited.metadata.generation = 2;
    const again = await asStarted({ client }, edited, cached);
    expect(again.spec).toEqual(d.spec);
    expect(again.metadata.generation).toBe(1);
    expect(client.actions.map((a) => `${a.verb} ${a.plural} ${a.name}`)).toEqual([
      `get jobs ${job.metadata?.name}`,
    ]);
    // Parsed once: the next pass reads nothing.
    expect((await asStarted({ client }, edited, cached)).spec).toEqual(d.spec);
    expect(client.actions).toHaveLength(1);
  });

  it("is cached as a digest only while the Job runs: a finished Job keeps none", () => {
    const d = dt();
    const job = stageJob(
      d,
      "PrepareData",
      storageLayout(d),
      { defaultImage: "i", progressPort: 1 },
      { suspend: false },
    );
    // A running Job's copy is kept as a digest, not as the JSON.
    const running = trimJob(job as never);
    expect(running.metadata?.annotations?.[STARTED_WITH_ANNOTATION]).toBeUndefined();
    expect(stageSpecDigestOf(running)).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const done = { ...job, status: { conditions: [{ type: "Complete", status: "True" }] } };
    const trimmed = trimJob(done as never);
    expect(trimmed.metadata?.annotations?.[STARTED_WITH_ANNOTATION]).toBeUndefined();
    expect(stageSpecDigestOf(trimmed)).toBeUndefined();
    expect(trimmed.metadata?.annotations?.["specops.dev/generation"]).toBe("1");
  });
});
