import { describe, expect, it } from "vitest";
import { ConflictError } from "./errors.ts";
import { FakeClient } from "./fakeclient.ts";
import { addFinalizer, addFinalizerPatch, removeFinalizer, removeFinalizerPatch } from "./finalizers.ts";
import { ConfigMaps } from "./rest.ts";

const F = "specops.dev/cleanup";

describe("finalizer patches", () => {
  it("test the resourceVersion and add to a missing or existing list", () => {
    expect(addFinalizerPatch({ metadata: { resourceVersion: "5" } }, F)).toEqual([
      { op: "test", path: "/metadata/resourceVersion", value: "5" },
      { op: "add", path: "/metadata/finalizers", value: [F] },
    ]);
    expect(addFinalizerPatch({ metadata: { resourceVersion: "5", finalizers: ["other"] } }, F)[1]).toEqual({
      op: "add",
      path: "/metadata/finalizers/-",
      value: F,
    });
  });

  it("remove by index, testing both the version and the entry", () => {
    expect(removeFinalizerPatch({ metadata: { resourceVersion: "9", finalizers: ["other", F] } }, F)).toEqual(
      [
        { op: "test", path: "/metadata/resourceVersion", value: "9" },
        { op: "test", path: "/metadata/finalizers/1", value: F },
        { op: "remove", path: "/metadata/finalizers/1" },
      ],
    );
    expect(removeFinalizerPatch({ metadata: { resourceVersion: "9" } }, F)).toBeUndefined();
  });
});

describe("addFinalizer / removeFinalizer", () => {
  it("write once, skip when already done, and report a stale read as ConflictError", async () => {
    const client = new FakeClient();
    const obj = client.seed(ConfigMaps, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "a", namespace: "ns" },
    });
    const added = await addFinalizer(client, ConfigMaps, obj, F);
    expect(added?.metadata?.finalizers).toEqual([F]);
    expect(await addFinalizer(client, ConfigMaps, added as typeof obj, F)).toBeUndefined();
    // obj is stale now: its resourceVersion predates the add.
    await expect(
      removeFinalizer(client, ConfigMaps, { ...obj, metadata: { ...obj.metadata, finalizers: [F] } }, F),
    ).rejects.toBeInstanceOf(ConflictError);
    const removed = await removeFinalizer(client, ConfigMaps, added as typeof obj, F);
    expect(removed?.metadata?.finalizers).toEqual([]);
  });
});
