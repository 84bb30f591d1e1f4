import { describe, expect, it } from "vitest";
import { observeJob, parseTermination } from "./observe.ts";

const pod = (
  exitCode: number | undefined,
  message?: string,
  finishedAt = "2026-11-28T12:00:00Z",
  extra: object = {},
) =>
  ({
    metadata: { name: `p-${finishedAt}` },
    status: {
      containerStatuses:
        exitCode === undefined
          ? []
          : [{ name: "runtime", state: { terminated: { exitCode, message, finishedAt } } }],
      ...extra,
    },
  }) as any;

describe("parseTermination", () => {
  it("reads a contract result and names its exit reason", () => {
    const t = parseTermination(10, JSON.stringify({ kind: "Result", message: "params.x: bad" }));
    expect(t).toMatchObject({
      exitCode: 10,
      reason: "invalidTask",
      message: "params.x: bad",
      malformed: false,
    });
  });
  it("keeps the tail of anything else and marks it malformed", () => {
    const t = parseTermination(1, `Traceback...\n${"x".repeat(2000)}`);
    expect(t.malformed).toBe(true);
    expect(t.message?.length).toBe(1024);
  });
});

describe("observeJob", () => {
  const job = (status: object, spec: object = {}) =>
    ({ metadata: { name: "j", creationTimestamp: "2026-11-28T11:00:00Z" }, spec, status }) as any;

  it("prefers the latest failure's words over an earlier success", () => {
    const o = observeJob(job({ failed: 1, active: 1 }), [
      pod(13, JSON.stringify({ kind: "Result", message: "NCCL timeout" }), "2026-11-28T12:00:01Z"),
      pod(13, JSON.stringify({ kind: "Result", message: "peer lost" }), "2026-11-28T12:00:05Z"),
    ]);
    expect(o.termination?.message).toBe("peer lost");
    expect(o).toMatchObject({ failedPods: 1, active: 1, pods: 2, complete: false });
  });

  it("reports the failure reason and an unschedulable pod", () => {
    const failed = observeJob(
      job({ conditions: [{ type: "Failed", status: "True", reason: "PodFailurePolicy" }] }),
      [],
    );
    expect(failed).toMatchObject({ failed: true, failureReason: "PodFailurePolicy", pods: 0 });
    const pending = observeJob(job({ active: 1 }), [
      pod(undefined, undefined, "x", {
        conditions: [
          {
            type: "PodScheduled",
            status: "False",
            reason: "Unschedulable",
            message: "0/2 nodes: Insufficient nvidia.com/gpu",
          },
        ],
      }),
    ]);
    expect(pending.unschedulable).toBe("0/2 nodes: Insufficient nvidia.com/gpu");
  });

  it("reads the kubelet's reason when a container cannot start, the generation and the Kueue queue", () => {
    const waiting = {
      metadata: { name: "j-abcde" },
      status: {
        phase: "Pending",
        containerStatuses: [
          {
            name: "runtime",
            state: {
              waiting: { reason: "CreateContainerConfigError", message: 'secret "hf-token" not found' },
            },
          },
        ],
      },
    } as any;
    const queued = {
      metadata: {
        name: "j",
        annotations: { "specops.dev/generation": "4" },
        labels: { "kueue.x-k8s.io/queue-name": "team-a" },
      },
      spec: { suspend: true },
      status: { conditions: [{ type: "Suspended", status: "True", message: "Job suspended" }] },
    } as any;
    const o = observeJob(queued, [waiting]);
    expect(o).toMatchObject({
      generation: 4,
      queue: "team-a",
      suspended: true,
      suspendedMessage: "Job suspended",
      containerProblem: {
        reason: "CreateContainerConfigError",
        message: 'secret "hf-token" not found',
        pod: "j-abcde",
      },
    });
    // A container that is merely being created is no problem.
    const creating = structuredClone(waiting);
    creating.status.containerStatuses[0].state.waiting = { reason: "ContainerCreating" };
    expect(observeJob(queued, [creating]).containerProblem).toBeUndefined();
  });
});
