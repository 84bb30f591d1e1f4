import { describe, expect, it } from "vitest";
import { Controller, type ReconcileContext } from "./controller.ts";
import { ConflictError, TerminalError } from "./errors.ts";
import { apiError, FakeClient } from "./fakeclient.ts";
import { Informer } from "./informer.ts";
import { Metrics } from "./metrics.ts";
import { ConfigMaps, Pods } from "./rest.ts";

const until = async (cond: () => boolean, what = "condition", ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

const cm = (name: string) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "ns" } });

async function setup(
  reconcile: (key: string, ctx: ReconcileContext) => Promise<unknown>,
  opts: { workers?: number; forUpdate?: (old: any, obj: any) => boolean } = {},
) {
  const client = new FakeClient();
  const metrics = new Metrics();
  const primary = new Informer(client, ConfigMaps);
  const pods = new Informer(client, Pods);
  const terminal: string[] = [];
  const controller = new Controller({
    name: "sample",
    for: primary,
    owns: [pods],
    reconcile: reconcile as never,
    workers: opts.workers,
    forUpdate: opts.forUpdate,
    metrics,
    onTerminalError: async (err, ctx) => {
      terminal.push(`${ctx.key}: ${err.reason}`);
    },
  });
  primary.start();
  pods.start();
  await primary.waitForSync();
  await pods.waitForSync();
  const count = async (result: string) =>
    (await metrics.reconcileTotal.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
  const counter = async (c: { get(): Promise<{ values: { value: number }[] }> }) =>
    (await c.get()).values[0]?.value ?? 0;
  const stop = async () => {
    await controller.stop(1000);
    await primary.stop();
    await pods.stop();
  };
  return { client, controller, metrics, terminal, count, counter, stop };
}

describe("Controller", () => {
  it("reconciles every existing and new object by key, with a reconcileID per call", async () => {
    const calls: { key: string; id: string; ns?: string; name: string }[] = [];
    const t = await setup(async (key, ctx) => {
      calls.push({ key, id: ctx.reconcileID, ns: ctx.namespace, name: ctx.name });
    });
    t.client.seed(ConfigMaps, cm("a"));
    t.controller.start();
    await until(() => calls.length === 1);
    await t.client.create(ConfigMaps, cm("b"));
    await until(() => calls.length === 2);
    expect(calls.map((c) => c.key)).toEqual(["ns/a", "ns/b"]);
    expect(calls[1]).toMatchObject({ ns: "ns", name: "b" });
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);
    await new Promise((r) => setTimeout(r, 10));
    expect(await t.count("success")).toBe(2);
    await t.stop();
  });

  it("retries a throwing reconcile with backoff until it succeeds, counting errors", async () => {
    let attempts = 0;
    const t = await setup(async () => {
      attempts++;
      if (attempts < 3) throw new Error("transient");
    });
    t.client.seed(ConfigMaps, cm("a"));
    t.controller.start();
    await until(() => attempts === 3);
    await new Promise((r) => setTimeout(r, 20));
    expect(await t.count("error")).toBe(2);
    expect(await t.count("success")).toBe(1);
    expect(await t.counter(t.metrics.reconcileErrors)).toBe(2);
    expect(t.controller.queue.retries("ns/a")).toBe(0); // forgotten on success
    await t.stop();
  });

  it("survives synchronous throws and non-Error rejections", async () => {
    let attempts = 0;
    const t = await setup(((key: string) => {
      attempts++;
      if (attempts === 1) throw new Error(`sync ${key}`);
      if (attempts === 2) return Promise.reject("a string");
      return Promise.resolve();
    }) as never);
    t.client.seed(ConfigMaps, cm("a"));
    t.controller.start();
    await until(() => attempts === 3);
    await t.stop();
  });

  it("stops on TerminalError and calls the hook", async () => {
    let attempts = 0;
    const t = await setup(async () => {
      attempts++;
      throw new TerminalError("spec.target is not a model", { reason: "InvalidSpec" });
    });
    t.client.seed(ConfigMaps, cm("a"));
    t.controller.start();
    await until(() => t.terminal.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(attempts).toBe(1);
    expect(t.terminal).toEqual(["ns/a: InvalidSpec"]);
    expect(await t.counter(t.metrics.terminalErrors)).toBe(1);
    await t.stop();
  });

  it("requeues conflicts quietly: result=requeue, not an error", async () => {
    let attempts = 0;
    const t = await setup(async () => {
      attempts++;
      if (attempts === 1) throw apiError(409, "Conflict", "the object has been modified");
      if (attempts === 2) throw new ConflictError("finalizer race");
    });
    t.client.seed(ConfigMaps, cm("a"));
    t.controller.start();
    await until(() => attempts === 3);
    await new Promise((r) => setTimeout(r, 10));
    expect(await t.count("requeue")).toBe(2);
    expect(await t.count("error")).toBe(0);
    expect(await t.counter(t.metrics.reconcileErrors)).toBe(0);
    await t.stop();
  });

  it("retries a throttled (429) reconcile no sooner than the server's Retry-After", async () => {
    const times: number[] = [];
    const t = await setup(async () => {
      times.push(Date.now());
      if (times.length === 1) {
        const throttled = apiError(429, "TooManyRequests", "slow down");
        Object.assign(throttled, { headers: { "retry-after": "0.2" } });
        throw throttled;
      }
    });
    t.client.seed(ConfigMaps, cm("a"));
    t.controller.start();
    await until(() => times.length === 2);
    // The per-key backoff alone would retry after 5 ms.
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(190);
    await t.stop();
  });

  it("requeues after the requested delay", async () => {
    const times: number[] = [];
    const t = await setup(async () => {
      times.push(Date.now());
      return times.length < 2 ? { requeueAfterMs: 50 } : undefined;
    });
    t.client.seed(ConfigMaps, cm("a"));
    t.controller.start();
    await until(() => times.length === 2);
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(45);
    expect(await t.count("requeue_after")).toBe(1);
    await t.stop();
  });

  it("enqueues the controlling owner when a child changes", async () => {
    const keys: string[] = [];
    const t = await setup(async (key) => {
      keys.push(key);
    });
    const owner = t.client.seed(ConfigMaps, cm("owner"));
    t.controller.start();
    await until(() => keys.length === 1);
    const ref = {
      apiVersion: "v1",
      kind: "ConfigMap",
      name: "owner",
      uid: owner.metadata?.uid ?? "",
      controller: true,
    };
    await t.client.create(Pods, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", namespace: "ns", ownerReferences: [ref] },
    });
    await until(() => keys.length === 2);
    // Not controlled by a ConfigMap: ignored.
    await t.client.create(Pods, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "q",
        namespace: "ns",
        ownerReferences: [{ ...ref, kind: "Job", apiVersion: "batch/v1" }],
      },
    });
    await t.client.delete(Pods, "ns", "p");
    await until(() => keys.length === 3);
    await new Promise((r) => setTimeout(r, 20));
    expect(keys).toEqual(["ns/owner", "ns/owner", "ns/owner"]);
    await t.stop();
  });

  it("leaves updates its update predicate finds irrelevant alone, counting them; adds always enqueue", async () => {
    const keys: string[] = [];
    const t = await setup(
      async (key) => {
        keys.push(key);
      },
      { forUpdate: (old, obj) => old.data?.spec !== obj.data?.spec },
    );
    t.controller.start();
    await t.client.create(ConfigMaps, { ...cm("a"), data: { spec: "1", note: "x" } });
    await until(() => keys.length === 1, "the add");
    await t.client.replace(ConfigMaps, { ...cm("a"), data: { spec: "1", note: "y" } });
    await new Promise((r) => setTimeout(r, 30));
    expect(keys).toEqual(["ns/a"]);
    expect(
      (await t.metrics.updatesSkipped.get()).values.find((v) => v.labels.controller === "sample")?.value,
    ).toBe(1);
    await t.client.replace(ConfigMaps, { ...cm("a"), data: { spec: "2", note: "y" } });
    await until(() => keys.length === 2, "the relevant update");
    await t.stop();
  });

  it("runs different keys concurrently with several workers, never the same key twice", async () => {
    let running = 0;
    let peak = 0;
    const perKey = new Map<string, number>();
    let overlapSameKey = false;
    let done = 0;
    const t = await setup(
      async (key) => {
        running++;
        peak = Math.max(peak, running);
        perKey.set(key, (perKey.get(key) ?? 0) + 1);
        if ((perKey.get(key) ?? 0) > 1) overlapSameKey = true;
        await new Promise((r) => setTimeout(r, 20));
        perKey.set(key, (perKey.get(key) ?? 0) - 1);
        running--;
        done++;
      },
      { workers: 3 },
    );
    for (const n of ["a", "b", "c"]) t.client.seed(ConfigMaps, cm(n));
    t.controller.start();
    await until(() => running > 0);
    t.controller.enqueue("ns/a"); // while a is running
    await until(() => done === 4);
    expect(peak).toBe(3);
    expect(overlapSameKey).toBe(false);
    await t.stop();
  });

  it("stop() drains the in-flight reconcile and takes no new keys", async () => {
    let finished = false;
    let started = 0;
    const t = await setup(async () => {
      started++;
      await new Promise((r) => setTimeout(r, 50));
      finished = true;
    });
    t.client.seed(ConfigMaps, cm("a"));
    t.controller.start();
    await until(() => started === 1);
    const drained = await t.controller.stop(5000);
    expect(drained).toBe(true);
    expect(finished).toBe(true);
    t.controller.enqueue("ns/b");
    await new Promise((r) => setTimeout(r, 20));
    expect(started).toBe(1);
    await t.stop();
  });
});
