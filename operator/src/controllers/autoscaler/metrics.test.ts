import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { StepOutput } from "./decide.ts";
import { AutoscalerMetrics } from "./metrics.ts";

const output = (reason: string, desired: number, current: number, write?: number): StepOutput =>
  ({
    write,
    decision: {
      desiredReplicas: desired,
      currentReplicas: current,
      reason,
      message: "",
      metricsAvailable: true,
      figures: {
        tau: 3.5,
        projectedTau: 3.2,
        predictedTokensPerSecondPerUser: 120,
        measuredTokensPerSecondPerUser: 110,
      },
    },
    drift: {
      healthy: false,
      reason: "AcceptanceDrift",
      message: "",
      liveTau: 3.5,
      baselineTau: 4.5,
      drop: 0.22,
    },
  }) as unknown as StepOutput;

describe("the autoscaler's operator metrics", () => {
  it("exports one series set per SpecServe, keeps one reason series and removes them all", async () => {
    const registry = new Registry();
    const m = new AutoscalerMetrics(registry);
    m.record("ns", "chat", output("ScaleUp", 3, 2, 3));
    m.record("ns", "chat", output("Steady", 3, 3));
    let text = await registry.metrics();
    expect(text).toContain('specops_autoscaler_desired_replicas{namespace="ns",specserve="chat"} 3');
    expect(text).toContain('specops_autoscaler_tau{namespace="ns",specserve="chat"} 3.5');
    expect(text).toContain('specops_autoscaler_acceptance_healthy{namespace="ns",specserve="chat"} 0');
    expect(text).toContain('specops_autoscaler_decision{namespace="ns",specserve="chat",reason="Steady"} 1');
    expect(text).not.toContain('reason="ScaleUp"');
    expect(text).toContain(
      'specops_autoscaler_scale_events_total{namespace="ns",specserve="chat",direction="up"} 1',
    );
    m.remove("ns", "chat");
    text = await registry.metrics();
    expect(text).not.toContain('specserve="chat"} ');
    expect(text).not.toContain('reason="Steady"');
    expect(text).not.toContain('direction="up"');
  });
});
