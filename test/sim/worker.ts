// Runs simulations sent by test/bench/autoscaler.ts in a worker thread.
import { parentPort } from "node:worker_threads";
import { oracle } from "./oracle.ts";
import type { SimParams } from "./params.ts";
import { givenSps, type PolicySpec, policyOf } from "./policies.ts";
import { simulate } from "./simulate.ts";
import type { Trace } from "./traces.ts";

export interface Job {
  id: number;
  trace: Trace;
  params: SimParams;
  spec: PolicySpec;
  initialReplicas: number;
}

parentPort?.on("message", (job: Job) => {
  if (job.spec.kind === "oracle") {
    const outcome = oracle(job.trace, job.params, job.initialReplicas);
    parentPort?.postMessage({ id: job.id, result: outcome.result, oracle: outcome });
    return;
  }
  const result = simulate(
    job.trace,
    job.params,
    policyOf(job.spec),
    givenSps(job.params),
    job.initialReplicas,
  );
  parentPort?.postMessage({ id: job.id, result });
});
