import { describe, expect, it } from "vitest";
import { loadExamples } from "../../../test/fixtures/examples.ts";
import { INVALID_CASES } from "../../../test/fixtures/invalid-objects.ts";
import { validateResource, validateUpdate } from "./validate.ts";

describe("zod validation of SpecOps objects", () => {
  it.each([...loadExamples()])("accepts %s", (_file, manifest) => {
    const result = validateResource(manifest);
    expect(result.ok ? [] : result.errors).toEqual([]);
  });

  it("has a table of at least 30 invalid objects", () => {
    expect(INVALID_CASES.length).toBeGreaterThanOrEqual(30);
  });

  it.each(INVALID_CASES.map((c) => [c.name, c] as const))("refuses %s, naming the field", (_name, c) => {
    const result = c.update ? validateUpdate(c.update.stored, c.update.changed) : validateResource(c.object);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => e.field)).toContain(c.field);
  });

  it("applies defaults the way the API server does", () => {
    const tiny = loadExamples().get("tiny-specserve.yaml");
    const result = validateResource(tiny);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const spec = (result.value as { spec: Record<string, any> }).spec;
    expect(spec.rollout).toMatchObject({ maxTauDrop: 0.05, canaryReplicas: 1, analysisWindow: "10m" });
    expect(spec.drift).toMatchObject({ enabled: true, tolerance: 0.15 });
    expect(spec.autoscaling.scaleDownStabilization).toBe("5m");
  });

  it("allows updates that keep immutable fields", () => {
    const stored = loadExamples().get("specserve-vllm-slo.yaml");
    const changed = structuredClone(stored);
    if (!changed) throw new Error("missing example");
    changed.spec.autoscaling.maxReplicas = 32;
    expect(validateUpdate(stored, changed).ok).toBe(true);
  });

  it("refuses an unknown kind by name", () => {
    const result = validateResource({
      apiVersion: "specops.dev/v1alpha1",
      kind: "Draft",
      metadata: {},
      spec: {},
    });
    expect(result).toEqual({ ok: false, errors: [expect.objectContaining({ field: "kind" })] });
  });
});
