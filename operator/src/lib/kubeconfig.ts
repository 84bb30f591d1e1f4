// Kubeconfig files as kubectl reads them: KUBECONFIG is a list (":"-separated; missing files are
// skipped) merged so that the first file to define a cluster, user or context by name wins, and
// the first file to set current-context wins; relative paths resolve against the file that holds
// them. --context picks another context. The result is what connect() needs.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import yaml from "js-yaml";
import { ConnectionError, type ExecConfig, type TlsAndAuth } from "./connection.ts";

export interface KubeconfigOptions {
  /** A context name instead of current-context (kubectl --context). */
  context?: string;
}

type Entry = Record<string, unknown>;
interface Named {
  name: string;
  [k: string]: unknown;
}
interface KubeconfigFile {
  "current-context"?: string;
  contexts?: Named[];
  clusters?: Named[];
  users?: Named[];
}

interface Merged {
  currentContext?: string;
  contexts: Map<string, { cluster: string; user: string }>;
  clusters: Map<string, Entry>;
  users: Map<string, Entry>;
  sources: string[];
}

/** $KUBECONFIG's files (empty entries dropped), or ~/.kube/config. */
export function findKubeconfigFiles(env: Record<string, string | undefined>): string[] {
  const list = (env.KUBECONFIG ?? "").split(delimiter).filter(Boolean);
  return list.length > 0 ? list : [join(env.HOME ?? homedir(), ".kube", "config")];
}

const PATH_KEYS = ["certificate-authority", "client-certificate", "client-key", "tokenFile"];

export function mergeKubeconfigs(files: readonly string[]): Merged {
  const merged: Merged = { contexts: new Map(), clusters: new Map(), users: new Map(), sources: [] };
  for (const file of files) {
    if (!existsSync(file)) continue;
    let doc: KubeconfigFile;
    try {
      doc = (yaml.load(readFileSync(file, "utf8")) ?? {}) as KubeconfigFile;
    } catch (err) {
      throw new ConnectionError(`${file}: not a kubeconfig: ${(err as Error).message}`);
    }
    merged.sources.push(file);
    const base = dirname(file);
    const resolve = (entry: Entry): Entry => {
      const out = { ...entry };
      for (const k of PATH_KEYS) {
        const v = out[k];
        if (typeof v === "string" && v && !isAbsolute(v)) out[k] = join(base, v);
      }
      const exec = out.exec as ExecConfig | undefined;
      // kubectl resolves a relative command with a slash against the kubeconfig's directory.
      if (exec?.command?.includes("/") && !isAbsolute(exec.command))
        out.exec = { ...exec, command: join(base, exec.command) };
      return out;
    };
    if (!merged.currentContext && doc["current-context"]) merged.currentContext = doc["current-context"];
    for (const c of doc.clusters ?? [])
      if (c?.name && !merged.clusters.has(c.name))
        merged.clusters.set(c.name, resolve((c.cluster ?? {}) as Entry));
    for (const u of doc.users ?? [])
      if (u?.name && !merged.users.has(u.name)) merged.users.set(u.name, resolve((u.user ?? {}) as Entry));
    for (const c of doc.contexts ?? [])
      if (c?.name && !merged.contexts.has(c.name))
        merged.contexts.set(c.name, (c.context ?? {}) as { cluster: string; user: string });
  }
  return merged;
}

/** The connection settings of one context of the merged files. */
export function loadKubeconfig(files: readonly string[], opts: KubeconfigOptions = {}): TlsAndAuth {
  const m = mergeKubeconfigs(files);
  const where = files.join(delimiter);
  if (m.sources.length === 0)
    throw new ConnectionError(`no in-cluster service account and no kubeconfig at ${where}`);
  const contextName = opts.context ?? m.currentContext;
  if (!contextName) throw new ConnectionError(`${where}: no current-context set and no --context given`);
  const context = m.contexts.get(contextName);
  if (!context) throw new ConnectionError(`${where}: context "${contextName}" not found`);
  const cluster = m.clusters.get(context.cluster);
  if (typeof cluster?.server !== "string")
    throw new ConnectionError(
      `${where}: cluster "${context.cluster}" of context "${contextName}" has no server`,
    );
  const user = (m.users.get(context.user) ?? {}) as Record<string, unknown>;
  if (user["auth-provider"]) {
    throw new ConnectionError(
      `${where}: user "${context.user}" uses an auth-provider plugin, which the operator does not run; use an exec plugin (client.authentication.k8s.io/v1, e.g. kubelogin), a token or a client certificate`,
    );
  }
  const str = (v: unknown) => (typeof v === "string" && v ? v : undefined);
  const b64 = (v: unknown) => (str(v) ? Buffer.from(v as string, "base64") : undefined);
  const exec = user.exec as ExecConfig | undefined;
  if (exec && !exec.command)
    throw new ConnectionError(`${where}: user "${context.user}": exec has no command`);
  return {
    server: cluster.server,
    ca: b64(cluster["certificate-authority-data"]),
    caFile: str(cluster["certificate-authority-data"]) ? undefined : str(cluster["certificate-authority"]),
    insecure: cluster["insecure-skip-tls-verify"] === true,
    servername: str(cluster["tls-server-name"]),
    proxyUrl: str(cluster["proxy-url"]),
    cert: b64(user["client-certificate-data"]),
    key: b64(user["client-key-data"]),
    certFile: str(user["client-certificate-data"]) ? undefined : str(user["client-certificate"]),
    keyFile: str(user["client-key-data"]) ? undefined : str(user["client-key"]),
    token: str(user.token),
    tokenFile: str(user.tokenFile),
    exec: exec ? { user: context.user, config: exec } : undefined,
    basic:
      str(user.username) && str(user.password)
        ? { username: user.username as string, password: user.password as string }
        : undefined,
  };
}
