// Fault benchmark: the fault scenarios of test/controlplane/faults.ts at scale on one real control
// plane (audit log on, one token per operator replica), printed as a table and one BENCH line.
// FAULTS_N scales the object counts (default 50 pipelines for the kube-apiserver restart).
import {
  apiServerRestart,
  type FaultResult,
  faultTable,
  frozenLeader,
  leaderKilledBetweenApplies,
  podLostMidTraining,
  startFaultEnv,
  watchExpired,
} from "../controlplane/faults.ts";

const N = Number(process.env.FAULTS_N ?? 50);
const only = process.env.FAULTS_ONLY?.split(",");
const scenarios: [string, (env: Awaited<ReturnType<typeof startFaultEnv>>) => Promise<FaultResult>][] = [
  ["restart", (env) => apiServerRestart(env, N)],
  ["sigkill", (env) => leaderKilledBetweenApplies(env, Math.ceil(N / 2))],
  ["freeze", (env) => frozenLeader(env, Math.ceil(N / 2))],
  ["podlost", (env) => podLostMidTraining(env)],
  // Last: it leaves kube-apiserver running with --watch-cache=false.
  ["gone", (env) => watchExpired(env, N)],
];

const env = await startFaultEnv({ startTimeoutSeconds: 180 });
const results: FaultResult[] = [];
try {
  for (const [name, run] of scenarios) {
    if (only && !only.includes(name)) continue;
    console.error(`faults: ${name}...`);
    try {
      results.push(await run(env));
    } catch (err) {
      results.push({
        fault: name,
        objects: 0,
        converged: 0,
        duplicates: 0,
        lost: 0,
        secondsToConverge: Number.NaN,
        notes: [`scenario failed: ${(err as Error).message}`],
      });
    }
  }
} finally {
  await env.close();
}

const sum = (f: (r: FaultResult) => number) => results.reduce((a, r) => a + f(r), 0);
const convergedScenarios = results.filter((r) => r.objects > 0 && r.converged === r.objects).length;
console.log(
  `\nfault benchmark (real kube-apiserver, etcd and kube-controller-manager; fake kubelet except pod loss)\n`,
);
console.log(faultTable(results));
console.log(
  `\nBENCH faults scenarios=${results.length} converged=${convergedScenarios} duplicates=${sum((r) => r.duplicates)} lost=${sum((r) => r.lost)} stale_leader_writes=${sum((r) => r.staleLeaderWrites ?? 0)}`,
);
