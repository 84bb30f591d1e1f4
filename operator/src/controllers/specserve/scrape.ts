// Reads serving pods' /metrics text directly (no Prometheus): thin I/O, one GET per pod in
// parallel, each under its own deadline and the caller's abort signal. A pod that cannot be read is
// reported beside the others, never thrown: one unreachable pod must not stop a reconcile.
// Used by the SpecServe rollout gate and AcceptanceEval's live mode; status.signals and the
// autoscaler read through the shared cache in ../shared/pod-scrapes.ts, one scrape for both.
import { get } from "node:http";

/** The pod fields a scrape needs (a V1Pod on the wire has them). */
export interface ScrapablePod {
  metadata?: { name?: string; uid?: string; labels?: Record<string, string>; deletionTimestamp?: string };
  status?: { podIP?: string; conditions?: { type: string; status: string }[] };
}

export type PodScrape =
  | { pod: string; uid: string; ok: true; text: string; timeMs: number }
  | { pod: string; uid: string; ok: false; error: string; timeMs: number };

/** Reads one URL's text; tests point it elsewhere. */
export type FetchText = (url: string, signal: AbortSignal) => Promise<string>;

export interface ScrapeOptions {
  /** Port of the metrics endpoint on the pod IP. */
  port: number;
  path?: string;
  /** Per-pod deadline (default 5 s). */
  timeoutMs?: number;
  signal: AbortSignal;
  fetchText?: FetchText;
  /** Clock of the scrape times (ms). */
  now?: () => number;
}

export const DEFAULT_SCRAPE_TIMEOUT_MS = 5000;

/** Pods that serve now: ready, with an IP, not being deleted. */
export function readyPods<P extends ScrapablePod>(pods: readonly P[]): P[] {
  return pods.filter(
    (p) =>
      p.status?.podIP &&
      p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") &&
      !p.metadata?.deletionTimestamp,
  );
}

/** Reads one URL's body as bytes (the shared scrape cache parses them as they came). */
export type FetchBody = (url: string, signal: AbortSignal) => Promise<string | Uint8Array>;

/**
 * The engines' /metrics carries no API key: vLLM and the reference engine check the key on /v1
 * routes only, so a scrape sends none (the operator never reads the key's Secret).
 */
export const defaultFetchBody = (url: string, signal: AbortSignal): Promise<Buffer> =>
  // Node's own HTTP client, one connection per scrape (`agent: false` sends Connection: close): a
  // window is longer than an engine's keep-alive (uvicorn's is 5 s), so a kept connection would
  // only be closed under the next scrape. Lighter than undici's `request` with `reset`, which built
  // a connection pool per pod IP and an Error with its stack for each closed connection
  // (npm run bench -- autoscaler-scale: 0.7 -> 0.5 ms of CPU per 35 KB scrape).
  new Promise<Buffer>((resolve, reject) => {
    const req = get(url, { agent: false, signal }, (res) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        res.resume();
        return reject(new Error(`${url} answered HTTP ${status}`));
      }
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      // One chunk (most bodies) is the body itself; no copy.
      res.on("end", () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
      res.on("error", reject);
      res.on("close", () => {
        if (!res.complete) reject(new Error(`${url}: the connection closed before the response ended`));
      });
    });
    req.on("error", reject);
  });

export const defaultFetchText: FetchText = async (url, signal) =>
  (await defaultFetchBody(url, signal)).toString("utf8");

/** A pod's name, uid and /metrics URL (none while it has no IP). */
export function scrapeTarget(
  p: ScrapablePod,
  port: number,
  path = "/metrics",
): { pod: string; uid: string; url?: string } {
  const pod = p.metadata?.name ?? "";
  const uid = p.metadata?.uid ?? pod;
  const ip = p.status?.podIP;
  if (!ip) return { pod, uid };
  const host = ip.includes(":") ? `[${ip}]` : ip;
  return { pod, uid, url: `http://${host}:${port}${path}` };
}

export const timeoutMessage = (ms: number) => `no answer within ${ms} ms`;

/** Scrapes every pod once, in parallel; one result per pod, in the order given. */
export function scrapePods(pods: readonly ScrapablePod[], opts: ScrapeOptions): Promise<PodScrape[]> {
  const read = opts.fetchText ?? defaultFetchText;
  const now = opts.now ?? Date.now;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_SCRAPE_TIMEOUT_MS;
  return Promise.all(
    pods.map(async (p): Promise<PodScrape> => {
      const { pod, uid, url } = scrapeTarget(p, opts.port, opts.path);
      if (!url) return { pod, uid, ok: false, error: "pod has no IP yet", timeMs: now() };
      const signal = AbortSignal.any([opts.signal, AbortSignal.timeout(timeoutMs)]);
      try {
        const text = await read(url, signal);
        return { pod, uid, ok: true, text, timeMs: now() };
      } catch (err) {
        const error =
          signal.aborted && !opts.signal.aborted
            ? timeoutMessage(timeoutMs)
            : err instanceof Error
              ? err.message
              : String(err);
        return { pod, uid, ok: false, error, timeMs: now() };
      }
    }),
  );
}
