// Fault tests on the real control plane (quick versions; `npm run bench -- faults` runs them at
// scale): each injects one fault into running DraftTraining pipelines and asserts the end state —
// every object converged, no stage Job created or run twice, nothing missing from status — read
// from the API server and its audit log. Own control plane: these kill and restart kube-apiserver.
// Pods are played by the fake kubelet, except in the pod-loss test, where the reference backend
// really trains (its pods run as local processes: the test edge, no container runtime here).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  apiServerRestart,
  type FaultEnv,
  type FaultResult,
  faultTable,
  frozenLeader,
  leaderKilledBetweenApplies,
  podLostMidTraining,
  startFaultEnv,
  watchExpired,
} from "../controlplane/faults.ts";

let env: FaultEnv;

beforeAll(async () => {
  env = await startFaultEnv();
}, 180_000);

afterAll(async () => {
  await env?.close();
});

function expectConverged(r: FaultResult) {
  const table = faultTable([r]);
  console.log(table);
  expect({ converged: r.converged, duplicates: r.duplicates, lost: r.lost }, table).toEqual({
    converged: r.objects,
    duplicates: 0,
    lost: 0,
  });
}

describe("faults on the real control plane", () => {
  it("kube-apiserver killed and restarted mid-pipeline: all converge, one Job per stage", async () => {
    expectConverged(await apiServerRestart(env, 8));
  }, 180_000);

  it("leader SIGKILLed between a stage's applies: the next leader completes the stage", async () => {
    expectConverged(await leaderKilledBetweenApplies(env, 4));
  }, 180_000);

  // Before the controller library bounded each renew by the renew deadline and aborted in-flight
  // writes when leadership ended, the old leader's held writes landed after the thaw (4 of them).
  it("leader's API server frozen: it stops writing by its renew deadline, a standby takes over", async () => {
    const r = await frozenLeader(env, 6);
    expectConverged(r);
    expect(r.notes.join("\n")).not.toContain("no takeover");
    // Renew deadline 4 s, retry period 1 s: the last renewal was at most 1 s before the freeze.
    expect(r.leaderStoppedAfterS, faultTable([r])).toBeLessThanOrEqual(5.5);
    expect(r.staleLeaderWrites, faultTable([r])).toBe(0);
  }, 180_000);

  // Real training: the reference backend's pods run as local processes (process-kubelet.ts).
  it("a train pod deleted mid-training: the Job's retry resumes from the latest checkpoint", async () => {
    const r = await podLostMidTraining(env);
    expectConverged(r);
  }, 360_000);

  // Last: it leaves kube-apiserver running with --watch-cache=false.
  it("watch expired (410 Gone): relist, no missed change, no duplicate", async () => {
    const r = await watchExpired(env, 6);
    expectConverged(r);
    expect(r.notes[0]).toMatch(/logged [1-9]\d* 410/);
  }, 180_000);
});
