// Thin client of the Prometheus HTTP API: instant queries (POST /api/v1/query, form-encoded, so a
// selector naming many pods never meets a URL length limit), all of one window in parallel at one
// evaluation time, under one deadline and the caller's abort signal. Errors name the server and what went wrong (HTTP
// status and Prometheus' errorType/error, a refused connection, the deadline); the credentials are
// sent as a header and never appear in an error, a log line or status.
import { fetch } from "undici";
import { promNumber, type VectorSample } from "./prometheus.ts";

export type PrometheusAuth =
  | { kind: "bearer"; token: string }
  | { kind: "basic"; username: string; password: string };

export interface PrometheusQueryOptions {
  /** Base URL; /api/v1/query is appended to its path. */
  url: string;
  auth?: PrometheusAuth;
  timeoutMs: number;
  signal: AbortSignal;
  /**
   * Evaluation time (Unix ms) of every query; default now. One time for all queries of a window, so
   * that each reads the same samples (queries at each one's own "now" would see different scrapes).
   */
  timeMs?: number;
}

export class PrometheusError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PrometheusError";
  }
}

const MAX_DETAIL = 300;

/** The endpoint URL of instant queries under a base URL (which may carry a path prefix). */
export function queryEndpoint(base: string): string {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/api/v1/query`;
  url.search = "";
  url.hash = "";
  url.username = "";
  url.password = "";
  return url.toString();
}

function authorization(auth: PrometheusAuth | undefined): Record<string, string> {
  if (!auth) return {};
  if (auth.kind === "bearer") return { authorization: `Bearer ${auth.token.trim()}` };
  return {
    authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`, "utf8").toString("base64")}`,
  };
}

interface ApiAnswer {
  status?: string;
  errorType?: string;
  error?: string;
  data?: { resultType?: string; result?: unknown };
}

function parseVector(answer: ApiAnswer, name: string): VectorSample[] {
  const data = answer.data;
  if (data?.resultType === "scalar") {
    const v = data.result as [number, string];
    return [{ metric: {}, value: promNumber(String(v?.[1])) }];
  }
  if (data?.resultType !== "vector" || !Array.isArray(data.result))
    throw new PrometheusError(`query ${name}: expected a vector, got ${String(data?.resultType)}`);
  return data.result.map((r: { metric?: Record<string, string>; value?: [number, string] }) => ({
    metric: r.metric ?? {},
    value: promNumber(String(r.value?.[1])),
  }));
}

function why(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return cause ? `${e.message ?? String(err)} (${cause})` : (e.message ?? String(err));
}

/**
 * Runs the named instant queries, all at one evaluation time. Resolves with every answer or
 * rejects with one PrometheusError saying why (the first query that failed).
 */
export async function instantQueries<K extends string>(
  queries: Partial<Record<K, string>>,
  opts: PrometheusQueryOptions,
): Promise<Partial<Record<K, VectorSample[]>>> {
  const endpoint = queryEndpoint(opts.url);
  const server = new URL(endpoint).origin;
  const time = (opts.timeMs ?? Date.now()) / 1000;
  const deadline = AbortSignal.timeout(opts.timeoutMs);
  const signal = AbortSignal.any([opts.signal, deadline]);
  const headers = {
    ...authorization(opts.auth),
    accept: "application/json",
    "content-type": "application/x-www-form-urlencoded",
  };
  const one = async (name: K, query: string): Promise<[K, VectorSample[]]> => {
    let res: Awaited<ReturnType<typeof fetch>>;
    let body: string;
    try {
      res = await fetch(endpoint, {
        method: "POST",
        headers,
        body: new URLSearchParams({ query, time: time.toFixed(3) }).toString(),
        signal,
      });
      body = await res.text();
    } catch (err) {
      if (opts.signal.aborted) throw err;
      if (deadline.aborted)
        throw new PrometheusError(`Prometheus ${server}: no answer within ${opts.timeoutMs} ms`);
      throw new PrometheusError(`Prometheus ${server}: ${why(err)}`);
    }
    let answer: ApiAnswer | undefined;
    try {
      answer = JSON.parse(body) as ApiAnswer;
    } catch {
      answer = undefined;
    }
    if (!res.ok || answer?.status !== "success") {
      const detail = answer?.error
        ? `${answer.errorType ?? "error"}: ${answer.error}`
        : body.replace(/\s+/g, " ").trim();
      throw new PrometheusError(
        `Prometheus ${server} answered HTTP ${res.status}${detail ? ` (${detail.slice(0, MAX_DETAIL)})` : ""}`,
      );
    }
    try {
      return [name, parseVector(answer, name)];
    } catch (err) {
      throw new PrometheusError(`Prometheus ${server}: ${(err as Error).message}`);
    }
  };
  const entries = Object.entries(queries).filter((e): e is [K, string] => typeof e[1] === "string");
  const answers = await Promise.all(entries.map(([name, query]) => one(name, query)));
  return Object.fromEntries(answers) as Partial<Record<K, VectorSample[]>>;
}
