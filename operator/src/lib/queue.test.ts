import { describe, expect, it } from "vitest";
import { ManualClock } from "./clock.ts";
import { WorkQueue } from "./queue.ts";
import { ExponentialBackoff, MaxOf, TokenBucket } from "./ratelimit.ts";

/** Lets pending promise callbacks run. */
const tick = () => new Promise((r) => setImmediate(r));

function queue(clock = new ManualClock()) {
  return { clock, q: new WorkQueue({ clock }) };
}

describe("WorkQueue", () => {
  it("deduplicates keys that are waiting", async () => {
    const { q } = queue();
    q.add("ns/a");
    q.add("ns/b");
    q.add("ns/a");
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe("ns/a");
    expect(await q.get()).toBe("ns/b");
  });

  it("never hands out a key being processed; re-queues it after done()", async () => {
    const { q } = queue();
    q.add("ns/a");
    const key = await q.get();
    q.add("ns/a"); // changed while processing
    q.add("ns/a");
    expect(q.len()).toBe(0);
    let second: string | undefined;
    void q.get().then((k) => {
      second = k;
    });
    await tick();
    expect(second).toBeUndefined();
    q.done(key as string);
    await tick();
    expect(second).toBe("ns/a");
  });

  it("hands a waiting get() the next added key", async () => {
    const { q } = queue();
    const next = q.get();
    q.add("ns/x");
    expect(await next).toBe("ns/x");
  });

  it("addAfter delivers after the delay and keeps the earliest of two delays", async () => {
    const { clock, q } = queue();
    q.addAfter("ns/a", 1000);
    q.addAfter("ns/a", 300);
    q.addAfter("ns/a", 5000);
    clock.advance(299);
    expect(q.len()).toBe(0);
    clock.advance(1);
    expect(q.len()).toBe(1);
    clock.advance(10_000);
    expect(q.len()).toBe(1); // the later timers were dropped
  });

  it("backs off per key exponentially and forget() resets it", async () => {
    const { clock, q } = queue();
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      const start = clock.now();
      q.addRateLimited("ns/a");
      while (q.len() === 0) clock.advance(1);
      delays.push(clock.now() - start);
      q.done((await q.get()) as string);
    }
    expect(delays).toEqual([5, 10, 20, 40]);
    expect(q.retries("ns/a")).toBe(4);
    q.forget("ns/a");
    expect(q.retries("ns/a")).toBe(0);
    const start = clock.now();
    q.addRateLimited("ns/a");
    while (q.len() === 0) clock.advance(1);
    expect(clock.now() - start).toBe(5);
  });

  it("shutdown stops intake, wakes getters and drain waits for in-flight keys", async () => {
    const { clock, q } = queue();
    q.add("ns/a");
    q.add("ns/b");
    q.addAfter("ns/c", 100);
    const key = (await q.get()) as string;
    q.shutdown();
    expect(await q.get()).toBeUndefined();
    q.add("ns/d");
    clock.advance(1000);
    expect(q.len()).toBe(0);
    let drained: boolean | undefined;
    void q.drain(30_000).then((d) => {
      drained = d;
    });
    await tick();
    expect(drained).toBeUndefined();
    q.done(key);
    await tick();
    expect(drained).toBe(true);
  });

  it("drain gives up after its timeout", async () => {
    const { clock, q } = queue();
    q.add("ns/a");
    await q.get();
    q.shutdown();
    const drained = q.drain(30_000);
    clock.advance(30_000);
    expect(await drained).toBe(false);
  });
});

describe("rate limiters", () => {
  it("exponential backoff doubles from 5 ms and caps at 1000 s", () => {
    const b = new ExponentialBackoff();
    const got = Array.from({ length: 30 }, () => b.when("k"));
    expect(got.slice(0, 5)).toEqual([5, 10, 20, 40, 80]);
    expect(got.at(-1)).toBe(1_000_000);
    expect(Math.max(...got)).toBe(1_000_000);
    expect(b.when("other")).toBe(5); // per key
  });

  it("token bucket allows a burst of 100, then 10 per second", () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(clock, 10, 100);
    const burst = Array.from({ length: 100 }, () => bucket.when("k"));
    expect(burst.every((d) => d === 0)).toBe(true);
    expect(bucket.when("k")).toBeCloseTo(100);
    expect(bucket.when("k")).toBeCloseTo(200);
    clock.advance(1000); // refills 10 tokens, 2 already owed
    expect(bucket.when("k")).toBeCloseTo(0);
  });

  it("the default limiter is the max of both: many failing keys are throttled globally", () => {
    const clock = new ManualClock();
    const limiter = new MaxOf(new ExponentialBackoff(), new TokenBucket(clock, 10, 100));
    const delays = Array.from({ length: 110 }, (_, i) => limiter.when(`k${i}`));
    expect(delays.slice(0, 100).every((d) => d === 5)).toBe(true);
    expect(delays[109]).toBeCloseTo(1000);
  });
});
