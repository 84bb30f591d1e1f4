// The Prometheus API client against a local HTTP server that answers as the API does (the real
// Prometheus is queried in test/integration/prometheus-signals.test.ts): what is sent, and how each
// failure reads, never with the credentials in it.
import { createServer, type IncomingMessage, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { instantQueries, PrometheusError, queryEndpoint } from "./prometheus-client.ts";

const TOKEN = "s3cr3t-token-value";
let server: Server;
let base = "";
let respond: (req: IncomingMessage, body: string) => { status: number; body: string; delayMs?: number };
const seen: { path: string; auth?: string; type?: string; query: string | null; time: string | null }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      seen.push({
        path: req.url ?? "",
        auth: req.headers.authorization,
        type: req.headers["content-type"],
        query: new URLSearchParams(body).get("query"),
        time: new URLSearchParams(body).get("time"),
      });
      const r = respond(req, body);
      setTimeout(
        () => res.writeHead(r.status, { "content-type": "application/json" }).end(r.body),
        r.delayMs ?? 0,
      );
    });
  });
  const port = await new Promise<number>((r) =>
    server.listen(0, "127.0.0.1", () => r((server.address() as { port: number }).port)),
  );
  base = `http://127.0.0.1:${port}/prom/`;
});
afterAll(() => server.close());

const vector = (result: unknown[]) =>
  JSON.stringify({ status: "success", data: { resultType: "vector", result } });
const opts = (extra: object = {}) => ({
  url: base,
  timeoutMs: 2000,
  signal: new AbortController().signal,
  ...extra,
});

describe("instantQueries", () => {
  it("POSTs each query form-encoded under the URL's path, with the bearer token, and parses vectors", async () => {
    seen.length = 0;
    respond = (_req, body) => {
      const q = new URLSearchParams(body).get("query");
      return {
        status: 200,
        body:
          q === "up"
            ? vector([
                { metric: { pod: "a" }, value: [1, "1"] },
                { metric: { pod: "b" }, value: [1, "+Inf"] },
              ])
            : vector([]),
      };
    };
    const out = await instantQueries(
      { one: "up", two: 'sum(x{pod=~"a|b"})' },
      opts({ auth: { kind: "bearer", token: `${TOKEN}\n` } }),
    );
    expect(out.one).toEqual([
      { metric: { pod: "a" }, value: 1 },
      { metric: { pod: "b" }, value: Number.POSITIVE_INFINITY },
    ]);
    expect(out.two).toEqual([]);
    expect(seen.map((s) => s.query).sort()).toEqual(['sum(x{pod=~"a|b"})', "up"]);
    // One evaluation time for the window's queries, so that all read the same scrapes.
    expect(new Set(seen.map((s) => s.time)).size).toBe(1);
    expect(Math.abs(Number(seen[0]?.time) - Date.now() / 1000)).toBeLessThan(5);
    expect(seen[0]).toMatchObject({
      path: "/prom/api/v1/query",
      auth: `Bearer ${TOKEN}`,
      type: "application/x-www-form-urlencoded",
    });
  });

  it("sends basic auth", async () => {
    seen.length = 0;
    respond = () => ({ status: 200, body: vector([]) });
    await instantQueries({ q: "up" }, opts({ auth: { kind: "basic", username: "u", password: "p:w" } }));
    expect(seen[0]?.auth).toBe(`Basic ${Buffer.from("u:p:w").toString("base64")}`);
  });

  it("says what Prometheus answered on an error, without the credentials", async () => {
    respond = () => ({
      status: 503,
      body: JSON.stringify({ status: "error", errorType: "unavailable", error: "TSDB not ready" }),
    });
    const err = await instantQueries({ q: "up" }, opts({ auth: { kind: "bearer", token: TOKEN } })).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(PrometheusError);
    expect(err.message).toMatch(
      /^Prometheus http:\/\/127\.0\.0\.1:\d+ answered HTTP 503 \(unavailable: TSDB not ready\)$/,
    );
    expect(err.message).not.toContain(TOKEN);
    respond = () => ({ status: 401, body: "Unauthorized\n" });
    await expect(instantQueries({ q: "up" }, opts())).rejects.toThrow(/answered HTTP 401 \(Unauthorized\)/);
    respond = () => ({
      status: 200,
      body: JSON.stringify({ status: "success", data: { resultType: "matrix", result: [] } }),
    });
    await expect(instantQueries({ q: "up" }, opts())).rejects.toThrow(
      /query q: expected a vector, got matrix/,
    );
  });

  it("gives up at the deadline, and names a server that refuses connections", async () => {
    respond = () => ({ status: 200, body: vector([]), delayMs: 1500 });
    await expect(instantQueries({ q: "up" }, opts({ timeoutMs: 200 }))).rejects.toThrow(
      /no answer within 200 ms/,
    );
    const closed = createServer();
    const port = await new Promise<number>((r) =>
      closed.listen(0, "127.0.0.1", () => r((closed.address() as { port: number }).port)),
    );
    await new Promise((r) => closed.close(r));
    await expect(instantQueries({ q: "up" }, opts({ url: `http://127.0.0.1:${port}` }))).rejects.toThrow(
      /ECONNREFUSED/,
    );
  });

  it("keeps a path prefix and drops query, fragment and credentials from the base URL", () => {
    expect(queryEndpoint("https://thanos.example/prometheus/")).toBe(
      "https://thanos.example/prometheus/api/v1/query",
    );
    expect(queryEndpoint("http://u:p@prom:9090?x=1#f")).toBe("http://prom:9090/api/v1/query");
  });
});
