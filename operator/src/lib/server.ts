// One HTTP server for probes and metrics: /healthz (the process is serving), /readyz (caches
// synced and leader election healthy; standbys are ready too), /metrics (Prometheus text).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(opts: {
  port: number;
  host?: string;
  registry: Registry;
  /** undefined = ready; otherwise the reason it isn't. */
  notReady: () => string | undefined;
}): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const text = (code: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(code, { "content-type": type });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return text(405, "method not allowed\n");
    if (path === "/healthz" || path === "/livez") return text(200, "ok\n");
    if (path === "/readyz") {
      const reason = opts.notReady();
      return reason === undefined ? text(200, "ok\n") : text(503, `not ready: ${reason}\n`);
    }
    if (path === "/metrics") {
      opts.registry.metrics().then(
        (body) => text(200, body, opts.registry.contentType),
        (err) => text(500, `metrics: ${String(err)}\n`),
      );
      return;
    }
    text(404, "not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "0.0.0.0", () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
