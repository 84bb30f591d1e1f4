// Where the demo's pods run. The real node (test/controlplane/real-node.ts: containerd + runc, CNI
// bridge, kubelet, kube-scheduler and kube-proxy from the pinned module) runs them as containers of
// the runtime's reference image, and the operator as the Helm chart's Deployment (charts/specops,
// installed by helm built from its module: test/helm) on the operator image, reaching the API server
// in-cluster; where it cannot start, the local-process kubelet (test/controlplane/process-kubelet.ts)
// runs each pod's runtime container as a local process, and the operator runs in the demo's process.
// SPECOPS_DEMO_NODE=real|process forces one; otherwise the real node when it can start here.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CoordinationV1Api, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { clusterIPRoutes } from "../test/controlplane/kube-proxy-rules.ts";
import { ProcessKubelet } from "../test/controlplane/process-kubelet.ts";
import { type RealNode, realNodeUnavailable, startRealNode } from "../test/controlplane/real-node.ts";
import { referenceImageFromCheckout } from "../test/controlplane/runtime-image.ts";
import {
  helmBinary,
  helmCached,
  helmUnavailable,
  installOperatorChart,
  podStates,
} from "../test/helm/helm.ts";
import { imagesConfig } from "../test/images/podman.ts";

export type NodeKind = "real" | "process";

export interface DemoNode {
  kind: NodeKind;
  /** The image the operator puts in its pods (the local-process kubelet ignores it). */
  runtimeImage: string;
  /** Seconds from start to the node taking pods (real node: Ready; images imported before). */
  startSeconds: number;
  /**
   * An address on this machine for a Service's port, and how it gets there; on the real node once
   * kube-proxy routes its ClusterIP to a ready endpoint (a connection made before would keep the
   * host's default route for its life).
   */
  serviceAddress(
    namespace: string,
    service: string,
    portName: string,
  ): Promise<{ host: string; port: number; via: string }>;
  stop(): Promise<void>;
}

/** Which node the demo uses and why, in one line. Rebuilds a stale reference image (seconds). */
export function chooseNode(root: string, log: (line: string) => void): { kind: NodeKind; reason: string } {
  const forced = process.env.SPECOPS_DEMO_NODE;
  if (forced && forced !== "real" && forced !== "process")
    throw new Error(`SPECOPS_DEMO_NODE must be "real" or "process", not "${forced}"`);
  if (forced === "process") return { kind: "process", reason: "SPECOPS_DEMO_NODE=process" };
  const fallBack = (why: string) => {
    if (forced === "real") throw new Error(`SPECOPS_DEMO_NODE=real, but the real node cannot start: ${why}`);
    return { kind: "process" as const, reason: `real node unavailable: ${why}` };
  };
  const { referenceImage, operatorImage } = imagesConfig();
  const why =
    realNodeUnavailable([referenceImage, operatorImage], { requireOptIn: false }) ?? helmUnavailable();
  if (why) return fallBack(why);
  // The pods run the image's copy of the runtime: it must be this checkout's.
  const notFromCheckout = referenceImageFromCheckout(referenceImage, log);
  if (notFromCheckout) return fallBack(notFromCheckout);
  // The chart's pod runs the image's copy of the operator: build it from this checkout (podman's
  // layer cache makes that seconds when nothing changed).
  log(`${operatorImage}: building it from this checkout (scripts/images/build.sh operator)`);
  const operatorBuilt = spawnSync("bash", [join(root, "scripts/images/build.sh"), "operator"], {
    encoding: "utf8",
    stdio: ["ignore", "ignore", "pipe"],
  });
  if (operatorBuilt.status !== 0) {
    process.stderr.write(operatorBuilt.stderr ?? "");
    return fallBack(
      `${operatorImage} could not be built from this checkout (scripts/images/build.sh operator)`,
    );
  }
  if (!helmCached()) {
    log("helm: building it from its Go module (test/helm/build-helm.sh; the first build takes minutes)");
    try {
      helmBinary();
    } catch (err) {
      return fallBack(`helm could not be built: ${(err as Error).message}`);
    }
  }
  return {
    kind: "real",
    reason:
      forced === "real"
        ? "SPECOPS_DEMO_NODE=real"
        : "containerd, runc, the node binaries and the images are here",
  };
}

export async function startDemoNode(
  kind: NodeKind,
  kc: KubeConfig,
  opts: { kubeconfigPath: string; storageRoot: string; log: (line: string) => void; verbose: boolean },
): Promise<DemoNode> {
  if (kind === "process") {
    const t0 = Date.now();
    const kubelet = new ProcessKubelet(kc, {
      storageRoot: opts.storageRoot,
      onOutput: (pod, line) => {
        if (opts.verbose) console.log(`  [${pod}] ${line}`);
      },
    });
    await kubelet.start();
    return {
      kind,
      runtimeImage: "specops-runtime:local",
      startSeconds: (Date.now() - t0) / 1000,
      serviceAddress: async (ns, svc, port) => ({
        ...(await kubelet.serviceAddress(ns, svc, port)),
        via: "a local forwarder standing in for the Service",
      }),
      stop: () => kubelet.stop(),
    };
  }
  const { referenceImage, operatorImage } = imagesConfig();
  const node: RealNode = await startRealNode({
    kubeconfigPath: opts.kubeconfigPath,
    images: [referenceImage, operatorImage],
    log: opts.log,
    requireOptIn: false,
  });
  const core = kc.makeApiClient(CoreV1Api);
  return {
    kind,
    runtimeImage: referenceImage,
    startSeconds: node.startSeconds,
    async serviceAddress(namespace, service, portName) {
      const svc = await core.readNamespacedService({ name: service, namespace });
      const port = svc.spec?.ports?.find((p) => p.name === portName)?.port;
      if (!svc.spec?.clusterIP || !port)
        throw new Error(`Service ${namespace}/${service} has no port ${portName}`);
      const deadline = Date.now() + 60_000;
      while (clusterIPRoutes(svc.spec.clusterIP, port).length === 0) {
        if (Date.now() > deadline)
          throw new Error(
            `kube-proxy did not route Service ${namespace}/${service}'s ${svc.spec.clusterIP}:${port} to a ready endpoint in 60s:\n${node.logTail("kube-proxy")}`,
          );
        await new Promise((r) => setTimeout(r, 500));
      }
      return { host: svc.spec.clusterIP, port, via: "its ClusterIP (kube-proxy's iptables rules)" };
    },
    stop: () => node.stop(),
  };
}

export interface ChartOperator {
  release: string;
  namespace: string;
  deployment: string;
  pod: string;
  image: string;
  nodeName: string;
  podIP: string;
  /** The helm upgrade --install, to the Deployment rolled out (its pod Ready). */
  seconds: number;
  helmStatus: string;
  /** The leader-election Lease and who holds it (the pod's name and a random suffix). */
  lease: { name: string; holder: string };
  /** helm uninstall: before the node stops, or the ReplicaSet would start a new pod as it drains. */
  uninstall(): Promise<void>;
}

/**
 * The operator as the chart's Deployment on the real node: charts/specops installed by helm with the
 * operator image (imported into the node's containerd) and the reference runtime image. One replica,
 * leader election on as in the chart; no CPU request: the demo's pods share the node's CPUs between
 * two of them at a time (demo-cpu.ts), and a 100m request would leave one of them unschedulable on a
 * 2-core machine.
 */
export async function installChartOperator(kc: KubeConfig, kubeconfigPath: string): Promise<ChartOperator> {
  const { referenceImage, operatorImage } = imagesConfig();
  const release = await installOperatorChart(kc, {
    kubeconfigPath,
    values: {
      operator: {
        image: operatorImage,
        replicas: 1,
        leaderElect: true,
        resources: { requests: { cpu: null } },
      },
      runtime: { image: referenceImage },
    },
    timeoutSeconds: 240,
  });
  const pod = release.pods[0];
  if (!pod) throw new Error(`no pod of Deployment ${release.namespace}/${release.deployment}`);
  // The operator starts its controllers once it holds the Lease (the chart's default name).
  const leaseName = "specops-operator";
  const leases = kc.makeApiClient(CoordinationV1Api);
  let holder = "";
  for (let i = 0; i < 60 && !holder.startsWith(pod.metadata?.name ?? "-"); i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 1000));
    const lease = await leases
      .readNamespacedLease({ name: leaseName, namespace: release.namespace })
      .catch(() => undefined);
    holder = lease?.spec?.holderIdentity ?? "";
  }
  if (!holder.startsWith(pod.metadata?.name ?? "-"))
    throw new Error(`the operator pod ${pod.metadata?.name} did not take the Lease ${leaseName} in 60s`);
  return {
    release: release.release,
    namespace: release.namespace,
    deployment: release.deployment,
    pod: pod.metadata?.name ?? "",
    image: pod.spec?.containers[0]?.image ?? "",
    nodeName: pod.spec?.nodeName ?? "",
    podIP: pod.status?.podIP ?? "",
    seconds: release.seconds,
    helmStatus: release.helmStatus,
    lease: { name: leaseName, holder },
    uninstall: release.uninstall,
  };
}

/** The operator pods' states and their logs' last lines (the kubelet's files: the node has no log API). */
export async function chartOperatorState(
  kc: KubeConfig,
  op: { namespace: string; release: string },
): Promise<string> {
  const lines = [await podStates(kc, op.namespace, op.release)];
  const pods = await kc
    .makeApiClient(CoreV1Api)
    .listNamespacedPod({ namespace: op.namespace, labelSelector: `app.kubernetes.io/instance=${op.release}` })
    .catch(() => undefined);
  for (const pod of pods?.items ?? []) {
    const dir = join(POD_LOGS, `${op.namespace}_${pod.metadata?.name}_${pod.metadata?.uid}`, "operator");
    const files = existsSync(dir) ? readdirSync(dir).sort() : [];
    const last = files.at(-1);
    if (!last) continue;
    const tail = readFileSync(join(dir, last), "utf8").trim().split("\n").slice(-15);
    lines.push(`${pod.metadata?.name} log (${join(dir, last)}):`, ...tail.map((l) => `  ${l}`));
  }
  return lines.join("\n");
}

/** Where the kubelet writes containers' logs (its podLogsDir default). */
const POD_LOGS = "/var/log/pods";
