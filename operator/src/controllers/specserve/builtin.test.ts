// The built-in draft (a draft inside the target checkpoint) against the engines' facts recorded
// from upstream in test/fixtures/engines/builtin-drafts.json.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { example } from "../../../../test/fixtures/examples.ts";
import { servingMethod } from "../../api/common.ts";
import { specServeResource } from "../../api/kinds.ts";
import { validateResource } from "../../api/validate.ts";
import { parseTask } from "../../contract/task.ts";
import { planDraft, serveTask } from "./plan.ts";

const facts = JSON.parse(
  readFileSync(join(import.meta.dirname, "../../../../test/fixtures/engines/builtin-drafts.json"), "utf8"),
);

describe("built-in drafts", () => {
  it("every built-in method an engine serves is a SpecServe method, named as vLLM names it", () => {
    for (const engine of ["vllm", "sglang"]) {
      for (const method of Object.keys(facts[engine].methods))
        expect(servingMethod.options).toContain(method);
    }
    for (const [method, f] of Object.entries<any>(facts.vllm.methods)) {
      expect(f.speculativeConfig.method).toBe(method);
    }
  });

  it("the DeepSeek-V4-Pro-DSpark example is valid, multi-node, and its serve Task carries no draft model", () => {
    const m = example("specserve-deepseek-v4-pro-dspark.yaml");
    const v = validateResource(m);
    expect(v.ok ? [] : v.errors).toEqual([]);
    const ss = specServeResource.parse(m);
    expect(ss.spec.engine).toBe(facts.examples["deepseek-v4-pro-dspark"].engine);
    expect(ss.spec.method).toBe(facts.examples["deepseek-v4-pro-dspark"].method);
    expect(ss.spec.resources.nodesPerReplica).toBeGreaterThan(1);
    const plan = planDraft(ss, undefined);
    expect(plan).toEqual({ state: "ready", display: "built-in" });
    const task = serveTask(ss, undefined) as any;
    expect(parseTask(task).ok).toBe(true);
    expect(task.params.draft).toBeUndefined();
    expect(task.params.method).toBe("dspark");
  });
});
