import { describe, expect, it } from "vitest";
import { specServeResource } from "../../api/kinds.ts";
import type { SpecServeWire } from "./controller.ts";
import { parseSpecServe } from "./parse.ts";

const version = (generation: number, status: Record<string, unknown>, spec: Record<string, unknown> = {}) =>
  ({
    apiVersion: "specops.dev/v1alpha1",
    kind: "SpecServe",
    metadata: { name: "chat", namespace: "serving", uid: "parse-test-uid", generation, resourceVersion: "1" },
    spec: {
      target: { uri: "hf://Qwen/Qwen3-8B" },
      draft: { source: { uri: "hf://org/Qwen3-8B-dspark" } },
      method: "dspark",
      resources: { gpusPerReplica: 1, gpuProduct: "NVIDIA-H200", cpu: 8, memory: "64Gi" },
      ...spec,
    },
    status,
  }) as unknown as SpecServeWire;

const ok = (raw: SpecServeWire) => {
  const parsed = parseSpecServe(raw);
  if (!parsed.success) throw new Error(parsed.error.message);
  return parsed.data;
};

describe("parseSpecServe", () => {
  it("parses as the whole schema does, the spec once per generation (shared, frozen), the status per version", () => {
    const a = version(1, { replicas: 1 });
    const b = version(1, { replicas: 2 });
    const [pa, pb] = [ok(a), ok(b)];
    // The same result as the whole resource's parse (defaults included).
    expect(pa).toEqual(specServeResource.parse(a));
    expect(pb).toEqual(specServeResource.parse(b));
    expect(pb.status?.replicas).toBe(2);
    // One parsed spec for the generation's versions, frozen since it is shared.
    expect(pb.spec).toBe(pa.spec);
    expect(Object.isFrozen(pa.spec.resources)).toBe(true);
    // A cached object is parsed once.
    expect(parseSpecServe(a)).toBe(parseSpecServe(a));
    // A new generation is parsed afresh.
    const c = version(2, { replicas: 2 }, { engine: "sglang" });
    expect(ok(c).spec).not.toBe(pa.spec);
    expect(ok(c).spec.engine).toBe("sglang");
  });

  it("names the field from the root for an invalid spec or status", () => {
    const badSpec = parseSpecServe(version(3, {}, { replicas: -1 }));
    expect(badSpec.success).toBe(false);
    expect(badSpec.error?.issues[0]?.path).toEqual(["spec", "replicas"]);
    // A valid spec of that uid cached, then a version whose status is invalid.
    ok(version(4, {}));
    const badStatus = parseSpecServe(version(4, { replicas: "many" }));
    expect(badStatus.success).toBe(false);
    expect(badStatus.error?.issues[0]?.path).toEqual(["status", "replicas"]);
  });
});
