// scrapePods against real loopback HTTP servers: one answering, one failing, one that never
// answers (the deadline), and a pod without an IP; every pod gets its own result, nothing throws.
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readyPods, scrapePods } from "./scrape.ts";

const servers: Server[] = [];
let port = 0;
const hung: { end(): void }[] = [];

beforeAll(async () => {
  // One port on three loopback addresses (as three pod IPs).
  for (const host of ["127.0.0.1", "127.0.0.2", "127.0.0.3"]) {
    const server = createServer((_req, res) => {
      if (host === "127.0.0.1") return void res.end("vllm:x_total 1\n");
      if (host === "127.0.0.2") return void res.writeHead(503).end();
      hung.push(res); // never answers
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(port, host, r));
    port = (server.address() as { port: number }).port;
  }
});
afterAll(async () => {
  for (const r of hung) r.end();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

const pod = (name: string, podIP?: string, ready = true) => ({
  metadata: { name, uid: `uid-${name}` },
  status: { podIP, conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
});

describe("scrapePods", () => {
  it("returns one result per pod: the text, or why not, under a per-pod deadline", async () => {
    const started = Date.now();
    const results = await scrapePods(
      [pod("ok", "127.0.0.1"), pod("err", "127.0.0.2"), pod("slow", "127.0.0.3"), pod("new")],
      { port, timeoutMs: 300, signal: new AbortController().signal },
    );
    expect(Date.now() - started).toBeLessThan(3000);
    expect(results.map((r) => [r.pod, r.uid, r.ok])).toEqual([
      ["ok", "uid-ok", true],
      ["err", "uid-err", false],
      ["slow", "uid-slow", false],
      ["new", "uid-new", false],
    ]);
    expect(results[0]).toMatchObject({ text: "vllm:x_total 1\n" });
    expect(results[1]).toMatchObject({ error: expect.stringMatching(/HTTP 503/) });
    expect(results[2]).toMatchObject({ error: "no answer within 300 ms" });
    expect(results[3]).toMatchObject({ error: "pod has no IP yet" });
  });

  it("readyPods keeps ready pods with an IP that are not being deleted", () => {
    const deleting = { ...pod("d", "10.0.0.4"), metadata: { name: "d", deletionTimestamp: "x" } };
    const kept = readyPods([pod("a", "10.0.0.1"), pod("b", "10.0.0.2", false), pod("c"), deleting]);
    expect(kept.map((p) => p.metadata.name)).toEqual(["a"]);
  });
});
