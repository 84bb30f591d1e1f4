// A loopback TCP proxy between one client (an operator replica) and the API server that can freeze:
// while frozen it accepts and holds every connection and forwards nothing in either direction, as a
// hung API server or a partitioned network looks to the client. TLS passes through untouched.
//  - thaw() delivers what was held, in order, on connections the client still has open.
//  - A connection the client closes while frozen is dropped with what it held: the request never
//    reached the server, so a client that gives up in time leaves no late write behind.
//  - reset() destroys every connection at once (both sides see the connection break).
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface FreezingProxy {
  /** URL to put in the client's kubeconfig (https://127.0.0.1:<port>). */
  url: string;
  port: number;
  readonly frozen: boolean;
  freeze(): void;
  thaw(): void;
  reset(): void;
  close(): Promise<void>;
}

interface Pipe {
  client: Socket;
  upstream: Socket;
  held: { to: Socket; chunk: Buffer }[];
}

export async function startFreezingProxy(target: { host: string; port: number }): Promise<FreezingProxy> {
  const pipes = new Set<Pipe>();
  let frozen = false;
  const forward = (pipe: Pipe, to: Socket, chunk: Buffer) => {
    if (frozen) pipe.held.push({ to, chunk });
    else if (!to.destroyed) to.write(chunk);
  };
  const drop = (pipe: Pipe) => {
    pipes.delete(pipe);
    pipe.held = [];
    pipe.client.destroy();
    pipe.upstream.destroy();
  };
  const server: Server = createServer((client) => {
    const upstream = createConnection(target);
    const pipe: Pipe = { client, upstream, held: [] };
    pipes.add(pipe);
    client.on("data", (c: Buffer) => forward(pipe, upstream, c));
    upstream.on("data", (c: Buffer) => forward(pipe, client, c));
    // A close from either side ends both; while frozen, held bytes die with the connection.
    for (const s of [client, upstream]) {
      s.on("error", () => drop(pipe));
      s.on("close", () => drop(pipe));
      s.on("end", () => (frozen ? drop(pipe) : s === client ? upstream.end() : client.end()));
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    get frozen() {
      return frozen;
    },
    freeze() {
      frozen = true;
    },
    thaw() {
      frozen = false;
      for (const pipe of pipes) {
        for (const { to, chunk } of pipe.held.splice(0)) if (!to.destroyed) to.write(chunk);
      }
    },
    reset() {
      for (const pipe of [...pipes]) {
        pipe.client.resetAndDestroy();
        pipe.upstream.resetAndDestroy();
        drop(pipe);
      }
    },
    async close() {
      for (const pipe of [...pipes]) drop(pipe);
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
