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

  it("a hung API server ends leadership at the renew deadline, before the lease can pass", async () => {
    const client = new FakeClient();
    const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
    const log: string[] = [];
    const a = candidate(client, clock, "a", log);
    void a.run();
    await until(() => a.isLeader());
    expect(a.signal.aborted).toBe(false);
    await advance(clock, 4_000); // a couple of good renewals
    const renews = client.actions.filter((x) => x.verb === "replace").length;
    expect(renews).toBeGreaterThanOrEqual(1);
    const lastRenewAt = clock.now() - (clock.now() % 2_000); // renewals happen on the 2 s retry period
    client.hang(); // every request from now on hangs: the renewal in flight never answers
    let stoppedAt = 0;
    while (a.isLeader()) {
      await advance(clock, 500);
      stoppedAt = clock.now();
    }
    expect(log).toEqual(["a started", "a stopped"]);
    expect(a.signal.aborted).toBe(true);
    // Stopped within the renew deadline of the last good renewal (+ the test's 0.5 s step)…
    expect(stoppedAt - lastRenewAt).toBeLessThanOrEqual(10_000 + 500);
    // …so well before the 15 s lease would let a standby in.
    expect(stoppedAt - lastRenewAt).toBeLessThan(15_000);
    // A replica that lost the lease does not release it, even when asked to.
    client.resume();
    const writesBefore = client.actions.filter((x) => x.verb === "replace").length;
    await a.stop();
    expect(client.actions.filter((x) => x.verb === "replace")).toHaveLength(writesBefore);
    expect(client.objects(Leases)[0]?.spec?.holderIdentity).toBe("a");
  });

  it("stop() returns while the API server hangs", async () => {
    const client = new FakeClient();
    const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
    const a = candidate(client, clock, "a", []);
    void a.run();
    await until(() => a.isLeader());
    await advance(clock, 2_500); // a renewal is in flight when the server freezes
    client.hang();
    let stopped = false;
    const stopping = a.stop().then(() => {
      stopped = true;
    });
    await advance(clock, 10_000); // the release attempt is bounded too
    await until(() => stopped, "stop() returns");
    await stopping;
    expect(a.isLeader()).toBe(false);
  });

  it("never releases a lease that someone else wrote since its last renewal", async () => {
    const client = new FakeClient();
    const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
    const a = candidate(client, clock, "a", []);
    void a.run();
    await until(() => a.isLeader());
    // Another replica took the lease and, for the moment, lists "a" again (e.g. a restarted "a").
    const lease = client.objects(Leases)[0];
    await client.replace(Leases, { ...lease, spec: { ...lease?.spec, leaseTransitions: 7 } } as never);
    await a.stop();
    expect(client.objects(Leases)[0]?.spec).toMatchObject({ holderIdentity: "a", leaseTransitions: 7 });
  });
});
