// A real node for the test control plane: containerd (Debian's, its own config, socket and state
// under a temp dir) with runc, CNI bridge networking from the containernetworking plugins, the
// kubelet, kube-scheduler and kube-proxy built from the pinned Kubernetes module and CoreDNS from its
// pinned module (build-node-binaries.sh), and the project's images imported into containerd from
// podman (scripts/images/build.sh builds them). CoreDNS runs on the host beside kube-proxy, behind
// the kube-dns Service (a ClusterIP whose EndpointSlice names the node IP), so pods' resolv.conf
// (the kubelet's clusterDNS) resolves Services' names in cluster.local.
// containerd's image store is kept under the cache (~/.cache/specops/node-containerd) so an image
// is imported once per build, not once per run. realNodeUnavailable() says precisely why the node
// cannot start here, so callers fall back to the local-process kubelet (process-kubelet.ts).
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CoreV1Api,
  DiscoveryV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { freePort } from "./controlplane.ts";

const here = dirname(fileURLToPath(import.meta.url));
const CNI_BIN_DIR = "/usr/lib/cni";
export const PAUSE_IMAGE = "registry.k8s.io/pause:3.10";
const CRI_NAMESPACE = "k8s.io";

export interface RealNode {
  nodeName: string;
  /** How each image got into containerd this start (already there, its new layers only, or whole). */
  imports: Record<string, { seconds: number; mode: "present" | "layers" | "whole"; bytes: number }>;
  /** The node's IP (the host's first non-loopback IPv4 address). */
  nodeIP: string;
  /** The cluster DNS (CoreDNS behind the kube-dns Service), when options.dns is on. */
  dns?: { clusterIP: string; domain: string; startSeconds: number };
  dir: string;
  /** Seconds from start to the Node being Ready. */
  startSeconds: number;
  /** The last lines of a component's log (containerd, kubelet, kube-scheduler, kube-proxy, coredns), for failure messages. */
  logTail(component: string, lines?: number): string;
  stop(): Promise<void>;
  /**
   * Stops the node as a killed run would leave containerd's store: every container (and the
   * snapshots it holds) stays there, though no task runs on; the host's state (network, mounts,
   * cgroups) is cleaned as by stop. For tests of what the next start finds.
   */
  crash(): Promise<void>;
  /** The IDs of the containers in containerd's CRI namespace. */
  containers(): string[];
}

export interface RealNodeOptions {
  kubeconfigPath: string;
  /** Images (podman names) to import into containerd; the pause image is always imported. */
  images: string[];
  nodeName?: string;
  /** Run kube-scheduler so pods are placed for real. Default true. */
  scheduler?: boolean;
  /** Run kube-proxy (iptables mode) so Services' ClusterIPs reach their pods. Default true. */
  proxy?: boolean;
  /** Run CoreDNS behind the kube-dns Service and give pods its address (clusterDNS). Default true. */
  dns?: boolean;
  /** Extended resources to advertise on the Node (e.g. {"nvidia.com/gpu": "8"}). */
  extendedResources?: Record<string, string>;
  startTimeoutSeconds?: number;
  log?: (line: string) => void;
  /** Refuse to start unless SPECOPS_REAL_NODE=1. Default false (SPECOPS_REAL_NODE=0 always refuses). */
  requireOptIn?: boolean;
}

function cacheRoot(): string {
  return (
    process.env.SPECOPS_CACHE_DIR ??
    join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? "/root", ".cache"), "specops")
  );
}

const containerdRoot = () => join(cacheRoot(), "node-containerd");

function hasCommand(cmd: string, args = ["--version"]): boolean {
  const r = spawnSync(cmd, args, { stdio: "ignore" });
  return !r.error && r.status === 0;
}

function nodeIP(): string | undefined {
  for (const addrs of Object.values(networkInterfaces()))
    for (const a of addrs ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  return undefined;
}

/** Why a real node cannot start on this machine, or undefined when it can. */
export function realNodeUnavailable(
  images: string[],
  opts: { requireOptIn?: boolean } = {},
): string | undefined {
  // The real node is used wherever it can start (the first import of the 7.6 GB reference image
  // into containerd takes minutes once per machine); SPECOPS_REAL_NODE=0 turns it off.
  if (process.env.SPECOPS_REAL_NODE === "0") return "SPECOPS_REAL_NODE=0 (the real node is turned off)";
  if (opts.requireOptIn && process.env.SPECOPS_REAL_NODE !== "1")
    return "SPECOPS_REAL_NODE is not 1 (the real node is opt-in here)";
  if (process.platform !== "linux") return "a real node needs Linux";
  if (process.getuid?.() !== 0)
    return "a real node needs root (containerd, runc, mounts, network namespaces)";
  if (!hasCommand("containerd")) return "containerd is not installed (apt-get install containerd)";
  if (!hasCommand("runc")) return "runc is not installed (apt-get install runc)";
  if (!hasCommand("containerd-shim-runc-v2", ["-v"])) return "containerd-shim-runc-v2 is not installed";
  for (const plugin of ["bridge", "host-local", "loopback", "portmap"])
    if (!existsSync(join(CNI_BIN_DIR, plugin)))
      return `CNI plugin ${join(CNI_BIN_DIR, plugin)} missing (apt-get install containernetworking-plugins)`;
  if (!nodeBinariesCached()) {
    if (!hasCommand("go", ["version"]))
      return "go is not installed (the kubelet and CoreDNS are built from their modules)";
    if (!hasCommand("gcc"))
      return "gcc is not installed (the pause binary is built from the module's pause.c)";
  }
  if (!hasCommand("podman")) return "podman is not installed (the images come from scripts/images/build.sh)";
  const missing = images.filter((image) => spawnSync("podman", ["image", "exists", image]).status !== 0);
  if (missing.length > 0) return `image ${missing.join(", ")} not built (run scripts/images/build.sh)`;
  if (!nodeIP()) return "no non-loopback IPv4 address for the node (the kubelet rejects loopback)";
  const lock = join(containerdRoot(), "owner.pid");
  if (existsSync(lock)) {
    const pid = Number(readFileSync(lock, "utf8"));
    if (pid && pid !== process.pid && isAlive(pid))
      return `the real node's containerd store ${containerdRoot()} is in use by process ${pid}`;
  }
  // An import stores each new layer twice (its blob and its unpacked snapshot).
  const needed = 2 * images.reduce((n, image) => n + missingLayerBytes(image), 0) + 2e9;
  const free = freeBytes(cacheRoot());
  if (free < needed)
    return `not enough disk to import the images into the node's containerd (${(free / 1e9).toFixed(1)} GB free under ${cacheRoot()}, about ${(needed / 1e9).toFixed(1)} GB needed)`;
  return undefined;
}

function freeBytes(path: string): number {
  let dir = path;
  while (!existsSync(dir)) dir = dirname(dir);
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/** The size of an image's layers that containerd's store lacks (all of them when unknown). */
function missingLayerBytes(image: string): number {
  try {
    const [inspect] = JSON.parse(
      execFileSync("podman", ["image", "inspect", image], { encoding: "utf8" }),
    ) as {
      RootFS?: { Layers?: string[] };
    }[];
    const sizes = podmanLayerSizes();
    return (inspect?.RootFS?.Layers ?? [])
      .filter((d) => !existsSync(join(contentBlobs(), hex(d))))
      .reduce((n, d) => n + (sizes.get(d) ?? 0), 0);
  } catch {
    return 0;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether build-node-binaries.sh has built this version's binaries already (else it needs go and gcc). */
export function nodeBinariesCached(): boolean {
  return nodeBinariesMissing() === undefined;
}

/** Why build-node-binaries.sh would build something (what its check found missing, or its error), or undefined. */
export function nodeBinariesMissing(): string | undefined {
  const built = spawnSync("bash", [join(here, "build-node-binaries.sh"), "--check"], {
    encoding: "utf8",
    stdio: ["ignore", "ignore", "pipe"],
    timeout: 120_000,
  });
  if (built.status === 0) return undefined;
  const said = built.stderr?.trim().split("\n").slice(-3).join("; ");
  return said || `its check exited ${built.status ?? built.signal ?? built.error}`;
}

/** Builds (once) or finds the cached kubelet, kube-scheduler, kube-proxy, pause and CoreDNS. */
export function nodeBinaries(): { k8s: string; coredns: string } {
  const out = execFileSync("bash", [join(here, "build-node-binaries.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  // Its last two lines: the Kubernetes binaries' folder, then CoreDNS'.
  const [k8s = "", coredns = ""] = out.trim().split("\n").slice(-2);
  return { k8s, coredns };
}

export const CLUSTER_DOMAIN = "cluster.local";
const DNS_NAMESPACE = "kube-system";
const DNS_SERVICE = "kube-dns";

/**
 * CoreDNS' configuration: the kubernetes plugin answers cluster.local (and reverse lookups of
 * Service and pod IPs) from the API server; every other name gets NXDOMAIN at once: nothing is
 * forwarded (pods here reach only the node, and a search-list lookup must not wait on the host's
 * resolver). Bound to the node IP, which the kube-dns Service's endpoint names.
 */
export function corefile(opts: { ip: string; port: number; readyPort: number; kubeconfig: string }): string {
  const listen = (zone: string) => `${zone}:${opts.port}`;
  return `${[CLUSTER_DOMAIN, "in-addr.arpa", "ip6.arpa"].map(listen).join(" ")} {
    bind ${opts.ip}
    errors
    ready 127.0.0.1:${opts.readyPort}
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        kubeconfig ${opts.kubeconfig}
        ttl 5
    }
}
${listen(".")} {
    bind ${opts.ip}
    errors
    template ANY ANY {
        rcode NXDOMAIN
    }
}
`;
}

/**
 * The kube-dns Service (no selector: its endpoint is CoreDNS on the host, not a pod) and this
 * node's EndpointSlice for it, kube-proxy DNATing the ClusterIP's port 53 to CoreDNS' port on the
 * node IP. An existing kube-dns Service (a node started before on this control plane) keeps its IP.
 */
async function publishDns(
  kc: KubeConfig,
  nodeName: string,
  ip: string,
  port: number,
): Promise<{ clusterIP: string; slice: string }> {
  const core = kc.makeApiClient(CoreV1Api);
  const ports = [
    { name: "dns", port: 53, protocol: "UDP" },
    { name: "dns-tcp", port: 53, protocol: "TCP" },
  ];
  const svc = await core
    .readNamespacedService({ name: DNS_SERVICE, namespace: DNS_NAMESPACE })
    .catch(async (err) => {
      if (err?.code !== 404) throw err;
      return core.createNamespacedService({
        namespace: DNS_NAMESPACE,
        body: {
          metadata: { name: DNS_SERVICE, labels: { "k8s-app": "kube-dns" } },
          // No selector, so no targetPort: kube-proxy takes the port from the EndpointSlice below.
          spec: { ports },
        },
      });
    });
  const clusterIP = svc.spec?.clusterIP ?? "";
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(clusterIP))
    throw new Error(`Service ${DNS_NAMESPACE}/${DNS_SERVICE} has no IPv4 ClusterIP (${clusterIP})`);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const slice = `${DNS_SERVICE}-${nodeName}`;
  await discovery
    .deleteNamespacedEndpointSlice({ name: slice, namespace: DNS_NAMESPACE })
    .catch(() => undefined);
  await discovery.createNamespacedEndpointSlice({
    namespace: DNS_NAMESPACE,
    body: {
      metadata: {
        name: slice,
        labels: {
          "kubernetes.io/service-name": DNS_SERVICE,
          // Not the EndpointSlice controller's: it leaves a slice of another manager alone.
          "endpointslice.kubernetes.io/managed-by": "real-node.specops.dev",
        },
      },
      addressType: "IPv4",
      endpoints: [{ addresses: [ip], conditions: { ready: true }, nodeName }],
      ports: ports.map((p) => ({ ...p, port })),
    },
  });
  return { clusterIP, slice };
}

function containerdConfig(dir: string, socket: string): string {
  return `version = 2
root = "${join(containerdRoot(), "root")}"
state = "${join(dir, "containerd-state")}"
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${join(dir, "containerd-opt")}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # Without it runc fails here: "can't get final child's PID from pipe: EOF" (the sandbox caps oom_score_adj).
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN_DIR}"
    conf_dir = "${join(dir, "cni")}"
`;
}

function cniConfig(bridge: string, subnet: string, dataDir: string): string {
  return JSON.stringify(
    {
      cniVersion: "1.0.0",
      name: "specops-node",
      plugins: [
        {
          type: "bridge",
          bridge,
          isGateway: true,
          // No masquerade: pods reach only the node, and no iptables rules outlive the node.
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: "host-local", ranges: [[{ subnet }]], dataDir, routes: [{ dst: "0.0.0.0/0" }] },
        },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(
  dir: string,
  socket: string,
  cgroupRoot: string,
  ports: { port: number; healthz: number },
  clusterDNS?: string,
): string {
  // Without clusterDNS, the kubelet gives ClusterFirst pods the host's resolv.conf.
  const dns = clusterDNS ? `clusterDNS: [${clusterDNS}]\nclusterDomain: ${CLUSTER_DOMAIN}\n` : "";
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://${socket}
# The machines here have cgroup v1 (hybrid); the kubelet needs the explicit opt-in.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: ${cgroupRoot}
address: 127.0.0.1
port: ${ports.port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${ports.healthz}
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization:
  mode: AlwaysAllow
failSwapOn: false
resolvConf: /etc/resolv.conf
${dns}# Never collect or evict the project's images or pods for disk space on a shared test machine.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%"}
nodeStatusUpdateFrequency: 2s
syncFrequency: 5s
fileCheckFrequency: 5s
registerNode: true
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
tlsCertFile: ${join(dir, "kubelet.crt")}
tlsPrivateKeyFile: ${join(dir, "kubelet.key")}
`;
}

function kubeProxyConfig(
  kubeconfig: string,
  nodeName: string,
  podCIDR: string,
  healthz: number,
  metrics: number,
) {
  return `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: ${kubeconfig}
hostnameOverride: ${nodeName}
mode: iptables
clusterCIDR: ${podCIDR}
# Leave the host's conntrack table size alone (a shared machine; the sandbox may refuse the sysctl).
conntrack:
  maxPerCore: 0
healthzBindAddress: 127.0.0.1:${healthz}
metricsBindAddress: 127.0.0.1:${metrics}
`;
}

async function waitFor(
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean> | boolean,
  exited: () => string | undefined,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const died = exited();
    if (died) throw new Error(`${what} exited during start-up: ${died}`);
    if (await Promise.resolve(probe()).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} was not ready after ${timeoutMs / 1000}s`);
}

const contentBlobs = () =>
  join(containerdRoot(), "root", "io.containerd.content.v1.content", "blobs", "sha256");
const hex = (digest: string) => digest.replace(/^sha256:/, "");
/** At most this much of an image's layers missing from containerd: import those layers only. */
const LAYER_IMPORT_MAX_BYTES = 1 << 30;

/** containerd's image names, each with the digest of the manifest it names. */
function containerdImages(socket: string): { name: string; digest: string }[] {
  const out = spawnSync("ctr", ["-a", socket, "-n", CRI_NAMESPACE, "images", "ls"], { encoding: "utf8" });
  return out.stdout
    .split("\n")
    .slice(1)
    .map((line) => line.split(/\s+/))
    .filter((f) => f.length > 2)
    .map((f) => ({ name: f[0] ?? "", digest: f.find((x) => x.startsWith("sha256:")) ?? "" }));
}

/** The uncompressed size of each of podman's layers, by digest (containers/storage's layer index). */
function podmanLayerSizes(): Map<string, number> {
  const sizes = new Map<string, number>();
  try {
    const graphRoot = execFileSync("podman", ["info", "--format", "{{.Store.GraphRoot}}"], {
      encoding: "utf8",
    }).trim();
    const layers = JSON.parse(readFileSync(join(graphRoot, "overlay-layers", "layers.json"), "utf8")) as {
      "diff-digest"?: string;
      "diff-size"?: number;
    }[];
    for (const l of layers) if (l["diff-digest"]) sizes.set(l["diff-digest"], l["diff-size"] ?? 0);
  } catch {
    // Unknown sizes: the whole image is imported.
  }
  return sizes;
}

/**
 * Imports a podman image into containerd unless the same image (by podman ID) is already there.
 * A rebuilt image usually differs from the one imported before in its last layers only (code after
 * requirements in the Dockerfile): then only those go over, as an OCI layout podman writes beside
 * hard links to the layers containerd already holds (podman skips a blob that exists), so a code
 * change costs seconds, not the minutes a whole 7.6 GB `podman save | ctr import` takes.
 */
export function importImage(
  socket: string,
  image: string,
  log: (l: string) => void,
): { seconds: number; mode: "present" | "layers" | "whole"; bytes: number } {
  const [inspect] = JSON.parse(execFileSync("podman", ["image", "inspect", image], { encoding: "utf8" })) as {
    Id: string;
    RootFS?: { Layers?: string[] };
  }[];
  if (!inspect) throw new Error(`podman has no image ${image}`);
  const id = inspect.Id;
  const marker = join(containerdRoot(), "imported", Buffer.from(image).toString("hex"));
  const before = containerdImages(socket);
  const current = before.find((i) => i.name === image);
  if (current && existsSync(marker) && readFileSync(marker, "utf8") === id)
    return { seconds: 0, mode: "present", bytes: 0 };
  const previous = existsSync(marker) ? readFileSync(marker, "utf8").trim() : "";
  const layers = inspect.RootFS?.Layers ?? [];
  const sizes = podmanLayerSizes();
  const missing = layers.filter((d) => !existsSync(join(contentBlobs(), hex(d))));
  const missingBytes = missing.reduce((n, d) => n + (sizes.get(d) ?? Number.POSITIVE_INFINITY), 0);
  const t0 = Date.now();
  let mode: "layers" | "whole" = "whole";
  if (missing.length < layers.length && missingBytes <= LAYER_IMPORT_MAX_BYTES) {
    try {
      importLayers(socket, image, layers, missing);
      mode = "layers";
    } catch (err) {
      log(`importing only the new layers of ${image} failed (${(err as Error).message}); importing all`);
    }
  }
  if (mode === "whole") {
    // The old version goes first (and the CRI's by-ID reference, which would keep its layers on
    // disk), so the store never holds two versions of a big layer.
    removeImageNames(socket, image, current?.digest, previous, before, true);
    log(`importing ${image} into the node's containerd (once per image build)`);
    // podman names images localhost/...; containerd keeps the name as given.
    execFileSync(
      "bash",
      [
        "-o",
        "pipefail",
        "-c",
        `podman save --format docker-archive "$1" | ctr -a "$2" -n ${CRI_NAMESPACE} images import --digests --all-platforms -`,
        "import",
        image,
        socket,
      ],
      { stdio: ["ignore", "ignore", "inherit"], timeout: 30 * 60_000 },
    );
  } else {
    // The new version shares the old one's layers: only the old names go, after the import.
    removeImageNames(socket, image, current?.digest, previous, before, false);
  }
  mkdirSync(dirname(marker), { recursive: true });
  writeFileSync(marker, id);
  const seconds = (Date.now() - t0) / 1000;
  const bytes = mode === "layers" ? missingBytes : layers.reduce((n, d) => n + (sizes.get(d) ?? 0), 0);
  log(
    `imported ${image} in ${seconds.toFixed(1)}s (${mode === "layers" ? `${missing.length} new layer(s) of ${layers.length}` : "whole image"}, ${(bytes / 1e6).toFixed(0)} MB)`,
  );
  return { seconds, mode, bytes };
}

/** The names of an image's old version: the CRI's by-ID one, and any other naming its old manifest. */
function removeImageNames(
  socket: string,
  image: string,
  oldManifest: string | undefined,
  oldId: string,
  before: { name: string; digest: string }[],
  includingName: boolean,
): void {
  const stale = new Set<string>(includingName ? [image] : []);
  if (oldId) stale.add(`sha256:${hex(oldId)}`);
  for (const i of before) if (oldManifest && i.digest === oldManifest && i.name !== image) stale.add(i.name);
  if (stale.size === 0) return;
  spawnSync("ctr", ["-a", socket, "-n", CRI_NAMESPACE, "images", "rm", "--sync", ...stale], {
    stdio: "ignore",
  });
}

/** Imports the image's manifest, config and missing layers; the other layers are containerd's already. */
function importLayers(socket: string, image: string, layers: string[], missing: string[]): void {
  const dir = mkdtempSync(join(containerdRoot(), "import-"));
  try {
    const blobs = join(dir, "blobs", "sha256");
    mkdirSync(blobs, { recursive: true });
    const present = layers.filter((d) => !missing.includes(d));
    for (const d of present) linkSync(join(contentBlobs(), hex(d)), join(blobs, hex(d)));
    execFileSync("podman", ["push", "--quiet", "--format", "oci", image, `oci:${dir}:import`], {
      stdio: ["ignore", "ignore", "inherit"],
      timeout: 10 * 60_000,
    });
    // containerd names an imported OCI image by this annotation (else by the ref name, prefixed).
    const indexPath = join(dir, "index.json");
    const index = JSON.parse(readFileSync(indexPath, "utf8")) as {
      manifests: { annotations?: Record<string, string> }[];
    };
    for (const m of index.manifests) m.annotations = { ...m.annotations, "io.containerd.image.name": image };
    writeFileSync(indexPath, JSON.stringify(index));
    for (const d of present) rmSync(join(blobs, hex(d)));
    execFileSync(
      "bash",
      [
        "-o",
        "pipefail",
        "-c",
        `tar -C "$1" -cf - . | ctr -a "$2" -n ${CRI_NAMESPACE} images import --all-platforms -`,
        "import",
        dir,
        socket,
      ],
      { stdio: ["ignore", "ignore", "inherit"], timeout: 10 * 60_000 },
    );
    if (!containerdImages(socket).some((i) => i.name === image))
      throw new Error(`containerd has no image ${image} after the import`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A run killed mid-way leaves its pods running: each under a containerd shim, which outlives its
 * containerd and whose socket went with the node's temp dir. Kills those shims' containers (each
 * the first process of its PID namespace: the rest of it goes with it), then the shims; returns how
 * many shims there were. A live node's shims (their socket is there) are not touched.
 */
function killOrphanShims(): number {
  const ps = spawnSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" });
  const nodeDirs = join(tmpdir(), "specops-node-");
  let killed = 0;
  for (const line of (ps.stdout ?? "").split("\n")) {
    const m = /^\s*(\d+)\s+\S*containerd-shim-runc-v2\s.*-address\s+(\S+)/.exec(line);
    if (!m?.[1] || !m[2]?.startsWith(nodeDirs) || existsSync(m[2])) continue;
    const shim = Number(m[1]);
    const kids = spawnSync("pgrep", ["-P", String(shim)], { encoding: "utf8" });
    for (const kid of (kids.stdout ?? "").split("\n").filter(Boolean)) signal(Number(kid));
    signal(shim);
    killed++;
  }
  return killed;
}

function signal(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // Gone already.
  }
}

/** The IDs of the CRI namespace's containers or tasks (`ctr <kind> ls -q`). */
function ctrIds(socket: string, kind: "containers" | "tasks"): string[] {
  const listed = spawnSync("ctr", ["-a", socket, "-n", CRI_NAMESPACE, kind, "ls", "-q"], {
    encoding: "utf8",
  });
  return (listed.stdout ?? "").split("\n").filter(Boolean);
}

const containerIds = (socket: string) => ctrIds(socket, "containers");

/** Kills and deletes every task in the CRI namespace; the containers stay. */
function endAllTasks(socket: string): void {
  const running = ctrIds(socket, "tasks");
  for (const task of running)
    spawnSync("ctr", ["-a", socket, "-n", CRI_NAMESPACE, "tasks", "kill", "-s", "SIGKILL", task], {
      stdio: "ignore",
    });
  if (running.length === 0) return;
  spawnSync(
    "bash",
    [
      "-c",
      `sleep 1; for c in "\${@:2}"; do ctr -a "$1" -n ${CRI_NAMESPACE} tasks delete -f "$c"; done`,
      "end",
      socket,
      ...running,
    ],
    { stdio: "ignore", timeout: 60_000 },
  );
}

/**
 * Ends every task in the CRI namespace and deletes every container (with its snapshot), so that
 * nothing pins an image's layers; returns how many containers there were.
 */
function removeAllContainers(socket: string): number {
  const containers = containerIds(socket);
  if (containers.length === 0) return 0;
  endAllTasks(socket);
  spawnSync(
    "bash",
    [
      "-c",
      `for c in "\${@:2}"; do ctr -a "$1" -n ${CRI_NAMESPACE} containers delete "$c"; done`,
      "rm",
      socket,
      ...containers,
    ],
    { stdio: "ignore", timeout: 60_000 },
  );
  return containers.length;
}

/** The pause image, built from the module's pause.c (no registry here) into podman once. */
function ensurePauseImage(bin: string): void {
  if (spawnSync("podman", ["image", "exists", PAUSE_IMAGE]).status === 0) return;
  const ctx = mkdtempSync(join(tmpdir(), "specops-pause-"));
  try {
    execFileSync("cp", [join(bin, "pause"), join(ctx, "pause")]);
    writeFileSync(
      join(ctx, "Containerfile"),
      'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n',
    );
    execFileSync("podman", ["build", "-q", "-t", PAUSE_IMAGE, ctx], {
      stdio: ["ignore", "ignore", "inherit"],
    });
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

const NETNS_DIR = "/var/run/netns";
function netnsNow(): string[] {
  try {
    return readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
}

/** Mount points under dir, deepest first. */
function mountsUnder(dir: string): string[] {
  const lines = readFileSync("/proc/self/mountinfo", "utf8").split("\n");
  const points = lines.map((l) => l.split(" ")[4] ?? "").filter((p) => p === dir || p.startsWith(`${dir}/`));
  return points.sort((a, b) => b.length - a.length);
}

function cgroupHierarchies(): string[] {
  const base = "/sys/fs/cgroup";
  if (existsSync(join(base, "cgroup.controllers"))) return [base];
  const points = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => / - cgroup2? /.test(l))
    .map((l) => l.split(" ")[4] ?? "")
    .filter((p) => p.startsWith(`${base}/`));
  return [...new Set(points)];
}

/** The kubelet wants its cgroupRoot to exist under every hierarchy (cgroup v1: each controller). */
function createCgroups(cgroupRoot: string): void {
  for (const h of cgroupHierarchies()) {
    const dir = join(h, cgroupRoot);
    mkdirSync(dir, { recursive: true });
    // A new v1 cpuset starts empty; give it its parent's CPUs and memory nodes.
    for (const f of ["cpuset.cpus", "cpuset.mems"])
      if (existsSync(join(dir, f)) && readFileSync(join(dir, f), "utf8").trim() === "")
        writeFileSync(join(dir, f), readFileSync(join(h, f), "utf8"));
  }
}

/** Removes a cgroup subtree (children first) under every v1 controller and the unified hierarchy. */
function removeCgroups(cgroupRoot: string): void {
  for (const h of cgroupHierarchies()) {
    const top = join(h, cgroupRoot);
    if (!existsSync(top)) continue;
    spawnSync("find", [top, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"], { stdio: "ignore" });
  }
}

export async function startRealNode(opts: RealNodeOptions): Promise<RealNode> {
  const log = opts.log ?? (() => undefined);
  const why = realNodeUnavailable(opts.images, { requireOptIn: opts.requireOptIn });
  if (why) throw new Error(`real node unavailable: ${why}`);
  const ip = nodeIP() ?? "";
  const orphans = killOrphanShims();
  if (orphans > 0)
    log(`killed ${orphans} container shim(s) (and their containers) of a node whose containerd is gone`);
  const { k8s: bin, coredns: dnsBin } = nodeBinaries();
  ensurePauseImage(bin);
  const nodeName = opts.nodeName ?? "specops-real-node";
  const dir = mkdtempSync(join(tmpdir(), "specops-node-"));
  const id = dir
    .slice(-6)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, "x");
  const bridge = `spx${id}`; // interface names are at most 15 characters
  const cgroupRoot = `/specops-node-${id}`;
  const socket = join(dir, "containerd.sock");
  mkdirSync(join(dir, "cni"), { recursive: true });
  mkdirSync(containerdRoot(), { recursive: true });
  writeFileSync(join(containerdRoot(), "owner.pid"), String(process.pid));
  const children: { name: string; proc: ChildProcess; exit?: string }[] = [];
  const run = (name: string, cmd: string, args: string[]) => {
    const logFile = join(dir, `${name}.log`);
    // Straight to a file: a pipe would fill and stall the component while this process waits synchronously.
    const fd = openSync(logFile, "a");
    const proc = spawn(cmd, args, { stdio: ["ignore", fd, fd] });
    closeSync(fd);
    const entry: { name: string; proc: ChildProcess; exit?: string } = { name, proc };
    proc.on("exit", (code, signal) => {
      // The log goes with the temp dir on failure: keep its end in the error.
      const tail = readFileSync(logFile, "utf8").trim().split("\n").slice(-8).join("\n");
      entry.exit = `code ${code} signal ${signal}; ${logFile} ended:\n${tail}`;
    });
    children.push(entry);
    return entry;
  };

  const netnsBefore = new Set(netnsNow());
  const kc = new KubeConfig();
  kc.loadFromFile(opts.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  let stopped = false;
  let dnsSlice: string | undefined;
  // Pods first, through the kubelet, so their sandboxes' networks and namespaces go with them.
  const stopGracefully = async () => {
    const onNode = await core
      .listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${nodeName}` })
      .catch(() => undefined);
    for (const pod of onNode?.items ?? [])
      await core
        .deleteNamespacedPod({
          name: pod.metadata?.name ?? "",
          namespace: pod.metadata?.namespace ?? "",
          gracePeriodSeconds: 0,
        })
        .catch(() => undefined);
    for (let i = 0; i < 60 && (onNode?.items.length ?? 0) > 0; i++) {
      const left = await core
        .listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${nodeName}` })
        .catch(() => undefined);
      if (!left || left.items.length === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const kubelet = children.find((c) => c.name === "kubelet");
    if (kubelet && kubelet.exit === undefined) await terminate(kubelet);
    if (existsSync(socket)) removeAllContainers(socket);
    for (const c of [...children].reverse()) if (c.exit === undefined) await terminate(c);
  };
  const stop = async (crash = false) => {
    if (stopped) return;
    stopped = true;
    process.removeListener("exit", killAll);
    if (crash) {
      // As a run killed mid-way leaves containerd's store: its containers stay; no task runs on.
      // The kubelet goes first: alive, it would start a killed sandbox again.
      const containerd = children.find((c) => c.name === "containerd");
      await Promise.all(children.filter((c) => c !== containerd).map((c) => terminate(c, 0)));
      if (existsSync(socket)) endAllTasks(socket);
      if (containerd) await terminate(containerd, 0);
    } else await stopGracefully();
    spawnSync("bash", [join(here, "kubelet-iptables-cleanup.sh")], { stdio: "ignore", timeout: 30_000 });
    // kube-proxy's own clean-up removes its iptables chains (KUBE-*), and nothing else.
    if (children.some((c) => c.name === "kube-proxy"))
      spawnSync(join(bin, "kube-proxy"), ["--cleanup"], { stdio: "ignore", timeout: 30_000 });
    if (dnsSlice)
      await kc
        .makeApiClient(DiscoveryV1Api)
        .deleteNamespacedEndpointSlice({ name: dnsSlice, namespace: DNS_NAMESPACE })
        .catch(() => undefined);
    await core.deleteNode({ name: nodeName }).catch(() => undefined);
    for (const m of mountsUnder(dir)) spawnSync("umount", ["-l", m], { stdio: "ignore" });
    // The CNI bridge and the sandboxes' network namespaces (containerd keeps them under /var/run/netns).
    spawnSync("ip", ["link", "del", bridge], { stdio: "ignore" });
    for (const ns of netnsNow()) {
      if (netnsBefore.has(ns)) continue;
      spawnSync("umount", ["-l", join(NETNS_DIR, ns)], { stdio: "ignore" });
      rmSync(join(NETNS_DIR, ns), { force: true });
    }
    removeCgroups(cgroupRoot);
    rmSync(join(containerdRoot(), "owner.pid"), { force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  const killAll = () => {
    for (const c of children) if (c.exit === undefined) c.proc.kill("SIGKILL");
    spawnSync("ip", ["link", "del", bridge], { stdio: "ignore" });
  };
  process.once("exit", killAll);

  try {
    // A private /24 for this node's pods, away from the Service range (10.0.0.0/24).
    const subnet = `10.${200 + (process.pid % 50)}.${(Date.now() >> 8) % 250}.0/24`;
    writeFileSync(join(dir, "cni", "10-specops.conflist"), cniConfig(bridge, subnet, join(dir, "cni-ipam")));
    writeFileSync(join(dir, "containerd.toml"), containerdConfig(dir, socket));
    const startContainerd = async () => {
      const containerd = run("containerd", "containerd", ["--config", join(dir, "containerd.toml")]);
      await waitFor(
        "containerd",
        30_000,
        () => spawnSync("ctr", ["-a", socket, "version"], { stdio: "ignore" }).status === 0,
        () => containerd.exit,
      );
      return containerd;
    };
    const containerd = await startContainerd();
    // A node killed before its stop left its containers in the store, and each keeps its image's
    // snapshots (gigabytes) from containerd's garbage collection. The store is this node's alone now;
    // containerd starts again after, so that its CRI plugin holds no sandbox of those.
    if (removeAllContainers(socket) > 0) {
      log("removed the containers a node killed earlier left in containerd's store; restarting containerd");
      await terminate(containerd);
      children.splice(children.indexOf(containerd), 1);
      await startContainerd();
    }
    const imports: RealNode["imports"] = {};
    for (const image of [PAUSE_IMAGE, ...opts.images]) imports[image] = importImage(socket, image, log);

    const tStart = Date.now();
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        `/CN=${nodeName}`,
        "-keyout",
        join(dir, "kubelet.key"),
        "-out",
        join(dir, "kubelet.crt"),
      ],
      { stdio: "ignore" },
    );
    let dns: RealNode["dns"];
    if (opts.dns ?? true) {
      const t0 = Date.now();
      const port = await freePort();
      const readyPort = await freePort();
      writeFileSync(
        join(dir, "Corefile"),
        corefile({ ip, port, readyPort, kubeconfig: opts.kubeconfigPath }),
      );
      const coredns = run("coredns", join(dnsBin, "coredns"), ["-conf", join(dir, "Corefile")]);
      // Ready once the kubernetes plugin has listed Services and EndpointSlices.
      await waitFor(
        "CoreDNS",
        30_000,
        async () => (await fetch(`http://127.0.0.1:${readyPort}/ready`)).ok,
        () => coredns.exit,
      );
      const published = await publishDns(kc, nodeName, ip, port);
      dnsSlice = published.slice;
      dns = {
        clusterIP: published.clusterIP,
        domain: CLUSTER_DOMAIN,
        startSeconds: (Date.now() - t0) / 1000,
      };
      log(
        `CoreDNS ready in ${dns.startSeconds.toFixed(1)}s on ${ip}:${port}, Service ${DNS_NAMESPACE}/${DNS_SERVICE} ${dns.clusterIP}`,
      );
    }
    writeFileSync(
      join(dir, "kubelet.yaml"),
      kubeletConfig(
        dir,
        socket,
        cgroupRoot,
        { port: await freePort(), healthz: await freePort() },
        dns?.clusterIP,
      ),
    );
    createCgroups(cgroupRoot);
    const kubelet = run("kubelet", join(bin, "kubelet"), [
      `--config=${join(dir, "kubelet.yaml")}`,
      `--kubeconfig=${opts.kubeconfigPath}`,
      `--root-dir=${join(dir, "kubelet")}`,
      `--cert-dir=${join(dir, "kubelet-pki")}`,
      `--hostname-override=${nodeName}`,
      `--node-ip=${ip}`,
      "--v=1",
    ]);
    if (opts.scheduler ?? true)
      run("kube-scheduler", join(bin, "kube-scheduler"), [
        `--kubeconfig=${opts.kubeconfigPath}`,
        `--authentication-kubeconfig=${opts.kubeconfigPath}`,
        `--authorization-kubeconfig=${opts.kubeconfigPath}`,
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        `--secure-port=${await freePort()}`,
      ]);
    if (opts.proxy ?? true) {
      writeFileSync(
        join(dir, "kube-proxy.yaml"),
        kubeProxyConfig(opts.kubeconfigPath, nodeName, subnet, await freePort(), await freePort()),
      );
      run("kube-proxy", join(bin, "kube-proxy"), [`--config=${join(dir, "kube-proxy.yaml")}`]);
    }
    const timeoutMs = (opts.startTimeoutSeconds ?? 90) * 1000;
    await waitFor(
      `kubelet (node ${nodeName})`,
      timeoutMs,
      async () => {
        const node = await core.readNode({ name: nodeName });
        return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
      },
      () => kubelet.exit ?? children.find((c) => c.exit)?.exit,
    );
    // The kubelet registers with the node.kubernetes.io/not-ready taint, which the node lifecycle
    // controller lifts once the node is Ready; that controller is off in this control plane (the
    // stand-in nodes send no heartbeats), so lift it here, the node being Ready.
    const registered = await core.readNode({ name: nodeName });
    const taints = registered.spec?.taints ?? [];
    const kept = taints.filter((t) => !t.key.startsWith("node.kubernetes.io/"));
    if (kept.length !== taints.length)
      await core.patchNode(
        { name: nodeName, body: { spec: { taints: kept.length > 0 ? kept : null } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    if (opts.extendedResources && Object.keys(opts.extendedResources).length > 0) {
      // Extended resources without a device plugin are advertised by patching the Node's status.
      const ops = Object.entries(opts.extendedResources).map(([name, value]) => ({
        op: "add",
        path: `/status/capacity/${name.replaceAll("~", "~0").replaceAll("/", "~1")}`,
        value,
      }));
      await core.patchNodeStatus(
        { name: nodeName, body: ops },
        setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
      );
    }
    log(
      `real node ${nodeName} Ready in ${((Date.now() - tStart) / 1000).toFixed(1)}s (node IP ${ip}, pods ${subnet})`,
    );
    const logTail = (component: string, lines = 20) => {
      try {
        return readFileSync(join(dir, `${component}.log`), "utf8")
          .trim()
          .split("\n")
          .slice(-lines)
          .join("\n");
      } catch {
        return "";
      }
    };
    return {
      nodeName,
      imports,
      nodeIP: ip,
      dns,
      dir,
      startSeconds: (Date.now() - tStart) / 1000,
      logTail,
      stop: () => stop(),
      crash: () => stop(true),
      containers: () => containerIds(socket),
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

/** SIGTERM, then SIGKILL after graceMs (0: SIGKILL at once, as a crash); resolves once it exited. */
async function terminate(c: { proc: ChildProcess; exit?: string }, graceMs = 10_000): Promise<void> {
  if (c.exit !== undefined) return;
  const exited = new Promise((r) => c.proc.once("exit", r));
  if (graceMs === 0) c.proc.kill("SIGKILL");
  else c.proc.kill("SIGTERM");
  const timer = setTimeout(() => c.proc.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}
