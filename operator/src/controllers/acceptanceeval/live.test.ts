// Live evaluation, pure parts: the load Task and Job, the state machine on table cases, and the
// window arithmetic over /metrics text (deltas, a restarted engine, a pod that appeared or left).
import { describe, expect, it } from "vitest";
import { example } from "../../../../test/fixtures/examples.ts";
import { type AcceptanceEval, acceptanceEvalResource } from "../../api/kinds.ts";
import { parseTask } from "../../contract/task.ts";
import type { JobObservation } from "../drafttraining/observe.ts";
import { decideLive, type LiveObserved, liveNames, loadJob, loadTask, type SpecServeView } from "./live.ts";
import { decodeSnapshot, encodeSnapshot, measureWindow, type Snapshot } from "./livemeasure.ts";

const NOW = Date.parse("2026-12-01T12:00:00Z");

function liveEval(edit?: (spec: any) => void, status?: object): AcceptanceEval {
  const m = example("tiny-acceptanceeval.yaml");
  m.metadata = { name: "live", namespace: "ns", uid: "u1", generation: 1 } as never;
  m.spec.draft = { specServeRef: { name: "tiny" } };
  delete m.spec.target;
  delete m.spec.method;
  m.spec.decoding = { maxNewTokens: 48, seed: 5, temperature: 0 };
  edit?.(m.spec);
  if (status) (m as any).status = status;
  return acceptanceEvalResource.parse(m);
}

const ss: SpecServeView = {
  name: "tiny",
  ready: true,
  reason: "ReplicasReady",
  message: "1/1 ready",
  engine: "reference",
  port: 8000,
  endpoint: "http://tiny.ns.svc:8000/v1",
  k: 4,
  draft: "pvc://drafts/d",
  apiKeySecretRef: { name: "tiny-key", key: "token" },
};

const observed = (over: Partial<LiveObserved> = {}): LiveObserved => ({
  specServe: ss,
  index: 0,
  snapshot: false,
  staleJobs: [],
  ...over,
});

const job = (over: Partial<JobObservation> = {}): JobObservation =>
  ({
    name: "live-g1-load-0",
    generation: 0,
    suspended: false,
    complete: false,
    failed: false,
    active: 1,
    failedPods: 0,
    pods: 1,
    ...over,
  }) as JobObservation;

const measured = (name: string, tau: number) => ({
  ok: true as const,
  result: { name, samples: 32, tau, convention: "vllm" as const, live: { requests: 32, pods: 1 } },
});

describe("the load Task and Job", () => {
  it("sends one task set with the spec's decoding and concurrency to the SpecServe's endpoint", () => {
    const ae = liveEval((s) => (s.load = { concurrency: 3 }));
    const task = loadTask(ae, ss, 1);
    const parsed = parseTask(task);
    expect(parsed.ok).toBe(true);
    expect(task.params).toMatchObject({
      endpoint: "http://tiny.ns.svc:8000/v1",
      tasks: [{ name: "tiny-chat", samples: 32 }],
      decoding: { maxNewTokens: 48, seed: 5, temperature: 0 },
      concurrency: 3,
    });
    expect(task).toMatchObject({ kind: "load", backend: "reference" });
  });

  it("defaults to 4 requests in flight", () => {
    expect(loadTask(liveEval(), ss, 0).params).toMatchObject({ concurrency: 4 });
  });

  it("runs without a GPU and takes the endpoint's key from its Secret by reference only", () => {
    const j = loadJob(liveEval(), ss, 0, { defaultImage: "img", progressPort: 9090 }) as any;
    expect(j.metadata.name).toBe(liveNames(liveEval(), 0).job);
    const c = j.spec.template.spec.containers[0];
    expect(c.resources?.limits?.["nvidia.com/gpu"]).toBeUndefined();
    expect(c.env).toContainEqual({
      name: "SPECOPS_API_KEY",
      valueFrom: { secretKeyRef: { name: "tiny-key", key: "token" } },
    });
    expect(JSON.stringify(j)).not.toMatch(/"value":"[^"]*token/);
    expect(j.spec.podFailurePolicy.rules[0].action).toBe("FailJob");
  });
});

describe("the live state machine", () => {
  it("waits, with a condition and one Event, for a SpecServe that does not exist", () => {
    const d = decideLive(liveEval(), observed({ specServe: undefined }), NOW);
    expect(d.status.phase).toBe("Pending");
    expect(d.status.conditions?.find((c) => c.type === "DraftReady")).toMatchObject({
      status: "False",
      reason: "SpecServeNotFound",
    });
    expect(d.events.map((e) => e.reason)).toEqual(["WaitingForSpecServe"]);
    expect(d.actions).toEqual([]);
    const again = decideLive(liveEval(undefined, d.status), observed({ specServe: undefined }), NOW + 1000);
    expect(again.events).toEqual([]);
  });

  it("waits for a SpecServe that is not Ready and says why in its words", () => {
    const d = decideLive(
      liveEval(),
      observed({ specServe: { ...ss, ready: false, reason: "ReplicasNotReady", message: "0/1 ready" } }),
      NOW,
    );
    expect(d.status.conditions?.find((c) => c.type === "DraftReady")?.message).toBe(
      "waiting for SpecServe tiny to be Ready (ReplicasNotReady: 0/1 ready)",
    );
    expect(d.actions).toEqual([]);
  });

  it("opens a window (snapshot) first, then runs the load, recording k and the concurrency", () => {
    const first = decideLive(liveEval(), observed(), NOW);
    expect(first.actions).toEqual([{ type: "snapshot", index: 0, name: "live-g1-load-0-before" }]);
    expect(first.status).toMatchObject({
      phase: "Running",
      live: {
        specServe: "tiny",
        concurrency: 4,
        numSpeculativeTokens: 4,
        convention: "vllm",
        task: "tiny-math",
      },
      draft: { name: "tiny", uri: "pvc://drafts/d" },
    });
    expect(first.events.map((e) => e.reason)).toEqual(["Started"]);
    const second = decideLive(liveEval(undefined, first.status), observed({ snapshot: true }), NOW);
    expect(second.actions).toEqual([{ type: "runLoad", index: 0, specServe: ss }]);
  });

  it("folds a finished window and opens the next task set's", () => {
    const running = decideLive(liveEval(), observed({ snapshot: true }), NOW).status;
    const d = decideLive(
      liveEval(undefined, running),
      observed({ snapshot: true, job: job({ complete: true }), measurement: measured("tiny-math", 2.13456) }),
      NOW,
    );
    expect(d.status.results).toEqual([
      { name: "tiny-math", samples: 32, tau: 2.1346, convention: "vllm", live: { requests: 32, pods: 1 } },
    ]);
    expect(d.status.phase).toBe("Running");
    expect(d.status.live?.task).toBe("tiny-chat");
    expect(d.actions).toEqual([{ type: "snapshot", index: 1, name: "live-g1-load-1-before" }]);
  });

  it("succeeds after the last task set with the summary and the gate verdict naming the figures", () => {
    const status = {
      observedGeneration: 1,
      phase: "Running",
      results: [{ name: "tiny-math", samples: 32, tau: 2.0, convention: "vllm" }],
    };
    const d = decideLive(
      liveEval((s) => (s.gate = { minTau: 1.8 }), status),
      observed({
        index: 1,
        snapshot: true,
        job: job({ name: "live-g1-load-1", complete: true }),
        measurement: measured("tiny-chat", 1.3),
      }),
      NOW,
    );
    expect(d.status).toMatchObject({
      phase: "Succeeded",
      summary: { macroTau: 1.65, samples: 64 },
      gate: { verdict: "Failed", reasons: ["macro tau 1.65 < minTau 1.8"] },
    });
    expect(d.status.live?.task).toBeUndefined();
    expect(d.status.conditions?.find((c) => c.type === "Passed")).toMatchObject({
      status: "False",
      reason: "ThresholdsMissed",
    });
    expect(d.events.map((e) => e.reason)).toEqual(["Succeeded", "GateFailed"]);
  });

  it("fails on a window it could not read, and on a failed load Job with the runtime's words", () => {
    const unread = decideLive(
      liveEval(),
      observed({
        snapshot: true,
        job: job({ complete: true }),
        measurement: { ok: false, message: "no pod" },
      }),
      NOW,
    );
    expect(unread.status.phase).toBe("Failed");
    expect(unread.status.conditions?.find((c) => c.type === "Succeeded")).toMatchObject({
      reason: "MeasurementFailed",
      message: "no pod",
    });
    // Ended: a later pass that could read the window does not turn it around.
    const later = decideLive(
      liveEval(undefined, unread.status),
      observed({ snapshot: true, job: job({ complete: true }), measurement: measured("tiny-math", 2) }),
      NOW + 1000,
    );
    expect(later.status).toEqual(unread.status);
    const failed = decideLive(
      liveEval(),
      observed({
        snapshot: true,
        job: job({
          failed: true,
          termination: {
            exitCode: 10,
            reason: "invalidTask",
            message: "params.endpoint: HTTP 401",
            malformed: false,
          },
        }),
      }),
      NOW,
    );
    expect(failed.status.conditions?.find((c) => c.type === "Succeeded")).toMatchObject({
      reason: "InvalidTask",
      message: "invalidTask (exit 10): params.endpoint: HTTP 401",
    });
  });
});

/** vLLM-named /metrics text of one engine, as the reference server writes it. */
function vllm(o: { drafts: number; accepted: number; perPos: number[]; created?: number; ttft?: number[] }) {
  const l = 'model_name="m",engine="0"';
  const c = o.created ?? 1000;
  const lines = [
    `vllm:spec_decode_num_drafts_total{${l}} ${o.drafts}`,
    `vllm:spec_decode_num_drafts_created{${l}} ${c}`,
    `vllm:spec_decode_num_accepted_tokens_total{${l}} ${o.accepted}`,
    `vllm:spec_decode_num_accepted_tokens_created{${l}} ${c}`,
    ...o.perPos.flatMap((v, i) => [
      `vllm:spec_decode_num_accepted_tokens_per_pos_total{${l},position="${i}"} ${v}`,
      `vllm:spec_decode_num_accepted_tokens_per_pos_created{${l},position="${i}"} ${c}`,
    ]),
  ];
  const [n01, n05, n1] = o.ttft ?? [0, 0, 0];
  lines.push(
    `vllm:time_to_first_token_seconds_bucket{${l},le="0.01"} ${n01}`,
    `vllm:time_to_first_token_seconds_bucket{${l},le="0.05"} ${n05}`,
    `vllm:time_to_first_token_seconds_bucket{${l},le="1.0"} ${n1}`,
    `vllm:time_to_first_token_seconds_bucket{${l},le="+Inf"} ${n1}`,
    `vllm:time_to_first_token_seconds_count{${l}} ${n1}`,
    `vllm:time_to_first_token_seconds_created{${l}} ${c}`,
  );
  return `${lines.join("\n")}\n`;
}

const counts = { requests: 8, completionTokens: 120, requestSeconds: 4, durationSeconds: 2 };

describe("the window over /metrics", () => {
  it("takes tau and acceptance by position from counter deltas summed over the pods", () => {
    const before: Snapshot = {
      time: 2000,
      pods: [
        { pod: "a", text: vllm({ drafts: 100, accepted: 50, perPos: [40, 10, 0, 0], ttft: [1, 2, 2] }) },
        { pod: "b", text: vllm({ drafts: 10, accepted: 0, perPos: [0, 0, 0, 0] }) },
      ],
    };
    const after: Snapshot = {
      time: 2010,
      pods: [
        { pod: "a", text: vllm({ drafts: 160, accepted: 110, perPos: [80, 20, 10, 0], ttft: [1, 6, 10] }) },
        { pod: "b", text: vllm({ drafts: 50, accepted: 30, perPos: [20, 10, 0, 0], ttft: [0, 0, 0] }) },
      ],
    };
    const m = measureWindow("t", before, after, counts, 4);
    expect(m.ok).toBe(true);
    if (!m.ok) return;
    // (60 + 30 accepted) / (60 + 40 drafts); positions (40+20, 10+10, 10, 0) / 100.
    expect(m.result.tau).toBe(1.9);
    expect(m.result.acceptanceByPosition).toEqual([0.6, 0.2, 0.1, 0]);
    expect(m.result.convention).toBe("vllm");
    expect(m.result.live).toMatchObject({ requests: 8, pods: 2, tokensPerSecondPerUser: 30 });
    expect(m.result.live?.ttftP50Seconds).toBeCloseTo(0.01 + (0.05 - 0.01) * ((0.5 * 8 - 0) / 4));
    expect(m.result.tokensPerSecond).toBe(60);
  });

  it("counts a restarted engine from its restart, and a pod that appeared inside the window in full", () => {
    const before: Snapshot = {
      time: 2000,
      pods: [{ pod: "a", text: vllm({ drafts: 500, accepted: 400, perPos: [300, 100, 0, 0] }) }],
    };
    const after: Snapshot = {
      time: 2010,
      pods: [
        // Restarted at 2005: its counters went down and its _created moved.
        { pod: "a", text: vllm({ drafts: 20, accepted: 10, perPos: [10, 0, 0, 0], created: 2005 }) },
        // Started at 2003, inside the window: all of it belongs here.
        { pod: "new", text: vllm({ drafts: 20, accepted: 30, perPos: [15, 10, 5, 0], created: 2003 }) },
        // Up since before the window but not scraped at its start: its history is not ours.
        { pod: "old", text: vllm({ drafts: 1000, accepted: 0, perPos: [0, 0, 0, 0], created: 1000 }) },
      ],
    };
    const m = measureWindow("t", before, after, counts, 4);
    expect(m.ok && m.result.tau).toBe(1 + 40 / 40);
    expect(m.ok && m.result.acceptanceByPosition).toEqual([25 / 40, 10 / 40, 5 / 40, 0]);
  });

  it("fails clearly without pods or without speculative rounds", () => {
    const idle = vllm({ drafts: 5, accepted: 1, perPos: [1, 0, 0, 0] });
    const before = { time: 1, pods: [{ pod: "a", text: idle }] };
    expect(measureWindow("t", before, { time: 2, pods: [] }, counts, 4)).toEqual({
      ok: false,
      message: "no ready serving pod answered /metrics at the end of the load",
    });
    const m = measureWindow("t", before, { time: 2, pods: [{ pod: "a", text: idle }] }, counts, 4);
    expect(m).toMatchObject({
      ok: false,
      message: expect.stringMatching(/no speculative round during the load/),
    });
  });

  it("keeps a snapshot through its ConfigMap data", () => {
    const s = { time: 12.5, pods: [{ pod: "a", text: "x 1\n" }] };
    expect(decodeSnapshot(encodeSnapshot(s))).toEqual(s);
    expect(decodeSnapshot({ "scrape.json": "{" })).toBeUndefined();
  });
});
