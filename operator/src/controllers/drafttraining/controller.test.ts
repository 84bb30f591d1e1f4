import { describe, expect, it } from "vitest";
import { example } from "../../../../test/fixtures/examples.ts";
import { type DraftTrainingObject, parseDraftTraining } from "./controller.ts";

describe("the DraftTraining informer transform", () => {
  it("parses a spec once while it is unchanged, and again (refusing it if need be) once it changes", () => {
    const raw = example("tiny-drafttraining.yaml");
    raw.metadata = { name: "t", namespace: "ns", uid: "uid-parse" } as typeof raw.metadata;
    const first = parseDraftTraining(raw as never) as DraftTrainingObject;
    expect(first.spec.progressInterval).toBe("10s");
    const statusOnly = parseDraftTraining({
      ...raw,
      status: { stage: "PrepareData" },
    } as never) as DraftTrainingObject;
    expect(statusOnly.spec).toBe(first.spec);
    expect(statusOnly.status?.stage).toBe("PrepareData");
    const broken = parseDraftTraining({ ...raw, spec: { ...raw.spec, progressInterval: "0s" } } as never);
    expect((broken as DraftTrainingObject).invalid).toMatch(
      /^invalid DraftTraining: spec.progressInterval: /,
    );
  });
});
