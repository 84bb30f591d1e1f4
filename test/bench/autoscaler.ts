// `npm run bench -- autoscaler [--trace FILE] [--params FILE] [--svg DIR]`: the fleet simulator
// (test/sim/) runs SpecOps' real signal parser and decision code against the baselines and a
// clairvoyant oracle on the same traces and seeds. Each baseline's knobs are grid-searched; its best
// setting is reported. Prints a table per trace and ends with the BENCH line.
import { readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import type { OracleOutcome } from "../sim/oracle.ts";
import { DEFAULT_PARAMS, type SimParams, withOverrides } from "../sim/params.ts";
import { describeSpec, type PolicySpec, SPECOPS_DEFAULTS } from "../sim/policies.ts";
import type { SimResult } from "../sim/simulate.ts";
import { chart } from "../sim/svg.ts";
import { parseTraces, SHIFT_MINUTE, type Trace } from "../sim/traces.ts";
import type { Job } from "../sim/worker.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const { values } = parseArgs({
  args: process.argv.slice(3),
  options: { trace: { type: "string" }, params: { type: "string" }, svg: { type: "string" } },
});
const traceFile = values.trace ?? join(root, "test/sim/traces/default.json");
const traces = parseTraces(JSON.parse(readFileSync(traceFile, "utf8")), traceFile);
const params: SimParams = values.params
  ? withOverrides(DEFAULT_PARAMS, JSON.parse(readFileSync(values.params, "utf8")))
  : DEFAULT_PARAMS;
const svgDir = values.svg ?? (values.trace ? undefined : join(root, "docs/benchmarks"));

// --- a small worker pool ----------------------------------------------------------------------------
const workers = Array.from(
  { length: Math.max(1, Math.min(2, availableParallelism())) },
  () => new Worker(new URL("../sim/worker.ts", import.meta.url)),
);
const idle = [...workers];
type Reply = { id: number; result: SimResult; oracle?: OracleOutcome };
const queue: { job: Job; resolve: (r: Reply) => void }[] = [];
const pending = new Map<number, (r: Reply) => void>();
let nextJob = 0;
for (const w of workers)
  w.on("message", (m: Reply) => {
    pending.get(m.id)?.(m);
    pending.delete(m.id);
    idle.push(w);
    pump();
  });
function pump() {
  while (idle.length && queue.length) {
    const w = idle.pop() as Worker;
    const { job, resolve } = queue.shift() as (typeof queue)[number];
    pending.set(job.id, resolve);
    w.postMessage(job);
  }
}
const submit = (trace: Trace, spec: PolicySpec, initialReplicas: number) =>
  new Promise<Reply>((resolve) => {
    queue.push({ job: { id: nextJob++, trace, params, spec, initialReplicas }, resolve });
    pump();
  });
const run = async (trace: Trace, spec: PolicySpec, initialReplicas: number) =>
  (await submit(trace, spec, initialReplicas)).result;

// --- the grids ------------------------------------------------------------------------------------------
// Each grid reaches past its best setting on both sides where a knob is ordered (none sits at an edge
// of the grid unless the edge is the knob's natural end).
const GRIDS: Record<string, PolicySpec[]> = {
  "KubeAI concurrency target": [32, 64, 128].flatMap((targetRequests) =>
    [120, 600].map((windowSeconds): PolicySpec => ({ kind: "kubeai", targetRequests, windowSeconds })),
  ),
  "Queue length (KEDA)": [1, 2, 5].map((targetWaiting): PolicySpec => ({ kind: "queue", targetWaiting })),
  "llm-d SLO ratio": [
    [0.8, 0.6],
    [0.7, 0.5],
    [0.55, 0.4],
    [0.45, 0.3],
    [0.35, 0.2],
  ].map(([up, down]): PolicySpec => ({ kind: "slo-ratio", up: up as number, down: down as number })),
  "Planner, acceptance-blind": [1.3, 1.6, 2.0].flatMap((headroom) =>
    [4.0, 5.0].map((profiledTau): PolicySpec => ({ kind: "planner", headroom, profiledTau })),
  ),
  "Planner + accept length (Dynamo)": [1.3, 1.5, 1.8, 2.2].map(
    (headroom): PolicySpec => ({ kind: "planner", headroom, profiledTau: null }),
  ),
};
// SpecOps runs the operator's own tuning (operator/src/autoscaler/tuning.ts), not a setting of the bench's.
const SPECOPS: PolicySpec = { kind: "specops", ...SPECOPS_DEFAULTS };

interface Outcome {
  spec: PolicySpec;
  results: SimResult[];
}
const minutesMet = (rs: SimResult[]) =>
  rs.reduce((a, r) => a + r.minutes.filter((m) => m.met).length, 0) /
  rs.reduce((a, r) => a + r.minutes.length, 0);
const gpuHours = (rs: SimResult[]) => rs.reduce((a, r) => a + r.gpuHours, 0);
const events = (rs: SimResult[]) => rs.reduce((a, r) => a + r.scaleEvents, 0);
/** Best of a grid: the cheapest setting reaching 99% overall, else the highest attainment. */
function best(outcomes: Outcome[]): Outcome {
  const ok = outcomes.filter((o) => minutesMet(o.results) >= 0.99);
  const pool = ok.length ? ok : outcomes;
  return pool.reduce((a, b) =>
    ok.length
      ? gpuHours(b.results) < gpuHours(a.results)
        ? b
        : a
      : minutesMet(b.results) > minutesMet(a.results)
        ? b
        : a,
  );
}

const started = performance.now();
// The oracle first: its fewest replicas per minute size every policy's start (1.5x the first minute's
// need) and the static fleets' search.
const oracles = await Promise.all(
  traces.map(async (t) => (await submit(t, { kind: "oracle" }, params.minReplicas)).oracle as OracleOutcome),
);
const initial = oracles.map((o) => Math.min(params.maxReplicas, Math.ceil((o.fewest[0] ?? 1) * 1.5)));
const runAll = (spec: PolicySpec) => Promise.all(traces.map((t, i) => run(t, spec, initial[i] as number)));

const gridRuns = Object.fromEntries(
  Object.entries(GRIDS).map(([name, specs]) => [
    name,
    Promise.all(specs.map(async (spec) => ({ spec, results: await runAll(spec) }))),
  ]),
);
// Static for the peak: per trace, the fewest replicas reaching 99% of minutes, searched one replica at
// a time from the oracle's peak (down while it still reaches 99%, else up).
const staticRuns = traces.map(async (t, i) => {
  const runStatic = async (replicas: number) => ({
    replicas,
    result: await run(t, { kind: "static", replicas }, replicas),
  });
  let pick = await runStatic(Math.max(...(oracles[i]?.fewest ?? [1])));
  if (pick.result.attainment >= 0.99) {
    while (pick.replicas > params.minReplicas) {
      const fewer = await runStatic(pick.replicas - 1);
      if (fewer.result.attainment < 0.99) break;
      pick = fewer;
    }
  } else
    while (pick.replicas < params.maxReplicas && pick.result.attainment < 0.99)
      pick = await runStatic(pick.replicas + 1);
  return pick;
});
const specopsRun = runAll(SPECOPS);
// The lead time needs a blind planner that breaches on the shift: the acceptance-blind planner at
// SpecOps' own headroom (x(1 + headroom), the best grid setting's profiled tau), from the same start.
const shiftAt = traces.findIndex((t) => t.name === "code-to-chat");
const LEAD_PLANNER: PolicySpec = {
  kind: "planner",
  headroom: Number((1 + SPECOPS_DEFAULTS.headroom).toFixed(2)),
  profiledTau: 5,
};
const leadPlannerRun =
  shiftAt >= 0 ? run(traces[shiftAt] as Trace, LEAD_PLANNER, initial[shiftAt] as number) : null;

const baselines: { name: string; outcome: Outcome; setting: string }[] = [];
const staticPick = await Promise.all(staticRuns);
baselines.push({
  name: "Static for the peak",
  outcome: { spec: { kind: "static", replicas: 0 }, results: staticPick.map((s) => s.result) },
  setting: `per trace: ${staticPick.map((s) => s.replicas).join(" / ")} replicas`,
});
const grids: Record<string, Outcome[]> = {};
for (const [name, p] of Object.entries(gridRuns)) {
  grids[name] = await p;
  const b = best(grids[name] as Outcome[]);
  baselines.push({ name, outcome: b, setting: describeSpec(b.spec) });
}
const specops = await specopsRun;
const leadPlannerResult = await leadPlannerRun;
for (const w of workers) await w.terminate();

// --- report ------------------------------------------------------------------------------------------------
const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
const rows = [
  ...baselines.map((b) => ({ name: b.name, setting: b.setting, results: b.outcome.results })),
  { name: "SpecOps", setting: describeSpec(SPECOPS), results: specops },
  {
    name: "Oracle (clairvoyant)",
    setting: `${describeSpec({ kind: "oracle" })}; peak per trace ${oracles.map((o) => Math.max(...o.fewest)).join(" / ")}`,
    results: oracles.map((o) => o.result),
  },
];
console.log(
  `Fleet simulator: Qwen3-8B + DSpark draft (k=${params.numSpeculativeTokens}) per H200 replica, first-principles SPS(B); ` +
    `SLOs p95 TTFT ${params.slo.ttftP95}s, p95 TPOT ${params.slo.tpotP95 * 1000}ms, p5 ${params.slo.minTokensPerSecondPerUser} tokens/s/user; ` +
    `cold starts ${params.coldStartSeconds.min}-${params.coldStartSeconds.max}s; policies see /metrics text and an SPS table off by up to ±${params.spsTableError * 100}%.\n`,
);
console.log("Best setting of each policy (grid-searched on these traces):");
for (const r of rows) console.log(`  ${r.name.padEnd(34)} ${r.setting}`);
traces.forEach((t, i) => {
  const oracleH = oracles[i]?.result.gpuHours ?? 1;
  console.log(`\n${t.name} (${t.minutes.length} min)`);
  console.log(
    `  ${"policy".padEnd(34)} ${"minutes met".padStart(11)} ${"requests".padStart(9)} ${"GPU-h".padStart(7)} ${"x oracle".padStart(8)} ${"scale events".padStart(12)}`,
  );
  for (const r of rows) {
    const x = r.results[i] as SimResult;
    console.log(
      `  ${r.name.padEnd(34)} ${pct(x.attainment).padStart(11)} ${pct(x.requestAttainment).padStart(9)} ${x.gpuHours.toFixed(1).padStart(7)} ${(x.gpuHours / oracleH).toFixed(2).padStart(8)} ${String(x.scaleEvents).padStart(12)}`,
    );
  }
  if (svgDir) {
    const file = join(svgDir, `autoscaler-${t.name.replace(/[^a-z0-9-]+/gi, "-")}.svg`);
    writeFileSync(
      file,
      chart(
        t,
        rows.map((r) => ({ name: r.name, result: r.results[i] as SimResult })),
      ),
    );
  }
});

// Lead time on the code-to-chat shift: SpecOps' first scale-up vs the first breach of the
// acceptance-blind planner started from the same replicas: at SpecOps' own headroom, or, where that
// one never breaches, the blind planner's cheapest grid setting that does.
let react = "n/a";
if (shiftAt >= 0) {
  const firstBreach = (r: SimResult | undefined) =>
    r?.minutes.find((m) => m.minute >= SHIFT_MINUTE && !m.met)?.minute ?? null;
  const fmt = (v: number | null) => (v === null ? "never" : `${(v - SHIFT_MINUTE).toFixed(1)} min`);
  let lead: { spec: PolicySpec; result: SimResult } = {
    spec: LEAD_PLANNER,
    result: leadPlannerResult as SimResult,
  };
  if (firstBreach(lead.result) === null) {
    const breaching = (grids["Planner, acceptance-blind"] ?? [])
      .filter((o) => firstBreach(o.results[shiftAt]) !== null)
      .sort((a, b) => gpuHours(a.results) - gpuHours(b.results))[0];
    if (breaching) lead = { spec: breaching.spec, result: breaching.results[shiftAt] as SimResult };
  }
  const bestBlind = baselines.find((b) => b.name === "Planner, acceptance-blind")?.outcome.results[shiftAt];
  const ours = specops[shiftAt] as SimResult;
  const up = ours.decisions.find((d) => d.time >= SHIFT_MINUTE * 60 && d.to > d.from);
  const upMinute = up ? up.time / 60 : null;
  const breach = firstBreach(lead.result);
  const ownBreach = firstBreach(ours);
  console.log(
    `\ncode-to-chat shift at minute ${SHIFT_MINUTE}: SpecOps' first scale-up after ${fmt(upMinute)}; ` +
      `the acceptance-blind planner (same start, ${describeSpec(lead.spec)}) first breaches after ${fmt(breach)}` +
      (breach !== null && upMinute !== null ? ` (lead time ${(breach - upMinute).toFixed(1)} min)` : "") +
      `; at its best setting after ${fmt(firstBreach(bestBlind))}; SpecOps' own first breach after ${fmt(ownBreach)}.`,
  );
  react = String(
    upMinute !== null &&
      (breach === null || upMinute < breach) &&
      (ownBreach === null || upMinute <= ownBreach),
  );
}

const qualified = baselines.filter((b) => minutesMet(b.outcome.results) >= 0.99);
const bestBaseline = qualified.length
  ? qualified.reduce((a, b) => (gpuHours(b.outcome.results) < gpuHours(a.outcome.results) ? b : a))
  : null;
const oracleTotal = gpuHours(oracles.map((o) => o.result));
const ourAttainment = minutesMet(specops);
const ourHours = gpuHours(specops);
console.log("\nGoal (all traces together):");
console.log(
  `  SpecOps attainment ${pct(ourAttainment)} (goal >= 99%), GPU-hours ${ourHours.toFixed(1)}, ${(ourHours / oracleTotal).toFixed(2)}x the oracle (goal <= 1.25x)`,
);
if (bestBaseline) {
  const theirs = gpuHours(bestBaseline.outcome.results);
  console.log(
    `  best baseline reaching 99%: ${bestBaseline.name} (${bestBaseline.setting}) with ${theirs.toFixed(1)} GPU-hours; ` +
      `SpecOps uses ${((1 - ourHours / theirs) * 100).toFixed(1)}% fewer (goal >= 20%)`,
  );
} else console.log("  no baseline reaches 99% on all traces");
const oracleEvents = events(oracles.map((o) => o.result));
const fewestEvents = events(oracles.map((o) => o.fewestResult));
// Churn: against the best baseline (static has none, so "2x" cannot be met by any autoscaler), the
// cheapest autoscaling baseline reaching 99%, and the oracle's own schedule.
const dynamic = qualified.filter((b) => b.name !== "Static for the peak");
const bestDynamic = dynamic.length
  ? dynamic.reduce((a, b) => (gpuHours(b.outcome.results) < gpuHours(a.outcome.results) ? b : a))
  : null;
const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}x` : "n/a");
console.log(
  `  scale events ${events(specops)} (goal <= 2x the best baseline's): best baseline ${bestBaseline ? events(bestBaseline.outcome.results) : "n/a"}` +
    (bestDynamic
      ? `; cheapest autoscaling baseline reaching 99%, ${bestDynamic.name}, ${events(bestDynamic.outcome.results)} (${ratio(events(specops), events(bestDynamic.outcome.results))})`
      : "; no autoscaling baseline reaches 99%") +
    `; the oracle ${oracleEvents} (${ratio(events(specops), oracleEvents)})`,
);
console.log(
  `  the oracle: ${pct(minutesMet(oracles.map((o) => o.result)))} of minutes, ${oracleTotal.toFixed(1)} GPU-hours, ` +
    `${oracleEvents} scale events as provisioned (${fewestEvents} for the raw fewest-per-minute schedule, ${gpuHours(oracles.map((o) => o.fewestResult)).toFixed(1)} GPU-hours); ` +
    `below every policy reaching 99%: ${rows.every((r) => r.name.startsWith("Oracle") || minutesMet(r.results) < 0.99 || gpuHours(r.results) >= oracleTotal)}`,
);
console.log(`  reacts to the code-to-chat shift before the blind planner's first breach: ${react}`);
console.log(`  (${((performance.now() - started) / 1000).toFixed(0)} s)`);
console.log(
  `BENCH autoscaler attainment=${ourAttainment.toFixed(4)} gpu_hours=${ourHours.toFixed(1)} best_baseline=${bestBaseline ? bestBaseline.name.replace(/[^A-Za-z0-9]+/g, "_") : "none"} best_baseline_gpu_hours=${bestBaseline ? gpuHours(bestBaseline.outcome.results).toFixed(1) : "nan"} oracle_gpu_hours=${oracleTotal.toFixed(1)} react_before_breach=${react}`,
);
