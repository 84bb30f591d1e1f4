import { describe, expect, it } from "vitest";
import { type SpecServe, specServeResource } from "../../api/kinds.ts";
import { parseExposition } from "../../autoscaler/exposition.ts";
import type { KubeObject } from "../../lib/rest.ts";
import { PodScrapes, type SharedScrape } from "../shared/pod-scrapes.ts";
import type { ScrapablePod } from "./scrape.ts";
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
    const meter = signalsMeter({
      scrape: async (_ss, pods: ScrapablePod[]) => {
        scraped.push(pods.map((p) => p.metadata?.uid ?? ""));
        return pods.map(
          (p): SharedScrape => ({
            pod: p.metadata?.name ?? "",
            uid: p.metadata?.uid ?? "",
            ok: true,
            exposition: parseExposition(text(rounds)),
            timeMs: now,
          }),
        );
      },
      latestMs: () => undefined,
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

describe("signalsMeter beside another reader of the same pods (the autoscaler), through the shared scrapes", () => {
  /** A clock, a PodScrapes over it counting GETs, the meter over it, and the other reader. */
  function setup() {
    const clock = { now: 1_000_000 };
    const gets: number[] = [];
    const scrapes = new PodScrapes({
      now: () => clock.now,
      fetchText: async () => {
        gets.push(clock.now);
        return text(100 * gets.length);
      },
    });
    const meter = signalsMeter({
      scrape: (_ss, pods, signal, since) => scrapes.scrape(pods, { port: 8000, signal, since }),
      latestMs: (_ss, pod) => scrapes.latest(pod, 8000)?.timeMs,
    });
    const signal = new AbortController().signal;
    const pods = [ready("a")];
    const other = () =>
      scrapes.scrape(pods, { port: 8000, signal, since: clock.now - 2500 }).then((r) => r[0]?.timeMs);
    const measure = () => meter.measure("ns/chat", ss, pods, clock.now, signal);
    return { clock, gets, other, measure };
  }

  it("takes the other reader's recent scrape instead of its own, then shares one scrape a window", async () => {
    const { clock, gets, other, measure } = setup();
    await other(); // t0
    clock.now += 3000;
    await measure(); // first measurement: the other's scrape is 3 s old (> 2.5 s fresh): its own
    expect(gets).toHaveLength(2);
    clock.now += 7000;
    await other(); // t0 + 10 s
    expect(gets).toHaveLength(3);
    clock.now += 3000;
    const m = await measure(); // due: takes the other's scrape of 3 s ago, no GET
    expect(gets).toHaveLength(3);
    expect(m.outcome?.signals).toMatchObject({ tau: 3, rounds: 100 }); // its GET (200) to the other's (300)
    // From now on on the other's phase: due when it is, one GET a window whichever goes first.
    expect(m.dueInMs).toBe(7000);
    const t0 = clock.now - 13_000;
    for (let k = 2; k <= 5; k++) {
      clock.now = t0 + 10_000 * k;
      if (k % 2) {
        await measure();
        await other();
      } else {
        await other();
        expect((await measure()).dueInMs).toBe(10_000);
      }
    }
    expect(gets).toHaveLength(7);
  });

  it("waits for the other reader's next scrape when it comes within half a window", async () => {
    const { clock, gets, other, measure } = setup();
    await measure(); // t0: its own
    clock.now += 4000;
    await other(); // t0 + 4 s: the meter's is not fresh enough for it
    expect(gets).toHaveLength(2);
    clock.now += 6000;
    const wait = await measure(); // due at t0 + 10 s; the other scrapes again at t0 + 14 s
    expect(wait).toEqual({ dueInMs: 4000 });
    expect(gets).toHaveLength(2);
    clock.now += 4000;
    await other();
    const m = await measure();
    expect(m.outcome?.signals).toMatchObject({ rounds: 200 }); // from GET 1 (100) to GET 3 (300)
    expect(gets).toHaveLength(3);
    // If the other stops, the meter scrapes again on its own a window later.
    clock.now += 10_000;
    await measure();
    expect(gets).toHaveLength(4);
  });
});
