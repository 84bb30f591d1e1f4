// KubeClient against real local sockets: an API server that accepts and never answers (the edge a
// hung kube-apiserver presents), one that throttles, one that pages. No fakes of the client itself.
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startConnectProxy } from "../../../test/support/connect-proxy.ts";
import { KubeClient } from "./client.ts";
import { connect } from "./connection.ts";
import { ApiError, RequestTimeoutError } from "./errors.ts";
import { Informer } from "./informer.ts";
import { Manager } from "./manager.ts";
import { ConfigMaps } from "./rest.ts";

const servers: { close(): void }[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** Accepts TCP connections and never writes a byte. */
async function hungServer(): Promise<string> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  servers.push({
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

async function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createHttpServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  servers.push({
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

const elapsed = async (p: Promise<unknown>) => {
  const t = Date.now();
  const outcome = await p.then(
    (v) => ({ value: v }),
    (e: unknown) => ({ error: e }),
  );
  return { ms: Date.now() - t, ...outcome } as { ms: number; value?: unknown; error?: unknown };
};

describe("KubeClient deadlines (hung API server: accepts, never answers)", () => {
  it("a request fails with RequestTimeoutError within its deadline", async () => {
    const client = new KubeClient(connect({ server: await hungServer() }), { requestTimeoutMs: 300 });
    const r = await elapsed(client.get(ConfigMaps, "ns", "a"));
    expect(r.error, String(r.error)).toBeInstanceOf(RequestTimeoutError);
    expect((r.error as Error).message).toMatch(
      /GET \/api\/v1\/namespaces\/ns\/configmaps\/a: no complete answer within 300 ms/,
    );
    expect(r.ms, `failed after ${r.ms} ms`).toBeGreaterThanOrEqual(280);
    expect(r.ms, `failed after ${r.ms} ms`).toBeLessThan(3000);
  });

  it("a hanging exec credential plugin does not outlive the deadline", async () => {
    const dir = mkdtempSync(join(tmpdir(), "exec-"));
    writeFileSync(join(dir, "login.sh"), "#!/bin/sh\nsleep 3\n"); // waits for a browser login that never comes
    chmodSync(join(dir, "login.sh"), 0o755);
    const server = await httpServer((_req, res) => res.end("{}"));
    const conn = connect({
      server,
      exec: {
        user: "oidc",
        config: { apiVersion: "client.authentication.k8s.io/v1", command: join(dir, "login.sh") },
      },
    });
    const r = await elapsed(new KubeClient(conn, { requestTimeoutMs: 300 }).get(ConfigMaps, "ns", "a"));
    expect(r.error, String(r.error)).toBeInstanceOf(RequestTimeoutError);
    expect(r.ms).toBeLessThan(2500);
  });

  it("the caller's signal aborts a list at once", async () => {
    const client = new KubeClient(connect({ server: await hungServer() }), { requestTimeoutMs: 60_000 });
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error("shutting down")), 100);
    const r = await elapsed(client.list(ConfigMaps, "ns", { signal: abort.signal }));
    expect((r.error as Error).message).toBe("shutting down");
    expect(r.ms).toBeLessThan(3000);
  });

  it("a watch whose server sends headers then nothing ends after the inactivity timeout", async () => {
    const server = await httpServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.flushHeaders(); // and never a byte of body
    });
    const client = new KubeClient(connect({ server }), {
      requestTimeoutMs: 2000,
      watchInactivityTimeoutMs: 300,
    });
    const w = client.watch(ConfigMaps, "ns", { resourceVersion: "1" }, () => {});
    const r = await elapsed(w.done);
    expect(r.error).toBeUndefined(); // a normal end: the informer resumes from its last resourceVersion
    expect(r.ms).toBeLessThan(1800);
  });

  it("an informer and a manager stop promptly while the server hangs", async () => {
    const client = new KubeClient(connect({ server: await hungServer() }), { requestTimeoutMs: 60_000 });
    const informer = new Informer(client, ConfigMaps);
    informer.start();
    await new Promise((r) => setTimeout(r, 100));
    expect((await elapsed(informer.stop())).ms).toBeLessThan(2000);

    const mgr = new Manager({ client, shutdownTimeoutMs: 60_000, leaderElection: undefined });
    mgr.informer(ConfigMaps);
    const started = mgr.start();
    await new Promise((r) => setTimeout(r, 100));
    expect((await elapsed(mgr.stop())).ms).toBeLessThan(2000);
    await started;
  });
});

describe("KubeClient throttling and paging", () => {
  it("retries a 429 after its Retry-After, and hands back the wait when the deadline is shorter", async () => {
    let calls = 0;
    const server = await httpServer((_req, res) => {
      calls++;
      if (calls === 1) {
        res.writeHead(429, { "retry-after": "1", "content-type": "application/json" });
        res.end(JSON.stringify({ kind: "Status", code: 429, message: "too many requests" }));
      } else if (calls === 2) {
        res.end(JSON.stringify({ metadata: { name: "a" } }));
      } else {
        res.writeHead(429, { "retry-after": "30" });
        res.end("{}");
      }
    });
    const client = new KubeClient(connect({ server }), { requestTimeoutMs: 5000 });
    const ok = await elapsed(client.get(ConfigMaps, "ns", "a"));
    expect(ok.value).toEqual({ metadata: { name: "a" } });
    expect(ok.ms).toBeGreaterThanOrEqual(900);
    const throttled = await elapsed(client.get(ConfigMaps, "ns", "a"));
    expect(throttled.error).toBeInstanceOf(ApiError);
    expect((throttled.error as ApiError).code).toBe(429);
    expect((throttled.error as ApiError).retryAfterMs).toBe(30_000);
    expect(throttled.ms).toBeLessThan(1000);
  });

  it("lists in pages with limit and continue", async () => {
    const seen: URLSearchParams[] = [];
    const server = await httpServer((req, res) => {
      const q = new URL(req.url ?? "", "http://x").searchParams;
      seen.push(q);
      const page = Number(q.get("continue") ?? "0");
      const limit = Number(q.get("limit"));
      const items = Array.from({ length: page < 2 ? limit : 3 }, (_, i) => ({
        metadata: { name: `cm-${page * limit + i}` },
      }));
      res.end(
        JSON.stringify({
          items,
          metadata: { resourceVersion: "42", continue: page < 2 ? String(page + 1) : "" },
        }),
      );
    });
    const client = new KubeClient(connect({ server }), { listPageSize: 4 });
    const list = await client.list(ConfigMaps, "ns", { labelSelector: "a=b" });
    expect(list.items).toHaveLength(11);
    expect(list.items[10]).toEqual({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm-10" } });
    expect(list.resourceVersion).toBe("42");
    expect(seen.map((q) => [q.get("limit"), q.get("continue"), q.get("labelSelector")])).toEqual([
      ["4", null, "a=b"],
      ["4", "1", "a=b"],
      ["4", "2", "a=b"],
    ]);
  });
});

async function connectProxy(): Promise<{ url: string; tunnels: string[] }> {
  const proxy = await startConnectProxy();
  servers.push(proxy);
  return proxy;
}

describe("KubeClient through proxies", () => {
  const apiServer = () =>
    httpServer((_req, res) => {
      res.end(JSON.stringify({ metadata: { name: "a" } }));
    });

  it("tunnels through the cluster's proxy-url", async () => {
    const server = await apiServer();
    const proxy = await connectProxy();
    const client = new KubeClient(connect({ server, proxyUrl: proxy.url }));
    expect(await client.get(ConfigMaps, "ns", "a")).toEqual({ metadata: { name: "a" } });
    expect(proxy.tunnels).toEqual([new URL(server).host]);
  });

  it("follows HTTP(S)_PROXY, and NO_PROXY exempts the API server", async () => {
    const server = await apiServer();
    const proxy = await connectProxy();
    const viaEnv = new KubeClient(connect({ server, proxyEnv: { HTTP_PROXY: proxy.url } }));
    await viaEnv.get(ConfigMaps, "ns", "a");
    expect(proxy.tunnels).toHaveLength(1);
    const exempt = new KubeClient(
      connect({ server, proxyEnv: { HTTP_PROXY: proxy.url, NO_PROXY: "127.0.0.1" } }),
    );
    await exempt.get(ConfigMaps, "ns", "a");
    expect(proxy.tunnels).toHaveLength(1);
  });
});
