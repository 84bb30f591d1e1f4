// PodScrapes against real loopback HTTP servers counting their GETs: readers that ask within the
// freshness bound share one GET (held or in flight), parsed once, failures included; each caller
// keeps its own deadline and abort signal; a GET every caller abandoned is not kept.
import { createServer, type Server, type ServerResponse } from "node:http";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PodScrapes } from "./pod-scrapes.ts";

const servers: Server[] = [];
let port = 0;
const gets = new Map<string, number>();
const hung: ServerResponse[] = [];
/** Delay before the answering host answers (ms). */
let delayMs = 0;

beforeAll(async () => {
  // One port on four loopback addresses (as four pod IPs): answers, fails, never answers, garbles.
  for (const host of ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]) {
    const server = createServer((_req, res) => {
      gets.set(host, (gets.get(host) ?? 0) + 1);
      if (host === "127.0.0.1")
        return void setTimeout(
          () => res.end(`other_series 1\nvllm:num_requests_running ${gets.get(host)}\n`),
          delayMs,
        );
      if (host === "127.0.0.2") return void res.writeHead(503).end();
      if (host === "127.0.0.4") return void res.end('vllm:num_requests_running{engine="0" 1\n');
      hung.push(res);
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

const pod = (name: string, podIP: string, uid = `uid-${name}`) => ({
  metadata: { name, uid },
  status: { podIP, conditions: [{ type: "Ready", status: "True" }] },
});
const signal = () => new AbortController().signal;
const count = (host: string) => gets.get(host) ?? 0;

describe("PodScrapes: one GET per pod for every reader within the freshness bound", () => {
  it("joins a scrape in flight, reuses a held one taken since the time asked, scrapes again when older", async () => {
    const scrapes = new PodScrapes();
    const before = count("127.0.0.1");
    delayMs = 100;
    const a = pod("a", "127.0.0.1");
    const [x, y] = await Promise.all([
      scrapes.scrape([a], { port, signal: signal() }),
      scrapes.scrape([a], { port, signal: signal() }),
    ]);
    delayMs = 0;
    expect(count("127.0.0.1") - before).toBe(1);
    expect(x?.[0]).toMatchObject({ ok: true, pod: "a", uid: "uid-a" });
    expect(y?.[0]).toEqual(x?.[0]);
    const takenMs = x?.[0]?.timeMs ?? 0;
    const held = await scrapes.scrape([a], { port, signal: signal(), since: takenMs - 1000 });
    expect(held[0]).toEqual(x?.[0]);
    expect(count("127.0.0.1") - before).toBe(1);
    expect(scrapes.latest(a, port)).toEqual(x?.[0]);
    // Asked for a scrape newer than the held one: a new GET.
    const fresh = await scrapes.scrape([a], { port, signal: signal(), since: takenMs + 1 });
    expect(count("127.0.0.1") - before).toBe(2);
    // Parsed once, only the series the signals read.
    expect(fresh[0]).toMatchObject({
      ok: true,
      exposition: { samples: [{ name: "vllm:num_requests_running", labels: {}, value: count("127.0.0.1") }] },
    });
    // Another IP, or another pod (uid) at the same IP, is another target.
    const moved = pod("a", "127.0.0.2");
    expect(scrapes.latest(moved, port)).toBeUndefined();
    await scrapes.scrape([pod("b", "127.0.0.1", "uid-b")], { port, signal: signal(), since: 0 });
    expect(count("127.0.0.1") - before).toBe(3);
  });

  it("keeps a failure (an error answer, a text that does not parse) for the next reader too", async () => {
    const scrapes = new PodScrapes();
    const before = count("127.0.0.2");
    const bad = pod("bad", "127.0.0.2");
    const [first] = await scrapes.scrape([bad], { port, signal: signal() });
    expect(first).toMatchObject({ ok: false, error: expect.stringMatching(/HTTP 503/) });
    const [second] = await scrapes.scrape([bad], { port, signal: signal(), since: Date.now() - 5000 });
    expect(second).toEqual(first);
    expect(count("127.0.0.2") - before).toBe(1);
    // A text that does not parse is a failure too, named by the parser, and kept the same way.
    const garbled = pod("garbled", "127.0.0.4");
    const [parsed] = await scrapes.scrape([garbled], { port, signal: signal() });
    expect(parsed).toMatchObject({ ok: false, error: expect.stringMatching(/metrics text line 1/) });
    expect(scrapes.latest(garbled, port)).toEqual(parsed);
    const [none] = await scrapes.scrape([{ metadata: { name: "new", uid: "u" }, status: {} }], {
      port,
      signal: signal(),
    });
    expect(none).toMatchObject({ ok: false, error: "pod has no IP yet" });
  });

  it("keeps each caller's own deadline: a joiner with a shorter one gives up first", async () => {
    const scrapes = new PodScrapes();
    const slow = pod("slow", "127.0.0.3");
    const started = Date.now();
    const long = scrapes.scrape([slow], { port, signal: signal(), timeoutMs: 600 });
    const short = await scrapes.scrape([slow], { port, signal: signal(), timeoutMs: 150 });
    expect(short[0]).toMatchObject({ ok: false, error: "no answer within 150 ms" });
    expect(Date.now() - started).toBeLessThan(500);
    expect((await long)[0]).toMatchObject({ ok: false, error: "no answer within 600 ms" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    // The timeout is a real failure of the pod: held for the next reader.
    expect(scrapes.latest(slow, port)).toMatchObject({ error: "no answer within 600 ms" });
  });

  it("a caller's abort leaves the GET to the others; a GET every caller abandoned is not kept", async () => {
    const scrapes = new PodScrapes();
    const a = pod("a2", "127.0.0.1", "uid-a2");
    const before = count("127.0.0.1");
    delayMs = 200;
    const quitter = new AbortController();
    const stays = scrapes.scrape([a], { port, signal: signal() });
    const quits = scrapes.scrape([a], { port, signal: quitter.signal });
    setTimeout(() => quitter.abort(), 20);
    expect((await quits)[0]).toMatchObject({ ok: false });
    expect((await stays)[0]).toMatchObject({ ok: true });
    expect(count("127.0.0.1") - before).toBe(1);
    // Alone and aborted: the GET ends and nothing is held for this pod's next reader.
    const b = pod("b2", "127.0.0.1", "uid-b2");
    const alone = new AbortController();
    const gone = scrapes.scrape([b], { port, signal: alone.signal });
    setTimeout(() => alone.abort(), 20);
    expect((await gone)[0]).toMatchObject({ ok: false });
    await new Promise((r) => setTimeout(r, 50));
    expect(scrapes.latest(b, port)).toBeUndefined();
    delayMs = 0;
    expect((await scrapes.scrape([b], { port, signal: signal(), since: 0 }))[0]).toMatchObject({ ok: true });
  });

  it("observes each GET once in specops_pod_scrape_duration_seconds, by result", async () => {
    const registry = new Registry();
    const scrapes = new PodScrapes({ registry });
    const a = pod("a3", "127.0.0.1", "uid-a3");
    await Promise.all([1, 2, 3].map(() => scrapes.scrape([a], { port, signal: signal() })));
    await scrapes.scrape([pod("bad3", "127.0.0.2", "uid-bad3")], { port, signal: signal() });
    const text = await registry.metrics();
    expect(text).toMatch(/specops_pod_scrape_duration_seconds_count\{result="ok"\} 1\n/);
    expect(text).toMatch(/specops_pod_scrape_duration_seconds_count\{result="error"\} 1\n/);
  });
});
