import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readProgress, statusProgress } from "./progress.ts";

const report = {
  kind: "train",
  backend: "reference",
  state: "running",
  step: 50,
  total: 200,
  epoch: 1.25,
  loss: 2.345678,
  acceptanceByPosition: [0.9, 0.71234, 0.5],
  tauEstimate: 3.1,
  startTime: "2026-11-28T12:00:00Z",
  time: "2026-11-28T12:01:40Z",
};

let server: Server;
let port = 0;
let answer: { status: number; body: string } = { status: 200, body: JSON.stringify(report) };

beforeAll(async () => {
  server = createServer((_req, res) => {
    res.writeHead(answer.status, { "content-type": "application/json" });
    res.end(answer.body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe("readProgress (a real HTTP endpoint on loopback)", () => {
  it("reads a valid report", async () => {
    answer = { status: 200, body: JSON.stringify(report) };
    const r = await readProgress("127.0.0.1", port);
    expect(r).toMatchObject({ ok: true, progress: { step: 50, total: 200 } });
  });
  it("reports a malformed body with the offending field", async () => {
    answer = { status: 200, body: JSON.stringify({ ...report, step: -3 }) };
    const r = await readProgress("127.0.0.1", port);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem).toMatch(/invalid report: step/);
  });
  it("reports non-JSON and HTTP errors", async () => {
    answer = { status: 200, body: "<html>" };
    expect((await readProgress("127.0.0.1", port)).ok).toBe(false);
    answer = { status: 503, body: "{}" };
    const r = await readProgress("127.0.0.1", port);
    expect(r.ok ? "" : r.problem).toMatch(/HTTP 503/);
  });
  it("reports an unreachable pod", async () => {
    const r = await readProgress("127.0.0.1", 1, 500);
    expect(r.ok).toBe(false);
  });
});

describe("statusProgress", () => {
  it("computes percent and an ETA from the step rate", () => {
    const now = Date.parse("2026-11-28T12:01:40Z");
    expect(statusProgress(report as any, now)).toEqual({
      step: 50,
      totalSteps: 200,
      percent: 25,
      epoch: 1.25,
      loss: 2.3457,
      acceptanceByPosition: [0.9, 0.7123, 0.5],
      tauEstimate: 3.1,
      // 50 steps took 100 s: 150 steps left take 300 s.
      eta: "2026-11-28T12:06:40Z",
      lastUpdateTime: "2026-11-28T12:01:40Z",
    });
  });
  it("carries the runtime's message, e.g. how far staging a model from an object store got", () => {
    const staging = "staging s3://ml-models/qwen3-8b: 12/40 files, 1.2 GiB of 16.0 GiB";
    const p = statusProgress({ ...report, step: undefined, total: undefined, message: staging } as any, 0);
    expect(p.message).toBe(staging);
    expect(p.percent).toBeUndefined();
  });
  it("prefers the runtime's own ETA", () => {
    const now = Date.parse("2026-11-28T12:00:00Z");
    expect(statusProgress({ ...report, etaSeconds: 60 } as any, now).eta).toBe("2026-11-28T12:01:00Z");
  });
});
