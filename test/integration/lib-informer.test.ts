// The library's informer against the real API server: list + watch, deletes, and a relist after a
// 410 Gone. A fresh control plane never compacts within a test (the API server replays history
// from etcd even for resourceVersion "1"), so the 410 is injected as the exact ERROR event the
// API server sends for an expired resourceVersion.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Client } from "../../operator/src/lib/client.ts";
import { Informer, KubeClient } from "../../operator/src/lib/index.ts";
import { ConfigMaps } from "../../operator/src/lib/rest.ts";
import { ensureNamespace, kubeConfig } from "./kube.ts";

const NS = "lib-informer";
let real: KubeClient;

const until = async (cond: () => boolean, what: string, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

const cm = (name: string, data: Record<string, string> = { v: "1" }) => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: NS, labels: { suite: "lib-informer" } },
  data,
});

/** The real client, with some calls observed or altered. */
function wrap(overrides: Partial<Client>): Client & { lists: number } {
  const c = {
    lists: 0,
    get: real.get.bind(real),
    list: ((...args: Parameters<Client["list"]>) => {
      c.lists++;
      return real.list(...args);
    }) as Client["list"],
    watch: real.watch.bind(real),
    create: real.create.bind(real),
    replace: real.replace.bind(real),
    patch: real.patch.bind(real),
    delete: real.delete.bind(real),
    ...overrides,
  };
  return c;
}

beforeAll(async () => {
  const kc = kubeConfig();
  real = new KubeClient(kc);
  await ensureNamespace(kc, NS);
  for (const o of (await real.list(ConfigMaps, NS)).items) {
    if (o.metadata?.labels?.suite) await real.delete(ConfigMaps, NS, o.metadata.name ?? "");
  }
});

describe("Informer on a real API server", () => {
  let informer: Informer<ReturnType<typeof cm>> | undefined;
  afterAll(() => informer?.stop());

  it("lists, then sees adds, updates and deletes through the watch", async () => {
    await real.create(ConfigMaps, cm("a"));
    const client = wrap({});
    const inf = new Informer(client, ConfigMaps, { namespaces: [NS], labelSelector: "suite=lib-informer" });
    informer = inf as never;
    const events: string[] = [];
    inf.addHandler({
      add: (o) => events.push(`add ${o.metadata?.name}`),
      update: (_, o) => events.push(`update ${o.metadata?.name} ${o.data?.v}`),
      delete: (o) => events.push(`delete ${o.metadata?.name}`),
    });
    inf.start();
    expect(await inf.waitForSync()).toBe(true);
    expect(events).toEqual(["add a"]);
    const cached = inf.store.get(NS, "a");
    expect(cached?.apiVersion).toBe("v1");
    expect(cached?.metadata?.managedFields).toBeUndefined();

    await real.create(ConfigMaps, cm("b"));
    await real.patch(ConfigMaps, NS, "a", { data: { v: "2" } }, { type: "merge" });
    await real.delete(ConfigMaps, NS, "b");
    await until(() => events.length === 4, "4 events");
    expect(events).toEqual(["add a", "add b", "update a 2", "delete b"]);
    expect(inf.store.list(NS).map((o) => o.metadata?.name)).toEqual(["a"]);
    expect(client.lists).toBe(1);
    await inf.stop();
  });

  it("relists after 410 Gone and reports what was deleted meanwhile", async () => {
    await real.create(ConfigMaps, cm("gone-1"));
    await real.create(ConfigMaps, cm("gone-2"));
    let forced = false;
    const client = wrap({
      // The first watch: delete gone-2 behind the informer's back, then answer 410 Expired.
      watch(r, ns, opts, onEvent) {
        if (forced) return real.watch(r, ns, opts, onEvent);
        forced = true;
        const done = (async () => {
          await real.delete(ConfigMaps, NS, "gone-2");
          const status = {
            kind: "Status",
            apiVersion: "v1",
            status: "Failure",
            message: `too old resource version: ${opts.resourceVersion} (${Number(opts.resourceVersion) + 100})`,
            reason: "Expired",
            code: 410,
          };
          onEvent("ERROR", status as never);
        })();
        return { done, stop: () => {} };
      },
    });
    const inf = new Informer(client, ConfigMaps, { namespaces: [NS], labelSelector: "suite=lib-informer" });
    informer = inf as never;
    const deleted: string[] = [];
    inf.addHandler({ delete: (o) => deleted.push(o.metadata?.name ?? "") });
    inf.start();
    await inf.waitForSync();
    expect(inf.store.get(NS, "gone-2")).toBeDefined();
    await until(() => deleted.includes("gone-2"), "synthesised delete after relist");
    expect(client.lists).toBe(2);
    // And the informer keeps watching after the relist.
    await real.create(ConfigMaps, cm("after"));
    await until(() => inf.store.get(NS, "after") !== undefined, "watch after relist");
    await inf.stop();
  });
});
