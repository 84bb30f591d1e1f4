import { describe, expect, it } from "vitest";
import type { WatchEventType, WatchHandle } from "./client.ts";
import { ManualClock } from "./clock.ts";
import { apiError, FakeClient } from "./fakeclient.ts";
import { Informer, InformerSyncError } from "./informer.ts";
import { ConfigMaps, type KubeObject, type Resource } from "./rest.ts";

const until = async (cond: () => boolean, what = "condition") => {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`timed out waiting for ${what}`);
};

const cm = (name: string, extra: object = {}) => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "ns1", ...extra },
  data: { v: name },
});

function setup(namespaces?: string[]) {
  const client = new FakeClient();
  const clock = new ManualClock();
  const informer = new Informer(client, ConfigMaps, {
    clock,
    namespaces,
    backoff: { initialMs: 100, maxMs: 1000 },
  });
  const events: string[] = [];
  informer.addHandler({
    add: (o) => events.push(`add ${o.metadata?.name}`),
    update: (_old, o) => events.push(`update ${o.metadata?.name}`),
    delete: (o) => events.push(`delete ${o.metadata?.name}`),
  });
  return { client, clock, informer, events };
}

describe("Informer", () => {
  it("lists, reports synced, then follows the watch; strips managedFields; indexes owners", async () => {
    const { client, informer, events } = setup();
    client.seed(
      ConfigMaps,
      cm("a", {
        managedFields: [{ manager: "x" }],
        ownerReferences: [{ uid: "owner-1", name: "o", kind: "K", apiVersion: "v1" }],
      }),
    );
    expect(informer.hasSynced()).toBe(false);
    informer.start();
    expect(await informer.waitForSync()).toBe(true);
    expect(events).toEqual(["add a"]);
    expect(informer.store.get("ns1", "a")?.metadata?.managedFields).toBeUndefined();
    expect(informer.store.byOwner("owner-1").map((o) => o.metadata?.name)).toEqual(["a"]);

    await until(() => client.actions.some((a) => a.verb === "watch"), "watch");
    await client.create(ConfigMaps, cm("b"));
    await client.patch(
      ConfigMaps,
      "ns1",
      "a",
      { data: { v: "2" }, metadata: { ownerReferences: null } },
      { type: "merge" },
    );
    await client.delete(ConfigMaps, "ns1", "b");
    expect(events).toEqual(["add a", "add b", "update a", "delete b"]);
    expect(informer.store.list().map((o) => o.metadata?.name)).toEqual(["a"]);
    expect(informer.store.byOwner("owner-1")).toEqual([]);
    await informer.stop();
  });

  it("tells handlers of an own write recorded before its watch event arrived, once", async () => {
    // Watch events held back, as when a write's response arrives before its watch event.
    class HeldWatchClient extends FakeClient {
      readonly held: (() => void)[] = [];
      override watch<T extends KubeObject>(
        r: Resource<T>,
        ns: string | undefined,
        opts: { resourceVersion: string },
        onEvent: (type: WatchEventType, obj: T) => void,
      ): WatchHandle {
        return super.watch(r, ns, opts, (type, obj) => this.held.push(() => onEvent(type, obj)));
      }
    }
    const client = new HeldWatchClient();
    const informer = new Informer(client, ConfigMaps, { clock: new ManualClock() });
    const events: string[] = [];
    informer.addHandler({
      add: (o) => events.push(`add ${o.metadata?.name}`),
      update: (old, o) => events.push(`update ${old.data?.v}->${o.data?.v}`),
    });
    client.seed(ConfigMaps, cm("a"));
    informer.start();
    await informer.waitForSync();
    await until(() => client.actions.some((a) => a.verb === "watch"), "watch");
    const before = informer.store.get("ns1", "a");
    const written = await client.patch(ConfigMaps, "ns1", "a", { data: { v: "2" } }, { type: "merge" });
    informer.recordWrite(before, written);
    expect(informer.store.get("ns1", "a")?.data?.v).toBe("2");
    for (const deliver of client.held.splice(0)) deliver();
    expect(events).toEqual(["add a", "update a->2"]); // heard once, from the write or its watch event
    const created = await client.create(ConfigMaps, cm("b"));
    informer.recordWrite(undefined, created);
    for (const deliver of client.held.splice(0)) deliver();
    expect(events).toEqual(["add a", "update a->2", "add b"]);
    await informer.stop();
  });

  it("relists on 410 Gone and reports objects deleted while the watch was down", async () => {
    const { client, clock, informer, events } = setup();
    client.seed(ConfigMaps, cm("a"));
    client.seed(ConfigMaps, cm("b"));
    informer.start();
    await informer.waitForSync();
    await until(() => client.actions.some((a) => a.verb === "watch"));
    client.closeWatches(); // the stream ends; the informer waits 1 s before reconnecting
    await client.delete(ConfigMaps, "ns1", "b"); // nobody is watching
    client.failNext("watch", apiError(410, "Expired", "too old resource version"));
    await until(() => clock.pendingTimers() > 0, "reconnect timer");
    clock.advance(1000);
    await until(() => events.includes("delete b"), "delete b");
    expect(client.actions.filter((a) => a.verb === "list")).toHaveLength(2);
    expect(informer.store.list().map((o) => o.metadata?.name)).toEqual(["a"]);
    await informer.stop();
  });

  it("retries other errors with backoff and keeps running", async () => {
    const { client, clock, informer, events } = setup();
    client.failNext("list", apiError(500, "InternalError", "etcd down"));
    client.failNext("list", apiError(503, "ServiceUnavailable", "still down"));
    client.failNext("watch", apiError(500, "InternalError", "watch broke"));
    client.seed(ConfigMaps, cm("a"));
    informer.start();
    await until(() => client.actions.filter((a) => a.verb === "list").length === 1);
    expect(informer.hasSynced()).toBe(false);
    await until(() => clock.pendingTimers() > 0, "backoff timer");
    clock.advance(200); // first backoff ≤ 120 ms
    await until(() => client.actions.filter((a) => a.verb === "list").length === 2);
    expect(informer.hasSynced()).toBe(false);
    await until(() => clock.pendingTimers() > 0, "backoff timer");
    clock.advance(300); // second ≤ 240 ms
    await until(() => client.actions.filter((a) => a.verb === "watch").length === 1);
    expect(informer.hasSynced()).toBe(false); // listed, but the watch was refused: not synced yet
    await until(() => clock.pendingTimers() > 0, "backoff timer");
    clock.advance(200);
    await until(() => client.actions.filter((a) => a.verb === "watch").length === 2);
    await informer.waitForSync();
    await client.create(ConfigMaps, cm("c"));
    expect(events).toEqual(["add a", "add c"]);
    expect(client.actions.filter((a) => a.verb === "list")).toHaveLength(3); // a watch error resumes, no relist
    await informer.stop();
  });

  it("watches each configured namespace separately and syncs when all have listed", async () => {
    const { client, informer } = setup(["ns1", "ns2"]);
    client.seed(ConfigMaps, cm("a"));
    client.seed(ConfigMaps, { ...cm("x"), metadata: { name: "x", namespace: "other" } });
    informer.start();
    await informer.waitForSync();
    expect(client.actions.filter((a) => a.verb === "list").map((a) => a.namespace)).toEqual(["ns1", "ns2"]);
    expect(informer.store.list().map((o) => o.metadata?.name)).toEqual(["a"]);
    await informer.stop();
  });

  it("replays the cache to handlers added later", async () => {
    const { client, informer } = setup();
    client.seed(ConfigMaps, cm("a"));
    informer.start();
    await informer.waitForSync();
    const seen: string[] = [];
    informer.addHandler({ add: (o) => seen.push(o.metadata?.name ?? "") });
    expect(seen).toEqual(["a"]);
    await informer.stop();
  });

  it("recordWrite tells every handler once and the write's own watch event is a no-op", async () => {
    const { client, informer, events } = setup();
    client.seed(ConfigMaps, cm("a"));
    informer.start();
    await informer.waitForSync();
    await until(() => client.actions.some((a) => a.verb === "watch"), "watch");
    const other: string[] = []; // a second controller sharing the informer
    informer.addHandler({ update: (_o, n) => other.push(`update ${n.metadata?.resourceVersion}`) });
    client.holdWatchEvents(); // the watch lags the write, as it does on a real server
    const before = informer.store.get("ns1", "a");
    const written = await client.patch(ConfigMaps, "ns1", "a", { data: { v: "2" } }, { type: "merge" });
    informer.recordWrite(before, written);
    expect(informer.store.get("ns1", "a")?.data).toEqual({ v: "2" });
    client.releaseWatchEvents();
    expect(other).toEqual([`update ${written.metadata?.resourceVersion}`]);
    expect(events).toEqual(["add a", "update a"]);
    await informer.stop();
  });

  it("a version it already holds (a write's own watch event) is neither transformed nor stored again", async () => {
    const client = new FakeClient();
    let transforms = 0;
    const informer = new Informer(client, ConfigMaps, {
      clock: new ManualClock(),
      transform: (o) => {
        transforms++;
        return o;
      },
    });
    client.seed(ConfigMaps, cm("a"));
    informer.start();
    await informer.waitForSync();
    await until(() => client.actions.some((a) => a.verb === "watch"), "watch");
    expect(transforms).toBe(1);
    client.holdWatchEvents();
    const before = informer.store.get("ns1", "a");
    const written = await client.patch(ConfigMaps, "ns1", "a", { data: { v: "2" } }, { type: "merge" });
    informer.recordWrite(before, written);
    const stored = informer.store.get("ns1", "a");
    expect(transforms).toBe(2);
    client.releaseWatchEvents();
    await new Promise((r) => setImmediate(r));
    expect(transforms).toBe(2);
    expect(informer.store.get("ns1", "a")).toBe(stored);
    await informer.stop();
  });

  it("recordWrite never moves the cache back: a stale write neither overwrites nor resurrects", async () => {
    const { client, informer, events } = setup();
    informer.start();
    await informer.waitForSync();
    await until(() => client.actions.some((a) => a.verb === "watch"), "watch");
    // A create whose result is recorded only after the watch delivered the create and a delete.
    const created = await client.create(ConfigMaps, cm("gone"));
    await client.delete(ConfigMaps, "ns1", "gone");
    informer.recordWrite(undefined, created);
    expect(informer.store.get("ns1", "gone")).toBeUndefined();
    // An update recorded after the watch already delivered a newer version.
    client.seed(ConfigMaps, cm("a"));
    const first = await client.patch(ConfigMaps, "ns1", "a", { data: { v: "1" } }, { type: "merge" });
    await client.patch(ConfigMaps, "ns1", "a", { data: { v: "2" } }, { type: "merge" });
    informer.recordWrite(undefined, first);
    expect(informer.store.get("ns1", "a")?.data).toEqual({ v: "2" });
    expect(events.filter((e) => e.endsWith(" gone"))).toEqual(["add gone", "delete gone"]);
    await informer.stop();
  });

  it("a list refused with 403 or 404 fails waitForSync naming the resource and the verb", async () => {
    const { client, informer } = setup(["ns1"]);
    client.failNext("list", apiError(403, "Forbidden", 'configmaps is forbidden: User "op" cannot list'));
    informer.start();
    const err = await informer.waitForSync().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InformerSyncError);
    expect((err as Error).message).toContain(
      'cannot list configmaps in namespace "ns1": forbidden (403); the operator\'s role needs verb "list" on resource "configmaps" in apiGroup ""',
    );
    await informer.stop();

    const missing = setup();
    missing.client.failNext(
      "list",
      apiError(404, "NotFound", "the server could not find the requested resource"),
    );
    missing.informer.start();
    await expect(missing.informer.waitForSync()).rejects.toThrow(
      /does not serve v1 configmaps \(404\); is its CRD installed/,
    );
    await missing.informer.stop();
  });

  it("a watch refused with 403 after a good list fails waitForSync naming the watch verb", async () => {
    const { client, informer } = setup();
    client.failNext("watch", apiError(403, "Forbidden", 'configmaps is forbidden: User "op" cannot watch'));
    informer.start();
    await expect(informer.waitForSync()).rejects.toThrow(/needs verb "watch" on resource "configmaps"/);
    await informer.stop();
  });

  it("waits at least the server's Retry-After after a 429", async () => {
    const { client, clock, informer } = setup();
    const throttled = apiError(429, "TooManyRequests", "slow down");
    Object.assign(throttled, { headers: { "retry-after": "7" } });
    client.failNext("list", throttled);
    informer.start();
    await until(() => clock.pendingTimers() > 0, "backoff timer");
    clock.advance(6000); // the 100 ms backoff alone would have retried long ago
    await new Promise((r) => setImmediate(r));
    expect(client.actions.filter((a) => a.verb === "list")).toHaveLength(1);
    clock.advance(1000);
    expect(await informer.waitForSync()).toBe(true);
    await informer.stop();
  });
});
