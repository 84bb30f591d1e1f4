// The clairvoyant oracle: it knows the trace, the arrivals' noise and the true acceptance, and finds,
// minute by minute, the fewest ready replicas whose simulated minute meets the SLOs, by trying counts
// on copies of the fleet with the simulator's own physics (not any capacity model). Each replica it
// adds was started exactly one cold start earlier (it knows that pod's cold start), and those
// starting seconds count as GPU time; a dip in the need shorter than a cold start keeps its
// replicas (dropping and restarting them would cost at least as much). Its GPU-hours are the limit
// the policies are measured against.
import type { SimParams } from "./params.ts";
import { rng } from "./rng.ts";
import { Fleet, type SimResult, stepNoise } from "./simulate.ts";
import type { Trace } from "./traces.ts";

/** The fleet with `replicas` ready after one minute from `from` (a copy; `from` is not changed). */
function tryMinute(from: Fleet, minute: number, replicas: number): Fleet {
  const f = from.clone();
  f.resize(replicas, minute * 60, () => minute * 60);
  f.runMinute(minute);
  return f;
}

const metLast = (f: Fleet) => f.minutes[f.minutes.length - 1]?.met ?? true;

/**
 * Per minute, the fewest ready replicas that meet the SLOs given the fleet the earlier minutes left
 * (greedy: from the previous minute's count, down while the minute still meets, else up until it
 * does; maxReplicas when none does).
 */
export function fewestReplicas(trace: Trace, params: SimParams, first?: number): number[] {
  const noise = stepNoise(trace, params);
  let fleet = new Fleet(trace, params, noise, 0);
  let n = Math.max(params.minReplicas, first ?? params.minReplicas);
  const out: number[] = [];
  for (let m = 0; m < trace.minutes.length; m++) {
    let best = tryMinute(fleet, m, n);
    if (metLast(best)) {
      while (n > params.minReplicas) {
        const fewer = tryMinute(fleet, m, n - 1);
        if (!metLast(fewer)) break;
        n--;
        best = fewer;
      }
    } else {
      while (n < params.maxReplicas) {
        n++;
        best = tryMinute(fleet, m, n);
        if (metLast(best)) break;
      }
    }
    out.push(n);
    fleet = best;
  }
  return out;
}

/** Keeps replicas through a dip in the need shorter than `minutes` (both sides at least as high). */
export function fillShortDips(need: number[], minutes: number): number[] {
  const out = [...need];
  const top = Math.max(0, ...need);
  for (let level = 1; level <= top; level++) {
    let m = 0;
    while (m < out.length) {
      if ((out[m] as number) >= level || m === 0) {
        m++;
        continue;
      }
      let end = m;
      while (end < out.length && (out[end] as number) < level) end++;
      // A dip below `level` from m to end - 1, bounded by `level` on both sides.
      if (end < out.length && (out[m - 1] as number) >= level && end - m < minutes)
        for (let j = m; j < end; j++) out[j] = Math.max(out[j] as number, level);
      m = end;
    }
  }
  return out;
}

/**
 * Runs a schedule of ready replicas per minute: each pod that joins at a minute was started its cold
 * start (drawn as in the simulator) earlier, and those seconds count as GPU time (within the trace).
 */
export function runSchedule(trace: Trace, params: SimParams, ready: number[]): SimResult {
  const coldNoise = rng(params.seed + 2);
  const coldStart = () =>
    params.coldStartSeconds.min + coldNoise() * (params.coldStartSeconds.max - params.coldStartSeconds.min);
  const fleet = new Fleet(trace, params, stepNoise(trace, params), 0);
  const decisions: SimResult["decisions"] = [];
  for (let m = 0; m < trace.minutes.length; m++) {
    const want = ready[m] ?? params.minReplicas;
    const before = fleet.active().length;
    if (m > 0 && want !== before) decisions.push({ time: m * 60, from: before, to: want });
    const now = m * 60;
    fleet.resize(want, now, () => {
      if (m > 0) fleet.gpuSeconds += Math.min(now, coldStart());
      return now;
    });
    fleet.runMinute(m);
  }
  return fleet.result(decisions);
}

export interface OracleOutcome {
  /** The fewest ready replicas per minute. */
  fewest: number[];
  /** What it provisions: `fewest` with dips shorter than a mean cold start kept. */
  provisioned: number[];
  result: SimResult;
  /** The fewest-replicas schedule run as it is (its scale events: the least churn of a lowest-cost fleet). */
  fewestResult: SimResult;
}

export function oracle(trace: Trace, params: SimParams, first?: number): OracleOutcome {
  const fewest = fewestReplicas(trace, params, first);
  const meanColdMinutes = (params.coldStartSeconds.min + params.coldStartSeconds.max) / 2 / 60;
  const provisioned = fillShortDips(fewest, meanColdMinutes);
  const fewestResult = runSchedule(trace, params, fewest);
  const result = runSchedule(trace, params, provisioned);
  return { fewest, provisioned, result, fewestResult };
}
