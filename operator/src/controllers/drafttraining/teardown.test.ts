// The I/O around the pure modules, against the in-memory FakeClient: what is deleted and by which
// name, how long a finalizer waits, and how errors and terminal failures reach status.
import { describe, expect, it } from "vitest";
import { example } from "../../../../test/fixtures/examples.ts";
import { draftTrainingResource } from "../../api/kinds.ts";
import { ApiError, TerminalError } from "../../lib/errors.ts";
import { apiError, FakeClient } from "../../lib/fakeclient.ts";
import { silentLogger } from "../../lib/log.ts";
import { ConfigMaps, type KubeObject } from "../../lib/rest.ts";
import { ChildApplyError } from "./children.ts";
import { type DraftTrainingObject, DraftTrainings, RESOURCES } from "./controller.ts";
import { regenServer } from "./desired.ts";
import { describeFailure, recordTerminalError } from "./failures.ts";
import { storageLayout } from "./plan.ts";
import { regenServerTask } from "./runtimetasks.ts";
import { finalizerRecheckMs, tearDownRegenServer } from "./teardown.ts";

const LONG = `qwen3-8b-dspark-${"x".repeat(53)}-run.1`;

function deepspecDt(name: string): DraftTrainingObject {
  const m = example("drafttraining-qwen3-8b-dspark.yaml");
  m.metadata = { name, namespace: "ml", uid: "uid-1", generation: 3 } as typeof m.metadata;
  return draftTrainingResource.parse(m) as DraftTrainingObject;
}

/** An informer stand-in holding objects by namespace/name (the I/O modules only read its store). */
const cacheOf = (objects: KubeObject[]) =>
  ({
    store: {
      get: (ns: string | undefined, name: string) =>
        objects.find((o) => o.metadata?.namespace === ns && o.metadata?.name === name),
      byOwner: () => [],
    },
    recordWrite: () => undefined,
  }) as never;

describe("tearing down the regeneration server", () => {
  it("deletes each object by the name it was created with, also for a 75-character resource name", async () => {
    const dt = deepspecDt(LONG);
    const layout = storageLayout(dt);
    const built = regenServer(
      dt,
      layout,
      { defaultImage: "i", progressPort: 9090 },
      regenServerTask(dt, layout),
      {
        suspend: false,
      },
    );
    const client = new FakeClient();
    for (const o of built) client.seed(RESOURCES.forObject(o), o);
    const cache = cacheOf(built);
    await tearDownRegenServer(
      { client, deployments: cache, services: cache, configMaps: cache, jobs: cache, evals: cache },
      dt,
    );
    expect(
      client.actions
        .filter((a) => a.verb === "delete")
        .map((a) => `${a.plural}/${a.name}`)
        .sort(),
    ).toEqual(built.map((o) => `${o.kind.toLowerCase()}s/${o.metadata.name}`).sort());
    expect(client.objects(ConfigMaps)).toEqual([]);
    // The ConfigMap's name is not simply the server's name + "-task" once names are hash-shortened.
    const cm = built.find((o) => o.kind === "ConfigMap");
    expect(cm?.metadata.name.length).toBeLessThanOrEqual(63);
  });
});

describe("finalizer rechecks", () => {
  it("back off with the time the deletion has taken, from 1 s to at most a minute", () => {
    expect(finalizerRecheckMs(0)).toBe(1000);
    expect(finalizerRecheckMs(10_000)).toBe(5000);
    expect(finalizerRecheckMs(30 * 60_000)).toBe(60_000);
  });
});

describe("errors that stop a pass", () => {
  const job = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: "x-data", namespace: "ml", labels: {} },
  };
  it("carry the API server's message and a reason by kind", () => {
    const invalid = new ChildApplyError(
      job,
      apiError(
        422,
        "Invalid",
        'Job.batch "x-data" is invalid: metadata.labels: Invalid value: "aaaa": must be no more than 63 characters',
      ),
    );
    expect(describeFailure(invalid)).toEqual({
      reason: "Invalid",
      message:
        'applying Job x-data: Job.batch "x-data" is invalid: metadata.labels: Invalid value: "aaaa": must be no more than 63 characters',
    });
    const forbidden = apiError(
      403,
      "Forbidden",
      'jobs.batch is forbidden: User "op" cannot create resource "jobs"',
    );
    expect(describeFailure(new ChildApplyError(job, forbidden))?.reason).toBe("Forbidden");
    const denied = apiError(
      422,
      "Invalid",
      "jobs.batch \"x-data\" is forbidden: ValidatingAdmissionPolicy 'no-jobs' with binding 'b' denied request: no",
    );
    expect(describeFailure(new ChildApplyError(job, denied))?.reason).toBe("AdmissionDenied");
    expect(describeFailure(apiError(409, "Conflict", "the object has been modified"))).toBeUndefined();
    // The server's Retry-After survives the wrapping (the controller waits it out).
    const busy = new ApiError(429, "too many requests", {}, { "retry-after": "7" });
    expect(new ChildApplyError(job, busy).retryAfterMs).toBe(7000);
  });

  it("record a terminal error with its own reason and the generation it was about", async () => {
    const client = new FakeClient();
    const dt = client.seed(DraftTrainings, deepspecDt("broken"));
    const events: string[] = [];
    const record = recordTerminalError({
      client,
      drafts: cacheOf([dt]),
      events: {
        event: (_o: unknown, type: string, reason: string) => events.push(`${type} ${reason}`),
      } as never,
    });
    await record(new TerminalError("spec.data: bad", { reason: "UnsupportedData" }), {
      namespace: "ml",
      name: "broken",
      key: "ml/broken",
      reconcileID: "r",
      log: silentLogger,
      signal: new AbortController().signal,
    });
    const [stored] = client.objects(DraftTrainings);
    expect(stored?.status?.stage).toBe("Failed");
    expect(stored?.status?.observedGeneration).toBe(3);
    expect(stored?.status?.conditions?.map((c) => [c.type, c.reason])).toEqual([
      ["Ready", "UnsupportedData"],
      ["Succeeded", "UnsupportedData"],
    ]);
    expect(events).toEqual(["Warning UnsupportedData"]);
  });
});
