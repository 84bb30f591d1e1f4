// The operator as its own process, as its image runs it (operator-image-settings.ts: the
// ENTRYPOINT's node flags, NODE_OPTIONS, MALLOC_ARENA_MAX, a compile cache filled beforehand), for
// the benches that measure it (operator.ts, autoscaler-scale.ts): started and ready once /readyz
// answers (its caches synced), its /metrics, its CPU and memory from /proc, stopped with SIGTERM
// (and SIGKILLed should the bench exit first).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../controlplane/controlplane.ts";
import { operatorImageSettings } from "./operator-image-settings.ts";

export interface OperatorProcessOptions {
  /** The repository root (its operator/Dockerfile and operator/src/main.ts). */
  root: string;
  kubeconfigPath: string | undefined;
  /** SPECOPS_WATCH_NAMESPACES. */
  namespaces: string;
  /** A compile cache filled with the image's node flags (filledCompileCache), if any. */
  compileCache?: string;
  /** Node flags after the image's. */
  nodeArgs?: string[];
  env?: Record<string, string>;
}

export interface OperatorProcess {
  pid: number;
  metricsPort: number;
  /** The text of its /metrics. */
  metrics(): Promise<string>;
  /** Its CPU seconds so far (user + system, from /proc; no request to it). */
  cpuSeconds(): number;
  /** Resident memory now (VmRSS) or at its peak (VmHWM), in MB. */
  memory(field: "VmRSS" | "VmHWM"): number;
  stop(): Promise<void>;
}

export async function startOperatorProcess(opts: OperatorProcessOptions): Promise<OperatorProcess> {
  const { nodeArgs, nodeOptions, mallocArenas } = operatorImageSettings(opts.root);
  const port = await freePort();
  // BENCH_OPERATOR_NODE_ARGS: V8 flags for an experiment (--trace-gc, ...), which NODE_OPTIONS refuses.
  const extraArgs = (process.env.BENCH_OPERATOR_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const args = [...nodeArgs, ...extraArgs, ...(opts.nodeArgs ?? []), join(opts.root, "operator/src/main.ts")];
  const proc = spawn(process.execPath, args, {
    env: {
      ...process.env,
      KUBECONFIG: opts.kubeconfigPath,
      NODE_OPTIONS: `${nodeOptions} ${process.env.BENCH_OPERATOR_NODE_OPTIONS ?? ""}`.trim(),
      ...(opts.compileCache ? { NODE_COMPILE_CACHE: opts.compileCache } : {}),
      ...(mallocArenas ? { MALLOC_ARENA_MAX: mallocArenas } : {}),
      SPECOPS_WATCH_NAMESPACES: opts.namespaces,
      SPECOPS_PORT: String(port),
      SPECOPS_LEADER_ELECT: "false",
      SPECOPS_LOG_LEVEL: process.env.BENCH_OPERATOR_LOG_LEVEL ?? "warn",
      ...opts.env,
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const kill = () => proc.kill("SIGKILL");
  process.once("exit", kill);
  let exited: string | undefined;
  proc.once("exit", (code, signal) => {
    exited = `the operator exited (${signal ?? `code ${code}`}) before it was ready`;
  });
  for (let tries = 0; ; tries++) {
    if (exited) throw new Error(exited);
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (tries > 600) throw new Error("the operator did not become ready in 120 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    pid: proc.pid as number,
    metricsPort: port,
    metrics: async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
    cpuSeconds() {
      const fields = readFileSync(`/proc/${proc.pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
    },
    memory(field) {
      const line = readFileSync(`/proc/${proc.pid}/status`, "utf8")
        .split("\n")
        .find((l) => l.startsWith(field));
      return Number(line?.match(/(\d+)/)?.[1] ?? 0) / 1024;
    },
    async stop() {
      proc.kill("SIGTERM");
      await new Promise((r) => proc.once("exit", r));
      process.removeListener("exit", kill);
    },
  };
}
