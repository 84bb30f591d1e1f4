// One reconcile pass against the in-memory FakeClient with real informers over it: the order of
// status writes and Events, and a child apply that fails being retried on the next pass.
import { afterEach, describe, expect, it } from "vitest";
import { example } from "../../../../test/fixtures/examples.ts";
import type { PatchOptions } from "../../lib/client.ts";
import type { ReconcileContext } from "../../lib/controller.ts";
import { TerminalError } from "../../lib/errors.ts";
import { apiError, FakeClient } from "../../lib/fakeclient.ts";
import { Informer } from "../../lib/informer.ts";
import { silentLogger } from "../../lib/log.ts";
import {
  ConfigMaps,
  Deployments,
  Jobs,
  type KubeObject,
  PersistentVolumeClaims,
  Pods,
  type Resource,
  Services,
} from "../../lib/rest.ts";
import {
  trimClaim,
  trimConfigMap,
  trimDeployment,
  trimJob,
  trimPod,
  trimToMetadata,
} from "../shared/informers.ts";
import { AcceptanceEvals, DraftTrainings, FINALIZER, parseDraftTraining } from "./controller.ts";
import { draftTrainingReconciler } from "./reconcile.ts";

/** A FakeClient whose status writes fail while `failStatus` is set (an API server refusing them). */
class StatusFailingClient extends FakeClient {
  failStatus = false;
  override async patch<T extends KubeObject>(
    r: Resource<T>,
    namespace: string | undefined,
    name: string,
    body: unknown,
    opts: PatchOptions,
  ): Promise<T> {
    if (this.failStatus && opts.subresource === "status") throw apiError(500, "InternalError", "etcd is sad");
    return super.patch(r, namespace, name, body, opts);
  }
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

async function setup(edit?: (spec: any) => void, opts: { trimmed?: boolean } = {}) {
  const client = new StatusFailingClient();
  const m = example("tiny-drafttraining.yaml");
  m.metadata = { name: "t", namespace: "ns", finalizers: [FINALIZER] } as typeof m.metadata;
  edit?.(m.spec);
  client.seed(DraftTrainings, m as never);
  const informer = <T extends KubeObject>(r: Resource<T>, transform?: (o: KubeObject) => KubeObject) => {
    const i = new Informer<T>(client, r, transform ? { transform } : {});
    i.start();
    stops.push(() => i.stop());
    return i;
  };
  const events: string[] = [];
  const deps = {
    client,
    drafts: informer(DraftTrainings, parseDraftTraining),
    // trimmed: what the operator's wiring caches of each kind (operator.ts).
    jobs: informer(Jobs, opts.trimmed ? trimJob : undefined),
    pods: informer(Pods, opts.trimmed ? trimPod : undefined),
    deployments: informer(Deployments, opts.trimmed ? trimDeployment : undefined),
    configMaps: informer(ConfigMaps, opts.trimmed ? trimConfigMap : undefined),
    services: informer(Services, opts.trimmed ? trimToMetadata : undefined),
    claims: informer(PersistentVolumeClaims, opts.trimmed ? trimClaim : undefined),
    evals: informer(AcceptanceEvals),
    events: {
      event: (_o: unknown, type: string, reason: string) => events.push(`${type} ${reason}`),
    } as never,
    image: "runtime:test",
    progressPort: 9090,
    readProgress: async () => ({ ok: false as const, problem: "no pod" }),
  };
  for (const i of [deps.drafts, deps.jobs, deps.configMaps, deps.claims]) await i.waitForSync();
  const ctx: ReconcileContext = {
    key: "ns/t",
    namespace: "ns",
    name: "t",
    reconcileID: "r",
    log: silentLogger,
    signal: new AbortController().signal,
  };
  const reconcile = draftTrainingReconciler(deps);
  const settle = () => new Promise((r) => setTimeout(r, 20));
  return { client, deps, events, run: () => reconcile("ns/t", ctx), settle };
}

describe("DraftTraining reconcile", () => {
  it("emits the Events a status describes only after that status is written", async () => {
    const t = await setup();
    t.client.failStatus = true;
    await expect(t.run()).rejects.toThrow(/etcd is sad/);
    // Only the warning about the failed write itself; no "PrepareDataStarted" for a status nobody sees.
    expect(t.events).toEqual(["Warning APIUnavailable"]);
    t.client.failStatus = false;
    await t.settle();
    await t.run();
    expect(t.events).toContain("Normal PrepareDataStarted");
    const [dt] = t.client.objects(DraftTrainings);
    expect((dt as any).status.stage).toBe("PrepareData");
  });

  it("makes no API call on a pass with nothing to do, before and after its own writes' watch events arrive", async () => {
    // The informer tells handlers about the controller's own writes, so each write brings one more
    // pass; that pass must find everything in place from the cache alone.
    const t = await setup(undefined, { trimmed: true });
    t.client.holdWatchEvents();
    await t.run();
    const writes = t.client.actions.filter((a) => a.verb !== "watch" && a.verb !== "list");
    expect(writes.map((a) => `${a.verb} ${a.plural}${a.subresource ? `/${a.subresource}` : ""}`)).toEqual([
      "patch persistentvolumeclaims",
      "patch configmaps",
      "patch jobs",
      "patch drafttrainings/status",
    ]);
    const after = t.client.actions.length;
    await t.run();
    expect(t.client.actions.slice(after)).toEqual([]);
    t.client.releaseWatchEvents();
    await t.settle();
    await t.run();
    expect(t.client.actions.slice(after)).toEqual([]);
    // What made that possible is all the caches keep of the claim and the task ConfigMap: no labels,
    // no creation time, no data (a digest of it).
    for (const cached of [...t.deps.claims.store.list(), ...t.deps.configMaps.store.list()]) {
      expect(Object.keys(cached.metadata ?? {}).sort()).toEqual([
        "annotations",
        "name",
        "namespace",
        "ownerReferences",
        "resourceVersion",
        "uid",
      ]);
      expect(cached).not.toHaveProperty("data");
      expect(cached).not.toHaveProperty("spec");
    }
    expect(t.deps.claims.store.list()).toHaveLength(1);
    expect(t.deps.configMaps.store.list()).toHaveLength(1);
  });

  it("retries a child apply that failed, and says so in status meanwhile", async () => {
    const t = await setup();
    t.client.failNext("patch", apiError(422, "Invalid", "spec.resources: the claim is too large"));
    await expect(t.run()).rejects.toThrow(/claim is too large/);
    const failed = t.client.objects(DraftTrainings)[0] as any;
    expect(failed.status.stage).toBe("PrepareData");
    expect(failed.status.conditions.find((c: any) => c.type === "Reconciled")).toMatchObject({
      status: "False",
      reason: "Invalid",
      message: "applying PersistentVolumeClaim t-storage: spec.resources: the claim is too large",
    });
    expect(t.events).toContain("Warning Invalid");
    expect(t.client.objects(PersistentVolumeClaims)).toEqual([]);
    expect(t.client.objects(Jobs)).toHaveLength(1);
    await t.settle();
    await t.run();
    expect(t.client.objects(PersistentVolumeClaims).map((o) => o.metadata?.name)).toEqual(["t-storage"]);
    const ok = t.client.objects(DraftTrainings)[0] as any;
    expect(ok.status.conditions.find((c: any) => c.type === "Reconciled")).toBeUndefined();
  });

  it("refuses an object the schema refuses as terminal (parsed once by the informer), with reason InvalidSpec", async () => {
    const t = await setup((s) => (s.method = "medusa"));
    const err = await t.run().catch((e) => e);
    expect(err).toBeInstanceOf(TerminalError);
    expect(err.reason).toBe("InvalidSpec");
    expect(err.message).toMatch(/^invalid DraftTraining: spec.method: /);
    expect(t.client.objects(Jobs)).toEqual([]);
  });

  it("says why a deletion is stuck: a refused child deletion becomes a Warning Event", async () => {
    const t = await setup();
    await t.run();
    await t.settle();
    await t.client.delete(DraftTrainings, "ns", "t");
    await t.settle();
    t.client.failNext(
      "delete",
      apiError(403, "Forbidden", 'jobs.batch "t-data" is forbidden: cannot delete'),
    );
    await expect(t.run()).rejects.toThrow(/forbidden/);
    expect(t.events).toContain("Warning Forbidden");
  });
});
