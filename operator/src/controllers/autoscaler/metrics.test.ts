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

  it("integrates GPU-hours and generated tokens per SpecServe, labelled with the GPU product", async () => {
    const registry = new Registry();
    const m = new AutoscalerMetrics(registry);
    const t0 = Date.parse("2026-12-01T12:00:00Z");
    const cost = (minutes: number, rate: number | null, gpuProduct?: string) => ({
      nowMs: t0 + minutes * 60_000,
      gpusPerReplica: 2,
      gpuProduct,
      generationTokensPerSecond: rate,
    });
    // Two replicas, scaled to four at minute 30 (the new pods still starting count from then).
    m.record("ns", "chat", output("Steady", 2, 2), cost(0, null, "NVIDIA-H200"));
    m.record("ns", "chat", output("ScaleUp", 4, 2, 4), cost(30, 1000, "NVIDIA-H200"));
    m.record("ns", "chat", output("Steady", 4, 4), cost(60, 4000, "NVIDIA-H200"));
    const l = 'namespace="ns",specserve="chat",gpu_product="NVIDIA-H200"';
    let text = await registry.metrics();
    // 4 GPUs x 0.5 h + 8 GPUs x 0.5 h.
    expect(text).toContain(`specops_autoscaler_gpu_hours_total{${l}} 6`);
    expect(text).toContain(`specops_autoscaler_generated_tokens_total{${l}} ${1000 * 1800 + 4000 * 1800}`);
    // The last half hour: 4000 tok/s on 8 GPUs.
    expect(text).toContain(`specops_autoscaler_generated_tokens_per_gpu_hour{${l}} 1800000`);
    // Without a GPU product the label is left out; the old series go.
    m.record("ns", "chat", output("Steady", 4, 4), cost(90, 4000));
    text = await registry.metrics();
    expect(text).not.toContain("NVIDIA-H200");
    expect(text).toContain('specops_autoscaler_gpu_hours_total{namespace="ns",specserve="chat"} 4');
    m.remove("ns", "chat");
    text = await registry.metrics();
    expect(text).not.toContain('specserve="chat"');
  });
});
