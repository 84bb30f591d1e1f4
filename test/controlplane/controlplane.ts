// A real etcd + kube-apiserver (+ kube-controller-manager for Jobs, Deployments and garbage
// collection) on free loopback ports, for integration tests and `npm run cluster`. Binaries come
// from build-binaries.sh (Go modules, cached by version). Everything lives in one temp dir that
// stop() removes; child processes are killed on stop and when this process exits.
// For fault tests: an audit log of every write (who wrote what, when), one token per named user (so
// the log tells operator replicas apart), kube-apiserver killed and restarted on the same etcd
// (optionally with other flags, e.g. --watch-cache=false), and etcd compaction on demand.
// For pods on a real node (options.inCluster): the API server reachable in-cluster, through the
// `kubernetes` Service's ClusterIP, with service-account tokens and its CA published to every namespace.
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent, fetch } from "undici";
import { type HostPathVolumes, watchHostPathVolumes } from "./hostpath-pv.ts";

export interface ControlPlane {
  kubeconfigPath: string;
  /** Credentials of a user with no permissions of its own (no groups): tests bind RBAC to it. */
  restrictedUser: { name: string; kubeconfigPath: string };
  server: string;
  token: string;
  caPem: string;
  dir: string;
  /** etcd's client URL (its v3 JSON gateway serves /v3/kv/range and /v3/kv/compaction). */
  etcdUrl: string;
  /** options.inCluster: the address pods reach the API server at (the `kubernetes` Service's endpoint). */
  clusterAddress?: string;
  /** The users named in options.users: their token and a kubeconfig (admin's cluster, their token). */
  users: Record<string, { token: string; kubeconfigPath: string }>;
  /** Writes a kubeconfig for `user` that reaches the API server at `server` (e.g. through a proxy). */
  kubeconfigFor(user: string, server?: string): string;
  /** The audit log's write events so far (empty unless options.audit). */
  auditEvents(): AuditEvent[];
  /** SIGKILLs kube-apiserver (etcd and the controller manager keep running). */
  killApiServer(): Promise<void>;
  /** Starts kube-apiserver again on the same port, certificates and etcd; extraArgs go after the first start's flags (a repeated flag's last value wins). */
  startApiServer(extraArgs?: string[]): Promise<void>;
  /** Compacts etcd at its current revision (physically); returns that revision. */
  compactEtcd(): Promise<number>;
  stop(): Promise<void>;
}

/** One write as the API server's audit log records it at Metadata level (audit.k8s.io/v1 Event). */
export interface AuditEvent {
  verb: string;
  user: { username: string; groups?: string[] };
  objectRef?: {
    resource?: string;
    namespace?: string;
    name?: string;
    apiGroup?: string;
    subresource?: string;
  };
  responseStatus?: { code?: number };
  requestURI: string;
  /** RFC 3339 with microseconds. */
  requestReceivedTimestamp: string;
  stageTimestamp: string;
}

/** The group every options.users member belongs to: tests bind roles to it. */
export const TEST_USERS_GROUP = "specops:test-users";

// Writes only, at Metadata level (who, verb, object, code, times; no bodies): what fault tests count.
const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: None
`;

export interface ControlPlaneOptions {
  /** Run kube-controller-manager too (Jobs, Deployments, garbage collection). Default true. */
  controllerManager?: boolean;
  /** Seconds to wait for readiness. */
  startTimeoutSeconds?: number;
  /** Where the components' logs go; default the temp dir. */
  logDir?: string;
  /** Audit-log every write (see auditEvents()). Default false. */
  audit?: boolean;
  /** Users to create, each with its own bearer token, all in TEST_USERS_GROUP (no other rights). */
  users?: string[];
  /** Extra kube-apiserver flags, e.g. ["--watch-cache=false"]. */
  apiserverArgs?: string[];
  /**
   * PersistentVolumeClaims bind, for a real node: kube-controller-manager's persistentvolume-binder
   * with its in-tree host-path provisioner, and a default StorageClass using it (hostpath-pv.ts).
   * Off by default: the stand-in kubelets mount no volumes, and no test leaves directories behind.
   */
  persistentVolumes?: boolean;
  /**
   * Pods reach the API server in-cluster, as an operator's pod does on a real node: the ServiceAccount
   * admission plugin (each pod gets its service account's projected token, and the CA from the
   * kube-root-ca.crt ConfigMap that kube-controller-manager publishes), and the `kubernetes` Service's
   * endpoint at a private address of this machine (clusterAddress, on the loopback device) that
   * forwards to the API server, which still listens on 127.0.0.1 only. Needs root (ip addr). Off by
   * default: the stand-in kubelets run no service-account pods, and tests create pods in new
   * namespaces before their default ServiceAccount exists.
   */
  inCluster?: boolean;
}

const here = dirname(fileURLToPath(import.meta.url));
const RESTRICTED_USER = "restricted-user";

/** Builds (once) or finds the cached binaries; returns their folder. */
export function controlPlaneBinaries(): string {
  if (process.env.SPECOPS_CONTROLPLANE_BIN) return process.env.SPECOPS_CONTROLPLANE_BIN;
  const out = execFileSync("bash", [join(here, "build-binaries.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  return out.trim().split("\n").at(-1) ?? "";
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean>,
  exited: () => string | undefined,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const died = exited();
    if (died) throw new Error(`${what} exited during start-up: ${died}`);
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} was not ready after ${timeoutMs / 1000}s`);
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const bin = controlPlaneBinaries();
  const dir = mkdtempSync(join(tmpdir(), "specops-cp-"));
  const logDir = opts.logDir ?? dir;
  mkdirSync(logDir, { recursive: true });
  const timeoutMs = (opts.startTimeoutSeconds ?? 90) * 1000;
  const children: { name: string; proc: ChildProcess; exit?: string }[] = [];

  const run = (name: string, args: string[]) => {
    const log = createWriteStream(join(logDir, `${name}.log`), { flags: "a" });
    const proc = spawn(join(bin, name), args, { stdio: ["ignore", "pipe", "pipe"] });
    proc.stdout?.pipe(log);
    proc.stderr?.pipe(log);
    const entry: { name: string; proc: ChildProcess; exit?: string } = { name, proc };
    proc.on("exit", (code, signal) => {
      entry.exit = `code ${code} signal ${signal}; see ${join(logDir, `${name}.log`)}`;
    });
    children.push(entry);
    return entry;
  };
  let hostPathVolumes: HostPathVolumes | undefined;
  let clusterAddress: string | undefined;
  let forwarder: { close(): void } | undefined;
  const killAll = () => {
    for (const c of children) if (c.exit === undefined) c.proc.kill("SIGKILL");
    if (clusterAddress) removeClusterAddress(clusterAddress);
  };
  process.once("exit", killAll);

  try {
    const [etcdPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcd = run("etcd", [
      `--data-dir=${join(dir, "etcd")}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
      "--unsafe-no-fsync=true",
      "--quota-backend-bytes=4294967296",
    ]);
    await waitFor(
      "etcd",
      timeoutMs,
      async () => (await fetch(`http://127.0.0.1:${etcdPort}/health`)).ok,
      () => etcd.exit,
    );

    const token = randomBytes(24).toString("hex");
    const restrictedToken = randomBytes(24).toString("hex");
    const userTokens = Object.fromEntries(
      (opts.users ?? []).map((u) => [u, randomBytes(24).toString("hex")]),
    );
    writeFileSync(
      join(dir, "tokens.csv"),
      `${token},admin,admin-uid,"system:masters"\n${restrictedToken},${RESTRICTED_USER},restricted-uid\n${Object.entries(
        userTokens,
      )
        .map(([u, t]) => `${t},${u},${u}-uid,"${TEST_USERS_GROUP}"\n`)
        .join("")}`,
    );
    const auditLog = join(dir, "audit.log");
    if (opts.audit) writeFileSync(join(dir, "audit-policy.yaml"), AUDIT_POLICY);
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const saKey = join(dir, "sa.key");
    writeFileSync(saKey, privateKey.export({ type: "sec1", format: "pem" }));
    const certDir = join(dir, "certs");
    mkdirSync(certDir);

    if (opts.inCluster) clusterAddress = addClusterAddress();
    const apiserverArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      "--bind-address=127.0.0.1",
      // In-cluster: the endpoint the API server writes for the `kubernetes` Service (kube-proxy routes
      // its ClusterIP there); it is also in the self-signed serving certificate's names, beside
      // 127.0.0.1 (the bind address) and the ClusterIP 10.0.0.1.
      `--advertise-address=${clusterAddress ?? "127.0.0.1"}`,
      `--secure-port=${apiPort}`,
      `--cert-dir=${certDir}`,
      `--token-auth-file=${join(dir, "tokens.csv")}`,
      "--authorization-mode=RBAC",
      "--allow-privileged=true",
      `--service-account-issuer=https://127.0.0.1:${apiPort}/`,
      `--service-account-key-file=${saKey}`,
      `--service-account-signing-key-file=${saKey}`,
      "--service-cluster-ip-range=10.0.0.0/24",
      // In-cluster the lease reconciler (the default) keeps the `kubernetes` Service's endpoints.
      ...(clusterAddress
        ? []
        : ["--disable-admission-plugins=ServiceAccount", "--endpoint-reconciler-type=none"]),
      "--enable-priority-and-fairness=false",
      ...(opts.audit
        ? [
            `--audit-policy-file=${join(dir, "audit-policy.yaml")}`,
            `--audit-log-path=${auditLog}`,
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
            "--audit-log-maxsize=0",
          ]
        : []),
      ...(opts.apiserverArgs ?? []),
    ];
    let apiserver = run("kube-apiserver", apiserverArgs);
    const insecure = new Agent({ connect: { rejectUnauthorized: false } });
    const server = `https://127.0.0.1:${apiPort}`;
    const apiserverReady = () =>
      waitFor(
        "kube-apiserver",
        timeoutMs,
        async () =>
          (
            await fetch(`${server}/readyz`, {
              dispatcher: insecure,
              headers: { authorization: `Bearer ${token}` },
            })
          ).ok,
        () => apiserver.exit,
      );
    await apiserverReady();
    if (clusterAddress) forwarder = await forward(clusterAddress, apiPort);
    const caPem = readFileSync(join(certDir, "apiserver.crt"), "utf8");
    const kubeconfigPath = join(dir, "kubeconfig");
    writeFileSync(kubeconfigPath, kubeconfig(server, caPem, token));
    const restrictedKubeconfigPath = join(dir, "restricted-kubeconfig");
    writeFileSync(restrictedKubeconfigPath, kubeconfig(server, caPem, restrictedToken));
    let kubeconfigs = 0;
    const kubeconfigFor = (user: string, at = server) => {
      const userToken = userTokens[user];
      if (!userToken) throw new Error(`no user ${user}: name it in options.users`);
      const path = join(dir, `kubeconfig-${user}-${kubeconfigs++}`);
      writeFileSync(path, kubeconfig(at, caPem, userToken));
      return path;
    };
    const users = Object.fromEntries(
      Object.entries(userTokens).map(([u, t]) => [u, { token: t, kubeconfigPath: kubeconfigFor(u) }]),
    );
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const etcdCall = async (path: string, body: unknown) => {
      const res = await fetch(`${etcdUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`etcd ${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as { header?: { revision?: string } };
    };

    if (opts.controllerManager ?? true) {
      const kcm = run("kube-controller-manager", [
        `--kubeconfig=${kubeconfigPath}`,
        "--bind-address=127.0.0.1",
        `--secure-port=${await freePort()}`,
        "--leader-elect=false",
        `--service-account-private-key-file=${saKey}`,
        `--root-ca-file=${join(certDir, "apiserver.crt")}`,
        "--use-service-account-credentials=false",
        // No kubelets send heartbeats here: node lifecycle would taint and evict the stand-in's pods.
        // The volume binder only where a real node mounts what it provisions (options.persistentVolumes).
        `--controllers=*,-nodelifecycle,-nodeipam,-service-lb-controller,-cloud-node-lifecycle,${opts.persistentVolumes ? "" : "-persistentvolume-binder,"}-attachdetach`,
        ...(opts.persistentVolumes ? ["--enable-hostpath-provisioner"] : []),
        "--concurrent-job-syncs=10",
        "--kube-api-qps=200",
        "--kube-api-burst=400",
      ]);
      await waitFor(
        "kube-controller-manager",
        timeoutMs,
        async () => {
          // The token controller has run once the default ServiceAccount exists.
          const res = await fetch(`${server}/api/v1/namespaces/default/serviceaccounts/default`, {
            dispatcher: insecure,
            headers: { authorization: `Bearer ${token}` },
          });
          return res.ok;
        },
        () => kcm.exit,
      );
      if (opts.persistentVolumes) hostPathVolumes = await watchHostPathVolumes(kubeconfigPath);
    }

    return {
      kubeconfigPath,
      restrictedUser: { name: RESTRICTED_USER, kubeconfigPath: restrictedKubeconfigPath },
      server,
      token,
      caPem,
      dir,
      clusterAddress,
      etcdUrl,
      users,
      kubeconfigFor,
      auditEvents(): AuditEvent[] {
        if (!opts.audit) return [];
        let text: string;
        try {
          text = readFileSync(auditLog, "utf8");
        } catch {
          return [];
        }
        const events: AuditEvent[] = [];
        for (const line of text.split("\n")) {
          if (!line) continue;
          try {
            events.push(JSON.parse(line) as AuditEvent);
          } catch {
            // The last line may be half-written while the server runs.
          }
        }
        return events;
      },
      async killApiServer() {
        if (apiserver.exit !== undefined) return;
        const exited = new Promise((r) => apiserver.proc.once("exit", r));
        apiserver.proc.kill("SIGKILL");
        await exited;
      },
      async startApiServer(extraArgs = []) {
        if (apiserver.exit === undefined) throw new Error("kube-apiserver is still running");
        apiserver = run("kube-apiserver", [...apiserverArgs, ...extraArgs]);
        await apiserverReady();
      },
      async compactEtcd() {
        const range = await etcdCall("/v3/kv/range", { key: Buffer.from("/").toString("base64") });
        const revision = Number(range.header?.revision);
        await etcdCall("/v3/kv/compaction", { revision: String(revision), physical: true });
        return revision;
      },
      async stop() {
        process.removeListener("exit", killAll);
        hostPathVolumes?.stop();
        for (const c of [...children].reverse()) {
          if (c.exit !== undefined) continue;
          const exited = new Promise((r) => c.proc.once("exit", r));
          c.proc.kill("SIGTERM");
          const timer = setTimeout(() => c.proc.kill("SIGKILL"), 5000);
          await exited;
          clearTimeout(timer);
        }
        // After kube-controller-manager: its deleter would race the removal.
        hostPathVolumes?.removeDirectories();
        forwarder?.close();
        if (clusterAddress) removeClusterAddress(clusterAddress);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    killAll();
    hostPathVolumes?.stop();
    forwarder?.close();
    process.removeListener("exit", killAll);
    throw err;
  }
}

/**
 * A private address for the API server's in-cluster endpoint, on the loopback device: pods reach it
 * through their bridge's gateway (it is this machine's), and nothing outside routes to it. Away from
 * the Service range (10.0.0.0/24) and the real node's pod subnets (10.200-249.x.0/24).
 */
function addClusterAddress(): string {
  if (process.getuid?.() !== 0)
    throw new Error(
      "options.inCluster needs root (it adds the API server's in-cluster address with ip addr)",
    );
  for (let attempt = 0; attempt < 5; attempt++) {
    const address = `10.199.${randomBytes(1)[0] ?? 0}.${1 + ((randomBytes(1)[0] ?? 0) % 254)}`;
    const added = spawnSync("ip", ["addr", "add", `${address}/32`, "dev", "lo"], { encoding: "utf8" });
    if (added.status === 0) return address;
    if (!/exists/i.test(added.stderr ?? ""))
      throw new Error(`ip addr add ${address}/32 dev lo failed: ${added.stderr || added.error?.message}`);
  }
  throw new Error("no free address under 10.199.0.0/16 for the API server's in-cluster endpoint");
}

function removeClusterAddress(address: string): void {
  spawnSync("ip", ["addr", "del", `${address}/32`, "dev", "lo"], { stdio: "ignore" });
}

/** Forwards address:port to the API server on 127.0.0.1:port (TLS passes through untouched). */
async function forward(address: string, port: number): Promise<{ close(): void }> {
  const open = new Set<Socket>();
  const server = createServer((downstream) => {
    const upstream = connect(port, "127.0.0.1");
    for (const s of [downstream, upstream]) {
      open.add(s);
      s.on("error", () => s.destroy()).on("close", () => {
        open.delete(s);
        downstream.destroy();
        upstream.destroy();
      });
    }
    downstream.pipe(upstream).pipe(downstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, address, () => resolve());
  });
  return {
    close() {
      server.close();
      for (const s of open) s.destroy();
    },
  };
}

function kubeconfig(server: string, caPem: string, token: string): string {
  const ca = Buffer.from(caPem).toString("base64");
  return `apiVersion: v1
kind: Config
clusters:
- name: specops-test
  cluster:
    server: ${server}
    certificate-authority-data: ${ca}
users:
- name: admin
  user:
    token: ${token}
contexts:
- name: specops-test
  context:
    cluster: specops-test
    user: admin
current-context: specops-test
`;
}
