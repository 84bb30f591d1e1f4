// Real object stores for integration tests and the demo, on 127.0.0.1 free ports with temp folders:
// MinIO (S3) and fake-gcs-server (GCS), built from their Go modules by build-binaries.sh.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, openSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../controlplane/controlplane.ts";

const here = dirname(fileURLToPath(import.meta.url));
export const MINIO_ACCESS_KEY = "specops-test";
export const MINIO_SECRET_KEY = "specops-test-secret-key";

/** Builds (once, cached) or finds a server binary (minio, fake-gcs-server). */
export function objectStoreBinary(name: "minio" | "fake-gcs-server"): string {
  const out = execFileSync("bash", [join(here, "build-binaries.sh"), name], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = out
    .trim()
    .split("\n")
    .find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`build-binaries.sh printed no path for ${name}`);
  return line.slice(name.length + 1);
}

async function waitHttp(url: string, proc: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${url}: server exited ${proc.exitCode}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not serving after ${timeoutMs} ms`);
}

export interface ObjectStore {
  endpoint: string;
  stop(): Promise<void>;
}

function stopper(proc: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.once("exit", () => resolve());
      proc.kill("SIGTERM");
    });
}

/** A MinIO server with root credentials MINIO_ACCESS_KEY / MINIO_SECRET_KEY, data under dir. */
export async function startMinio(dir: string): Promise<ObjectStore> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const log = openSync(join(dir, "minio.log"), "a");
  const proc = spawn(
    objectStoreBinary("minio"),
    ["server", join(dir, "data"), "--address", `127.0.0.1:${port}`, "--quiet"],
    {
      env: {
        ...process.env,
        MINIO_ROOT_USER: MINIO_ACCESS_KEY,
        MINIO_ROOT_PASSWORD: MINIO_SECRET_KEY,
        MINIO_BROWSER: "off",
        MINIO_UPDATE: "off",
      },
      stdio: ["ignore", log, log],
    },
  );
  const endpoint = `http://127.0.0.1:${port}`;
  await waitHttp(`${endpoint}/minio/health/live`, proc);
  return { endpoint, stop: stopper(proc) };
}

/** A fake-gcs-server over http, data under dir. */
export async function startFakeGcs(dir: string): Promise<ObjectStore> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const log = openSync(join(dir, "fakegcs.log"), "a");
  const args = ["-scheme", "http", "-host", "127.0.0.1", "-port", String(port), "-backend", "filesystem"];
  args.push(
    "-filesystem-root",
    join(dir, "data"),
    "-public-host",
    `127.0.0.1:${port}`,
    "-external-url",
    endpoint,
  );
  const proc = spawn(objectStoreBinary("fake-gcs-server"), args, { stdio: ["ignore", log, log] });
  await waitHttp(`${endpoint}/storage/v1/b`, proc);
  return { endpoint, stop: stopper(proc) };
}
