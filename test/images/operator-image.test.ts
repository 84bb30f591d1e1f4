// The operator image (operator/Dockerfile, built by scripts/images/build.sh) run as a container
// against the real test control plane: its non-root user, a read-only root filesystem, /healthz,
// /readyz and /metrics, and a DraftTraining reconciled from inside the container.
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { freePort } from "../controlplane/controlplane.ts";
import { example } from "../fixtures/examples.ts";
import { ensureNamespace, installCrds, kubeConfig, kubeRequest } from "../integration/kube.ts";
import { until } from "../integration/operator-harness.ts";
import { imagesConfig, imagesUnavailable, podman, podmanOk } from "./podman.ts";

const config = imagesConfig();
const unavailable = imagesUnavailable(config, [config.operatorImage]);
if (unavailable) console.warn(`operator image tests skipped: ${unavailable}`);

const NS = "operator-image";
const container = `specops-operator-image-test-${process.pid}`;

describe.skipIf(unavailable !== undefined)(
  `operator image ${config.operatorImage}${unavailable ? ` (skipped: ${unavailable})` : ""}`,
  () => {
    let kc: KubeConfig;
    let port: number;
    let scratch: string;
    const get = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: res.status, body: await res.text() };
    };

    beforeAll(async () => {
      kc = kubeConfig();
      await installCrds(kc);
      await ensureNamespace(kc, NS);
      port = await freePort();
      // The kubeconfig (CA and token inline) readable by the image's user, mounted read-only.
      scratch = mkdtempSync(join(tmpdir(), "operator-image-"));
      const kubeconfig = join(scratch, "kubeconfig");
      copyFileSync(inject("kubeconfigPath"), kubeconfig);
      chmodSync(kubeconfig, 0o644);
      await podman(["rm", "-f", container]);
      await podmanOk([
        "run",
        "-d",
        "--name",
        container,
        // The API server listens on loopback only.
        "--network=host",
        "--read-only",
        ...config.ulimits,
        "--volume",
        `${kubeconfig}:/etc/specops/kubeconfig:ro`,
        "--env",
        "KUBECONFIG=/etc/specops/kubeconfig",
        config.operatorImage,
        `--namespaces=${NS}`,
        `--port=${port}`,
        "--no-leader-elect",
        `--runtime-image=${config.referenceImage}`,
      ]);
    });

    let failed = false;
    afterEach(({ task }) => {
      if (task.result?.state === "fail") failed = true;
    });

    afterAll(async () => {
      if (failed) {
        const logs = await podman(["logs", "--tail", "30", container]);
        console.log(`${container} log tail:\n${logs.stdout}${logs.stderr}`);
      }
      await podman(["rm", "-f", "-t", "5", container]);
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    });

    it("runs as its non-root user 65532 on a read-only root filesystem", async () => {
      const inspect = JSON.parse(await podmanOk(["inspect", container]))[0];
      expect(inspect.Config.User).toBe("65532:65532");
      expect(inspect.HostConfig.ReadonlyRootfs).toBe(true);
      // The kernel's view of the container's main process, not the image's metadata.
      const status = readFileSync(`/proc/${inspect.State.Pid}/status`, "utf8");
      expect(status).toMatch(/^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
      const write = await podman([
        "exec",
        container,
        "node",
        "-e",
        "require('fs').writeFileSync('/app/probe', '')",
      ]);
      expect(write.code).not.toBe(0);
      expect(write.stderr).toContain("EROFS");
    });

    it("starts from its built-in compile cache with the ENTRYPOINT's node flags (no TypeScript transpiling)", async () => {
      const image = JSON.parse(await podmanOk(["image", "inspect", config.operatorImage]))[0];
      const entrypoint: string[] = image.Config.Entrypoint;
      expect(entrypoint.length).toBeGreaterThan(1);
      // The entrypoint with --help: it loads every module main.ts imports, then exits.
      const run = await podman([
        "run",
        "--rm",
        "--read-only",
        ...config.ulimits,
        "--env",
        "NODE_DEBUG_NATIVE=COMPILE_CACHE",
        "--entrypoint",
        entrypoint[0] ?? "node",
        config.operatorImage,
        ...entrypoint.slice(1),
        "--help",
      ]);
      expect(run.code).toBe(0);
      // Node keys the cache by V8's flags: filled with other flags, it would transpile every module.
      expect(run.stderr).toContain("retrieving transpile cache for StrippedTypeScript");
      expect(run.stderr).not.toContain("saving transpilation");
    });

    it("serves /healthz, and /readyz once its caches synced from the API server", async () => {
      await until(
        "operator /healthz",
        async () => (await get("/healthz").catch(() => undefined))?.status === 200,
      );
      await until("operator /readyz", async () => (await get("/readyz")).status === 200);
      expect((await get("/healthz")).body).toBe("ok\n");
    });

    it("reconciles a DraftTraining from inside the container and counts it in /metrics", async () => {
      const dt = example("tiny-drafttraining.yaml");
      dt.metadata = { name: "from-the-image", namespace: NS };
      const created = await kubeRequest(
        kc,
        "POST",
        `/apis/specops.dev/v1alpha1/namespaces/${NS}/drafttrainings`,
        dt,
      );
      expect(created.body?.message).toBeUndefined();
      const status = await until("the DraftTraining's status from the containerised operator", async () => {
        const got = await kubeRequest(
          kc,
          "GET",
          `/apis/specops.dev/v1alpha1/namespaces/${NS}/drafttrainings/from-the-image`,
        );
        return got.body?.status?.conditions?.length ? got.body.status : undefined;
      });
      expect(status.observedGeneration).toBe(1);
      const jobs = await kubeRequest(kc, "GET", `/apis/batch/v1/namespaces/${NS}/jobs`);
      expect(jobs.body.items.map((j: any) => j.metadata.name).join(" ")).toContain("from-the-image");
      const metrics = (await get("/metrics")).body;
      const reconciles = metrics
        .split("\n")
        .filter((l) => l.startsWith("controller_runtime_reconcile_total{"))
        .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
      expect(reconciles).toBeGreaterThan(0);
    });
  },
);
