// How the operator reaches the API server: server URL, TLS trust, credentials and proxy, from the
// pod's service account (the fast path: nothing else is loaded) or from kubeconfig files
// (kubeconfig.ts). The transport is undici's, with a keep-alive pool. Why not client-node's
// KubeConfig: it pulls in the whole generated API (about 86 MB of resident memory measured: 44 →
// 130 MB) in a process whose memory budget is 200 MB, and its KUBECONFIG merge differs from
// kubectl's; its exec credential runner (ExecAuth, 7 MB) is used, loaded only when a user has one.
import { readFileSync, statSync } from "node:fs";
import { Agent, type Dispatcher, EnvHttpProxyAgent, ProxyAgent } from "undici";
import { findKubeconfigFiles, type KubeconfigOptions, loadKubeconfig } from "./kubeconfig.ts";

export interface Connection {
  server: string;
  /** The keep-alive pool (with the cluster's CA and client certificate); a new one after a rotation. */
  readonly dispatcher: Dispatcher;
  /** Authorization headers for the next request (tokens rotate and expire, so asked each time). */
  headers(): Promise<Record<string, string>>;
}

export class ConnectionError extends Error {
  override name = "ConnectionError";
}

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** A client-go ExecConfig (kubeconfig users[].user.exec). */
export interface ExecConfig {
  apiVersion?: string;
  command: string;
  args?: string[];
  env?: { name: string; value: string }[] | null;
}

/** Everything connect() needs; file paths are absolute. */
export interface TlsAndAuth {
  server: string;
  ca?: string | Buffer;
  caFile?: string;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Client certificate files: re-read when they change on disk (cert-manager, kubelet rotation). */
  certFile?: string;
  keyFile?: string;
  servername?: string;
  insecure?: boolean;
  token?: string;
  tokenFile?: string;
  basic?: { username: string; password: string };
  /** An exec credential plugin (client.authentication.k8s.io/v1): run on demand, cached until it expires. */
  exec?: { user: string; config: ExecConfig };
  /** The cluster's proxy-url; else HTTPS_PROXY/HTTP_PROXY/NO_PROXY from proxyEnv. */
  proxyUrl?: string;
  proxyEnv?: Record<string, string | undefined>;
  /** TCP + TLS handshake deadline. Default 10 s. */
  connectTimeoutMs?: number;
  /** How often rotated certificate files are looked for. Default 10 s. */
  fileCheckIntervalMs?: number;
}

export function connect(o: TlsAndAuth): Connection {
  const files = [o.caFile, o.certFile, o.keyFile].filter((f): f is string => f !== undefined);
  const checkEveryMs = o.fileCheckIntervalMs ?? 10_000;
  const fileStamp = () => files.map((f) => statSync(f, { throwIfNoEntry: false })?.mtimeMs ?? 0).join(",");
  let stamp = fileStamp();
  let checkedAt = Date.now();
  let execCert: { cert: string; key: string } | undefined;
  let dispatcher = makeDispatcher(o, execCert);

  const rebuild = () => {
    const old = dispatcher;
    dispatcher = makeDispatcher(o, execCert);
    void old.close().catch(() => {}); // in-flight requests on the old pool finish
  };
  let cachedToken: { token: string; readAt: number } | undefined;
  const tokenFromFile = (file: string): string => {
    // Projected tokens are refreshed on disk by the kubelet: re-read at most once a minute.
    if (!cachedToken || Date.now() - cachedToken.readAt > 60_000) {
      cachedToken = { token: readFileSync(file, "utf8").trim(), readAt: Date.now() };
    }
    return cachedToken.token;
  };
  const exec = o.exec ? execCredentials(o.exec.user, o.exec.config) : undefined;

  return {
    server: o.server.replace(/\/+$/, ""),
    get dispatcher(): Dispatcher {
      if (files.length > 0 && Date.now() - checkedAt >= checkEveryMs) {
        checkedAt = Date.now();
        const now = fileStamp();
        if (now !== stamp) {
          stamp = now;
          rebuild();
        }
      }
      return dispatcher;
    },
    async headers(): Promise<Record<string, string>> {
      if (exec) {
        const cred = await exec();
        if (cred.cert && cred.key && (cred.cert !== execCert?.cert || cred.key !== execCert?.key)) {
          execCert = { cert: cred.cert, key: cred.key };
          rebuild();
        }
        if (cred.token) return { authorization: `Bearer ${cred.token}` };
      }
      const token = o.token ?? (o.tokenFile ? tokenFromFile(o.tokenFile) : undefined);
      if (token) return { authorization: `Bearer ${token}` };
      if (o.basic) {
        const pair = Buffer.from(`${o.basic.username}:${o.basic.password}`).toString("base64");
        return { authorization: `Basic ${pair}` };
      }
      return {};
    },
  };
}

function makeDispatcher(o: TlsAndAuth, execCert: { cert: string; key: string } | undefined): Dispatcher {
  const tls = {
    ca: o.ca ?? (o.caFile ? readFileSync(o.caFile) : undefined),
    cert: execCert?.cert ?? o.cert ?? (o.certFile ? readFileSync(o.certFile) : undefined),
    key: execCert?.key ?? o.key ?? (o.keyFile ? readFileSync(o.keyFile) : undefined),
    servername: o.servername,
    rejectUnauthorized: o.insecure ? false : undefined,
    timeout: o.connectTimeoutMs ?? 10_000,
  };
  // HTTP/1.1: with undici's default HTTP/2, resetting streams (aborted watches and calls) could spin
  // the process in node's nghttp2 send loop (Http2Stream.RstStream -> nghttp2_session_mem_send), its
  // memory rising ~300 MB/s to an OOM kill (drafttraining-ha.test.ts, caught under gdb, 2026-12-02).
  const pool = { keepAliveTimeout: 30_000, allowH2: false };
  if (o.proxyUrl) return new ProxyAgent({ uri: o.proxyUrl, requestTls: tls, proxyTunnel: true, ...pool });
  const env = o.proxyEnv ?? {};
  const httpsProxy = env.HTTPS_PROXY ?? env.https_proxy;
  const httpProxy = env.HTTP_PROXY ?? env.http_proxy;
  if (httpsProxy || httpProxy) {
    return new EnvHttpProxyAgent({
      httpsProxy,
      httpProxy,
      noProxy: env.NO_PROXY ?? env.no_proxy ?? "",
      connect: tls,
      requestTls: tls,
      proxyTunnel: true,
      ...pool,
    });
  }
  return new Agent({ connect: tls, ...pool });
}

interface ExecResult {
  token?: string;
  cert?: string;
  key?: string;
}

/**
 * Runs an exec credential plugin through client-node's ExecAuth, which caches the ExecCredential
 * until its status.expirationTimestamp; concurrent callers share one run.
 */
function execCredentials(userName: string, config: ExecConfig): () => Promise<ExecResult> {
  const version = config.apiVersion ?? "";
  if (!/^client\.authentication\.k8s\.io\/(v1|v1beta1)$/.test(version)) {
    throw new ConnectionError(
      `user "${userName}": exec plugin apiVersion "${version}" is not supported; use client.authentication.k8s.io/v1`,
    );
  }
  // What kubectl tells the plugin (aws eks get-token and others pick their output version from it).
  const info = { apiVersion: version, kind: "ExecCredential", spec: { interactive: false } };
  const user = {
    name: userName,
    exec: {
      ...config,
      env: [...(config.env ?? []), { name: "KUBERNETES_EXEC_INFO", value: JSON.stringify(info) }],
    },
  };
  let auth:
    | Promise<{ applyAuthentication(u: unknown, o: Record<string, unknown>): Promise<void> }>
    | undefined;
  let running: Promise<ExecResult> | undefined;
  return () => {
    running ??= (async () => {
      auth ??= import("@kubernetes/client-node/dist/exec_auth.js").then((m) => new m.ExecAuth());
      const opts: { headers?: Record<string, string>; cert?: string; key?: string } = {};
      try {
        await (await auth).applyAuthentication(user, opts);
      } catch (err) {
        throw new ConnectionError(
          `user "${userName}": exec plugin "${config.command}" failed: ${(err as Error).message}`,
        );
      }
      const bearer = opts.headers?.Authorization;
      return { token: bearer?.replace(/^Bearer /, ""), cert: opts.cert, key: opts.key };
    })().finally(() => {
      running = undefined;
    });
    return running;
  };
}

export interface LoadConnectionOptions extends KubeconfigOptions {
  connectTimeoutMs?: number;
}

/**
 * In a pod (and no KUBECONFIG set): the service account. Else the kubeconfig files ($KUBECONFIG,
 * a list merged as kubectl merges it, or ~/.kube/config), at opts.context or the current context.
 */
export function loadConnection(
  env: Record<string, string | undefined> = process.env,
  opts: LoadConnectionOptions = {},
): Connection {
  const host = env.KUBERNETES_SERVICE_HOST;
  if (host && statSync(`${SA_DIR}/token`, { throwIfNoEntry: false }) && !env.KUBECONFIG && !opts.context) {
    const port = env.KUBERNETES_SERVICE_PORT ?? "443";
    return connect({
      server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
      ca: readFileSync(`${SA_DIR}/ca.crt`),
      tokenFile: `${SA_DIR}/token`,
      proxyEnv: env,
      connectTimeoutMs: opts.connectTimeoutMs,
    });
  }
  const files = findKubeconfigFiles(env);
  return connect({ ...loadKubeconfig(files, opts), proxyEnv: env, connectTimeoutMs: opts.connectTimeoutMs });
}

/** One kubeconfig file, its current context (or opts.context). */
export function connectionFromKubeconfigFile(file: string, opts: LoadConnectionOptions = {}): Connection {
  return connect({ ...loadKubeconfig([file], opts), connectTimeoutMs: opts.connectTimeoutMs });
}

/** The subset of client-node's KubeConfig this needs (tests and tools hold one already). */
export interface KubeConfigLike {
  getCurrentCluster(): {
    server: string;
    caData?: string;
    caFile?: string;
    skipTLSVerify?: boolean;
    tlsServerName?: string;
    proxyUrl?: string;
  } | null;
  getCurrentUser(): {
    name?: string;
    token?: string;
    certData?: string;
    keyData?: string;
    certFile?: string;
    keyFile?: string;
    username?: string;
    password?: string;
    exec?: ExecConfig;
  } | null;
}

export function connectionFromKubeConfig(kc: KubeConfigLike): Connection {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ConnectionError("kubeconfig has no current cluster");
  const user = kc.getCurrentUser() ?? {};
  const data = (d?: string) => (d ? Buffer.from(d, "base64") : undefined);
  return connect({
    server: cluster.server,
    ca: data(cluster.caData),
    caFile: cluster.caData ? undefined : cluster.caFile,
    insecure: cluster.skipTLSVerify,
    servername: cluster.tlsServerName,
    proxyUrl: cluster.proxyUrl,
    cert: data(user.certData),
    key: data(user.keyData),
    certFile: user.certData ? undefined : user.certFile,
    keyFile: user.keyData ? undefined : user.keyFile,
    token: user.token,
    exec: user.exec ? { user: user.name ?? "user", config: user.exec } : undefined,
    basic: user.username && user.password ? { username: user.username, password: user.password } : undefined,
  });
}
