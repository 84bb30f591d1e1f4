import { describe, expect, it } from "vitest";
import {
  type MeasuredSignals,
  type PodMetrics,
  type SignalsWindow,
  signalsStatus,
} from "./signals-status.ts";

const T0 = Date.parse("2026-12-01T10:00:00Z");
const WINDOW_MS = 60_000;
const T1 = T0 + WINDOW_MS;
const l = 'engine="0",model_name="m"';

/** vLLM counters of one pod: rounds, accepted tokens per position, started at `created` (unix s). */
function vllm(
  rounds: number,
  perPos: number[],
  opts: { created?: number; running?: number; ttft?: { le: number[]; counts: number[] } } = {},
) {
  const accepted = perPos.reduce((a, b) => a + b, 0);
  const created = opts.created ?? T0 / 1000 - 3600;
  const counter = (family: string, value: number, labels = l) => [
    `# TYPE ${family} counter`,
    `${family}_total{${labels}} ${value}`,
    `${family}_created{${labels}} ${created}`,
  ];
  const lines = [
    ...counter("vllm:spec_decode_num_drafts", rounds),
    ...counter("vllm:spec_decode_num_accepted_tokens", accepted),
    "# TYPE vllm:spec_decode_num_accepted_tokens_per_pos counter",
    ...perPos.flatMap((v, i) => [
      `vllm:spec_decode_num_accepted_tokens_per_pos_total{${l},position="${i}"} ${v}`,
      `vllm:spec_decode_num_accepted_tokens_per_pos_created{${l},position="${i}"} ${created}`,
    ]),
    ...counter("vllm:generation_tokens", rounds + accepted),
    "# TYPE vllm:num_requests_running gauge",
    `vllm:num_requests_running{${l}} ${opts.running ?? 0}`,
    "# TYPE vllm:num_requests_waiting gauge",
    `vllm:num_requests_waiting{${l}} 0`,
  ];
  if (opts.ttft) {
    const { le, counts } = opts.ttft;
    lines.push("# TYPE vllm:time_to_first_token_seconds histogram");
    for (const [i, b] of le.entries())
      lines.push(`vllm:time_to_first_token_seconds_bucket{${l},le="${b}"} ${counts[i]}`);
    const total = counts.at(-1) ?? 0;
    lines.push(`vllm:time_to_first_token_seconds_bucket{${l},le="+Inf"} ${total}`);
    lines.push(`vllm:time_to_first_token_seconds_count{${l}} ${total}`);
    lines.push(`vllm:time_to_first_token_seconds_sum{${l}} ${total * 0.1}`);
    lines.push(`vllm:time_to_first_token_seconds_created{${l}} ${created}`);
  }
  return `${lines.join("\n")}\n`;
}

const at = (uid: string, timeMs: number, text: string): PodMetrics => ({
  uid,
  pod: `pod-${uid}`,
  text,
  timeMs,
});
const window = (over: Partial<SignalsWindow>): SignalsWindow => ({
  previous: undefined,
  start: [],
  end: [],
  failed: [],
  nowMs: T1,
  window: "1m",
  windowMs: WINDOW_MS,
  ...over,
});

describe("signalsStatus: status.signals from two scrapes", () => {
  it("tau, acceptance by position, rounds and rates over the window, rounded", () => {
    // 1000 rounds: position 0 accepted 800 times, position 1 500, position 2 203 (tau 2.503).
    const out = signalsStatus(
      window({
        start: [at("a", T0, vllm(1000, [800, 500, 200]))],
        end: [at("a", T1, vllm(2000, [1600, 1000, 403], { running: 3 }))],
      }),
    );
    expect(out.condition).toMatchObject({ type: "MetricsAvailable", status: "True", reason: "Scraped" });
    expect(out.signals).toMatchObject({
      tau: 2.5,
      rounds: 1000,
      acceptanceByPosition: [0.8, 0.5, 0.2],
      runningRequests: 3,
      waitingRequests: 0,
      throughput: 41.7, // 2503 tokens / 60 s, 3 significant digits
      window: "1m",
      tauTime: "2026-12-01T10:01:00Z",
      time: "2026-12-01T10:01:00Z",
    });
  });

  it("rounds is a whole number (the CRD's integer) even when the counters are not", () => {
    const out = signalsStatus(
      window({
        start: [at("a", T0, vllm(1000.25, [800.5]))],
        end: [at("a", T1, vllm(2000.5, [1601.125]))],
      }),
    );
    expect(out.signals?.rounds).toBe(1000);
    expect(out.signals?.tau).toBe(1.8);
  });

  it("TTFT p95 from the histogram's bucket increases", () => {
    const le = [0.1, 0.5, 1];
    const out = signalsStatus(
      window({
        start: [at("a", T0, vllm(10, [5], { ttft: { le, counts: [0, 0, 0] } }))],
        end: [at("a", T1, vllm(20, [10], { ttft: { le, counts: [50, 90, 100] } }))],
      }),
    );
    // Rank 95 of 100 lies in (0.5, 1]: 0.5 + 0.5 * (95 - 90) / 10.
    expect(out.signals?.ttftP95).toBe(0.75);
  });

  it("a window without verification rounds keeps the last tau and its time instead of blanking it", () => {
    const previous: MeasuredSignals = {
      tau: 3.1,
      tauTime: "2026-12-01T09:00:00Z",
      rounds: 5000,
      acceptanceByPosition: [0.9, 0.7, 0.5],
      window: "1m",
      time: "2026-12-01T09:00:00Z",
    };
    const idle = vllm(1000, [800, 500, 200]);
    const out = signalsStatus(window({ previous, start: [at("a", T0, idle)], end: [at("a", T1, idle)] }));
    expect(out.signals).toMatchObject({
      tau: 3.1,
      tauTime: "2026-12-01T09:00:00Z",
      rounds: 5000,
      acceptanceByPosition: [0.9, 0.7, 0.5],
      throughput: 0,
    });
  });

  it("rounding: a window whose figures round to the same values returns the previous object (no write)", () => {
    const first = signalsStatus(
      window({
        start: [at("a", T0, vllm(1000, [800, 500, 200]))],
        end: [at("a", T1, vllm(2000, [1600, 1000, 400]))],
      }),
    );
    // The next window: the same traffic, tau 2.5004 instead of 2.5.
    const second = signalsStatus(
      window({
        previous: first.signals,
        start: [at("a", T1, vllm(2000, [1600, 1000, 400]))],
        end: [at("a", T1 + WINDOW_MS, vllm(3000, [2400, 1500, 600]))],
        nowMs: T1 + WINDOW_MS,
      }),
    );
    expect(second.signals?.tauTime).not.toBe(first.signals?.tauTime); // a newer window with rounds
    const third = signalsStatus(
      window({
        previous: second.signals,
        start: [at("a", T1 + WINDOW_MS, vllm(3000, [2400, 1500, 600]))],
        end: [at("a", T1 + 2 * WINDOW_MS, vllm(3000, [2400, 1500, 600]))],
        nowMs: T1 + 2 * WINDOW_MS,
      }),
    );
    const fourth = signalsStatus(
      window({
        previous: third.signals,
        start: [at("a", T1 + 2 * WINDOW_MS, vllm(3000, [2400, 1500, 600]))],
        end: [at("a", T1 + 3 * WINDOW_MS, vllm(3000, [2400, 1500, 600]))],
        nowMs: T1 + 3 * WINDOW_MS,
      }),
    );
    // Two idle windows in a row: the same figures, the very same object, so no status write.
    expect(fourth.signals).toBe(third.signals);
  });

  it("a counter reset (the engine restarted in the same pod) counts from the restart", () => {
    const out = signalsStatus(
      window({
        start: [at("a", T0, vllm(50_000, [40_000, 30_000, 20_000]))],
        // Restarted 30 s ago: 100 rounds since, position 0 accepted 50, 1 25, 2 25 (tau 2.0).
        end: [at("a", T1, vllm(100, [50, 25, 25], { created: T1 / 1000 - 30 }))],
      }),
    );
    expect(out.signals).toMatchObject({ tau: 2, rounds: 100, acceptanceByPosition: [0.5, 0.25, 0.25] });
  });

  it("a pod that appeared in the window counts when it started inside it, a pod that left is dropped", () => {
    const out = signalsStatus(
      window({
        start: [at("a", T0, vllm(1000, [500, 0])), at("gone", T0, vllm(9999, [9999, 9999]))],
        end: [
          at("a", T1, vllm(1100, [600, 0])), // 100 rounds, tau 2
          at("new", T1, vllm(100, [100, 100], { created: T1 / 1000 - 10 })), // 100 rounds, tau 3
        ],
      }),
    );
    expect(out.signals).toMatchObject({ tau: 2.5, rounds: 200 });
    // A pod seen first now but started long before the window: its counts are not the window's.
    const old = signalsStatus(
      window({
        start: [at("a", T0, vllm(1000, [500, 0]))],
        end: [at("a", T1, vllm(1100, [600, 0])), at("old", T1, vllm(100, [100, 100]))],
      }),
    );
    expect(old.signals).toMatchObject({ tau: 2, rounds: 100 });
  });

  it("the first scrape only starts the window", () => {
    const out = signalsStatus(window({ end: [at("a", T0, vllm(10, [5]))] }));
    expect(out.signals).toBeUndefined();
    expect(out.condition).toMatchObject({ status: "True", reason: "Measuring" });
    expect(out.keep.map((k) => k.uid)).toEqual(["a"]);
  });

  it("MetricsAvailable False: unreachable pods, malformed text, no speculative counters, no ready pod", () => {
    const previous: MeasuredSignals = { tau: 3, tauTime: "2026-12-01T09:00:00Z" };
    const unreachable = signalsStatus(
      window({ previous, failed: [{ pod: "pod-a", error: "no answer within 5000 ms" }] }),
    );
    expect(unreachable.signals).toBe(previous);
    expect(unreachable.condition).toMatchObject({ status: "False", reason: "ScrapeFailed" });
    expect(unreachable.condition.message).toMatch(/pod-a: no answer within 5000 ms/);

    const partial = signalsStatus(
      window({
        start: [at("a", T0, vllm(0, [0]))],
        end: [at("a", T1, vllm(100, [50])), at("b", T1, "vllm:x{ 1\n")],
      }),
    );
    expect(partial.condition).toMatchObject({ status: "False", reason: "ScrapeFailed" });
    expect(partial.condition.message).toMatch(
      /1 of 2 pods could not be scraped \(pod-b: metrics text line 1/,
    );
    expect(partial.signals?.tau).toBe(1.5);
    expect(partial.keep.map((k) => k.uid)).toEqual(["a"]);

    const plain = '# TYPE vllm:generation_tokens counter\nvllm:generation_tokens_total{engine="0"} 5\n';
    const noSpec = signalsStatus(window({ start: [at("a", T0, plain)], end: [at("a", T1, plain)] }));
    expect(noSpec.condition).toMatchObject({ status: "False", reason: "NoSpeculativeCounters" });

    expect(signalsStatus(window({ previous })).condition).toMatchObject({
      status: "False",
      reason: "NoReadyPods",
    });
  });

  it("vLLM before the first draft: the family is declared with no sample yet; counters count as present", () => {
    const declared =
      "# HELP vllm:spec_decode_num_drafts Number of spec decoding drafts.\n# TYPE vllm:spec_decode_num_drafts counter\n";
    const out = signalsStatus(window({ end: [at("a", T0, declared)] }));
    expect(out.condition).toMatchObject({ status: "True", reason: "Measuring" });
  });

  it("SGLang: tau from the acceptance-length gauge, rounds estimated from generated tokens", () => {
    const sg = (gen: number, accept: number) =>
      [
        "# TYPE sglang:generation_tokens counter",
        `sglang:generation_tokens_total{model_name="m"} ${gen}`,
        "# TYPE sglang:spec_accept_length gauge",
        `sglang:spec_accept_length{model_name="m"} ${accept}`,
        "",
      ].join("\n");
    const out = signalsStatus(window({ start: [at("a", T0, sg(100, 3))], end: [at("a", T1, sg(3100, 3))] }));
    expect(out.signals).toMatchObject({ tau: 3, rounds: 1000 });
  });
});
