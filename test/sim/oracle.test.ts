// The oracle's defining property: with the simulator's own physics, its schedule meets the SLOs
// every minute and one replica fewer in any minute breaks that minute.
import { describe, expect, it } from "vitest";
import { fewestReplicas, fillShortDips, oracle, runSchedule } from "./oracle.ts";
import { DEFAULT_PARAMS } from "./params.ts";
import { parseTraces, type Trace } from "./traces.ts";

const p = DEFAULT_PARAMS;
// Eight minutes of rising chat-heavy load: one replica is not enough after the first minutes.
const [ramp] = parseTraces(
  [20, 30, 45, 60, 75, 90, 90, 90].map((rate, minute) => ({
    minute,
    rate,
    out_tokens: 400,
    prompt_tokens: 300,
    mix: { code: 0.3, chat: 0.7 },
  })),
) as [Trace];

describe("clairvoyant oracle", () => {
  const fewest = fewestReplicas(ramp, p);

  it("needs more replicas as the load rises, and its schedule meets the SLOs every minute", () => {
    expect(fewest[0]).toBeLessThan(fewest[fewest.length - 1] as number);
    const run = runSchedule(ramp, p, fewest);
    expect(run.minutes.every((m) => m.met)).toBe(true);
  });

  it("is the fewest: one replica fewer in any minute misses the SLO in that minute", () => {
    let checked = 0;
    fewest.forEach((n, m) => {
      if (n <= p.minReplicas) return;
      const fewer = [...fewest];
      fewer[m] = n - 1;
      expect(runSchedule(ramp, p, fewer).minutes[m]?.met, `minute ${m} with ${n - 1}`).toBe(false);
      checked++;
    });
    expect(checked).toBeGreaterThan(3);
  });

  it("pays for cold starts: a pod that joins costs its start-up seconds besides its serving time", () => {
    const flat = [2, 2, 2, 2, 2, 2, 2, 2];
    const joined = [2, 2, 2, 2, 3, 3, 3, 3];
    const extra = runSchedule(ramp, p, joined).gpuHours - runSchedule(ramp, p, flat).gpuHours;
    expect(extra * 3600).toBeGreaterThanOrEqual(4 * 60 + p.coldStartSeconds.min - 1);
  });

  it("keeps replicas through dips shorter than a cold start, not through longer ones", () => {
    expect(fillShortDips([3, 2, 2, 3, 1, 1, 1, 1, 1, 1, 3], 5)).toEqual([3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3]);
    expect(fillShortDips([1, 4, 2, 4, 4, 1], 3)).toEqual([1, 4, 4, 4, 4, 1]);
    // What it provisions is never below the fewest, and meets the SLOs too.
    const o = oracle(ramp, p);
    o.provisioned.forEach((n, m) => {
      expect(n).toBeGreaterThanOrEqual(o.fewest[m] as number);
    });
    expect(o.result.attainment).toBe(1);
  });
});
