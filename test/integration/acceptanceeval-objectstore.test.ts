// AcceptanceEvals on the reference backend whose spec.output is an object store: the operator runs
// them in-process on the real API server, the local-process kubelet runs their pods as the
// project's Python runtime (the test edge: no container runtime here), and the runtime copies the
// full result JSON to a real MinIO and a real fake-gcs-server. The object is there with the size and
// checksum status.output records, gate passed or missed; a refused credential, a missing bucket and
// an unreachable endpoint end in PublishFailed naming spec.output.uri, with the figures kept, the
// evaluation run once, and no secret anywhere.

import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../controlplane/controlplane.ts";
import { ProcessKubelet } from "../controlplane/process-kubelet.ts";
import { example, type Manifest } from "../fixtures/examples.ts";
import { minioCredentialSecret, s3tool as s3toolAt } from "../objectstore/clients.ts";
import { MINIO_SECRET_KEY, type ObjectStore, startFakeGcs, startMinio } from "../objectstore/servers.ts";
import { ensureNamespace, installCrds, kubeConfig, kubeRequest } from "./kube.ts";
import { type OperatorUnderTest, startOperator, until } from "./operator-harness.ts";

const NS = "ae-objectstore";
let kc: KubeConfig;
let work: string;
let minio: ObjectStore;
let gcs: ObjectStore;
let kubelet: ProcessKubelet;
let operator: OperatorUnderTest;
/** An endpoint nothing listens on. */
let closedPort: string;
const output: string[] = [];

const aePath = (name = "") =>
  `/apis/specops.dev/v1alpha1/namespaces/${NS}/acceptanceevals${name ? `/${name}` : ""}`;
const getAe = async (name: string) => (await kubeRequest(kc, "GET", aePath(name))).body;
const condition = (obj: any, type: string) => obj?.status?.conditions?.find((c: any) => c.type === type);

const s3tool = (...args: string[]) => s3toolAt(minio.endpoint, ...args);
const secret = (name: string, secretKey: string) => minioCredentialSecret(kc, NS, name, secretKey);

/** The tiny reference eval of the untrained draft on one small task set, its result to `out`. */
function evaluation(name: string, out: object, gate?: object): Manifest {
  const m = example("tiny-acceptanceeval.yaml");
  m.metadata = { name, namespace: NS };
  m.spec.draft = { source: { uri: "builtin://untrained-draft" } };
  m.spec.tasks = [{ name: "tiny-math", samples: 4, source: { uri: "builtin://tiny-math" } }];
  m.spec.decoding = { maxNewTokens: 16 };
  m.spec.baseline = false;
  m.spec.resources = { gpus: 0 };
  if (gate) m.spec.gate = gate;
  else delete m.spec.gate;
  m.spec.output = out;
  return m;
}

const s3 = (uri: string, secretName: string) => ({
  uri,
  endpoint: minio.endpoint,
  region: "us-east-1",
  pathStyle: true,
  credentialsSecretRef: { name: secretName },
});

/** The runtime's checksum of a one-file copy: sha256 over its `name size md5` line (the local file name). */
const copyChecksum = (name: string, bytes: Buffer) => {
  const md5 = createHash("md5").update(bytes).digest("hex");
  return `sha256:${createHash("sha256").update(`${name}\t${bytes.length}\t${md5}\n`).digest("hex")}`;
};

const finished = (name: string) =>
  until(
    `${name} to finish`,
    async () => {
      const ae = await getAe(name);
      return ["Succeeded", "Failed"].includes(ae?.status?.phase) ? ae : undefined;
    },
    300_000,
  );

async function eventsOf(name: string): Promise<{ reason: string; note: string; type: string }[]> {
  const events = await kubeRequest(kc, "GET", `/apis/events.k8s.io/v1/namespaces/${NS}/events`);
  return events.body.items.filter((e: any) => e.regarding?.name === name);
}

beforeAll(async () => {
  kc = kubeConfig();
  await installCrds(kc);
  await ensureNamespace(kc, NS);
  work = mkdtempSync(join(tmpdir(), "specops-ae-objectstore-"));
  [minio, gcs] = await Promise.all([startMinio(join(work, "minio")), startFakeGcs(join(work, "gcs"))]);
  s3tool("mkbucket", "ml-evals");
  const bucket = await fetch(`${gcs.endpoint}/storage/v1/b?project=test`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "ml-evals-gcs" }),
  });
  if (!bucket.ok) throw new Error(`creating the GCS bucket: ${bucket.status} ${await bucket.text()}`);
  closedPort = `http://127.0.0.1:${await freePort()}`;
  await secret("s3-writer", MINIO_SECRET_KEY);
  await secret("s3-wrong", "not-the-secret-key");
  kubelet = new ProcessKubelet(kc, {
    storageRoot: join(work, "pvc"),
    onOutput: (pod, line) => output.push(`[${pod}] ${line}`),
  });
  await kubelet.start();
  operator = await startOperator(kc, { namespace: NS, progressPort: await freePort() });
}, 180_000);

afterAll(async () => {
  await operator?.stop();
  await kubelet?.stop();
  await Promise.all([minio?.stop(), gcs?.stop()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("AcceptanceEval results copied to object stores", () => {
  it("writes the full result JSON to S3 and GCS buckets, gate passed or missed, with the size and checksum in status", async () => {
    const cases = [
      evaluation("to-s3", s3("s3://ml-evals/tiny/untrained", "s3-writer")),
      // A missed gate: the figures are wanted all the same. gs:// with an endpoint and no key: anonymous.
      evaluation(
        "to-gcs",
        { uri: "gs://ml-evals-gcs/tiny/missed.json", endpoint: gcs.endpoint },
        { minTau: 64 },
      ),
      evaluation("refused", s3("s3://ml-evals/tiny/refused", "s3-wrong")),
      evaluation("no-bucket", s3("s3://no-such-evals/tiny", "s3-writer")),
      evaluation("unreachable", {
        ...s3("s3://ml-evals/tiny/unreachable", "s3-writer"),
        endpoint: closedPort,
      }),
    ];
    for (const m of cases) expect((await kubeRequest(kc, "POST", aePath(), m)).body?.message).toBeUndefined();
    const [toS3, toGcs, refused, noBucket, unreachable] = await Promise.all(
      cases.map((m) => finished(m.metadata.name)),
    );
    const why = (ae: any) => `${JSON.stringify(ae.status, null, 1)}\n${output.slice(-30).join("\n")}`;

    // S3: the object is the result, byte for byte as status describes it.
    expect(toS3.status.phase, why(toS3)).toBe("Succeeded");
    const key = "ml-evals/tiny/untrained/result.json";
    const s3Bytes = s3tool("cat", key);
    expect(toS3.status.output).toEqual({
      uri: "s3://ml-evals/tiny/untrained/result.json",
      files: 1,
      sizeBytes: s3Bytes.length,
      checksum: copyChecksum("result.json", s3Bytes),
      completionTime: expect.any(String),
    });
    expect(toS3.status.resultUri).toBe("s3://ml-evals/tiny/untrained/result.json");
    const listed = JSON.parse(s3tool("ls", "ml-evals/tiny/untrained").toString());
    expect(listed[key].size).toBe(s3Bytes.length);
    const full = JSON.parse(s3Bytes.toString());
    expect(full).toMatchObject({ kind: "Result", taskKind: "eval", reason: "success" });
    expect(full.evaluation.results.map((r: any) => Math.round(r.tau * 1e4) / 1e4)).toEqual(
      toS3.status.results.map((r: any) => r.tau),
    );
    expect(full.evaluation.results[0].acceptanceByPosition.length).toBeGreaterThan(0);
    expect(condition(toS3, "Succeeded").message).toContain(
      "result copied to s3://ml-evals/tiny/untrained/result.json",
    );

    // GCS, gate missed: the eval succeeded as a measurement, the verdict is Failed, the JSON is there.
    expect(toGcs.status.phase, why(toGcs)).toBe("Succeeded");
    expect(toGcs.status.gate.verdict).toBe("Failed");
    expect(condition(toGcs, "Passed")).toMatchObject({ status: "False", reason: "ThresholdsMissed" });
    const object = `${gcs.endpoint}/storage/v1/b/ml-evals-gcs/o/${encodeURIComponent("tiny/missed.json")}`;
    const gcsBytes = Buffer.from(await (await fetch(`${object}?alt=media`)).arrayBuffer());
    expect(toGcs.status.output).toMatchObject({
      uri: "gs://ml-evals-gcs/tiny/missed.json",
      sizeBytes: gcsBytes.length,
      checksum: copyChecksum("result.json", gcsBytes),
    });
    expect(JSON.parse(gcsBytes.toString())).toMatchObject({
      reason: "gateFailed",
      evaluation: { gate: { verdict: "Failed" } },
    });

    // A refused credential, a missing bucket and an unreachable endpoint (tried three times in the
    // pod): the figures stand, the copy's failure names the field and quotes the store.
    for (const [ae, expected] of [
      [refused, /spec\.output\.uri: .*s3:\/\/ml-evals\/tiny\/refused.*refused the credentials/],
      [noBucket, /spec\.output\.uri: .*not found \(bucket no-such-evals/],
      [unreachable, /spec\.output\.uri: .*store unreachable at http:\/\/127\.0\.0\.1:\d+/],
    ] as const) {
      expect(ae.status.phase, why(ae)).toBe("Failed");
      const succeeded = condition(ae, "Succeeded");
      expect(succeeded).toMatchObject({ status: "False", reason: "PublishFailed" });
      expect(succeeded.message).toMatch(expected);
      expect(ae.status.summary.samples).toBe(4);
      expect(ae.status.output).toBeUndefined();
      const events = await eventsOf(ae.metadata.name);
      expect(events.find((e) => e.reason === "PublishFailed")).toMatchObject({ type: "Warning" });
    }
    // The evaluation ran once: the copy's failure did not start another pod.
    for (const name of ["refused", "unreachable"]) {
      const job = await kubeRequest(kc, "GET", `/apis/batch/v1/namespaces/${NS}/jobs/${name}-g1`);
      expect(job.body.status.failed).toBe(1);
    }

    // No secret in status or Events.
    const events = await kubeRequest(kc, "GET", `/api/v1/namespaces/${NS}/events`);
    const everything = JSON.stringify([toS3, toGcs, refused, noBucket, unreachable, events.body]);
    expect(everything).not.toContain(MINIO_SECRET_KEY);
    expect(everything).not.toContain("not-the-secret-key");
  }, 420_000);
});
