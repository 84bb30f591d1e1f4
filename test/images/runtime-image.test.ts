// The runtime's reference image (runtime/Dockerfile --target reference, built by
// scripts/images/build.sh) run as a pod would run it: the Task mounted at /etc/specops/task.json,
// storage mounted at the pvc root, and a host file mounted at /dev/termination-log, where the
// kubelet reads the termination message. A tiny prepare-data -> train chain, then the trained draft
// served over HTTP until SIGTERM.
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { result as resultSchema } from "../../operator/src/contract/result.ts";
import { freePort } from "../controlplane/controlplane.ts";
import { until } from "../integration/operator-harness.ts";
import { imagesConfig, imagesUnavailable, podman, podmanOk } from "./podman.ts";

const config = imagesConfig();
const unavailable = imagesUnavailable(config, [config.referenceImage]);
if (unavailable) console.warn(`runtime image tests skipped: ${unavailable}`);

const IMAGE_UID = 10001; // runtime/Dockerfile: useradd --uid 10001
const CLAIM = "images-e2e";
const PVC_ROOT = "/mnt/specops/pvc"; // the agent's default SPECOPS_PVC_ROOT
const API_VERSION = "runtime.specops.dev/v1";
const TASK_TIMEOUT_MS = 300_000;

let scratch: string;
const names: string[] = [];

/** A host directory the image's user can write, for mounts. */
function hostDir(path: string): string {
  mkdirSync(path, { recursive: true });
  chownSync(path, IMAGE_UID, IMAGE_UID);
  return path;
}

interface Started {
  name: string;
  terminationLog: string;
}

/** `podman run -d` of the image with a Task, like the operator's pod template. */
async function startTask(name: string, task: object, extra: string[] = []): Promise<Started> {
  const dir = hostDir(join(scratch, "pods", name));
  const taskFile = join(dir, "task.json");
  writeFileSync(taskFile, JSON.stringify(task, null, 2));
  chmodSync(taskFile, 0o644);
  // The kubelet creates the termination-log file and mounts it into the container.
  const terminationLog = join(dir, "termination-log");
  writeFileSync(terminationLog, "");
  chownSync(terminationLog, IMAGE_UID, IMAGE_UID);
  const container = `specops-runtime-image-test-${process.pid}-${name}`;
  names.push(container);
  await podman(["rm", "-f", container]);
  await podmanOk([
    "run",
    "-d",
    "--name",
    container,
    ...config.ulimits,
    "--volume",
    `${taskFile}:/etc/specops/task.json:ro`,
    "--volume",
    `${terminationLog}:/dev/termination-log`,
    "--volume",
    `${join(scratch, "pvc", CLAIM)}:${PVC_ROOT}/${CLAIM}`,
    // The tiny target is trained by the image on first use and kept for later runs on this machine.
    "--volume",
    `${hostDir(join(config.cacheDir, "runtime-model-cache"))}:/var/cache/specops`,
    "--env",
    "SPECOPS_CACHE_DIR=/var/cache/specops",
    "--env",
    "SPECOPS_TORCH_THREADS=1",
    ...extra,
    config.referenceImage,
  ]);
  return { name: container, terminationLog };
}

async function waitExit(
  started: Started,
  timeoutMs = TASK_TIMEOUT_MS,
): Promise<{ exitCode: number; result: any }> {
  const waited = await podman(["wait", started.name], timeoutMs);
  const logs = await podman(["logs", "--tail", "40", started.name]);
  const exitCode = Number(waited.stdout.trim());
  const text = readFileSync(started.terminationLog, "utf8");
  if (!text)
    throw new Error(
      `${started.name} exited ${exitCode} with no termination message:\n${logs.stdout}${logs.stderr}`,
    );
  return { exitCode, result: JSON.parse(text) };
}

/** The termination message parses as the contract's Result (the operator's own schema). */
function checkResult(result: unknown, exitCode: number): void {
  const parsed = resultSchema.safeParse(result);
  expect(parsed.error?.issues ?? []).toEqual([]);
  expect((result as { exitCode: number }).exitCode).toBe(exitCode);
}

const storage = (relative: string) => `${PVC_ROOT}/${CLAIM}/specops/drafttrainings/tiny/${relative}`;
const common = (name: string, out: string) => ({
  apiVersion: API_VERSION,
  backend: "reference",
  metadata: { name, namespace: "default", owner: { kind: "DraftTraining", name: "tiny", uid: "0000-image" } },
  output: { path: storage(out) },
});

describe.skipIf(unavailable !== undefined)(
  `runtime image ${config.referenceImage}${unavailable ? ` (skipped: ${unavailable})` : ""}`,
  () => {
    beforeAll(() => {
      scratch = mkdtempSync(join(tmpdir(), "runtime-image-"));
      chmodSync(scratch, 0o755);
      hostDir(join(scratch, "pvc", CLAIM));
    });

    afterAll(async () => {
      for (const name of names) await podman(["rm", "-f", "-t", "5", name]);
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    });

    it("runs as its non-root user with the agent as entrypoint", async () => {
      const inspect = JSON.parse(await podmanOk(["image", "inspect", config.referenceImage]))[0];
      expect(inspect.Config.User).toBe(String(IMAGE_UID));
      expect(inspect.Config.Entrypoint).toEqual(["python", "-m", "specops_runtime.agent"]);
    });

    it("prepares data and trains a draft, leaving the result where the kubelet reads it", {
      timeout: 2 * TASK_TIMEOUT_MS,
    }, async () => {
      const data = await waitExit(
        await startTask("data", {
          ...common("tiny-data", "data"),
          kind: "prepare-data",
          params: { prompts: { uri: "builtin://tiny-mix" }, maxSamples: 64, heldOutFraction: 0.05, seed: 42 },
        }),
      );
      checkResult(data.result, 0);
      expect(data.result).toMatchObject({ taskKind: "prepare-data", status: "succeeded" });
      expect(existsSync(join(scratch, "pvc", CLAIM, "specops/drafttrainings/tiny/data/train.jsonl"))).toBe(
        true,
      );

      const train = await waitExit(
        await startTask("train", {
          ...common("tiny-train", "train"),
          kind: "train",
          distributed: { nodes: 1, gpusPerNode: 0 },
          params: {
            target: { uri: "builtin://tiny-qwen3" },
            method: "eagle3",
            draft: { blockSize: 4 },
            training: {
              maxSteps: 12,
              globalBatchSize: 8,
              perGpuBatchSize: 8,
              checkpointInterval: 12,
              precision: "fp32",
            },
            dataPaths: [storage("data/train.jsonl")],
            experiment: "draft",
          },
        }),
      );
      checkResult(train.result, 0);
      expect(train.result).toMatchObject({ taskKind: "train", status: "succeeded", training: { step: 12 } });
      const checkpoint: string = train.result.outputs.checkpoint.path;
      expect(checkpoint.startsWith(storage("train/"))).toBe(true);
      const onHost = join(scratch, "pvc", CLAIM, checkpoint.slice(`${PVC_ROOT}/${CLAIM}/`.length));
      expect(existsSync(join(onHost, "config.json")), onHost).toBe(true);
    });

    it("serves the trained draft over HTTP and ends with a terminated result on SIGTERM", {
      timeout: TASK_TIMEOUT_MS,
    }, async () => {
      const port = await freePort();
      const progressPort = await freePort();
      const serve = await startTask(
        "serve",
        {
          ...common("tiny-serve", "serve"),
          kind: "serve",
          params: {
            target: { uri: "builtin://tiny-qwen3" },
            method: "eagle3",
            draft: {
              uri: `pvc://${CLAIM}/specops/drafttrainings/tiny/train/checkpoints/specops/draft/step_latest`,
            },
            speculative: { numSpeculativeTokens: 4 },
            port: 8000,
            servedModelName: "tiny-serve",
          },
        },
        // The pod's own network namespace; its ports published on loopback like a Service would route.
        ["--publish", `127.0.0.1:${port}:8000`, "--publish", `127.0.0.1:${progressPort}:9090`],
      );
      const base = `http://127.0.0.1:${port}`;
      await until(
        "the image's /health",
        async () => (await fetch(`${base}/health`).catch(() => undefined))?.ok,
        180_000,
      );
      const answer = (await (
        await fetch(`${base}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            model: "tiny-serve",
            prompt: "count by 3 from 4 :",
            max_tokens: 16,
            temperature: 0,
          }),
        })
      ).json()) as any;
      expect(answer.choices[0].text.length).toBeGreaterThan(0);
      expect(answer.usage.completion_tokens).toBeGreaterThan(0);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/^vllm:spec_decode_num_drafts_total(\{[^}]*\})? [1-9]/m);
      const progress = (await (await fetch(`http://127.0.0.1:${progressPort}/progress`)).json()) as any;
      expect(progress).toMatchObject({ kind: "serve", state: "running" });
      await podmanOk(["kill", "--signal", "TERM", serve.name]);
      const stopped = await waitExit(serve, 60_000);
      expect(stopped.exitCode).toBe(143);
      checkResult(stopped.result, 143);
      expect(stopped.result.status).toBe("terminated");
    });
  },
);
