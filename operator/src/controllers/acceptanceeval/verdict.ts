// Summary and gate verdict from per-task figures: the same rules as the runtime agent's gate.py, so a
// verdict recomputed here from status always matches the one in the result file.
import type { z } from "zod";
import type { acceptanceEvalSpec, acceptanceEvalStatus } from "../../api/acceptanceeval.ts";
import type { taskResult } from "../../api/tasks.ts";

export type TaskResult = z.infer<typeof taskResult>;
export type Gate = NonNullable<z.infer<typeof acceptanceEvalSpec>["gate"]>;
type Status = z.infer<typeof acceptanceEvalStatus>;
export type Summary = NonNullable<Status["summary"]>;
export type GateOutcome = NonNullable<Status["gate"]>;

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const fmt = (x: number) => String(Math.round(x * 1000) / 1000);

export function summarize(results: TaskResult[]): Summary {
  const speedups = results.flatMap((r) => (r.speedup !== undefined ? [r.speedup] : []));
  return {
    macroTau: results.length ? mean(results.map((r) => r.tau)) : 0,
    ...(speedups.length ? { macroSpeedup: mean(speedups) } : {}),
    samples: results.reduce((n, r) => n + r.samples, 0),
  };
}

/** Passed only when every threshold set is met; a threshold exactly met passes. */
export function verdict(gate: Gate | undefined, results: TaskResult[], summary: Summary): GateOutcome {
  const thresholds = gate && (gate.minTau ?? gate.minSpeedup ?? gate.minTauPerTask);
  if (!gate || thresholds === undefined) return { verdict: "NotEvaluated" };
  const reasons: string[] = [];
  if (gate.minTau !== undefined && summary.macroTau < gate.minTau)
    reasons.push(`macro tau ${fmt(summary.macroTau)} < minTau ${gate.minTau}`);
  const byName = new Map(results.map((r) => [r.name, r]));
  for (const [name, need] of Object.entries(gate.minTauPerTask ?? {})) {
    const got = byName.get(name)?.tau;
    if (got === undefined) reasons.push(`${name}: no result (minTau ${need})`);
    else if (got < need) reasons.push(`${name}: tau ${fmt(got)} < ${need}`);
  }
  if (gate.minSpeedup !== undefined) {
    const got = summary.macroSpeedup;
    if (got === undefined)
      reasons.push(`macro speedup not measured (baseline off) < minSpeedup ${gate.minSpeedup}`);
    else if (got < gate.minSpeedup) reasons.push(`macro speedup ${fmt(got)} < minSpeedup ${gate.minSpeedup}`);
  }
  return reasons.length ? { verdict: "Failed", reasons } : { verdict: "Passed" };
}
