// What the object-store tests do to MinIO from outside the operator: run the project's S3 tool
// (test/objectstore/s3tool.py, boto3 in the runtime's venv) and hold MinIO credentials in a Secret.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { MINIO_ACCESS_KEY, MINIO_SECRET_KEY } from "./servers.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const python = join(root, "runtime/.venv/bin/python");

/** s3tool.py against `endpoint` with the test's MinIO credentials; its stdout. */
export function s3tool(endpoint: string, ...args: string[]): Buffer {
  const run = spawnSync(python, [join(root, "test/objectstore/s3tool.py"), endpoint, ...args], {
    env: { ...process.env, AWS_ACCESS_KEY_ID: MINIO_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: MINIO_SECRET_KEY },
  });
  if (run.status !== 0) throw new Error(`s3tool ${args.join(" ")}: ${run.stderr}`);
  return run.stdout;
}

/** A Secret (re)made with the MinIO access key and `secretKey` (a wrong one to test refusals). */
export async function minioCredentialSecret(
  kc: KubeConfig,
  namespace: string,
  name: string,
  secretKey: string,
) {
  const core = kc.makeApiClient(CoreV1Api);
  await core.deleteNamespacedSecret({ name, namespace }).catch(() => undefined);
  await core.createNamespacedSecret({
    namespace,
    body: {
      metadata: { name },
      stringData: { AWS_ACCESS_KEY_ID: MINIO_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: secretKey },
    },
  });
}
