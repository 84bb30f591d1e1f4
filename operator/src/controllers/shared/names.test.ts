import { describe, expect, it } from "vitest";
import { childName } from "./names.ts";

describe("childName", () => {
  it("joins short names unchanged", () => {
    expect(childName("qwen3-8b-dspark", "train")).toBe("qwen3-8b-dspark-train");
  });
  it("keeps long names within 63 characters, stable and distinct", () => {
    const a = childName("a".repeat(80), "train");
    const b = childName(`${"a".repeat(79)}b`, "train");
    expect(a.length).toBeLessThanOrEqual(63);
    expect(a).toMatch(/-train$/);
    expect(a).toBe(childName("a".repeat(80), "train"));
    expect(a).not.toBe(b);
  });
});
