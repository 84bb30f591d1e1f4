// The node the operator's end-to-end tests run their pods on: the real node where it can start here
// (test/controlplane/real-node.ts: containerd + runc, kubelet, kube-scheduler, kube-proxy and
// CoreDNS; pods are containers of the runtime's reference image, probed and ended by the real
// kubelet, on a control plane of their own that binds claims to host-path volumes), else the
// local-process kubelet (test/controlplane/process-kubelet.ts, on the shared control plane: each
// pod's runtime container a local process of this checkout's runtime). Each file runs once, on the
// best node available, and says which and why in one line. SPECOPS_REAL_NODE=0 keeps to the
// local-process kubelet; SPECOPS_REAL_NODE=1 fails instead of falling back.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { inject } from "vitest";
import { type ControlPlane, startControlPlane } from "../controlplane/controlplane.ts";
import { clusterIPRoutes } from "../controlplane/kube-proxy-rules.ts";
import { ProcessKubelet } from "../controlplane/process-kubelet.ts";
import {
  nodeBinariesMissing,
  type RealNode,
  realNodeUnavailable,
  startRealNode,
} from "../controlplane/real-node.ts";
import { referenceImageFromCheckout } from "../controlplane/runtime-image.ts";
import { imagesConfig } from "../images/podman.ts";

export type E2eNodeKind = "real" | "process";

export interface E2eNode {
  kind: E2eNodeKind;
  /** Why this kind, in a few words. */
  reason: string;
  /** Admin credentials of the control plane the node belongs to. */
  kc: KubeConfig;
  /** A user with no rights of its own on that control plane (tests bind RBAC to it). */
  restrictedUser: { name: string; kubeconfigPath: string };
  /** The image the operator puts in its pods (the local-process kubelet runs this checkout's runtime instead). */
  runtimeImage: string;
  /**
   * An address on this machine for a Service's port: its ClusterIP (kube-proxy) or a local forwarder.
   * On the real node it throws until kube-proxy's rules send the ClusterIP to a ready endpoint: a
   * connection made before leaves by the default route and keeps that path (kube-proxy-rules.ts).
   */
  serviceAddress(
    namespace: string,
    service: string,
    portName: string,
  ): Promise<{ host: string; port: number }>;
  /** A file on a claim, as the pods wrote it (a host-path volume, or the stand-in's claim folder). */
  readClaimFile(namespace: string, claim: string, path: string): Promise<string>;
  /** The end of a node component's log (real node only), for failure messages. */
  logTail(component: string): string;
  stop(): Promise<void>;
}

export interface E2eNodeOptions {
  /** The local-process kubelet's folder standing in for every claim. */
  storageRoot: string;
  onOutput?: (pod: string, line: string) => void;
  /** For the message: which tests these are. */
  name: string;
}

/**
 * Why tests cannot use the real node here, or undefined. Unlike the demo, a test does not build the
 * node's binaries (minutes, past its hook's timeout on a fresh machine): .ci/run builds them first.
 */
export function realNodeUnavailableForTests(images: string[]): string | undefined {
  const why = realNodeUnavailable(images);
  if (why) return why;
  const missing = nodeBinariesMissing();
  if (missing)
    return `the node binaries are not built (bash test/controlplane/build-node-binaries.sh; .ci/run does): ${missing}`;
  return undefined;
}

/**
 * Which node, and why, in one line (a test file calls it as it loads, to name its tests after the
 * node). Rebuilds a reference image built from other runtime sources.
 */
export function chooseE2eNode(): { kind: E2eNodeKind; reason: string } {
  const required = process.env.SPECOPS_REAL_NODE === "1";
  const fallBack = (why: string) => {
    if (required) throw new Error(`SPECOPS_REAL_NODE=1, but the real node cannot start: ${why}`);
    return { kind: "process" as const, reason: `real node unavailable: ${why}` };
  };
  const { referenceImage } = imagesConfig();
  const why = realNodeUnavailableForTests([referenceImage]);
  if (why) return fallBack(why);
  // The pods run the image's copy of the runtime: it must be this checkout's.
  const stale = referenceImageFromCheckout(referenceImage, (line) => console.log(line));
  if (stale) return fallBack(stale);
  return { kind: "real", reason: "containerd, runc, the node binaries and the reference image are here" };
}

/** How a describe() names the node its tests run on. */
export const nodeTitle = (kind: E2eNodeKind) =>
  kind === "real" ? "the real node" : "the local-process kubelet";

export async function startE2eNode(
  choice: { kind: E2eNodeKind; reason: string },
  opts: E2eNodeOptions,
): Promise<E2eNode> {
  console.log(
    choice.kind === "real"
      ? `${opts.name}: on the real node (${choice.reason})`
      : `${opts.name}: on the local-process kubelet (${choice.reason})`,
  );
  return choice.kind === "real" ? startReal(choice.reason) : startProcess(choice.reason, opts);
}

async function startProcess(reason: string, opts: E2eNodeOptions): Promise<E2eNode> {
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  const kubelet = new ProcessKubelet(kc, { storageRoot: opts.storageRoot, onOutput: opts.onOutput });
  await kubelet.start();
  return {
    kind: "process",
    reason,
    kc,
    restrictedUser: inject("restrictedUser"),
    runtimeImage: "specops-runtime:test",
    serviceAddress: (ns, svc, port) => kubelet.serviceAddress(ns, svc, port),
    readClaimFile: async (_ns, claim, path) => readFileSync(join(opts.storageRoot, claim, path), "utf8"),
    logTail: () => "",
    stop: () => kubelet.stop(),
  };
}

async function startReal(reason: string): Promise<E2eNode> {
  const { referenceImage } = imagesConfig();
  // A control plane of its own: the shared one binds no claims (its stand-in kubelets mount none).
  const cp: ControlPlane = await startControlPlane({ persistentVolumes: true, startTimeoutSeconds: 120 });
  let node: RealNode | undefined;
  try {
    node = await startRealNode({
      kubeconfigPath: cp.kubeconfigPath,
      images: [referenceImage],
      log: (line) => console.log(line),
    });
  } catch (err) {
    await cp.stop();
    throw err;
  }
  const started = node;
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  return {
    kind: "real",
    reason,
    kc,
    restrictedUser: cp.restrictedUser,
    runtimeImage: referenceImage,
    async serviceAddress(namespace, service, portName) {
      const svc = await core.readNamespacedService({ name: service, namespace });
      const port = svc.spec?.ports?.find((p) => p.name === portName)?.port;
      if (!svc.spec?.clusterIP || !port)
        throw new Error(`Service ${namespace}/${service} has no port ${portName}`);
      if (clusterIPRoutes(svc.spec.clusterIP, port).length === 0)
        throw new Error(
          `kube-proxy does not route Service ${namespace}/${service}'s ${svc.spec.clusterIP}:${port} to a ready endpoint yet`,
        );
      return { host: svc.spec.clusterIP, port };
    },
    async readClaimFile(namespace, claim, path) {
      const pvc = await core.readNamespacedPersistentVolumeClaim({ name: claim, namespace });
      const pv = await core.readPersistentVolume({ name: pvc.spec?.volumeName ?? "" });
      const dir = pv.spec?.hostPath?.path;
      if (!dir) throw new Error(`claim ${namespace}/${claim} is not bound to a host-path volume`);
      return readFileSync(join(dir, path), "utf8");
    },
    logTail: (component) => started.logTail(component),
    async stop() {
      await started.stop();
      await cp.stop();
    },
  };
}
