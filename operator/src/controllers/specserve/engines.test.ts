// The serve Task the SpecServe controller writes, through the runtime's real engine adapters
// (runtime/specops_runtime/adapters, the code that runs in the pod): the exact vLLM and SGLang
// command lines a SpecServe turns into. The adapters' own tests hold them to upstream's flags.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type SpecServe, specServeResource } from "../../api/kinds.ts";
import * as desired from "./desired.ts";
import { planDraft, serveTask } from "./plan.ts";

const root = join(import.meta.dirname, "../../../..");
const python = join(root, "runtime/.venv/bin/python");
const SNIPPET = `
import json, sys
from specops_runtime.adapters import engines, sglang, vllm
task = json.load(sys.stdin)
p = task["params"]
strip = lambda u: u.split("://", 1)[1] if u else None
target = strip(p["target"]["uri"])
draft = strip((p.get("draft") or {}).get("uri"))
fmt = engines.draft_format(p, draft)
adapter = {"vllm": vllm, "sglang": sglang}[task["backend"]]
print(json.dumps(adapter.command(p, target, draft, fmt, p["target"].get("revision"))))
`;

function commandFor(spec: Record<string, unknown>): string[] {
  const ss: SpecServe = specServeResource.parse({
    apiVersion: "specops.dev/v1alpha1",
    kind: "SpecServe",
    metadata: { name: "chat", namespace: "ns" },
    spec: { target: { uri: "hf://Qwen/Qwen3-8B" }, resources: { gpusPerReplica: 2 }, ...spec },
  });
  const plan = planDraft(ss, undefined);
  if (plan.state !== "ready") throw new Error("draft not ready");
  // Exactly the document the pod reads: the ConfigMap's task.json.
  const cm = desired.taskConfigMap(ss, serveTask(ss, plan.source)) as unknown as {
    data: Record<string, string>;
  };
  const run = spawnSync(python, ["-c", SNIPPET], {
    cwd: join(root, "runtime"),
    input: cm.data["task.json"],
    encoding: "utf8",
  });
  if (run.status !== 0) throw new Error(run.stderr);
  return JSON.parse(run.stdout);
}

const flag = (cmd: string[], name: string) => cmd[cmd.indexOf(name) + 1] ?? "";

describe("serve Task -> engine command (runtime adapters)", () => {
  it("vLLM: method, draft and k in --speculative-config; TP from gpusPerReplica; extra args last", () => {
    const cmd = commandFor({
      engine: "vllm",
      method: "eagle3",
      draft: { source: { uri: "hf://org/qwen3-8b-eagle3" } },
      speculative: { numSpeculativeTokens: 5 },
      extraEngineArgs: ["--max-model-len=32768"],
    });
    expect(cmd.slice(0, 3)).toEqual(["vllm", "serve", "Qwen/Qwen3-8B"]);
    expect(JSON.parse(flag(cmd, "--speculative-config"))).toEqual({
      method: "eagle3",
      model: "org/qwen3-8b-eagle3",
      num_speculative_tokens: 5,
    });
    expect(flag(cmd, "--tensor-parallel-size")).toBe("2");
    expect(flag(cmd, "--port")).toBe("8000");
    expect(cmd.at(-1)).toBe("--max-model-len=32768");
  });

  it("SGLang: the verify window is k + 1 for a chain EAGLE3 draft", () => {
    const cmd = commandFor({
      engine: "sglang",
      method: "eagle3",
      draft: { source: { uri: "hf://org/qwen3-8b-eagle3" } },
      speculative: { numSpeculativeTokens: 3 },
    });
    expect(flag(cmd, "--speculative-algorithm")).toBe("EAGLE3");
    expect(flag(cmd, "--speculative-num-steps")).toBe("3");
    expect(flag(cmd, "--speculative-eagle-topk")).toBe("1");
    expect(flag(cmd, "--speculative-num-draft-tokens")).toBe("4");
    expect(flag(cmd, "--tp-size")).toBe("2");
  });

  it("vLLM, DSpark built into the target (DeepSeek-V4): method dspark with no draft model", () => {
    const cmd = commandFor({
      engine: "vllm",
      method: "dspark",
      draft: { builtIn: {} },
      speculative: { numSpeculativeTokens: 7 },
    });
    const cfg = JSON.parse(flag(cmd, "--speculative-config"));
    expect(cfg).toMatchObject({ method: "dspark", num_speculative_tokens: 7 });
    expect(cfg.model).toBeUndefined();
  });

  it("the API key is never on the command line (it reaches the engine as secretKeyRef env)", () => {
    const cmd = commandFor({
      engine: "vllm",
      method: "eagle3",
      draft: { source: { uri: "hf://org/d" } },
      apiKeySecretRef: { name: "k", key: "key" },
    });
    expect(cmd.join(" ")).not.toMatch(/api-key/);
  });
});
