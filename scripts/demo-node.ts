// Where the demo's pods run. The real node (test/controlplane/real-node.ts: containerd + runc, CNI
// bridge, kubelet, kube-scheduler and kube-proxy from the pinned module) runs them as containers of
// the runtime's reference image; where it cannot start, the local-process kubelet
// (test/controlplane/process-kubelet.ts) runs each pod's runtime container as a local process.
// SPECOPS_DEMO_NODE=real|process forces one; otherwise the real node when it can start here.
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { ProcessKubelet } from "../test/controlplane/process-kubelet.ts";
import { type RealNode, realNodeUnavailable, startRealNode } from "../test/controlplane/real-node.ts";
import { imagesConfig } from "../test/images/podman.ts";

export type NodeKind = "real" | "process";

export interface DemoNode {
  kind: NodeKind;
  /** The image the operator puts in its pods (the local-process kubelet ignores it). */
  runtimeImage: string;
  /** Seconds from start to the node taking pods (real node: Ready; images imported before). */
  startSeconds: number;
  /** An address on this machine for a Service's port, and how it gets there. */
  serviceAddress(
    namespace: string,
    service: string,
    portName: string,
  ): Promise<{ host: string; port: number; via: string }>;
  stop(): Promise<void>;
}

const SOURCE_LABEL = "dev.specops.runtime-source";

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
  const { referenceImage } = imagesConfig();
  const why = realNodeUnavailable([referenceImage], { requireOptIn: false });
  if (why) return fallBack(why);
  // The pods run the image's copy of the runtime: it must be this checkout's.
  const stale = staleImage(root, referenceImage);
  if (stale) {
    log(`${stale}: rebuilding its last layers (scripts/images/build.sh reference)`);
    const built = spawnSync("bash", [join(root, "scripts/images/build.sh"), "reference"], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    if (built.status !== 0 || staleImage(root, referenceImage))
      return fallBack(
        `${referenceImage} could not be rebuilt from this checkout (scripts/images/build.sh reference)`,
      );
  }
  return {
    kind: "real",
    reason:
      forced === "real"
        ? "SPECOPS_DEMO_NODE=real"
        : "containerd, runc, the node binaries and the images are here",
  };
}

/** Why the image's runtime is not this checkout's (build.sh labels it with its sources' digest). */
function staleImage(root: string, image: string): string | undefined {
  const label = execFileSync(
    "podman",
    ["image", "inspect", "--format", `{{index .Labels "${SOURCE_LABEL}"}}`, image],
    {
      encoding: "utf8",
    },
  ).trim();
  const here = execFileSync("bash", [join(root, "scripts/images/runtime-source-hash.sh")], {
    encoding: "utf8",
  }).trim();
  if (label === here) return undefined;
  return label && label !== "<no value>"
    ? `${image} was built from other runtime sources than this checkout's`
    : `${image} carries no source label (built before scripts/images/build.sh labelled it)`;
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
  const { referenceImage } = imagesConfig();
  const node: RealNode = await startRealNode({
    kubeconfigPath: opts.kubeconfigPath,
    images: [referenceImage],
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
      return { host: svc.spec.clusterIP, port, via: "its ClusterIP (kube-proxy's iptables rules)" };
    },
    stop: () => node.stop(),
  };
}
