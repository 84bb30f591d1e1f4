// Server-side apply, status and finalizer helpers against the real API server, on a throwaway
// test CRD (Widget) with a status subresource, so these tests don't depend on the SpecOps schemas.
import { beforeAll, describe, expect, it } from "vitest";
import {
  addFinalizer,
  apply,
  ConfigMaps,
  ConflictError,
  isNotFound,
  KubeClient,
  type KubeObject,
  ResourceTable,
  removeFinalizer,
  resource,
  setCondition,
  updateStatus,
} from "../../operator/src/lib/index.ts";
import { ensureNamespace, kubeConfig } from "./kube.ts";

const NS = "lib-apply";
const MANAGER = "specops-libtest";
const CRDs = resource(
  "apiextensions.k8s.io/v1",
  "CustomResourceDefinition",
  "customresourcedefinitions",
  false,
);

interface Widget extends KubeObject {
  spec?: { size?: number };
  status?: { conditions?: ReturnType<typeof setCondition>; observedGeneration?: number };
}
const Widgets = resource<Widget>("libtest.specops.dev/v1", "Widget", "widgets");
const resources = new ResourceTable([CRDs, Widgets, ConfigMaps]);

const condition = {
  type: "object",
  required: ["type", "status", "reason", "message", "lastTransitionTime"],
  properties: {
    type: { type: "string" },
    status: { type: "string", enum: ["True", "False", "Unknown"] },
    reason: { type: "string" },
    message: { type: "string" },
    lastTransitionTime: { type: "string", format: "date-time" },
    observedGeneration: { type: "integer" },
  },
};
const widgetCrd = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "widgets.libtest.specops.dev" },
  spec: {
    group: "libtest.specops.dev",
    scope: "Namespaced",
    names: { kind: "Widget", plural: "widgets", singular: "widget", listKind: "WidgetList" },
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: { type: "object", properties: { size: { type: "integer" } } },
              status: {
                type: "object",
                properties: {
                  observedGeneration: { type: "integer" },
                  conditions: {
                    type: "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["type"],
                    items: condition,
                  },
                },
              },
            },
          },
        },
      },
    ],
  },
};

let client: KubeClient;

beforeAll(async () => {
  const kc = kubeConfig();
  client = new KubeClient(kc);
  await ensureNamespace(kc, NS);
  await apply(client, widgetCrd, { fieldManager: MANAGER, resources });
  for (let i = 0; ; i++) {
    const crd = (await client.get(CRDs, undefined, widgetCrd.metadata.name)) as {
      status?: { conditions?: { type: string; status: string }[] };
    };
    if (crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) break;
    if (i > 150) throw new Error("Widget CRD not Established");
    await new Promise((r) => setTimeout(r, 100));
  }
  // Right after a CRD changes, its storage re-initialises and answers 429 for a moment.
  let existing: Widget[] | undefined;
  for (let i = 0; !existing; i++) {
    existing = await client.list(Widgets, NS).then(
      (l) => l.items,
      (err) => {
        if (i > 100 || (err as { code?: number }).code !== 429) throw err;
        return new Promise<undefined>((r) => setTimeout(() => r(undefined), 100));
      },
    );
  }
  for (const w of existing) {
    await client.patch(
      Widgets,
      NS,
      w.metadata?.name ?? "",
      { metadata: { finalizers: null } },
      { type: "merge" },
    );
    await client.delete(Widgets, NS, w.metadata?.name ?? "").catch(() => {});
  }
});

async function freshWidget(name: string): Promise<Widget> {
  await client.delete(Widgets, NS, name).catch((err) => {
    if (!isNotFound(err)) throw err;
  });
  for (;;) {
    const gone = await client.get(Widgets, NS, name).then(
      () => false,
      (err) => isNotFound(err),
    );
    if (gone) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return client.create(Widgets, {
    apiVersion: Widgets.apiVersion,
    kind: "Widget",
    metadata: { name, namespace: NS },
    spec: { size: 1 },
  });
}

describe("apply", () => {
  const desired = (data: Record<string, string>) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "applied", namespace: NS, labels: { app: "libtest" } },
    data,
  });

  it("is idempotent under a stable field manager: a second apply changes nothing", async () => {
    const first = await apply(client, desired({ a: "1", b: "2" }), { fieldManager: MANAGER });
    const second = await apply(client, desired({ a: "1", b: "2" }), { fieldManager: MANAGER });
    expect(second.metadata?.resourceVersion).toBe(first.metadata?.resourceVersion);
    const managers = (second.metadata?.managedFields ?? []).map((m) => `${m.manager}/${m.operation}`);
    expect(managers).toContain(`${MANAGER}/Apply`);
  });

  it("removes fields the manager stops setting", async () => {
    await apply(client, desired({ a: "1", b: "2" }), { fieldManager: MANAGER });
    const out = await apply(client, desired({ a: "1" }), { fieldManager: MANAGER });
    expect(out.data).toEqual({ a: "1" });
  });

  it("rejects unknown fields (fieldValidation=Strict) and fetched objects", async () => {
    const bad = { ...desired({ a: "1" }), spec: { nope: true } };
    // The API server reports an undeclared field in an apply patch as a 500 naming the field.
    await expect(apply(client, bad, { fieldManager: MANAGER })).rejects.toThrow(
      /\.spec: field not declared in schema/,
    );
    const fetched = await client.get(ConfigMaps, NS, "applied");
    await expect(apply(client, fetched, { fieldManager: MANAGER })).rejects.toThrow(/not a fetched object/);
  });
});

describe("updateStatus", () => {
  it("writes through /status only when the status changes", async () => {
    const w = await freshWidget("status");
    const t0 = Date.now();
    const ready = (status: "True" | "False", now: number, cur?: Widget["status"]) => ({
      observedGeneration: 1,
      conditions: setCondition(cur?.conditions, { type: "Ready", status, reason: "Test" }, 1, now),
    });
    const written = await updateStatus(client, Widgets, w, ready("False", t0), { fieldManager: MANAGER });
    expect(written?.status?.conditions?.[0]?.status).toBe("False");
    const rv = written?.metadata?.resourceVersion;

    // Same condition a minute later: lastTransitionTime is kept, so nothing is written.
    const again = await updateStatus(
      client,
      Widgets,
      written as Widget,
      ready("False", t0 + 60_000, written?.status),
      {
        fieldManager: MANAGER,
      },
    );
    expect(again).toBeUndefined();
    expect((await client.get(Widgets, NS, "status")).metadata?.resourceVersion).toBe(rv);

    const flipped = await updateStatus(
      client,
      Widgets,
      written as Widget,
      ready("True", t0 + 60_000, written?.status),
      {
        fieldManager: MANAGER,
      },
    );
    expect(flipped?.metadata?.resourceVersion).not.toBe(rv);
    expect(flipped?.status?.conditions?.[0]?.status).toBe("True");
    expect(flipped?.spec).toEqual({ size: 1 }); // spec untouched by a status write
  });
});

describe("finalizers", () => {
  const F1 = "libtest.specops.dev/one";
  const F2 = "libtest.specops.dev/two";

  it("never clobber a concurrent writer: a stale add conflicts, a fresh one keeps the other's change", async () => {
    const stale = await freshWidget("fin");
    // A concurrent writer (another controller, kubectl) changes the object after our read.
    await client.patch(Widgets, NS, "fin", { metadata: { labels: { touched: "yes" } } }, { type: "merge" });
    await expect(addFinalizer(client, Widgets, stale, F1)).rejects.toBeInstanceOf(ConflictError);

    const fresh = await client.get(Widgets, NS, "fin");
    const added = await addFinalizer(client, Widgets, fresh, F1);
    expect(added?.metadata?.finalizers).toEqual([F1]);
    expect(added?.metadata?.labels).toEqual({ touched: "yes" });

    // Two writers from the same read: one wins, the other conflicts and succeeds on retry.
    const results = await Promise.allSettled([
      addFinalizer(client, Widgets, added as Widget, F2),
      addFinalizer(client, Widgets, added as Widget, "libtest.specops.dev/three"),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    const latest = await client.get(Widgets, NS, "fin");
    expect(latest.metadata?.finalizers).toHaveLength(2);
  });

  it("keep a deleted object until the last finalizer is removed", async () => {
    let w = await freshWidget("fin-delete");
    w = (await addFinalizer(client, Widgets, w, F1)) as Widget;
    await client.delete(Widgets, NS, "fin-delete");
    const deleting = await client.get(Widgets, NS, "fin-delete");
    expect(deleting.metadata?.deletionTimestamp).toBeTruthy();
    await expect(removeFinalizer(client, Widgets, w, F1)).rejects.toBeInstanceOf(ConflictError); // stale read
    await removeFinalizer(client, Widgets, deleting, F1);
    await expect(client.get(Widgets, NS, "fin-delete")).rejects.toMatchObject({ code: 404 });
  });
});
