// A DraftTraining on the reference backend that reads its prompts from one bucket and writes its
// draft to another, on a real MinIO, run by the operator in-process on the real API server; the
// stages' runtime containers run as local processes of the project's Python runtime (the local-
// process kubelet: the test edge, no container runtime here). The output section is the realistic
// example's (examples/drafttraining-qwen3-8b-dspark.yaml), pointed at MinIO.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../controlplane/controlplane.ts";
import { ProcessKubelet } from "../controlplane/process-kubelet.ts";
import { example, type Manifest } from "../fixtures/examples.ts";
import { minioCredentialSecret, s3tool as s3toolAt } from "../objectstore/clients.ts";
import { MINIO_SECRET_KEY, type ObjectStore, startMinio } from "../objectstore/servers.ts";
import { ensureNamespace, installCrds, kubeConfig, kubeRequest } from "./kube.ts";
import { type OperatorUnderTest, startOperator, until } from "./operator-harness.ts";

const NS = "dt-objectstore";
const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const python = join(root, "runtime/.venv/bin/python");
let kc: KubeConfig;
let work: string;
let minio: ObjectStore;
let kubelet: ProcessKubelet;
let operator: OperatorUnderTest;
const output: string[] = [];

const dtPath = (name = "") =>
  `/apis/specops.dev/v1alpha1/namespaces/${NS}/drafttrainings${name ? `/${name}` : ""}`;
const getDt = async (name: string) => (await kubeRequest(kc, "GET", dtPath(name))).body;

const s3tool = (...args: string[]) => s3toolAt(minio.endpoint, ...args).toString();
const secret = (name: string, secretKey: string) => minioCredentialSecret(kc, NS, name, secretKey);

/** The tiny reference DraftTraining, prompts from s3://prompts, output as the realistic example's. */
function draftTraining(name: string, outputSecret: string): Manifest {
  const m = example("tiny-drafttraining.yaml");
  m.metadata = { name, namespace: NS };
  delete m.spec.evaluation;
  const store = { endpoint: minio.endpoint, region: "us-east-1", pathStyle: true };
  m.spec.data = {
    ...m.spec.data,
    prompts: {
      uri: "s3://prompts/tiny/prompts.jsonl",
      ...store,
      credentialsSecretRef: { name: "s3-reader" },
    },
    maxSamples: 64,
    regenerate: { enabled: false },
  };
  m.spec.training = { ...m.spec.training, maxSteps: 6, checkpointInterval: 3 };
  const realistic = example("drafttraining-qwen3-8b-dspark.yaml").spec.output;
  m.spec.output = { ...realistic, ...store, credentialsSecretRef: { name: outputSecret } };
  return m;
}

const condition = (dt: any, type: string) => dt?.status?.conditions?.find((c: any) => c.type === type);

beforeAll(async () => {
  kc = kubeConfig();
  await installCrds(kc);
  await ensureNamespace(kc, NS);
  work = mkdtempSync(join(tmpdir(), "specops-dt-objectstore-"));
  minio = await startMinio(join(work, "minio"));
  s3tool("mkbucket", "prompts", "ml-drafts");
  // Prompts as a user keeps them: a JSONL of conversations in a bucket.
  const prompts = spawnSync(
    python,
    [
      "-c",
      "import json,sys; from specops_runtime.reference import data as s; " +
        "ex = s.mixture({'math': 32, 'code': 32}, 3); " +
        "sys.stdout.write(''.join(json.dumps(s.to_training_row(e, i)) + '\\n' for i, e in enumerate(ex)))",
    ],
    { encoding: "utf8", cwd: join(root, "runtime") },
  );
  if (prompts.status !== 0) throw new Error(prompts.stderr);
  writeFileSync(join(work, "prompts.jsonl"), prompts.stdout);
  s3tool("put", join(work, "prompts.jsonl"), "prompts/tiny/prompts.jsonl");
  await secret("s3-reader", MINIO_SECRET_KEY);
  await secret("s3-writer", MINIO_SECRET_KEY);
  await secret("s3-wrong", "not-the-secret-key");
  const progressPort = await freePort();
  kubelet = new ProcessKubelet(kc, {
    storageRoot: join(work, "pvc"),
    onOutput: (pod, line) => output.push(`[${pod}] ${line}`),
  });
  await kubelet.start();
  operator = await startOperator(kc, { namespace: NS, progressPort });
}, 180_000);

afterAll(async () => {
  await operator?.stop();
  await kubelet?.stop();
  await minio?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const finished = (name: string) =>
  until(
    `${name} to finish`,
    async () => {
      const dt = await getDt(name);
      return ["Succeeded", "Failed"].includes(dt?.status?.stage) ? dt : undefined;
    },
    300_000,
  );

describe("DraftTraining with object stores (MinIO)", () => {
  it("reads prompts from a bucket and copies the trained draft to the example's spec.output", async () => {
    const m = draftTraining("tiny-s3", "s3-writer");
    expect((await kubeRequest(kc, "POST", dtPath(), m)).body?.message).toBeUndefined();
    const dt = await finished("tiny-s3");
    expect(dt.status.stage, `${JSON.stringify(dt.status)}\n${output.slice(-30).join("\n")}`).toBe(
      "Succeeded",
    );
    const uri = "s3://ml-drafts/qwen3-8b/dspark-block7";
    expect(dt.status.output, JSON.stringify(dt.status, null, 1)).toMatchObject({
      uri,
      files: expect.any(Number),
      checksum: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
    });
    expect(condition(dt, "Succeeded").message).toContain(`copied to ${uri}`);
    // What is in the bucket is the checkpoint on storage, file for file.
    const listed = JSON.parse(s3tool("ls", "ml-drafts/qwen3-8b/dspark-block7")) as Record<
      string,
      { size: number }
    >;
    const ckptRoot = join(work, "pvc");
    const local = findCheckpoint(ckptRoot, "tiny-s3");
    const files = readdirSync(local, { recursive: true, withFileTypes: true }).filter((f) => f.isFile());
    expect(Object.keys(listed)).toHaveLength(files.length);
    expect(dt.status.output.files).toBe(files.length);
    const total = files.reduce((n, f) => n + statSync(join(f.parentPath, f.name)).size, 0);
    expect(dt.status.output.sizeBytes).toBe(total);
    expect(Object.values(listed).reduce((n, o) => n + o.size, 0)).toBe(total);
    // The secret key never reaches status or Events.
    const events = await kubeRequest(kc, "GET", `/api/v1/namespaces/${NS}/events`);
    expect(JSON.stringify([dt, events.body])).not.toContain(MINIO_SECRET_KEY);
  }, 360_000);

  it("a refused credential fails only the copy, naming spec.output; fixing it copies without training again", async () => {
    const m = draftTraining("tiny-s3-wrong", "s3-wrong");
    m.spec.output.uri = "s3://ml-drafts/retry/dspark";
    expect((await kubeRequest(kc, "POST", dtPath(), m)).body?.message).toBeUndefined();
    const failed = await finished("tiny-s3-wrong");
    expect(failed.status.stage).toBe("Failed");
    expect(condition(failed, "Succeeded")).toMatchObject({ status: "False", reason: "PublishFailed" });
    expect(condition(failed, "Succeeded").message).toMatch(/spec\.output\.uri: .*refused the credentials/);
    expect(JSON.stringify(failed)).not.toContain("not-the-secret-key");
    const train = failed.status.stages.find((s: any) => s.name === "Train");
    expect(train.state).toBe("Succeeded");

    await kubeRequest(
      kc,
      "PATCH",
      dtPath("tiny-s3-wrong"),
      { spec: { output: { credentialsSecretRef: { name: "s3-writer" } } } },
      "application/merge-patch+json",
    );
    const dt = await until(
      "the copy to succeed",
      async () => {
        const d = await getDt("tiny-s3-wrong");
        return d?.status?.stage === "Succeeded" ? d : undefined;
      },
      180_000,
    );
    expect(dt.status.output.uri).toBe("s3://ml-drafts/retry/dspark");
    const trainAfter = dt.status.stages.find((s: any) => s.name === "Train");
    expect(trainAfter.completionTime).toBe(train.completionTime);
  }, 540_000);
});

/** The checkpoint folder step_latest points at, under the local storage root. */
function findCheckpoint(storageRoot: string, dtName: string): string {
  const run = spawnSync(
    "bash",
    [
      "-c",
      `readlink -f "$(find '${storageRoot}' -path '*drafttrainings/${dtName}/train/*' -name step_latest | head -1)"`,
    ],
    {
      encoding: "utf8",
    },
  );
  const path = run.stdout.trim();
  if (!path) throw new Error(`no step_latest of ${dtName} under ${storageRoot}`);
  return path;
}
