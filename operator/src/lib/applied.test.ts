import { afterEach, describe, expect, it } from "vitest";
import { AppliedChildren, DEFAULT_RESYNC_MS } from "./applied.ts";
import { ManualClock } from "./clock.ts";
import { FakeClient } from "./fakeclient.ts";
import { Informer } from "./informer.ts";
import { CORE_RESOURCES, ConfigMaps, type KubeObject, ResourceTable, resource } from "./rest.ts";

const PodDisruptionBudgets = resource<KubeObject>("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets");

const cm = (v: string) => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: "task", namespace: "ns1" },
  data: { v },
});
const pdb = {
  apiVersion: "policy/v1",
  kind: "PodDisruptionBudget",
  metadata: { name: "p", namespace: "ns1" },
};

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  if (!cond()) throw new Error("timed out");
};

const informers: Informer<KubeObject>[] = [];
afterEach(async () => {
  await Promise.all(informers.splice(0).map((i) => i.stop()));
});

async function setup() {
  const client = new FakeClient();
  const clock = new ManualClock();
  const informer = new Informer(client, ConfigMaps, { clock });
  informers.push(informer);
  informer.start();
  await informer.waitForSync();
  await until(() => client.actions.some((a) => a.verb === "watch"));
  const resources = new ResourceTable([...CORE_RESOURCES, PodDisruptionBudgets]);
  const children = new AppliedChildren(client, { fieldManager: "test", resources, clock });
  const patches = () => client.actions.filter((a) => a.verb === "patch").length;
  return { client, clock, informer, children, patches };
}

describe("AppliedChildren", () => {
  it("applies a cached child once while it stays as applied, again when its content or the cached copy changes", async () => {
    const { client, informer, children, patches } = await setup();
    const first = await children.apply("ns1/owner", cm("1"), informer);
    expect(first.applied).toBe(true);
    expect(informer.store.get("ns1", "task")?.metadata?.resourceVersion).toBe(
      first.object?.metadata?.resourceVersion,
    );
    // The same content over the same cached version: no request.
    const again = await children.apply("ns1/owner", cm("1"), informer);
    expect(again).toMatchObject({ applied: false });
    expect(again.object?.metadata?.resourceVersion).toBe(first.object?.metadata?.resourceVersion);
    expect(patches()).toBe(1);
    // New desired content: applied.
    expect((await children.apply("ns1/owner", cm("2"), informer)).applied).toBe(true);
    expect(patches()).toBe(2);
    // Someone else writes the child: the cached version moves, so it is applied again.
    const applied = informer.store.get("ns1", "task")?.metadata?.resourceVersion;
    await client.patch(ConfigMaps, "ns1", "task", { data: { v: "edited" } }, { type: "merge" });
    await until(() => informer.store.get("ns1", "task")?.metadata?.resourceVersion !== applied);
    expect((await children.apply("ns1/owner", cm("2"), informer)).applied).toBe(true);
    // Deleted: applied again (the watch removed it from the cache).
    await client.delete(ConfigMaps, "ns1", "task");
    await until(() => informer.store.get("ns1", "task") === undefined);
    expect((await children.apply("ns1/owner", cm("2"), informer)).applied).toBe(true);
    expect(patches()).toBe(5); // 4 applies (of 5 calls) and the edit
  });

  it("re-applies an uncached child after the resync period, and every child of a forgotten owner", async () => {
    const { clock, children, informer, patches } = await setup();
    expect((await children.apply("ns1/owner", pdb)).applied).toBe(true);
    clock.advance(DEFAULT_RESYNC_MS - 1);
    expect((await children.apply("ns1/owner", pdb)).applied).toBe(false);
    clock.advance(1);
    expect((await children.apply("ns1/owner", pdb)).applied).toBe(true);
    expect(patches()).toBe(2);
    await children.apply("ns1/owner", cm("1"), informer);
    children.forget("ns1/owner");
    expect((await children.apply("ns1/owner", pdb)).applied).toBe(true);
    expect((await children.apply("ns1/owner", cm("1"), informer)).applied).toBe(true);
    expect(patches()).toBe(5);
  });
});
