import { describe, expect, it } from "vitest";
import { accrueCost, type CostClock, gpusOfReplica } from "./cost.ts";

describe("fleet cost integration", () => {
  it("the first call only starts the clock", () => {
    const a = accrueCost(undefined, 1000, 8, 5000);
    expect(a).toEqual({
      clock: { timeSeconds: 1000, gpus: 8 },
      gpuHours: 0,
      generatedTokens: 0,
      tokensPerGpuHour: null,
    });
  });

  it("integrates the GPUs asked for at each interval's start, pods still starting included", () => {
    // 2 replicas of 2 GPUs for 30 min, then a scale to 5 replicas held 90 min, then down to 1.
    const gpus = gpusOfReplica(2);
    let clock: CostClock | undefined;
    let hours = 0;
    let tokens = 0;
    const steps: [number, number, number | null][] = [
      [0, 2, null],
      [1800, 5, 1000],
      [7200, 1, 2000],
    ];
    const perGpuHour: (number | null)[] = [];
    for (const [t, replicas, rate] of steps) {
      const a = accrueCost(clock, t, replicas * gpus, rate);
      clock = a.clock;
      hours += a.gpuHours;
      tokens += a.generatedTokens;
      perGpuHour.push(a.tokensPerGpuHour);
    }
    // 4 GPUs x 0.5 h + 10 GPUs x 1.5 h.
    expect(hours).toBeCloseTo(2 + 15, 9);
    expect(tokens).toBe(1000 * 1800 + 2000 * 5400);
    // Over the first interval 1000 tok/s on 4 GPUs; over the second 2000 tok/s on 10 GPUs.
    expect(perGpuHour).toEqual([null, 900_000, 720_000]);
  });

  it("no rate: GPU-hours accrue, tokens do not, and tokens per GPU-hour is unknown", () => {
    const a = accrueCost({ timeSeconds: 0, gpus: 4 }, 3600, 4, null);
    expect(a).toMatchObject({ gpuHours: 4, generatedTokens: 0, tokensPerGpuHour: null });
  });

  it("a clock that goes back accrues nothing; no GPUs gives no ratio", () => {
    expect(accrueCost({ timeSeconds: 100, gpus: 4 }, 50, 4, 10).gpuHours).toBe(0);
    expect(accrueCost({ timeSeconds: 0, gpus: 0 }, 60, 0, 10).tokensPerGpuHour).toBeNull();
  });

  it("a replica's GPUs are per node times nodes", () => {
    expect(gpusOfReplica(8, 2)).toBe(16);
  });
});
