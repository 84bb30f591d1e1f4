// One AcceptanceEval reconcile pass against the in-memory FakeClient with real informers over it:
// the Job and task ConfigMap it creates, leaderboard labels, a deleted ConfigMap coming back, a
// refused apply shown in status, and the metrics of a finished evaluation.
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { example } from "../../../../test/fixtures/examples.ts";
import type { PatchOptions } from "../../lib/client.ts";
import type { ReconcileContext } from "../../lib/controller.ts";
import { apiError, FakeClient } from "../../lib/fakeclient.ts";
import { Informer } from "../../lib/informer.ts";
import { silentLogger } from "../../lib/log.ts";
import { ConfigMaps, Jobs, type KubeObject, Pods, type Resource } from "../../lib/rest.ts";
import { DraftTrainings } from "../drafttraining/controller.ts";
import { SpecServes } from "../specserve/controller.ts";
import { AcceptanceEvals } from "./controller.ts";
import { AcceptanceMetrics } from "./metrics.ts";
import { acceptanceEvalReconciler } from "./reconcile.ts";

/** A FakeClient that refuses Job applies while `refuseJobs` is set (an admission webhook saying no). */
class RefusingClient extends FakeClient {
  refuseJobs = false;
  override async patch<T extends KubeObject>(
    r: Resource<T>,
    namespace: string | undefined,
    name: string,
    body: unknown,
    opts: PatchOptions,
  ): Promise<T> {
    if (this.refuseJobs && r.kind === "Job")
      throw apiError(403, "Forbidden", 'admission webhook "quota" denied the request: no GPUs left');
    return super.patch(r, namespace, name, body, opts);
  }
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

async function setup(
  opts: {
    edit?: (m: any) => void;
    scrapeMetrics?: (url: string) => Promise<string>;
    seed?: (client: FakeClient) => void;
  } = {},
) {
  const client = new RefusingClient();
  const m = example("tiny-acceptanceeval.yaml");
  m.metadata = { name: "e", namespace: "ns" };
  m.spec.draft = { source: { uri: "builtin://untrained-draft" } };
  opts.edit?.(m);
  client.seed(AcceptanceEvals, m as never);
  opts.seed?.(client);
  const informer = <T extends KubeObject>(r: Resource<T>) => {
    const i = new Informer<T>(client, r, {});
    i.start();
    stops.push(() => i.stop());
    return i;
  };
  const events: string[] = [];
  const registry = new Registry();
  const deps = {
    client,
    evals: informer(AcceptanceEvals),
    drafts: informer(DraftTrainings),
    jobs: informer(Jobs),
    pods: informer(Pods),
    configMaps: informer(ConfigMaps),
    specServes: informer(SpecServes),
    scrapeMetrics:
      opts.scrapeMetrics ?? (async (url: string) => Promise.reject(new Error(`${url}: no server`))),
    events: {
      event: (_o: unknown, type: string, reason: string) => events.push(`${type} ${reason}`),
    } as never,
    metrics: new AcceptanceMetrics(registry),
    image: "runtime:test",
    progressPort: 9090,
  };
  for (const i of [deps.evals, deps.jobs, deps.configMaps, deps.specServes, deps.pods]) await i.waitForSync();
  const ctx: ReconcileContext = {
    key: "ns/e",
    namespace: "ns",
    name: "e",
    reconcileID: "r",
    log: silentLogger,
    signal: new AbortController().signal,
  };
  const reconcile = acceptanceEvalReconciler(deps);
  const ae = () => client.get(AcceptanceEvals, "ns", "e") as Promise<any>;
  return { client, deps, events, ctx, reconcile, ae, registry };
}

describe("AcceptanceEval reconcile", () => {
  it("starts the generation's Job with its task, labels the object, and re-applies a deleted ConfigMap", async () => {
    const { client, events, ctx, reconcile, ae } = await setup();
    await reconcile("ns/e", ctx);
    const job = (await client.get(Jobs, "ns", "e-g1")) as any;
    expect(job.spec.template.spec.containers[0].image).toBe("runtime:test");
    const cm = (await client.get(ConfigMaps, "ns", "e-g1-task")) as any;
    expect(JSON.parse(cm.data["task.json"]).params.draft).toEqual({ uri: "builtin://untrained-draft" });
    const obj = await ae();
    expect(obj.metadata.labels).toMatchObject({ "specops.dev/method": "dflash" });
    expect(obj.metadata.labels["specops.dev/task-set"]).toMatch(/^[0-9a-f]{12}$/);
    expect(obj.status).toMatchObject({ phase: "Running", job: "e-g1" });
    expect(events).toEqual(["Normal Started"]);

    await client.delete(ConfigMaps, "ns", "e-g1-task");
    await new Promise((r) => setImmediate(r));
    await reconcile("ns/e", ctx);
    expect(await client.get(ConfigMaps, "ns", "e-g1-task")).toBeDefined();
  });

  it("shows a refused Job apply in status and an Event, then recovers", async () => {
    const { client, events, ctx, reconcile, ae } = await setup();
    client.refuseJobs = true;
    await expect(reconcile("ns/e", ctx)).rejects.toThrow(/denied the request/);
    const failed = (await ae()).status.conditions.find((c: any) => c.type === "Reconciled");
    expect(failed).toMatchObject({ status: "False", reason: "AdmissionDenied" });
    expect(failed.message).toMatch(/no GPUs left/);
    expect(events).toContain("Warning AdmissionDenied");
    client.refuseJobs = false;
    await new Promise((r) => setImmediate(r));
    await reconcile("ns/e", ctx);
    const ok = await ae();
    expect(ok.status.conditions.find((c: any) => c.type === "Reconciled")).toBeUndefined();
    expect(await client.get(Jobs, "ns", "e-g1")).toBeDefined();
  });
});

describe("AcceptanceEval reconcile, live (draft.specServeRef; /metrics served by a stand-in)", () => {
  const specServe = (ready: boolean) => ({
    apiVersion: "specops.dev/v1alpha1",
    kind: "SpecServe",
    metadata: { name: "tiny", namespace: "ns", uid: "ss1", generation: 1 },
    spec: {
      target: { uri: "builtin://tiny-qwen3" },
      draft: { source: { uri: "pvc://drafts/d" } },
      method: "dflash",
      engine: "reference",
      speculative: { numSpeculativeTokens: 4 },
      resources: { gpusPerReplica: 0 },
      apiKeySecretRef: { name: "tiny-key", key: "token" },
    },
    status: {
      conditions: [
        {
          type: "Ready",
          status: ready ? "True" : "False",
          reason: ready ? "ReplicasReady" : "ReplicasNotReady",
          message: ready ? "1/1 replicas ready" : "0/1 replicas ready",
          lastTransitionTime: "2026-12-01T00:00:00Z",
        },
      ],
    },
  });
  const servingPod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "tiny-abc", namespace: "ns", uid: "p1", labels: { "specops.dev/specserve": "tiny" } },
    status: { podIP: "10.0.0.5", conditions: [{ type: "Ready", status: "True" }] },
  };
  const live = (m: any) => {
    m.spec.draft = { specServeRef: { name: "tiny" } };
    delete m.spec.target;
    delete m.spec.method;
  };

  it("opens a window from every ready serving pod's /metrics, then starts the load Job against the Service", async () => {
    const scraped: string[] = [];
    const { client, ctx, reconcile, ae } = await setup({
      edit: live,
      seed: (c) => {
        c.seed(SpecServes, specServe(true) as never);
        c.seed(Pods, servingPod as never);
      },
      scrapeMetrics: async (url) => {
        scraped.push(url);
        return 'vllm:spec_decode_num_drafts_total{engine="0"} 7\n';
      },
    });
    await reconcile("ns/e", ctx);
    expect(scraped).toEqual(["http://10.0.0.5:8000/metrics"]);
    const snapshot = (await client.get(ConfigMaps, "ns", "e-g1-load-0-before")) as any;
    expect(JSON.parse(snapshot.data["scrape.json"]).pods).toEqual([
      { pod: "tiny-abc", text: 'vllm:spec_decode_num_drafts_total{engine="0"} 7\n' },
    ]);
    await reconcile("ns/e", ctx);
    const job = (await client.get(Jobs, "ns", "e-g1-load-0")) as any;
    expect(job.spec.template.spec.containers[0].env).toContainEqual({
      name: "SPECOPS_API_KEY",
      valueFrom: { secretKeyRef: { name: "tiny-key", key: "token" } },
    });
    const task = JSON.parse(
      ((await client.get(ConfigMaps, "ns", "e-g1-load-0-task")) as any).data["task.json"],
    );
    expect(task).toMatchObject({
      kind: "load",
      params: { endpoint: "http://tiny.ns.svc:8000/v1", concurrency: 4, tasks: [{ name: "tiny-math" }] },
    });
    // Leaderboard labels from the SpecServe's target and method, so live and offline rank together.
    expect((await ae()).metadata.labels).toMatchObject({
      "specops.dev/method": "dflash",
      "specops.dev/target": expect.stringMatching(/^tiny-qwen3-/),
    });
    expect((await ae()).status).toMatchObject({
      phase: "Running",
      live: {
        specServe: "tiny",
        numSpeculativeTokens: 4,
        concurrency: 4,
        convention: "vllm",
        task: "tiny-math",
      },
    });
  });

  it("waits for a SpecServe that is not Ready, creating nothing", async () => {
    const { client, ctx, reconcile, ae, events } = await setup({
      edit: live,
      seed: (c) => c.seed(SpecServes, specServe(false) as never),
    });
    await reconcile("ns/e", ctx);
    const status = (await ae()).status;
    expect(status.phase).toBe("Pending");
    expect(status.conditions.find((c: any) => c.type === "DraftReady")).toMatchObject({
      reason: "SpecServeNotReady",
      message: "waiting for SpecServe tiny to be Ready (ReplicasNotReady: 0/1 replicas ready)",
    });
    expect(events).toContain("Normal WaitingForSpecServe");
    await expect(client.get(Jobs, "ns", "e-g1-load-0")).rejects.toThrow();
  });
});
