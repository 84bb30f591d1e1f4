// Leader election on a real Lease: two candidates in one process, short timings (lease 3 s,
// renew deadline 2 s, retry 0.25 s) so takeover is observable quickly.
import { describe, expect, it } from "vitest";
import { ConfigMaps, KubeClient, LeaderElector, Leases, Manager } from "../../operator/src/lib/index.ts";
import { ensureNamespace, kubeConfig } from "./kube.ts";

const NS = "lib-leader";
const TIMINGS = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 250 };

const until = async (cond: () => boolean, what: string, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

async function setup() {
  const kc = kubeConfig();
  const client = new KubeClient(kc);
  await ensureNamespace(kc, NS);
  return client;
}

describe("LeaderElector", () => {
  it("elects one of two; when the leader dies the other takes over after the lease lapses", async () => {
    const client = await setup();
    const log: string[] = [];
    const elector = (identity: string) =>
      new LeaderElector({
        client,
        name: "crash",
        namespace: NS,
        identity,
        ...TIMINGS,
        onStartedLeading: () => log.push(`${identity} leads`),
        onStoppedLeading: () => log.push(`${identity} stops`),
      });
    const a = elector("a");
    const b = elector("b");
    void a.run();
    await until(() => a.isLeader(), "a leads");
    void b.run();
    await new Promise((r) => setTimeout(r, 1000));
    expect([a.isLeader(), b.isLeader()]).toEqual([true, false]);

    await a.stop({ release: false }); // a "crashes": no release, no more renewals
    const crashedAt = Date.now();
    await until(() => b.isLeader(), "b takes over", 6000);
    const takeover = Date.now() - crashedAt;
    expect(takeover).toBeGreaterThan(1500); // had to wait for the lease to lapse
    expect(takeover).toBeLessThan(TIMINGS.leaseDurationMs + 1500);
    const lease = await client.get(Leases, NS, "crash");
    expect(lease.spec).toMatchObject({ holderIdentity: "b", leaseDurationSeconds: 3, leaseTransitions: 1 });
    await b.stop();
    expect(log).toEqual(["a leads", "a stops", "b leads", "b stops"]);
  });
});

describe("Manager with leader election", () => {
  it("runs controllers only on the leader; a graceful stop releases the lease for an immediate takeover", async () => {
    const client = await setup();
    const reconciled = { m1: 0, m2: 0 };
    await client
      .create(ConfigMaps, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "seed", namespace: NS } })
      .catch(() => {});
    const manager = (id: "m1" | "m2") => {
      const m = new Manager({
        client,
        namespaces: [NS],
        port: 0,
        leaderElection: { name: "managers", namespace: NS, identity: id, ...TIMINGS },
        shutdownTimeoutMs: 5000,
      });
      m.controller({
        name: `lib-leader-${id}`,
        for: m.informer(ConfigMaps),
        reconcile: async () => {
          reconciled[id]++;
        },
      });
      return m;
    };
    const m1 = manager("m1");
    const m2 = manager("m2");
    await m1.start();
    await until(() => m1.isLeader() && reconciled.m1 > 0, "m1 leads and reconciles");
    await m2.start();
    await new Promise((r) => setTimeout(r, 750));
    expect(m2.isLeader()).toBe(false);
    expect(reconciled.m2).toBe(0);

    // The standby is ready (warm cache), and reports itself as not the master.
    const get = (m: Manager, path: string) => fetch(`http://127.0.0.1:${m.port}${path}`);
    expect((await get(m2, "/readyz")).status).toBe(200);
    expect(await (await get(m2, "/metrics")).text()).toMatch(
      /leader_election_master_status\{name="managers"\} 0/,
    );
    expect(await (await get(m1, "/metrics")).text()).toMatch(
      /leader_election_master_status\{name="managers"\} 1/,
    );

    await m1.stop();
    await m1.stopped;
    const releasedAt = Date.now();
    await until(() => m2.isLeader(), "m2 takes over");
    expect(Date.now() - releasedAt).toBeLessThan(1000); // no waiting out the 3 s lease
    await until(() => reconciled.m2 > 0, "m2 reconciles");
    await m2.stop();
  });
});
