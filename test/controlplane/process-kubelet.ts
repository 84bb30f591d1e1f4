// Test and demo edge, not a real kubelet: there is no container runtime on these machines, so each
// SpecOps pod's runtime container runs as a local process of the project's Python runtime instead
// of an image. The pod's task ConfigMap becomes a file, its storage claims become folders under one
// local root (the container's mount paths are rewritten to them), its env is passed through, and its
// exit code and termination message are reported on the pod exactly as a kubelet would.
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { DEFAULT_PVC_ROOT, DEFAULT_TASK_PATH, RUNTIME_ENV } from "../../operator/src/contract/constants.ts";
import { FakeKubelet } from "./kubelet.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

export interface ProcessKubeletOptions {
  /** Local folder standing in for every PersistentVolumeClaim (one subfolder per claim). */
  storageRoot: string;
  python?: string;
  onOutput?: (pod: string, line: string) => void;
}

export class ProcessKubelet {
  readonly kubelet: FakeKubelet;
  readonly #core: CoreV1Api;
  readonly #opts: ProcessKubeletOptions;
  readonly #running = new Map<string, ReturnType<typeof spawn>>();

  constructor(kc: KubeConfig, opts: ProcessKubeletOptions) {
    this.#opts = opts;
    this.#core = kc.makeApiClient(CoreV1Api);
    this.kubelet = new FakeKubelet(kc, {
      nodeName: "local-process-node",
      podIP: () => "127.0.0.1",
      onRunning: (pod) => void this.#run(pod).catch((err) => this.#fail(pod, `could not start: ${err}`)),
      // As a kubelet does on deletion: the container gets SIGTERM (the grace period is not played).
      onDeleting: (pod) =>
        this.#running.get(`${pod.metadata?.namespace ?? "default"}/${pod.metadata?.name}`)?.kill("SIGTERM"),
    });
  }

  start(): Promise<void> {
    return this.kubelet.start();
  }

  async stop(): Promise<void> {
    for (const p of this.#running.values()) p.kill("SIGTERM");
    await this.kubelet.stop();
  }

  async #run(pod: V1Pod): Promise<void> {
    const ns = pod.metadata?.namespace ?? "default";
    const name = pod.metadata?.name ?? "";
    const container = pod.spec?.containers[0];
    const taskVolume = pod.spec?.volumes?.find((v) => v.configMap);
    if (!container || !taskVolume?.configMap?.name)
      return this.#fail(pod, "no runtime container or task volume");
    const dir = join(this.#opts.storageRoot, ".pods", ns, name);
    mkdirSync(dir, { recursive: true });
    const cm = await this.#core.readNamespacedConfigMap({ name: taskVolume.configMap.name, namespace: ns });
    // The container sees claims under DEFAULT_PVC_ROOT; here they are folders under storageRoot.
    const task = (cm.data?.["task.json"] ?? "{}").replaceAll(
      `${DEFAULT_PVC_ROOT}/`,
      `${this.#opts.storageRoot}/`,
    );
    const taskFile = join(dir, "task.json");
    writeFileSync(taskFile, task);
    const terminationLog = join(dir, "termination-log");
    const env: Record<string, string> = { ...process.env } as Record<string, string>;
    for (const e of container.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
    env[RUNTIME_ENV.pvcRoot] = this.#opts.storageRoot;
    env[RUNTIME_ENV.task] = taskFile;
    env[RUNTIME_ENV.terminationLog] = terminationLog;
    const args = (container.args ?? []).map((a) => (a === DEFAULT_TASK_PATH ? taskFile : a));
    const python = this.#opts.python ?? join(root, "runtime/.venv/bin/python");
    const child = spawn(python, ["-m", "specops_runtime.agent", ...args], {
      cwd: join(root, "runtime"),
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#running.set(`${ns}/${name}`, child);
    const forward = (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n")) if (line.trim()) this.#opts.onOutput?.(name, line);
    };
    child.stdout.on("data", forward);
    child.stderr.on("data", forward);
    child.on("exit", (code, signal) => {
      this.#running.delete(`${ns}/${name}`);
      let message: string | undefined;
      try {
        message = readFileSync(terminationLog, "utf8");
      } catch {
        message = undefined;
      }
      const exitCode = code ?? (signal ? 128 + 15 : 1);
      void this.kubelet.finish(ns, name, { exitCode, message }).catch(() => undefined);
    });
  }

  async #fail(pod: V1Pod, message: string): Promise<void> {
    await this.kubelet
      .finish(pod.metadata?.namespace ?? "default", pod.metadata?.name ?? "", { exitCode: 1, message })
      .catch(() => undefined);
  }
}
