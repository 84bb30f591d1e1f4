// PersistentVolumes for a real node on this machine: kube-controller-manager's in-tree host-path
// provisioner (--enable-hostpath-provisioner, still in v1.36: pkg/volume/hostpath) makes each
// claim's volume a directory /tmp/hostpath_pv/<uuid> on this host, which the kubelet bind-mounts.
// Two things it leaves to the cluster: a StorageClass naming it (made here, the default, so a claim
// with no class binds), and access for the pods' user — it creates the directory root-owned 0750,
// and the runtime image runs as uid 10001, while fsGroup does not apply to hostPath volumes. So each
// provisioned directory is opened (0777) as its PersistentVolume appears (its pod cannot have
// started yet: the claim binds, then the scheduler places the pod, then the kubelet mounts), and
// the directories are removed when the control plane stops.
import { chmodSync, rmSync } from "node:fs";
import { KubeConfig, StorageV1Api, Watch } from "@kubernetes/client-node";

/** Where the in-tree provisioner puts volumes (host_path.go: "/tmp/%s/%s", basePath "hostpath_pv"). */
export const HOST_PATH_PV_ROOT = "/tmp/hostpath_pv";
export const HOST_PATH_STORAGE_CLASS = "standard";
const PROVISIONER = "kubernetes.io/host-path";

export interface HostPathVolumes {
  /** The directories of the PersistentVolumes seen so far. */
  directories(): string[];
  stop(): void;
  /** Removes every directory seen (call once the provisioner's deleter no longer runs). */
  removeDirectories(): void;
}

interface PersistentVolumeEvent {
  spec?: { hostPath?: { path?: string } };
}

export async function watchHostPathVolumes(kubeconfigPath: string): Promise<HostPathVolumes> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  await kc.makeApiClient(StorageV1Api).createStorageClass({
    body: {
      metadata: {
        name: HOST_PATH_STORAGE_CLASS,
        annotations: { "storageclass.kubernetes.io/is-default-class": "true" },
      },
      provisioner: PROVISIONER,
      reclaimPolicy: "Delete",
      volumeBindingMode: "Immediate",
    },
  });
  const seen = new Set<string>();
  let stopped = false;
  let abort: AbortController | undefined;
  const open = (phase: string, pv: PersistentVolumeEvent) => {
    const path = pv.spec?.hostPath?.path;
    if (phase === "DELETED" || !path?.startsWith(`${HOST_PATH_PV_ROOT}/`) || seen.has(path)) return;
    seen.add(path);
    try {
      chmodSync(path, 0o777);
    } catch {
      // Provisioned on another machine (not this one's kube-controller-manager): nothing to open.
    }
  };
  const start = async (): Promise<void> => {
    abort = await new Watch(kc).watch("/api/v1/persistentvolumes", {}, open, () => {
      // A watch ends now and then; start again (the first events replay the existing volumes).
      if (!stopped) setTimeout(() => void start().catch(() => undefined), 500);
    });
  };
  await start();
  return {
    directories: () => [...seen],
    stop() {
      stopped = true;
      abort?.abort();
    },
    removeDirectories() {
      for (const path of seen) rmSync(path, { recursive: true, force: true });
    },
  };
}
