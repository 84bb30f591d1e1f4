import { describe, expect, it } from "vitest";
import { type SpecServe, specServeResource } from "../../api/kinds.ts";
import { deriveSignals } from "../../autoscaler/signals.ts";
import { baselineConfigMap, baselineFromConfigMap, counterTotals } from "./baseline.ts";
import { measureTau } from "./gate.ts";

const ss: SpecServe = specServeResource.parse({
  apiVersion: "specops.dev/v1alpha1",
  kind: "SpecServe",
  metadata: { name: "chat", namespace: "serving", uid: "ss-uid" },
  spec: {
    target: { uri: "hf://Qwen/Qwen3-8B" },
    draft: { source: { uri: "hf://org/d" } },
    method: "eagle3",
  },
});

const l = 'engine="0",model_name="hf://Qwen/Qwen3-8B"';
/** A full vLLM page: the counters the gate differences among others it does not. */
const page = (rounds: number, perPos: number[]) =>
  [
    "# HELP vllm:spec_decode_num_drafts Number of spec decoding drafts.",
    "# TYPE vllm:spec_decode_num_drafts counter",
    `vllm:spec_decode_num_drafts_total{${l}} ${rounds}`,
    `vllm:spec_decode_num_drafts_created{${l}} 1.7e9`,
    "# TYPE vllm:spec_decode_num_accepted_tokens counter",
    `vllm:spec_decode_num_accepted_tokens_total{${l}} ${perPos.reduce((a, b) => a + b, 0)}`,
    "# TYPE vllm:spec_decode_num_accepted_tokens_per_pos counter",
    ...perPos.map((v, i) => `vllm:spec_decode_num_accepted_tokens_per_pos_total{${l},position="${i}"} ${v}`),
    "# TYPE vllm:generation_tokens counter",
    `vllm:generation_tokens_total{${l}} ${rounds + perPos.reduce((a, b) => a + b, 0)}`,
    "# TYPE vllm:num_requests_running gauge",
    `vllm:num_requests_running{${l}} 7`,
    "# TYPE vllm:time_to_first_token_seconds histogram",
    ...[0.1, 0.5, 1, "+Inf"].map((le) => `vllm:time_to_first_token_seconds_bucket{${l},le="${le}"} 3`),
    `vllm:time_to_first_token_seconds_count{${l}} 3`,
    "",
  ].join("\n");

describe("rollout baseline: counter totals a restarted operator reads back", () => {
  it("keeps only the counters the gate differences", () => {
    const kept = counterTotals(page(100, [80, 50]));
    expect(kept).toMatch(
      /^vllm:spec_decode_num_drafts_total\{engine="0",model_name="hf:\/\/Qwen\/Qwen3-8B"\} 100$/m,
    );
    expect(kept).toMatch(/^vllm:spec_decode_num_drafts_created\{/m);
    expect(kept).toMatch(/^vllm:spec_decode_num_accepted_tokens_per_pos_total\{.*position="1"\} 50$/m);
    expect(kept).toMatch(/^vllm:generation_tokens_total\{/m);
    expect(kept).not.toMatch(/num_requests_running|time_to_first_token|# /);
    expect(counterTotals("something_else 1\n")).toBe("");
  });

  it("a window measured from the stored baseline equals one measured from the full scrapes", () => {
    const start = [
      { pod: "uid-1", text: page(1000, [800, 500]), time: 100 },
      { pod: "uid-2", text: page(50, [10, 5]), time: 100 },
    ];
    const end = [
      { pod: "uid-1", text: page(3000, [2400, 1500]), time: 160 },
      { pod: "uid-2", text: page(1050, [610, 305]), time: 160 },
    ];
    const cm = baselineConfigMap(ss, {
      candidate: "hf://org/new",
      timeMs: 100_000,
      canary: start,
      stable: [],
    });
    expect(cm.metadata).toMatchObject({ name: "chat-rollout-baseline", namespace: "serving" });
    const data = cm.data;
    expect(Object.keys(data).sort()).toEqual(["canary.uid-1", "canary.uid-2", "candidate", "time"]);
    const restored = baselineFromConfigMap(data, "hf://org/new");
    expect(restored?.timeMs).toBe(100_000);
    const fromFull = measureTau(deriveSignals(start, end, 60), 2);
    const fromStored = measureTau(deriveSignals(restored?.canary ?? [], end, 60), 2);
    expect(fromStored).toEqual(fromFull);
    expect(fromStored?.rounds).toBe(3000);
  });

  it("another candidate's baseline is not resumed", () => {
    const cm = baselineConfigMap(ss, { candidate: "hf://org/a", timeMs: 1, canary: [], stable: [] });
    expect(baselineFromConfigMap(cm.data, "hf://org/b")).toBeUndefined();
    expect(baselineFromConfigMap(undefined, "hf://org/b")).toBeUndefined();
  });
});
