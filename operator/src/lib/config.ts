// Operator configuration from flags and environment, validated with zod. Flags win over env vars,
// env vars over defaults. loadConfig is pure (argv and env are parameters) and throws ConfigError
// naming the flag and env var of every bad value, so start-up fails with one clear message.
import { z } from "zod";
import { parseDuration } from "./time.ts";

export class ConfigError extends Error {
  override name = "ConfigError";
}

const duration = z
  .string()
  .transform((s, ctx) => {
    const ms = parseDuration(s);
    if (ms === undefined)
      ctx.addIssue({ code: "custom", message: `expected a duration like 30s or 5m, got "${s}"` });
    return ms ?? 0;
  })
  .pipe(z.number().positive("must be > 0"));

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((s) => ["true", "1", "yes"].includes(s));
const port = z.coerce.number().int().min(0).max(65535);
const dns1123 = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a lowercase DNS-1123 name");

/** Each setting: its flag, env var, schema (over the raw string) and default (raw string). */
const SETTINGS = {
  namespaces: {
    flag: "namespaces",
    env: "SPECOPS_WATCH_NAMESPACES",
    default: "",
    help: "Comma-separated namespaces to watch; empty watches all.",
    schema: z
      .string()
      .transform((s) => [
        ...new Set(
          s
            .split(",")
            .map((n) => n.trim())
            .filter(Boolean),
        ),
      ])
      .pipe(z.array(dns1123)),
  },
  port: {
    flag: "port",
    env: "SPECOPS_PORT",
    default: "8080",
    help: "Port of the /healthz, /readyz and /metrics server (0 = any free port).",
    schema: port,
  },
  leaderElect: {
    flag: "leader-elect",
    env: "SPECOPS_LEADER_ELECT",
    default: "true",
    help: "Elect a leader on a Lease before reconciling.",
    schema: bool,
  },
  leaseName: {
    flag: "leader-election-id",
    env: "SPECOPS_LEADER_ELECTION_ID",
    default: "specops-operator",
    help: "Name of the leader-election Lease.",
    schema: dns1123,
  },
  leaseNamespace: {
    flag: "leader-election-namespace",
    env: "POD_NAMESPACE",
    default: "specops-system",
    help: "Namespace of the Lease (defaults to the pod's namespace).",
    schema: dns1123,
  },
  leaseDurationMs: {
    flag: "lease-duration",
    env: "SPECOPS_LEASE_DURATION",
    default: "15s",
    help: "Lease duration.",
    schema: duration,
  },
  renewDeadlineMs: {
    flag: "renew-deadline",
    env: "SPECOPS_RENEW_DEADLINE",
    default: "10s",
    help: "Leader gives up if it cannot renew within this.",
    schema: duration,
  },
  retryPeriodMs: {
    flag: "retry-period",
    env: "SPECOPS_RETRY_PERIOD",
    default: "2s",
    help: "Lease acquire/renew interval.",
    schema: duration,
  },
  podName: {
    flag: "pod-name",
    env: "POD_NAME",
    default: "specops-operator",
    help: "This replica's name; the leader identity adds a random suffix.",
    schema: z.string().min(1),
  },
  logLevel: {
    flag: "log-level",
    env: "SPECOPS_LOG_LEVEL",
    default: "info",
    help: "trace, debug, info, warn, error or silent.",
    schema: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]),
  },
  runtimeImage: {
    flag: "runtime-image",
    env: "SPECOPS_RUNTIME_IMAGE",
    default: "ghcr.io/specops-dev/specops-runtime:0.1.0",
    help: "Image of the SpecOps runtime (training, evaluation and agent containers).",
    schema: z.string().regex(/^[^\s]+$/, "must be an image reference without spaces"),
  },
  progressPollIntervalMs: {
    flag: "progress-poll-interval",
    env: "SPECOPS_PROGRESS_POLL_INTERVAL",
    default: "30s",
    help: "How often running workloads' progress is read.",
    schema: duration,
  },
  workers: {
    flag: "max-concurrent-reconciles",
    env: "SPECOPS_MAX_CONCURRENT_RECONCILES",
    default: "2",
    help: "Reconciles each controller runs at once.",
    schema: z.coerce.number().int().min(1).max(64),
  },
  requestTimeoutMs: {
    flag: "request-timeout",
    env: "SPECOPS_REQUEST_TIMEOUT",
    default: "30s",
    help: "Deadline of each API request, from sending to the last byte of the answer.",
    schema: duration,
  },
  connectTimeoutMs: {
    flag: "connect-timeout",
    env: "SPECOPS_CONNECT_TIMEOUT",
    default: "10s",
    help: "Deadline of the TCP and TLS handshake with the API server.",
    schema: duration,
  },
  watchInactivityTimeoutMs: {
    flag: "watch-inactivity-timeout",
    env: "SPECOPS_WATCH_INACTIVITY_TIMEOUT",
    default: "2m",
    help: "A watch silent this long (no event, no bookmark) is reopened from its last resourceVersion.",
    schema: duration,
  },
  cacheSyncTimeoutMs: {
    flag: "cache-sync-timeout",
    env: "SPECOPS_CACHE_SYNC_TIMEOUT",
    default: "2m",
    help: "Start-up fails when the caches have not synced within this.",
    schema: duration,
  },
  kubeContext: {
    flag: "context",
    env: "SPECOPS_KUBE_CONTEXT",
    default: "",
    help: "Kubeconfig context to use out of cluster; empty = the current context.",
    schema: z.string(),
  },
  shutdownTimeoutMs: {
    flag: "graceful-shutdown-timeout",
    env: "SPECOPS_GRACEFUL_SHUTDOWN_TIMEOUT",
    default: "30s",
    help: "How long shutdown waits for in-flight reconciles.",
    schema: duration,
  },
} as const;

type Settings = typeof SETTINGS;
export type Config = { [K in keyof Settings]: z.output<Settings[K]["schema"]> };

const BOOLEAN_FLAGS: ReadonlySet<string> = new Set(["leader-elect"]);

/** Parses --flag=value, --flag value and bare boolean flags (--leader-elect, --no-leader-elect). */
function parseArgv(argv: readonly string[]): Map<string, string> {
  const known = new Set<string>(Object.values(SETTINGS).map((s) => s.flag));
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("--")) throw new ConfigError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf("=");
    let flag = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    let value = eq < 0 ? undefined : arg.slice(eq + 1);
    if (value === undefined && flag.startsWith("no-") && BOOLEAN_FLAGS.has(flag.slice(3))) {
      flag = flag.slice(3);
      value = "false";
    }
    if (!known.has(flag)) throw new ConfigError(`unknown flag --${flag}`);
    if (value === undefined) {
      const next = argv[i + 1];
      if (BOOLEAN_FLAGS.has(flag) && (next === undefined || next.startsWith("--"))) value = "true";
      else if (next === undefined) throw new ConfigError(`flag --${flag} needs a value`);
      else value = argv[++i] as string;
    }
    out.set(flag, value);
  }
  return out;
}

export function loadConfig(argv: readonly string[], env: Record<string, string | undefined>): Config {
  const flags = parseArgv(argv);
  const problems: string[] = [];
  const config: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(SETTINGS)) {
    const fromFlag = flags.get(s.flag);
    const fromEnv = env[s.env];
    const raw = fromFlag ?? (fromEnv !== undefined && fromEnv !== "" ? fromEnv : s.default);
    const parsed = (s.schema as z.ZodType).safeParse(raw);
    if (parsed.success) config[key] = parsed.data;
    else {
      const source = fromFlag !== undefined ? `--${s.flag}` : fromEnv ? `env ${s.env}` : "default";
      const why = parsed.error.issues.map((i) => i.message).join("; ");
      problems.push(`--${s.flag} / ${s.env} (from ${source}): ${why} (got "${raw}")`);
    }
  }
  const c = config as Config;
  if (problems.length === 0 && c.renewDeadlineMs >= c.leaseDurationMs) {
    problems.push(
      "--renew-deadline / SPECOPS_RENEW_DEADLINE must be shorter than --lease-duration / SPECOPS_LEASE_DURATION",
    );
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join("\n  ")}`);
  return c;
}

/** One line per setting, for --help. */
export function configHelp(): string {
  return Object.values(SETTINGS)
    .map((s) => `  --${s.flag} (env ${s.env}, default "${s.default}")${s.help ? `  ${s.help}` : ""}`)
    .join("\n");
}
