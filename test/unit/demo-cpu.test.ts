// The demo's CPU requests fit its node: two pods side by side on a 2-core laptop, the examples'
// requests untouched on a machine that has room for them.
import { expect, it } from "vitest";
import { cpuMillis, demoCpu } from "../../scripts/demo-cpu.ts";
import { example } from "../fixtures/examples.ts";

it("reads CPU quantities in cores and millicores", () => {
  expect(cpuMillis("2")).toBe(2000);
  expect(cpuMillis(2)).toBe(2000);
  expect(cpuMillis("500m")).toBe(500);
  expect(cpuMillis("1.5")).toBe(1500);
  expect(cpuMillis("2Ki")).toBeUndefined();
  expect(cpuMillis(undefined)).toBeUndefined();
});

it("halves the examples' 2 CPUs on a 2-core node, so the demo's two concurrent pods both fit", () => {
  for (const name of ["tiny-drafttraining", "tiny-acceptanceeval"]) {
    const requested = (example(`${name}.yaml`).spec as { resources: { cpu: string | number } }).resources.cpu;
    expect(cpuMillis(requested)).toBe(2000);
    const fitted = demoCpu(requested, 2000);
    expect(fitted).toBe("1");
    expect(2 * (cpuMillis(fitted) ?? 0)).toBeLessThanOrEqual(2000);
  }
  expect(demoCpu("1", 2000)).toBe("1"); // the SpecServe's 1 CPU already fits
  expect(demoCpu("2", 3000)).toBe("1500m");
  expect(demoCpu("2", 500)).toBe("200m");
  expect(demoCpu("2", 100)).toBe("100m");
});

it("keeps the manifest's request where the node has room, and no request as none", () => {
  expect(demoCpu("2", 8000)).toBe("2");
  expect(demoCpu(2, 4000)).toBe(2);
  expect(demoCpu(undefined, 2000)).toBeUndefined();
  expect(demoCpu("2Ki", 2000)).toBe("2Ki");
});
