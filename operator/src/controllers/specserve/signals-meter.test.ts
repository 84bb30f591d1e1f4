import { describe, expect, it } from "vitest";
import { type SpecServe, specServeResource } from "../../api/kinds.ts";
import type { KubeObject } from "../../lib/rest.ts";
import type { PodScrape, ScrapablePod } from "./scrape.ts";
import { signalsMeter } from "./signals-meter.ts";

const ss: SpecServe = specServeResource.parse({
  apiVersion: "specops.dev/v1alpha1",
  kind: "SpecServe",
  metadata: { name: "chat", namespace: "ns", uid: "ss-1" },
  spec: {
    target: { uri: "hf://o/t" },
    draft: { source: { uri: "hf://o/d" } },
    method: "eagle3",
    autoscaling: { maxReplicas: 2, window: "10s" },
  },
});
const ready = (uid: string) =>
  ({
    metadata: { name: `pod-${uid}`, uid },
    status: { podIP: "10.0.0.1", conditions: [{ type: "Ready", status: "True" }] },
  }) as KubeObject;
const text = (rounds: number) =>
  `# TYPE vllm:spec_decode_num_drafts counter\nvllm:spec_decode_num_drafts_total ${rounds}\n` +
  `# TYPE vllm:spec_decode_num_accepted_tokens counter\nvllm:spec_decode_num_accepted_tokens_total ${2 * rounds}\n`;

describe("signalsMeter: one measurement per window", () => {
  it("measures at once when a first pod becomes ready, then once per window; tau after a window", async () => {
    let rounds = 0;
    let now = 1_000_000;
    const scraped: string[][] = [];
    const meter = signalsMeter(async (_ss, pods: ScrapablePod[]) => {
      scraped.push(pods.map((p) => p.metadata?.uid ?? ""));
      return pods.map(
        (p): PodScrape => ({
          pod: p.metadata?.name ?? "",
          uid: p.metadata?.uid ?? "",
          ok: true,
          text: text(rounds),
          timeMs: now,
        }),
      );
    });
    const signal = new AbortController().signal;
    const none = await meter.measure("ns/chat", ss, [], now, signal);
    expect(none.outcome?.condition.reason).toBe("NoReadyPods");
    expect(none.dueInMs).toBe(10_000);
    // Nothing changed: a reconcile for another reason scrapes nothing.
    now += 1000;
    expect((await meter.measure("ns/chat", ss, [], now, signal)).outcome).toBeUndefined();
    // The first pod is ready: measured at once, not a window later.
    now += 1000;
    const first = await meter.measure("ns/chat", ss, [ready("a")], now, signal);
    expect(first.outcome?.condition.reason).toBe("Measuring");
    rounds = 500;
    now += 4000;
    const mid = await meter.measure("ns/chat", ss, [ready("a")], now, signal);
    expect(mid.outcome).toBeUndefined();
    expect(mid.dueInMs).toBe(6000);
    now += 6000;
    const full = await meter.measure("ns/chat", ss, [ready("a")], now, signal);
    expect(full.outcome?.signals).toMatchObject({ tau: 3, rounds: 500, window: "10s" });
    expect(scraped).toEqual([[], ["a"], ["a"]]);
    // A deleted SpecServe's memory goes; a new one of the same name starts over.
    meter.forget("ns/chat");
    now += 1000;
    expect((await meter.measure("ns/chat", ss, [ready("a")], now, signal)).outcome?.condition.reason).toBe(
      "Measuring",
    );
  });
});
