// A tiny controller end to end on the real API server, built only from the library: it mirrors
// each source ConfigMap into an owned "<name>-copy" ConfigMap with SSA, stamps the source with an
// annotation through an optimistic-locked PUT (which conflicts when someone else writes first and
// is then requeued quietly), and records Events. Served metrics and probes are checked too.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  apply,
  ConfigMaps,
  controllerReference,
  EventRecorder,
  Events,
  KubeClient,
  type KubeObject,
  Manager,
} from "../../operator/src/lib/index.ts";
import { ensureNamespace, kubeConfig } from "./kube.ts";

const NS = "lib-controller";
const MANAGER = "specops-libtest-copier";
const SEEN = "libtest.specops.dev/seen";

type CM = KubeObject & { data?: Record<string, string> };

const until = async (cond: () => boolean | Promise<boolean>, what: string, ms = 15_000) => {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

let client: KubeClient;
let mgr: Manager;
let events: EventRecorder;
let beforeStamp: ((name: string) => Promise<void>) | undefined;

beforeAll(async () => {
  const kc = kubeConfig();
  client = new KubeClient(kc);
  await ensureNamespace(kc, NS);
  mgr = new Manager({ client, namespaces: [NS], port: 0, shutdownTimeoutMs: 5000 });
  events = new EventRecorder({
    client,
    reportingController: "specops.dev/libtest-copier",
    reportingInstance: "test",
  });
  const cms = mgr.informer(ConfigMaps);
  mgr.controller({
    name: "copier",
    for: cms,
    owns: [cms],
    workers: 2,
    reconcile: async (_key, { namespace, name, log }) => {
      const src = cms.store.get(namespace, name) as CM | undefined;
      if (!src || name.endsWith("-copy") || !src.metadata?.labels?.mirror) return;
      await apply(
        client,
        {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: `${name}-copy`, namespace, ownerReferences: [controllerReference(src)] },
          data: src.data ?? {},
        },
        { fieldManager: MANAGER },
      );
      const seen = JSON.stringify(src.data ?? {});
      if (src.metadata.annotations?.[SEEN] === seen) return;
      await beforeStamp?.(name);
      // Optimistic lock: PUT with the cached resourceVersion; a concurrent writer makes it 409.
      const updated = structuredClone(src);
      updated.metadata = {
        ...updated.metadata,
        annotations: { ...updated.metadata?.annotations, [SEEN]: seen },
      };
      await client.replace(ConfigMaps, updated);
      events.event(src, "Normal", "Mirrored", `mirrored ${Object.keys(src.data ?? {}).length} keys`);
      log.info("mirrored");
    },
  });
  await mgr.start();
});

afterAll(async () => {
  await mgr?.stop();
  await events?.flush();
});

const source = (name: string, data: Record<string, string>) => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: NS, labels: { mirror: "yes" } },
  data,
});

const copyOf = (name: string) =>
  client.get(ConfigMaps, NS, `${name}-copy`).then(
    (c) => c as CM,
    () => undefined,
  );

describe("sample controller", () => {
  it("mirrors a source into an owned copy, follows updates and restores a deleted copy", async () => {
    await client.create(ConfigMaps, source("alpha", { k: "1" }));
    await until(async () => (await copyOf("alpha"))?.data?.k === "1", "copy created");
    const copy = await copyOf("alpha");
    expect(copy?.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: "ConfigMap",
      name: "alpha",
      controller: true,
    });

    await client.patch(ConfigMaps, NS, "alpha", { data: { k: "2" } }, { type: "merge" });
    await until(async () => (await copyOf("alpha"))?.data?.k === "2", "copy updated");

    // Deleting the child enqueues its owner, which recreates it.
    await client.delete(ConfigMaps, NS, "alpha-copy");
    await until(async () => (await copyOf("alpha")) !== undefined, "copy restored");
  });

  it("requeues on a 409 conflict without counting an error, then converges", async () => {
    let interfered = false;
    beforeStamp = async (name) => {
      if (name !== "beta" || interfered) return;
      interfered = true; // someone else writes between our read and our PUT
      await client.patch(
        ConfigMaps,
        NS,
        "beta",
        { metadata: { labels: { other: "writer" } } },
        { type: "merge" },
      );
    };
    const errorsBefore = await metric('controller_runtime_reconcile_errors_total{controller="copier"}');
    await client.create(ConfigMaps, source("beta", { k: "1" }));
    await until(
      async () => (await client.get(ConfigMaps, NS, "beta")).metadata?.annotations?.[SEEN] === '{"k":"1"}',
      "annotation after requeue",
    );
    const beta = await client.get(ConfigMaps, NS, "beta");
    expect(beta.metadata?.labels).toMatchObject({ other: "writer", mirror: "yes" }); // not clobbered
    expect(interfered).toBe(true);
    expect(
      await metric('controller_runtime_reconcile_total{controller="copier",result="requeue"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(await metric('controller_runtime_reconcile_errors_total{controller="copier"}')).toBe(errorsBefore);
  });

  it("records deduplicated Events on the source", async () => {
    await events.flush();
    const list = await client.list(Events, NS);
    const mirrored = list.items.filter(
      (e) =>
        (e as { regarding?: { name?: string }; reason?: string }).regarding?.name === "alpha" &&
        (e as { reason?: string }).reason === "Mirrored",
    );
    expect(mirrored.length).toBeGreaterThanOrEqual(1);
    expect(mirrored[0]).toMatchObject({ reportingController: "specops.dev/libtest-copier", type: "Normal" });
  });

  it("serves probes and controller-runtime metrics", async () => {
    const base = `http://127.0.0.1:${mgr.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const text = await (await fetch(`${base}/metrics`)).text();
    for (const name of [
      'controller_runtime_reconcile_total{controller="copier",result="success"}',
      'controller_runtime_terminal_reconcile_errors_total{controller="copier"}',
      'controller_runtime_reconcile_time_seconds_bucket{le="0.005",controller="copier"}',
      'workqueue_depth{name="copier",controller="copier"}',
      'workqueue_adds_total{name="copier",controller="copier"}',
      'workqueue_queue_duration_seconds_count{name="copier",controller="copier"}',
      'workqueue_work_duration_seconds_count{name="copier",controller="copier"}',
      'workqueue_retries_total{name="copier",controller="copier"}',
    ]) {
      expect(text).toContain(name);
    }
    expect(
      await metric('controller_runtime_reconcile_total{controller="copier",result="success"}'),
    ).toBeGreaterThan(0);
  });
});

async function metric(series: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${mgr.port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}
