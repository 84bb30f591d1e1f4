// `npm run signals -- T0.prom T1.prom --window 30s`: the derived signals of two saved scrapes of
// one pod (curl -s http://pod:8000/metrics > T0.prom; wait; again > T1.prom), engine detected from
// the metric names, as JSON (seconds, tokens per second; null where the scrapes cannot tell).
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { parseDuration } from "../lib/time.ts";
import { deriveSignals } from "./signals.ts";

const usage = "usage: npm run signals -- T0.prom T1.prom --window 30s";

export function signalsCli(argv: string[]): string {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { window: { type: "string" } },
  });
  if (positionals.length !== 2) throw new Error(`two scrape files needed\n${usage}`);
  if (!values.window) throw new Error(`--window is required (time between the two scrapes)\n${usage}`);
  const windowMs = parseDuration(values.window);
  if (!windowMs) throw new Error(`--window: not a duration such as 30s or 2m: ${values.window}`);
  const [first, second] = positionals.map((file) => ({ pod: "pod", text: readFileSync(file, "utf8") }));
  const s = deriveSignals(
    [first as { pod: string; text: string }],
    [second as { pod: string; text: string }],
    windowMs / 1000,
  );
  const report = {
    engine: s.engine,
    tau: s.tau,
    acceptanceByPosition: s.acceptanceByPosition,
    running: s.running,
    waiting: s.waiting,
    ttftP95: s.ttftP95,
    tpotP95: s.tpotP95,
    generationTokensPerSecond: s.generationTokensPerSecond,
    // Beyond the documented keys, for whoever is debugging:
    ttftP50: s.ttftP50,
    tpotP50: s.tpotP50,
    tokensPerSecondPerUser: s.tokensPerSecondPerUser,
    acceptanceRate: s.acceptanceRate,
    kvCacheUsage: s.kvCacheUsage,
    resetSeries: s.pods.resetSeries,
  };
  return JSON.stringify(report, null, 2);
}

if (import.meta.main) {
  try {
    console.log(signalsCli(process.argv.slice(2)));
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
}
