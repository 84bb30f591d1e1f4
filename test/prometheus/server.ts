// A real Prometheus server for the tests of the autoscaler's Prometheus signal source, on a free
// 127.0.0.1 port with its TSDB in a temp folder: Prometheus 3.16.0 built from its Go module by
// build-binary.sh (cached under ~/.cache/specops), scraping what the test names with a short
// interval, optionally behind basic auth (its web config takes a bcrypt hash).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, openSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../controlplane/controlplane.ts";

const here = dirname(fileURLToPath(import.meta.url));

/** Builds (once, cached) or finds the Prometheus binary. */
export function prometheusBinary(): string {
  const out = execFileSync("bash", [join(here, "build-binary.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = out
    .trim()
    .split("\n")
    .find((l) => l.startsWith("prometheus "));
  if (!line) throw new Error("build-binary.sh printed no path for prometheus");
  return line.slice("prometheus ".length);
}

/** A test user of the basic-auth web config: the password and its bcrypt hash (cost 4). */
export const PROMETHEUS_USER = {
  username: "specops",
  password: "specops-test-password",
  bcrypt: "$2a$04$q3ikE4Zm90CsAHbRPP/6A.jwiDe.WQs3er/qaBYHx.6CY7QUcE.46",
};

export interface PrometheusOptions {
  /** TSDB, config and log live here. */
  dir: string;
  /** Targets scraped as one job with honor_labels (the target sets namespace and pod itself). */
  targets: string[];
  metricsPath: string;
  /** Go duration, e.g. 200ms. */
  scrapeInterval: string;
  /** Require PROMETHEUS_USER's basic auth on every request. */
  basicAuth?: boolean;
}

export interface PrometheusServer {
  url: string;
  /** Authorization header value when basic auth is on. */
  authorization?: string;
  /** Stops the process (SIGTERM) and waits for it. */
  stop(): Promise<void>;
  /** Starts it again on the same port and TSDB. */
  start(): Promise<void>;
  /**
   * Resolves once every target has been scraped successfully (Prometheus starts scraping a few
   * seconds after it is ready: its scrape manager applies discovered targets at most every 5 s).
   */
  scraping(timeoutMs?: number): Promise<void>;
}

export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusServer> {
  const binary = prometheusBinary();
  mkdirSync(opts.dir, { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = join(opts.dir, "prometheus.yml");
  writeFileSync(
    config,
    JSON.stringify({
      global: { scrape_interval: opts.scrapeInterval, scrape_timeout: opts.scrapeInterval },
      scrape_configs: [
        {
          job_name: "engines",
          honor_labels: true,
          metrics_path: opts.metricsPath,
          static_configs: [{ targets: opts.targets }],
        },
      ],
    }),
  );
  const args = [
    `--config.file=${config}`,
    `--storage.tsdb.path=${join(opts.dir, "data")}`,
    `--web.listen-address=127.0.0.1:${port}`,
    "--log.level=warn",
  ];
  let authorization: string | undefined;
  if (opts.basicAuth) {
    const web = join(opts.dir, "web.yml");
    writeFileSync(
      web,
      JSON.stringify({ basic_auth_users: { [PROMETHEUS_USER.username]: PROMETHEUS_USER.bcrypt } }),
    );
    args.push(`--web.config.file=${web}`);
    authorization = `Basic ${Buffer.from(`${PROMETHEUS_USER.username}:${PROMETHEUS_USER.password}`).toString("base64")}`;
  }
  let proc: ChildProcess | undefined;
  const start = async () => {
    const log = openSync(join(opts.dir, "prometheus.log"), "a");
    const p = spawn(binary, args, { stdio: ["ignore", log, log] });
    proc = p;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (p.exitCode !== null)
        throw new Error(`prometheus exited ${p.exitCode}; see ${opts.dir}/prometheus.log`);
      try {
        const res = await fetch(`${url}/-/ready`, {
          headers: authorization ? { authorization } : {},
          signal: AbortSignal.timeout(1000),
        });
        if (res.ok) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`prometheus at ${url} not ready after 60 s`);
  };
  const stop = () =>
    new Promise<void>((resolve) => {
      const p = proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once("exit", () => resolve());
      p.kill("SIGTERM");
    });
  const scraping = async (timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent("min(up)")}`, {
        headers: authorization ? { authorization } : {},
        signal: AbortSignal.timeout(2000),
      }).catch(() => undefined);
      const body = (await res?.json().catch(() => undefined)) as
        | { data?: { result?: { value: [number, string] }[] } }
        | undefined;
      if (body?.data?.result?.[0]?.value[1] === "1") return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`prometheus at ${url} scraped no target within ${timeoutMs} ms`);
  };
  await start();
  return { url, ...(authorization ? { authorization } : {}), stop, start, scraping };
}
