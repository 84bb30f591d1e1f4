// The acceptance figures on /metrics: exported once an evaluation succeeded, labelled for the
// leaderboard, and removed when it goes.
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { acceptanceEval } from "../../../../test/fixtures/acceptanceeval.ts";
import { AcceptanceMetrics } from "./metrics.ts";
import { leaderboardLabels } from "./plan.ts";

describe("AcceptanceMetrics", () => {
  it("exports a finished evaluation's figures per task and removes them with the object", async () => {
    const registry = new Registry();
    const metrics = new AcceptanceMetrics(registry);
    const base = acceptanceEval("tiny-acceptanceeval.yaml");
    const labels = leaderboardLabels(base);
    const ae = {
      ...base,
      metadata: { ...base.metadata, labels },
      status: {
        phase: "Succeeded" as const,
        summary: { macroTau: 2.1, macroSpeedup: 0.9, samples: 64 },
        results: [
          { name: "tiny-math", samples: 32, tau: 2.4, verifyRate: 0.5, speedup: 0.95 },
          { name: "tiny-chat", samples: 32, tau: 1.8 },
        ],
      },
    };
    metrics.record(ae);
    const text = await registry.metrics();
    const l = `namespace="ml",acceptanceeval="tiny-dflash-acceptance",target="${labels["specops.dev/target"]}",method="dflash",task_set="${labels["specops.dev/task-set"]}"`;
    expect(text).toContain(`specops_acceptance_macro_tau{${l}} 2.1`);
    expect(text).toContain(`specops_acceptance_tau{${l},task="tiny-math"} 2.4`);
    expect(text).toContain(`specops_acceptance_tau{${l},task="tiny-chat"} 1.8`);
    expect(text).toContain(`specops_acceptance_speedup{${l},task="tiny-math"} 0.95`);
    expect(text).not.toContain(`specops_acceptance_speedup{${l},task="tiny-chat"}`);
    metrics.remove("ml/tiny-dflash-acceptance");
    expect(await registry.metrics()).not.toContain("acceptanceeval=");
  });

  it("exports nothing for an evaluation that has not succeeded", async () => {
    const registry = new Registry();
    const metrics = new AcceptanceMetrics(registry);
    metrics.record({ ...acceptanceEval("tiny-acceptanceeval.yaml"), status: { phase: "Running" } });
    expect(await registry.metrics()).not.toContain("acceptanceeval=");
  });
});
