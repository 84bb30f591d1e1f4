// The autoscaler's Prometheus signal source (spec.autoscaling.signals.source: Prometheus): the edge
// that reads the auth Secret (cached a minute, held in memory only; the operator may read Secrets
// only where the chart's autoscaler.prometheusAuthSecrets grants it), queries the Prometheus HTTP API
// for the ready serving pods' series over the window and maps the answers into the window's
// Signals, as the direct scrape would give them. Never throws for Prometheus' sake: an unreachable
// server, an error answer, a missing Secret or a deadline comes back as `error` and the decision
// holds the scale (ScalingActive=False, MetricsMissing), as a failed direct scrape does.
import type { SpecServe } from "../../api/kinds.ts";
import { type QueryName, signalQueries, signalsFromResults } from "../../autoscaler/prometheus.ts";
import { instantQueries, type PrometheusAuth } from "../../autoscaler/prometheus-client.ts";
import type { Signals } from "../../autoscaler/signals.ts";
import type { Client } from "../../lib/client.ts";
import { isNotFound, statusCode } from "../../lib/errors.ts";
import { Secrets } from "../../lib/rest.ts";

type PrometheusSpec = NonNullable<NonNullable<SpecServe["spec"]["autoscaling"]>["signals"]["prometheus"]>;

export interface PrometheusWindow {
  signals: Signals | null;
  /** Names of the pods whose series Prometheus had in the window. */
  podsSeen: Set<string>;
  error?: string;
}

/** How long a read auth Secret is trusted before it is read again. */
const SECRET_TTL_MS = 60_000;

export function prometheusSource(deps: { client: Client; now: () => number }) {
  const credentials = new Map<string, { ref: string; atMs: number; auth?: PrometheusAuth }>();

  /** The credentials the spec references, or why they cannot be had (never the values). */
  async function authOf(
    key: string,
    namespace: string,
    p: PrometheusSpec,
    signal: AbortSignal,
  ): Promise<{ auth?: PrometheusAuth; error?: string }> {
    const bearer = p.bearerTokenSecretRef;
    const basic = p.basicAuthSecretRef;
    if (!bearer && !basic) return {};
    const ref = bearer
      ? `bearer ${bearer.name}/${bearer.key}`
      : `basic ${basic?.name}/${basic?.usernameKey}/${basic?.passwordKey}`;
    const now = deps.now();
    const cached = credentials.get(key);
    if (cached && cached.ref === ref && now - cached.atMs < SECRET_TTL_MS) return { auth: cached.auth };
    const name = (bearer?.name ?? basic?.name) as string;
    let read: { auth?: PrometheusAuth; error?: string };
    try {
      const secret = await deps.client.get(Secrets, namespace, name, { signal });
      const value = (k: string) => {
        const b64 = secret.data?.[k];
        if (b64 === undefined) throw new Error(`has no key ${k}`);
        return Buffer.from(b64, "base64").toString("utf8");
      };
      read = bearer
        ? { auth: { kind: "bearer", token: value(bearer.key) } }
        : {
            auth: {
              kind: "basic",
              username: value(basic?.usernameKey ?? "username"),
              password: value(basic?.passwordKey ?? "password"),
            },
          };
    } catch (err) {
      if (signal.aborted) throw err;
      const why = isNotFound(err)
        ? "not found"
        : statusCode(err) === 403
          ? "the operator may not read Secrets (set autoscaler.prometheusAuthSecrets=true in the chart)"
          : (err as Error).message;
      read = { error: `Prometheus auth Secret ${name}: ${why}`.slice(0, 400) };
    }
    // Only what was read is kept: a missing or forbidden Secret is asked again at the next window,
    // so fixing it takes effect at once.
    if (read.auth) credentials.set(key, { ref, atMs: now, ...read });
    else credentials.delete(key);
    return read;
  }

  return {
    /** The window's signals of the given ready pods, read from Prometheus. */
    async measure(input: {
      key: string;
      ss: SpecServe;
      pods: readonly string[];
      windowSeconds: number;
      timeoutMs: number;
      signal: AbortSignal;
    }): Promise<PrometheusWindow> {
      const p = input.ss.spec.autoscaling?.signals.prometheus;
      const none = (error: string): PrometheusWindow => ({ signals: null, podsSeen: new Set(), error });
      if (!p) return none("signals.prometheus is not set");
      if (input.pods.length === 0) return none("no ready serving pod to read");
      const { auth, error } = await authOf(input.key, input.ss.metadata.namespace ?? "", p, input.signal);
      if (error) return none(error);
      const kind = input.ss.spec.engine === "sglang" ? "sglang" : "vllm";
      const queries = signalQueries(
        kind,
        {
          namespaceLabel: p.namespaceLabel,
          namespace: input.ss.metadata.namespace ?? "",
          podLabel: p.podLabel,
          pods: [...input.pods].sort(),
          matchers: p.matchers,
        },
        input.windowSeconds,
      );
      try {
        const results = await instantQueries<QueryName>(queries, {
          url: p.url,
          auth,
          timeoutMs: input.timeoutMs,
          signal: input.signal,
        });
        const signals = signalsFromResults(kind, results, input.windowSeconds, p.podLabel);
        const podsSeen = new Set(
          [...(results.running ?? []), ...(results.waiting ?? [])]
            .map((s) => s.metric[p.podLabel])
            .filter((x): x is string => x !== undefined),
        );
        if (podsSeen.size === 0)
          return {
            signals: null,
            podsSeen,
            error: `Prometheus ${new URL(p.url).origin} has no series of the ${input.pods.length} ready pods in the window (check signals.prometheus.podLabel, namespaceLabel and matchers)`,
          };
        const missing = input.pods.filter((n) => !podsSeen.has(n));
        return {
          signals,
          podsSeen,
          ...(missing.length
            ? {
                error: `${missing.length} of ${input.pods.length} pods have no series in Prometheus (${missing.slice(0, 3).join(", ")})`,
              }
            : {}),
        };
      } catch (err) {
        if (input.signal.aborted) throw err;
        return none((err as Error).message.slice(0, 600));
      }
    },
    forget(key: string) {
      credentials.delete(key);
    },
  };
}
