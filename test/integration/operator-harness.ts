// Runs the operator in-process against the test control plane, with the fake kubelet playing pods
// and a loopback HTTP server playing the runtime pods' progress endpoint (the test edge: there is no
// real kubelet node here, so no real pod serves it).
import { createServer, type Server } from "node:http";
import type { KubeConfig } from "@kubernetes/client-node";
import { loadConfig } from "../../operator/src/lib/config.ts";
import { createLogger } from "../../operator/src/lib/log.ts";
import type { Manager } from "../../operator/src/lib/manager.ts";
import { buildOperator } from "../../operator/src/operator.ts";

export interface FakeProgressServer {
  port: number;
  /** The body served next; a string is sent as-is (to test malformed reports). */
  report: unknown;
  close(): Promise<void>;
}

export async function fakeProgressServer(initial: unknown = {}): Promise<FakeProgressServer> {
  const state: { report: unknown } = { report: initial };
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(typeof state.report === "string" ? state.report : JSON.stringify(state.report));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    get report() {
      return state.report;
    },
    set report(v) {
      state.report = v;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export interface OperatorUnderTest {
  manager: Manager;
  stop(): Promise<void>;
}

export async function startOperator(
  kc: KubeConfig,
  opts: { namespace: string; progressPort: number; env?: Record<string, string> },
): Promise<OperatorUnderTest> {
  const config = loadConfig([], {
    SPECOPS_WATCH_NAMESPACES: opts.namespace,
    SPECOPS_PORT: "0",
    SPECOPS_LEADER_ELECT: "false",
    SPECOPS_RUNTIME_IMAGE: "specops-runtime:test",
    POD_NAMESPACE: opts.namespace,
    ...opts.env,
  });
  const logger = createLogger({ level: (process.env.SPECOPS_TEST_LOG_LEVEL as "info") ?? "silent" });
  const manager = buildOperator({ connection: kc, config, logger, progressPort: opts.progressPort });
  await manager.start();
  return { manager, stop: () => manager.stop() };
}

export { until } from "../support/until.ts";
