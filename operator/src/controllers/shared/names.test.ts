import { describe, expect, it } from "vitest";
import { childName, labelValue, serviceName } from "./names.ts";

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

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

describe("labelValue", () => {
  it("keeps values of up to 63 characters", () => {
    expect(labelValue("happy")).toBe("happy");
    expect(labelValue("a".repeat(63))).toBe("a".repeat(63));
  });
  it("hash-shortens a 75-character resource name into a valid, stable, distinct label value", () => {
    const name = `qwen3-8b-dspark-${"x".repeat(53)}-run.1`;
    expect(name.length).toBe(75);
    const v = labelValue(name);
    expect(v.length).toBeLessThanOrEqual(63);
    expect(v).toMatch(LABEL_VALUE);
    expect(v).toBe(labelValue(name));
    expect(v).not.toBe(labelValue(`${name.slice(0, -1)}2`));
  });
});

describe("serviceName", () => {
  it("leaves valid names alone and makes DNS-subdomain names valid Service names", () => {
    expect(serviceName("happy", "train")).toBe("happy-train");
    expect(serviceName("qwen3.8b", "train")).toBe("qwen3-8b-train");
    expect(serviceName("8b.run", "regen-server")).toMatch(/^[a-z]([-a-z0-9]*[a-z0-9])?$/);
    const long = serviceName(`${"a".repeat(70)}.b`, "regen-server");
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^[a-z]([-a-z0-9]*[a-z0-9])?$/);
  });
});
