// The fault tests' freezing proxy: while frozen nothing passes, thaw delivers what open connections
// held, a connection closed while frozen delivers nothing, reset breaks every connection.
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { afterEach, beforeEach, expect, it } from "vitest";
import { type FreezingProxy, startFreezingProxy } from "../controlplane/freezing-proxy.ts";

let upstream: Server;
let received: string[];
let proxy: FreezingProxy;

beforeEach(async () => {
  received = [];
  upstream = createServer((s) => {
    s.on("data", (d) => {
      received.push(d.toString());
      s.write(`echo:${d}`);
    });
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  proxy = await startFreezingProxy({
    host: "127.0.0.1",
    port: (upstream.address() as { port: number }).port,
  });
});

afterEach(async () => {
  await proxy.close();
  await new Promise<void>((r) => upstream.close(() => r()));
});

const tick = (ms = 100) => new Promise((r) => setTimeout(r, ms));

async function connect(): Promise<{ socket: Socket; replies: string[]; closed: () => boolean }> {
  const socket = createConnection({ host: "127.0.0.1", port: proxy.port });
  const replies: string[] = [];
  let closed = false;
  socket.on("data", (d) => replies.push(d.toString()));
  socket.on("close", () => (closed = true));
  socket.on("error", () => undefined);
  await new Promise((r) => socket.once("connect", r));
  return { socket, replies, closed: () => closed };
}

it("forwards both ways until frozen, holds everything while frozen, delivers it on thaw", async () => {
  const c = await connect();
  c.socket.write("a");
  await tick();
  expect(received).toEqual(["a"]);
  expect(c.replies.join("")).toBe("echo:a");
  proxy.freeze();
  c.socket.write("b");
  await tick(300);
  expect(received).toEqual(["a"]);
  proxy.thaw();
  await tick();
  expect(received.join("")).toBe("ab");
  expect(c.replies.join("")).toBe("echo:aecho:b");
});

it("drops what a connection held when its client closes it while frozen", async () => {
  const c = await connect();
  proxy.freeze();
  c.socket.write("late write");
  await tick();
  c.socket.destroy();
  await tick();
  proxy.thaw();
  await tick(200);
  expect(received).toEqual([]);
});

it("reset breaks every connection", async () => {
  const c = await connect();
  proxy.reset();
  await tick();
  expect(c.closed()).toBe(true);
});
