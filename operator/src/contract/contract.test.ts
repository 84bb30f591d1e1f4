import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { MANAGED_ENGINE_FLAGS } from "../api/specserve.ts";
import { BACKENDS_BY_KIND, TASK_KINDS } from "./constants.ts";
import { EXIT_CODES, EXIT_REASONS, exitReasonOf, FAIL_JOB_EXIT_CODES } from "./exitCodes.ts";
import { generatedContractFiles } from "./generate.ts";
import { parseTask } from "./task.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const files = generatedContractFiles(root);
const json = (name: string) => JSON.parse(files.get(join(root, "runtime/contract", name)) ?? "null");

const out = { path: "/mnt/specops/pvc/work/run1" };
const trainTask = {
  apiVersion: "runtime.specops.dev/v1",
  kind: "train",
  backend: "deepspec",
  output: out,
  distributed: { nodes: 2, gpusPerNode: 8 },
  params: {
    target: { uri: "hf://Qwen/Qwen3-8B" },
    method: "dspark",
    targetCachePath: "/mnt/specops/pvc/work/cache",
    training: { maxSteps: 100, globalBatchSize: 64 },
  },
};

describe("runtime contract files", () => {
  it("are committed exactly as the zod source generates them (npm run contract)", () => {
    for (const [path, content] of files) expect(readFileSync(path, "utf8"), path).toBe(content);
  });

  it("task schema has one strict variant per kind with the allowed backends", () => {
    const schema = json("task.schema.json");
    const variants = schema.oneOf as Array<{
      properties: Record<string, { const?: string; enum?: string[] }>;
    }>;
    expect(variants.map((v) => v.properties.kind?.const)).toEqual([...TASK_KINDS]);
    for (const v of variants) {
      const kind = v.properties.kind?.const as (typeof TASK_KINDS)[number];
      expect(v.properties.backend?.enum).toEqual([...BACKENDS_BY_KIND[kind]]);
      expect((v as { additionalProperties?: unknown }).additionalProperties).toBe(false);
    }
  });

  it("exit codes are distinct, in range and mirrored into exit-codes.json", () => {
    const codes = EXIT_REASONS.map((r) => EXIT_CODES[r].code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) expect(c >= 0 && c <= 255).toBe(true);
    expect(json("exit-codes.json").exitCodes.invalidTask.code).toBe(EXIT_CODES.invalidTask.code);
    expect(exitReasonOf(13)).toBe("retriableInfrastructure");
    expect(FAIL_JOB_EXIT_CODES).toContain(EXIT_CODES.invalidTask.code);
    expect(FAIL_JOB_EXIT_CODES).not.toContain(EXIT_CODES.retriableInfrastructure.code);
  });

  it("constants carry the managed engine flags of the SpecServe API", () => {
    const c = json("constants.json");
    expect(c.managedEngineFlags).toEqual([...MANAGED_ENGINE_FLAGS]);
    expect(new RegExp(c.managedEngineFlagPattern).test("--speculative-config={}")).toBe(true);
    expect(c.progress.defaultPort).toBe(9090);
    expect(c.terminationMessage.maxBytes).toBe(4096);
  });
});

describe("parseTask", () => {
  it("accepts a train task and applies defaults", () => {
    const r = parseTask(trainTask);
    expect(r.ok).toBe(true);
    if (!r.ok || r.value.kind !== "train") return;
    expect(r.value.params.training.learningRate).toBe(0.0006);
    expect(r.value.params.draft.blockSize).toBe(7);
    expect(r.value.distributed.masterPort).toBe(29500);
  });

  it("names the field of an out-of-range hyperparameter", () => {
    const bad = structuredClone(trainTask);
    (bad.params.training as Record<string, unknown>).learningRate = 5;
    const r = parseTask(bad);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => e.field)).toContain("params.training.learningRate");
  });

  it("refuses a backend the kind does not allow and a deepspec train without a target cache", () => {
    const wrongBackend = parseTask({ ...trainTask, backend: "vllm" });
    expect(wrongBackend.ok).toBe(false);
    const { targetCachePath: _dropped, ...params } = trainTask.params;
    const noCache = parseTask({ ...trainTask, params });
    expect(noCache.ok).toBe(false);
    if (!noCache.ok) expect(noCache.errors[0]?.field).toBe("params.targetCachePath");
  });

  it("runs the API's CEL rules (epochs and maxSteps are exclusive)", () => {
    const bad = structuredClone(trainTask);
    (bad.params.training as Record<string, unknown>).epochs = 3;
    expect(parseTask(bad).ok).toBe(false);
  });

  it("accepts a serve task for vllm", () => {
    const r = parseTask({
      apiVersion: "runtime.specops.dev/v1",
      kind: "serve",
      backend: "vllm",
      output: out,
      params: {
        target: { uri: "hf://Qwen/Qwen3-8B" },
        draft: { uri: "pvc://drafts/dspark-8b/step_latest" },
        method: "dspark",
        speculative: { numSpeculativeTokens: 7 },
      },
    });
    expect(r.ok).toBe(true);
  });
});
