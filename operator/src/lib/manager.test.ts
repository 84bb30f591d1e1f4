// The Manager with a fake API server (FakeClient) and a ManualClock: leadership loss stops writes
// and reconciles at once; start-up fails clearly when a cache cannot sync.
import { describe, expect, it } from "vitest";
import { ManualClock } from "./clock.ts";
import { apiError, FakeClient } from "./fakeclient.ts";
import { NotLeaderError } from "./fencedclient.ts";
import { Manager } from "./manager.ts";
import { ConfigMaps } from "./rest.ts";

const until = async (cond: () => boolean, what = "condition") => {
  for (let i = 0; i < 5000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`timed out waiting for ${what}`);
};

async function advance(clock: ManualClock, ms: number, step = 250) {
  for (let t = 0; t < ms; t += step) {
    await new Promise((r) => setImmediate(r));
    clock.advance(step);
    await new Promise((r) => setImmediate(r));
  }
}

const cm = (name: string) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "ns" } });

describe("Manager", () => {
  it("on leadership loss, aborts reconciles and refuses writes at once, without a graceful drain", async () => {
    const client = new FakeClient();
    const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
    client.seed(ConfigMaps, cm("a"));
    const mgr = new Manager({
      client,
      clock,
      shutdownTimeoutMs: 600_000, // a drain would wait ten minutes
      leaderElection: { name: "m", namespace: "ns", identity: "m1" },
    });
    let ctxSignal: AbortSignal | undefined;
    let writeOutcome: unknown;
    mgr.controller({
      name: "hangs",
      for: mgr.informer(ConfigMaps),
      reconcile: async (_key, ctx) => {
        ctxSignal = ctx.signal;
        client.hang(); // the API server freezes mid-reconcile: this write and every renewal hang
        writeOutcome = await mgr.client
          .patch(ConfigMaps, "ns", "a", { data: { x: "1" } }, { type: "merge" })
          .catch((e: unknown) => e);
      },
    });
    let rejected: Error | undefined;
    mgr.stopped.catch((e: Error) => {
      rejected = e;
    });
    await mgr.start();
    await until(() => mgr.isLeader(), "leading");
    await until(() => ctxSignal !== undefined, "reconcile running");
    const frozeAt = clock.now();
    while (!rejected) await advance(clock, 250);
    // Renew deadline 10 s after the last renewal (at most one 2 s retry period before the freeze).
    expect(clock.now() - frozeAt).toBeLessThanOrEqual(10_000 + 250);
    expect(ctxSignal?.aborted).toBe(true);
    expect(writeOutcome).toBeInstanceOf(Error); // the hung write was cut, not left to land later
    expect(rejected.message).toBe("leader election lost");
    client.resume();
    await expect(mgr.client.create(ConfigMaps, cm("late"))).rejects.toBeInstanceOf(NotLeaderError);
    expect(client.objects(ConfigMaps).map((o) => o.metadata?.name)).toEqual(["a"]);
  });

  it("a standby's client refuses writes; reads work", async () => {
    const client = new FakeClient();
    client.seed(ConfigMaps, cm("a"));
    const mgr = new Manager({ client, leaderElection: { name: "m", namespace: "ns" } });
    expect((await mgr.client.get(ConfigMaps, "ns", "a")).metadata?.name).toBe("a");
    await expect(mgr.client.delete(ConfigMaps, "ns", "a")).rejects.toThrow(
      /refused: this replica may not write/,
    );
  });

  it("start() fails naming the resource and the RBAC verb when a list is forbidden", async () => {
    const client = new FakeClient();
    client.failNext("list", apiError(403, "Forbidden", "configmaps is forbidden"));
    const mgr = new Manager({ client, namespaces: ["team-a"] });
    mgr.informer(ConfigMaps);
    await expect(mgr.start()).rejects.toThrow(
      'cannot list configmaps in namespace "team-a": forbidden (403); the operator\'s role needs verb "list" on resource "configmaps"',
    );
    await expect(mgr.stopped).rejects.toThrow(/forbidden/);
  });

  it("start() fails after the cache sync timeout when a list never answers", async () => {
    const client = new FakeClient();
    const clock = new ManualClock();
    client.hang("list");
    const mgr = new Manager({ client, clock, cacheSyncTimeoutMs: 5_000 });
    mgr.informer(ConfigMaps);
    const outcome = mgr.start().catch((e: Error) => e);
    await advance(clock, 5_000, 1000);
    expect(String(await outcome)).toMatch(/caches not synced within 5000 ms: configmaps/);
  });
});
