// The operator as its own process (as in a pod): `node operator/src/main.ts` with a kubeconfig and
// settings in its environment, so a test can SIGKILL it, freeze its connection or count its writes
// by identity in the audit log. Its log lines are kept for assertions.
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./controlplane.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

export interface OperatorProcess {
  /** POD_NAME; the Lease holder identity starts with it. */
  name: string;
  proc: ChildProcess;
  metricsPort: number;
  /** Log lines (JSON, pino) so far. */
  logs: string[];
  /** Resolves with the exit code (or 128 + signal number) once the process ends. */
  exited: Promise<number>;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after 10 s; resolves when it has exited. */
  stop(): Promise<void>;
}

export interface OperatorProcessOptions {
  name: string;
  kubeconfigPath: string;
  namespaces: string[];
  /** Namespace of the leader-election Lease. */
  leaseNamespace: string;
  leaderElect?: boolean;
  env?: Record<string, string>;
  onLog?: (name: string, line: string) => void;
}

export async function startOperatorProcess(o: OperatorProcessOptions): Promise<OperatorProcess> {
  const metricsPort = await freePort();
  const proc = spawn(process.execPath, [join(root, "operator/src/main.ts")], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      KUBECONFIG: o.kubeconfigPath,
      POD_NAME: o.name,
      POD_NAMESPACE: o.leaseNamespace,
      SPECOPS_WATCH_NAMESPACES: o.namespaces.join(","),
      SPECOPS_PORT: String(metricsPort),
      SPECOPS_LEADER_ELECT: String(o.leaderElect ?? true),
      SPECOPS_RUNTIME_IMAGE: "specops-runtime:test",
      SPECOPS_LOG_LEVEL: "info",
      ...o.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) {
      if (!line.trim()) continue;
      logs.push(line);
      o.onLog?.(o.name, line);
    }
  };
  proc.stdout?.on("data", collect);
  proc.stderr?.on("data", collect);
  const exited = new Promise<number>((resolve) =>
    proc.once("exit", (code, signal) => resolve(code ?? 128 + (signal === "SIGKILL" ? 9 : 15))),
  );
  const killOnExit = () => proc.kill("SIGKILL");
  process.once("exit", killOnExit);
  void exited.then(() => process.removeListener("exit", killOnExit));
  // Serving /healthz means configuration and connection were accepted.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${metricsPort}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (proc.exitCode !== null || Date.now() > deadline)
      throw new Error(`operator ${o.name} did not start: ${logs.slice(-5).join("\n")}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    name: o.name,
    proc,
    metricsPort,
    logs,
    exited,
    kill: (signal) => void proc.kill(signal),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      proc.kill("SIGTERM");
      await exited;
      clearTimeout(timer);
    },
  };
}
