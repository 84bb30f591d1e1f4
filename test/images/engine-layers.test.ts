// The vllm and sglang targets of runtime/Dockerfile need their upstream engine images, which no
// registry here serves. scripts/images/build.sh builds those targets' own layers (the agent, the
// user, the entrypoint) on a stand-in base instead (scripts/images/engine-stand-in-base.Containerfile); these tests run them as pods would, with
// a stand-in engine (test/images/engine-stand-in: records its argv) where the upstream image has
// the real one. What they check is the layer: the agent starts as the image's user, validates the
// Task, and launches the engine with the adapter's command line.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { result as resultSchema } from "../../operator/src/contract/result.ts";
import { imagesConfig, imagesUnavailable, podman, podmanOk } from "./podman.ts";

const config = imagesConfig();
const engines = [
  { engine: "vllm", image: config.vllmLayerImage, standIn: ["vllm", "/usr/local/bin/vllm"] },
  { engine: "sglang", image: config.sglangLayerImage, standIn: ["sglang", "/opt/engine-stand-in/sglang"] },
] as const;
const unavailable = imagesUnavailable(
  config,
  engines.map((e) => e.image),
);
if (unavailable) console.warn(`engine layer tests skipped: ${unavailable}`);

const IMAGE_UID = 10001;
const standInDir = resolve("test/images/engine-stand-in");
let scratch: string;

function serveTask(backend: string, params: Record<string, unknown> = {}) {
  return {
    apiVersion: "runtime.specops.dev/v1",
    kind: "serve",
    backend,
    metadata: { name: `serve-${backend}` },
    output: { path: "/mnt/out" },
    params: {
      target: { uri: "hf://Qwen/Qwen3-8B" },
      method: "eagle3",
      draft: { uri: "hf://example/qwen3-8b-eagle3" },
      port: 8000,
      servedModelName: "qwen3-8b",
      ...params,
    },
  };
}

/** Runs the image with a Task to completion; its exit code, termination message and the stand-in's record. */
async function runTask(engine: (typeof engines)[number], name: string, task: object) {
  const dir = join(scratch, name);
  mkdirSync(join(dir, "out"), { recursive: true });
  chownSync(dir, IMAGE_UID, IMAGE_UID);
  chownSync(join(dir, "out"), IMAGE_UID, IMAGE_UID);
  writeFileSync(join(dir, "task.json"), JSON.stringify(task));
  chmodSync(join(dir, "task.json"), 0o644);
  writeFileSync(join(dir, "termination-log"), "");
  chownSync(join(dir, "termination-log"), IMAGE_UID, IMAGE_UID);
  const [file, target] = engine.standIn;
  const run = await podman(
    [
      "run",
      "--rm",
      ...config.ulimits,
      "--volume",
      `${join(dir, "task.json")}:/etc/specops/task.json:ro`,
      "--volume",
      `${join(dir, "termination-log")}:/dev/termination-log`,
      "--volume",
      `${join(dir, "out")}:/mnt/out`,
      "--volume",
      `${join(standInDir, file)}:${target}:ro`,
      "--env",
      "PYTHONPATH=/opt/specops/runtime:/opt/engine-stand-in",
      "--env",
      "SPECOPS_STAND_IN_RECORD=/mnt/out/stand-in.json",
      engine.image,
    ],
    120_000,
  );
  const message = readFileSync(join(dir, "termination-log"), "utf8");
  expect(message, `${engine.engine} ${name}: no termination message\n${run.stderr}`).not.toBe("");
  const result = JSON.parse(message);
  expect(resultSchema.safeParse(result).error?.issues ?? []).toEqual([]);
  let record: { argv: string[]; uid: number; home: string } | undefined;
  try {
    record = JSON.parse(readFileSync(join(dir, "out", "stand-in.json"), "utf8"));
  } catch {
    record = undefined;
  }
  return { exitCode: run.code, result, record, log: run.stderr };
}

describe.skipIf(unavailable !== undefined)(
  `vllm and sglang targets' agent layer on a stand-in engine base${unavailable ? ` (skipped: ${unavailable})` : ""}`,
  () => {
    beforeAll(() => {
      scratch = mkdtempSync(join(tmpdir(), "engine-layers-"));
      chmodSync(scratch, 0o755);
    });
    afterAll(() => {
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    });

    for (const engine of engines) {
      it(`${engine.engine}: the agent is the entrypoint, as user ${IMAGE_UID}`, async () => {
        const inspect = JSON.parse(await podmanOk(["image", "inspect", engine.image]))[0];
        expect(inspect.Config.User).toBe(String(IMAGE_UID));
        expect(inspect.Config.Entrypoint).toEqual(["python3", "-m", "specops_runtime.agent"]);
      });

      it(`${engine.engine}: launches the engine (a stand-in here) with the adapter's command line`, async () => {
        const run = await runTask(engine, "serve", serveTask(engine.engine));
        expect(run.exitCode, run.log).toBe(0);
        expect(run.result).toMatchObject({ taskKind: "serve", backend: engine.engine, status: "succeeded" });
        expect(run.record?.uid).toBe(IMAGE_UID);
        const argv = run.record?.argv ?? [];
        const flag = (name: string) => argv[argv.indexOf(name) + 1];
        expect(flag("--port")).toBe("8000");
        expect(flag("--served-model-name")).toBe("qwen3-8b");
        if (engine.engine === "vllm") {
          expect(argv.slice(0, 2)).toEqual(["serve", "Qwen/Qwen3-8B"]);
          expect(JSON.parse(flag("--speculative-config") ?? "{}")).toMatchObject({
            method: "eagle3",
            model: "example/qwen3-8b-eagle3",
          });
        } else {
          expect(flag("--model-path")).toBe("Qwen/Qwen3-8B");
          expect(flag("--speculative-draft-model-path")).toBe("example/qwen3-8b-eagle3");
        }
      });

      it(`${engine.engine}: refuses a bad Task naming the field, exit 10, before starting the engine`, async () => {
        const run = await runTask(engine, "invalid", serveTask(engine.engine, { port: 70000 }));
        expect(run.exitCode).toBe(10);
        expect(run.result).toMatchObject({ reason: "invalidTask", exitCode: 10 });
        expect(run.result.message).toMatch(/^params\.port/);
        expect(run.record).toBeUndefined();
      });
    }
  },
);
