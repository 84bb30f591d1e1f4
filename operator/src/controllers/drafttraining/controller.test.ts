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

  it("shares one frozen parsed spec among DraftTrainings with the same spec", () => {
    const raw = example("tiny-drafttraining.yaml");
    const as = (name: string, spec = raw.spec) =>
      parseDraftTraining({
        ...raw,
        metadata: { name, namespace: "ns", uid: `uid-${name}` },
        spec: structuredClone(spec),
      } as never) as DraftTrainingObject;
    const a = as("a");
    const b = as("b");
    expect(b.spec).toBe(a.spec);
    expect(Object.isFrozen(a.spec.training)).toBe(true);
    expect(() => {
      (a.spec.training as { maxSteps: number }).maxSteps = 1;
    }).toThrow(TypeError);
    const other = as("c", { ...raw.spec, suspend: true });
    expect(other.spec).not.toBe(a.spec);
    expect(other.spec.suspend).toBe(true);
    expect(a.spec.suspend).toBe(false);
  });
});
