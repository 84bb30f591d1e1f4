// Tuning harness: SpecOps alone against the oracle on the bench's traces and seed, in seconds rather
// than the full bench's minutes (no baselines, no grids). Same start (1.5x the oracle's first-minute
// need), same physics, same SPS table error as `npm run bench -- autoscaler`.
//
//   scripts/with-node24 node test/sim/specops-run.ts [--trace FILE] [--params FILE] [--only NAME]
//       [--set key=value ...] [--timeline MINUTES]
//
// `--set` overrides a ReplicaPolicy setting for this run only (headroom=0.4, tauLookaheadSeconds=300,
// ...: numbers, or JSON; learnSps=false decides on the given table without the online correction); `--timeline N` prints every N-th minute's replicas beside the oracle's.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import type { ReplicaPolicy } from "../../operator/src/autoscaler/replicas.ts";
import type { OracleOutcome } from "./oracle.ts";
import { DEFAULT_PARAMS, type SimParams, withOverrides } from "./params.ts";
import { type PolicySpec, SPECOPS_DEFAULTS } from "./policies.ts";
import type { SimResult } from "./simulate.ts";
import { parseTraces, SHIFT_MINUTE, type Trace } from "./traces.ts";
import type { Job } from "./worker.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const { values } = parseArgs({
  options: {
    trace: { type: "string" },
    params: { type: "string" },
    only: { type: "string" },
    set: { type: "string", multiple: true },
    timeline: { type: "string" },
  },
});
const traceFile = values.trace ?? join(root, "test/sim/traces/default.json");
const traces = parseTraces(JSON.parse(readFileSync(traceFile, "utf8")), traceFile).filter(
  (t) => !values.only || t.name === values.only,
);
const params: SimParams = values.params
  ? withOverrides(DEFAULT_PARAMS, JSON.parse(readFileSync(values.params, "utf8")))
  : DEFAULT_PARAMS;
const rails: Record<string, unknown> = {};
for (const kv of values.set ?? []) {
  const eq = kv.indexOf("=");
  if (eq < 1) throw new Error(`--set ${kv}: expected key=value`);
  rails[kv.slice(0, eq)] = JSON.parse(kv.slice(eq + 1));
}
const {
  headroom = SPECOPS_DEFAULTS.headroom,
  scaleDownStabilizationSeconds = 300,
  learnSps = true,
  ...rest
} = rails;
const spec: PolicySpec = {
  kind: "specops",
  headroom: headroom as number,
  scaleDownStabilizationSeconds: scaleDownStabilizationSeconds as number,
  rails: rest as Partial<ReplicaPolicy>,
  learnSps: learnSps as boolean,
};

const workers = [0, 1].map(() => new Worker(new URL("./worker.ts", import.meta.url)));
let nextId = 0;
let turn = 0;
const submit = (trace: Trace, s: PolicySpec | { kind: "oracle" }, initialReplicas: number) =>
  new Promise<{ result: SimResult; oracle?: OracleOutcome }>((resolve) => {
    const w = workers[turn++ % workers.length] as Worker;
    const id = nextId++;
    const onMessage = (m: { id: number; result: SimResult; oracle?: OracleOutcome }) => {
      if (m.id !== id) return;
      w.off("message", onMessage);
      resolve(m);
    };
    w.on("message", onMessage);
    w.postMessage({ id, trace, params, spec: s, initialReplicas } satisfies Job);
  });

const started = performance.now();
const rows = await Promise.all(
  traces.map(async (t) => {
    const o = (await submit(t, { kind: "oracle" }, params.minReplicas)).oracle as OracleOutcome;
    const initial = Math.min(params.maxReplicas, Math.ceil((o.fewest[0] ?? 1) * 1.5));
    return { t, o, r: (await submit(t, spec, initial)).result };
  }),
);
for (const w of workers) await w.terminate();

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
console.log(`SpecOps ${JSON.stringify(rails)}`);
console.log(
  `  ${"trace".padEnd(14)} ${"met".padStart(7)} ${"GPU-h".padStart(7)} ${"oracle".padStart(7)} ${"x".padStart(5)} events`,
);
let met = 0;
let minutes = 0;
let hours = 0;
let oracleHours = 0;
let events = 0;
for (const { t, o, r } of rows) {
  met += r.minutes.filter((m) => m.met).length;
  minutes += r.minutes.length;
  hours += r.gpuHours;
  oracleHours += o.result.gpuHours;
  events += r.scaleEvents;
  const breaches = r.minutes.filter((m) => !m.met).map((m) => m.minute);
  console.log(
    `  ${t.name.padEnd(14)} ${pct(r.attainment).padStart(7)} ${r.gpuHours.toFixed(1).padStart(7)} ${o.result.gpuHours.toFixed(1).padStart(7)} ${(r.gpuHours / o.result.gpuHours).toFixed(2).padStart(5)} ${String(r.scaleEvents).padStart(6)}` +
      (breaches.length ? `  breaches at ${breaches.join(",")}` : ""),
  );
  if (t.name === "code-to-chat") {
    const up = r.decisions.find((d) => d.time >= SHIFT_MINUTE * 60 && d.to > d.from);
    console.log(
      `  ${"".padEnd(14)} first scale-up after the shift: ${up ? `${(up.time / 60 - SHIFT_MINUTE).toFixed(1)} min` : "never"}`,
    );
  }
  const every = Number(values.timeline ?? 0);
  if (every > 0)
    for (let m = 0; m < t.minutes.length; m += every) {
      const x = r.minutes[m] as SimResult["minutes"][number];
      console.log(
        `    m${String(m).padEnd(4)} rate ${String(t.minutes[m]?.rate).padStart(6)}  specops ${String(x.replicas).padStart(2)} (${x.ready} ready)  oracle ${o.provisioned[m]}  tpot ${(x.tpotP95 * 1000).toFixed(1)}ms p5 ${x.speedP5.toFixed(0)} tok/s${x.met ? "" : "  BREACH"}`,
      );
    }
}
console.log(
  `  ${"all".padEnd(14)} ${pct(met / minutes).padStart(7)} ${hours.toFixed(1).padStart(7)} ${oracleHours.toFixed(1).padStart(7)} ${(hours / oracleHours).toFixed(2).padStart(5)} ${String(events).padStart(6)}  (${((performance.now() - started) / 1000).toFixed(0)} s)`,
);
