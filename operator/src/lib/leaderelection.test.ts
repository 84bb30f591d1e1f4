import { describe, expect, it } from "vitest";
import { ManualClock } from "./clock.ts";
import { FakeClient } from "./fakeclient.ts";
import { LeaderElector } from "./leaderelection.ts";
import { Leases } from "./rest.ts";

const until = async (cond: () => boolean, what = "condition") => {
  for (let i = 0; i < 5000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`timed out waiting for ${what}`);
};

function candidate(client: FakeClient, clock: ManualClock, identity: string, log: string[]) {
  return new LeaderElector({
    client,
    clock,
    name: "specops",
    namespace: "ops",
    identity,
    onStartedLeading: () => log.push(`${identity} started`),
    onStoppedLeading: () => log.push(`${identity} stopped`),
  });
}

/** Advances the clock in retry-period steps, letting the electors' requests finish in between. */
async function advance(clock: ManualClock, ms: number) {
  for (let t = 0; t < ms; t += 500) {
    await new Promise((r) => setImmediate(r));
    clock.advance(500);
    await new Promise((r) => setImmediate(r));
  }
}

describe("LeaderElector", () => {
  it("elects one leader; a standby takes over only after the lease expires", async () => {
    const client = new FakeClient();
    const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
    const log: string[] = [];
    const a = candidate(client, clock, "a", log);
    const b = candidate(client, clock, "b", log);
    void a.run();
    await until(() => a.isLeader(), "a leads");
    void b.run();
    await advance(clock, 20_000);
    expect(b.isLeader()).toBe(false);
    expect(log).toEqual(["a started"]);
    // a dies without releasing: its renewals stop.
    await a.stop({ release: false });
    const diedAt = clock.now();
    await until(() => log.includes("a stopped"));
    while (!b.isLeader()) await advance(clock, 500);
    const takeover = clock.now() - diedAt;
    expect(takeover).toBeGreaterThanOrEqual(13_000); // waited for the 15 s lease to lapse…
    expect(takeover).toBeLessThanOrEqual(15_000 + 2_500); // …plus at most one retry period
    const lease = client.objects(Leases)[0];
    expect(lease?.spec).toMatchObject({ holderIdentity: "b", leaseDurationSeconds: 15, leaseTransitions: 1 });
    await b.stop();
  });

  it("release on stop lets the standby take over at its next poll", async () => {
    const client = new FakeClient();
    const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
    const log: string[] = [];
    const a = candidate(client, clock, "a", log);
    const b = candidate(client, clock, "b", log);
    void a.run();
    await until(() => a.isLeader());
    void b.run();
    await advance(clock, 4_000);
    await a.stop();
    expect(client.objects(Leases)[0]?.spec).toMatchObject({ holderIdentity: "", leaseDurationSeconds: 1 });
    const releasedAt = clock.now();
    while (!b.isLeader()) await advance(clock, 500);
    expect(clock.now() - releasedAt).toBeLessThanOrEqual(3_000);
    await b.stop();
  });

  it("gives up leadership when it cannot renew within the deadline", async () => {
    const client = new FakeClient();
    const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
    const log: string[] = [];
    const a = candidate(client, clock, "a", log);
    void a.run();
    await until(() => a.isLeader());
    // Someone else grabs the lease (e.g. after a network partition): every renewal now conflicts.
    const lease = client.objects(Leases)[0];
    await client.replace(Leases, { ...lease, spec: { ...lease?.spec, holderIdentity: "intruder" } } as never);
    await advance(clock, 12_000);
    expect(a.isLeader()).toBe(false);
    expect(log).toEqual(["a started", "a stopped"]);
    await a.stop();
  });
});
