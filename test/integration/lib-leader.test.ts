// Leader election on a real Lease: two candidates in one process, short timings (lease 3 s,
// renew deadline 2 s, retry 0.25 s) so takeover is observable quickly. The frozen-server case puts
// a TCP relay that stops forwarding between the leader and the API server.
import { createServer, type Socket, connect as tcpConnect } from "node:net";
import { describe, expect, it } from "vitest";
import {
  ConfigMaps,
  connectionFromKubeConfig,
  KubeClient,
  LeaderElector,
  Leases,
  Manager,
} from "../../operator/src/lib/index.ts";
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

/** A TCP relay to the API server that can freeze: it keeps every connection open and forwards nothing. */
async function freezableRelay(target: URL) {
  const sockets = new Set<Socket>();
  let frozen = false;
  const server = createServer((client) => {
    sockets.add(client);
    client.on("error", () => {});
    if (frozen) return; // accepted, never answered
    const upstream = tcpConnect(Number(target.port), target.hostname);
    sockets.add(upstream);
    upstream.on("error", () => client.destroy());
    client.on("data", (d) => frozen || upstream.write(d));
    upstream.on("data", (d) => frozen || client.write(d));
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `https://127.0.0.1:${(server.address() as { port: number }).port}`,
    freeze: () => {
      frozen = true;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe("Manager behind a frozen API server", () => {
  it("the leader stops writing within the renew deadline, before the standby can take the lease", async () => {
    const kc = kubeConfig();
    const direct = await setup();
    const server = new URL(kc.getCurrentCluster()?.server ?? "");
    const relay = await freezableRelay(server);
    const relayed = connectionFromKubeConfig({
      getCurrentCluster: () => ({ ...(kc.getCurrentCluster() as { server: string }), server: relay.url }),
      getCurrentUser: () => kc.getCurrentUser(),
    });
    await direct
      .create(ConfigMaps, {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "frozen-seed", namespace: NS },
      })
      .catch(() => {});
    let lastWriteDone = 0;
    let sawAbort = false;
    const manager = (id: string, client: KubeClient) => {
      const m = new Manager({
        client,
        namespaces: [NS],
        leaderElection: { name: "frozen", namespace: NS, identity: id, ...TIMINGS },
        shutdownTimeoutMs: 60_000, // a graceful drain would wait a minute: loss must not drain
      });
      const cms = m.informer(ConfigMaps);
      m.controller({
        name: `lib-frozen-${id}`,
        for: cms,
        reconcile: async (key, ctx) => {
          if (id !== "old" || !key.endsWith("/frozen-seed")) return;
          // Keeps writing while it leads: each pass stamps the ConfigMap.
          while (!ctx.signal.aborted) {
            await m.client
              .patch(ConfigMaps, NS, "frozen-seed", { data: { at: String(Date.now()) } }, { type: "merge" })
              .then(() => {
                lastWriteDone = Date.now();
              })
              .catch(() => {});
            await new Promise((r) => setTimeout(r, 50));
          }
          sawAbort = true;
        },
      });
      return m;
    };
    const old = manager("old", new KubeClient(relayed, { requestTimeoutMs: 1000 }));
    const standby = manager("standby", direct);
    let lostAt = 0;
    old.stopped.catch(() => {
      lostAt = Date.now();
    });
    try {
      await old.start();
      await until(() => old.isLeader() && lastWriteDone > 0, "old leads and writes");
      await standby.start();
      relay.freeze();
      const frozeAt = Date.now();
      await until(() => lostAt > 0, "old gives up leadership", 8000);
      await until(() => standby.isLeader(), "standby takes over", 8000);
      const tookOverAt = Date.now();
      expect(sawAbort).toBe(true);
      // The last renewal came before the freeze: the loss is due within the 2 s renew deadline, and
      // must come before the 3 s lease could let the standby in (slack for a loaded machine).
      expect(lostAt - frozeAt).toBeLessThan(TIMINGS.leaseDurationMs);
      expect(lostAt).toBeLessThan(tookOverAt); // stopped before the lease could pass
      expect(lastWriteDone).toBeLessThan(lostAt); // no write completed after the loss
      const lease = await direct.get(Leases, NS, "frozen");
      expect(lease.spec?.holderIdentity).toBe("standby");
    } finally {
      relay.close();
      await standby.stop();
    }
  });
});
