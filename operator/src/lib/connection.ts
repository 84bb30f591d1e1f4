// How the operator reaches the API server: server URL, TLS trust and credentials, from the pod's
// service account or a kubeconfig file. Hand-written on purpose: @kubernetes/client-node's KubeConfig
// pulls in its whole generated API (about 85 MB of resident memory in a process that needs none of
// it), and the operator's memory budget is 200 MB at 1000 objects. Exec and auth-provider plugins
// are not supported; tokens, token files and client certificates are.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import yaml from "js-yaml";
import { Agent } from "undici";

export interface Connection {
  server: string;
  /** Keep-alive connection pool with the cluster's CA and client certificate. */
  dispatcher: Agent;
  /** Authorization headers for the next request (service-account tokens rotate, so read each time). */
  headers(): Record<string, string>;
}

export class ConnectionError extends Error {
  override name = "ConnectionError";
}

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

interface TlsAndAuth {
  server: string;
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  servername?: string;
  insecure?: boolean;
  token?: string;
  tokenFile?: string;
  basic?: { username: string; password: string };
  /** TCP + TLS handshake deadline. Default 10 s. */
  connectTimeoutMs?: number;
}

export function connect(o: TlsAndAuth): Connection {
  const dispatcher = new Agent({
    connect: {
      ca: o.ca,
      cert: o.cert,
      key: o.key,
      servername: o.servername,
      rejectUnauthorized: o.insecure ? false : undefined,
      timeout: o.connectTimeoutMs ?? 10_000,
    },
    keepAliveTimeout: 30_000,
  });
  let cached: { token: string; readAt: number } | undefined;
  const token = (): string | undefined => {
    if (o.token) return o.token;
    if (!o.tokenFile) return undefined;
    // Projected tokens are refreshed on disk by the kubelet: re-read at most once a minute.
    if (!cached || Date.now() - cached.readAt > 60_000) {
      cached = { token: readFileSync(o.tokenFile, "utf8").trim(), readAt: Date.now() };
    }
    return cached.token;
  };
  return {
    server: o.server.replace(/\/+$/, ""),
    dispatcher,
    headers(): Record<string, string> {
      const t = token();
      if (t) return { authorization: `Bearer ${t}` };
      if (o.basic)
        return {
          authorization: `Basic ${Buffer.from(`${o.basic.username}:${o.basic.password}`).toString("base64")}`,
        };
      return {};
    },
  };
}

/** In a pod: the service account; else $KUBECONFIG (first file) or ~/.kube/config. */
export function loadConnection(env: Record<string, string | undefined> = process.env): Connection {
  const host = env.KUBERNETES_SERVICE_HOST;
  if (host && existsSync(`${SA_DIR}/token`) && !env.KUBECONFIG) {
    const port = env.KUBERNETES_SERVICE_PORT ?? "443";
    return connect({
      server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
      ca: readFileSync(`${SA_DIR}/ca.crt`),
      tokenFile: `${SA_DIR}/token`,
    });
  }
  const file = env.KUBECONFIG?.split(":").find(Boolean) ?? join(homedir(), ".kube", "config");
  if (!existsSync(file))
    throw new ConnectionError(`no in-cluster service account and no kubeconfig at ${file}`);
  return connectionFromKubeconfigFile(file);
}

type Named<T> = { name: string } & T;
interface KubeconfigFile {
  "current-context"?: string;
  contexts?: Named<{ context: { cluster: string; user: string } }>[];
  clusters?: Named<{ cluster: Record<string, string | boolean> }>[];
  users?: Named<{ user?: Record<string, unknown> }>[];
}

export function connectionFromKubeconfigFile(file: string): Connection {
  const doc = yaml.load(readFileSync(file, "utf8")) as KubeconfigFile;
  const base = dirname(file);
  const contextName = doc["current-context"];
  const context = doc.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) throw new ConnectionError(`${file}: current-context "${contextName}" not found`);
  const cluster = doc.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster?.server) throw new ConnectionError(`${file}: cluster "${context.cluster}" has no server`);
  const user = (doc.users?.find((u) => u.name === context.user)?.user ?? {}) as Record<string, string>;
  if (user.exec || user["auth-provider"]) {
    throw new ConnectionError(
      `${file}: user "${context.user}" uses an exec or auth-provider plugin, which the operator does not run; use a token or a client certificate`,
    );
  }
  const dataOrFile = (data: unknown, path: unknown): Buffer | undefined => {
    if (typeof data === "string") return Buffer.from(data, "base64");
    if (typeof path === "string") return readFileSync(isAbsolute(path) ? path : join(base, path));
    return undefined;
  };
  return connect({
    server: String(cluster.server),
    ca: dataOrFile(cluster["certificate-authority-data"], cluster["certificate-authority"]),
    insecure: cluster["insecure-skip-tls-verify"] === true,
    servername: typeof cluster["tls-server-name"] === "string" ? cluster["tls-server-name"] : undefined,
    cert: dataOrFile(user["client-certificate-data"], user["client-certificate"]),
    key: dataOrFile(user["client-key-data"], user["client-key"]),
    token: user.token,
    tokenFile: user.tokenFile
      ? isAbsolute(user.tokenFile)
        ? user.tokenFile
        : join(base, user.tokenFile)
      : undefined,
    basic: user.username && user.password ? { username: user.username, password: user.password } : undefined,
  });
}

/** The subset of client-node's KubeConfig this needs (tests and tools hold one already). */
export interface KubeConfigLike {
  getCurrentCluster(): {
    server: string;
    caData?: string;
    caFile?: string;
    skipTLSVerify?: boolean;
    tlsServerName?: string;
  } | null;
  getCurrentUser(): {
    token?: string;
    certData?: string;
    keyData?: string;
    certFile?: string;
    keyFile?: string;
    username?: string;
    password?: string;
  } | null;
}

export function connectionFromKubeConfig(kc: KubeConfigLike): Connection {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ConnectionError("kubeconfig has no current cluster");
  const user = kc.getCurrentUser() ?? {};
  const data = (d?: string) => (d ? Buffer.from(d, "base64") : undefined);
  const file = (f?: string) => (f ? readFileSync(f) : undefined);
  return connect({
    server: cluster.server,
    ca: data(cluster.caData) ?? file(cluster.caFile),
    insecure: cluster.skipTLSVerify,
    servername: cluster.tlsServerName,
    cert: data(user.certData) ?? file(user.certFile),
    key: data(user.keyData) ?? file(user.keyFile),
    token: user.token,
    basic: user.username && user.password ? { username: user.username, password: user.password } : undefined,
  });
}
