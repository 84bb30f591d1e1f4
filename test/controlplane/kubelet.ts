// Test edge, not a real kubelet: there is no container runtime here, so this stand-in plays the
// node's part through the API exactly as a kubelet would — it registers a GPU Node, binds pending
// pods to it (there is no scheduler), reports them Running and Ready, and ends them with the exit
// code and termination message a test asks for. Everything else (Jobs, ReplicaSets, garbage
// collection) is the real kube-controller-manager.
import {
  CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  Watch,
} from "@kubernetes/client-node";

export interface PodOutcome {
  exitCode: number;
  /** Termination message, as the container would write to /dev/termination-log. */
  message?: string;
  reason?: string;
}

/** Decides what happens to a pod once it runs: an outcome ends it, undefined leaves it running. */
export type PodPolicy = (pod: V1Pod) => PodOutcome | undefined;

export interface FakeKubeletOptions {
  nodeName?: string;
  gpus?: number;
  gpuResourceName?: string;
  labels?: Record<string, string>;
  policy?: PodPolicy;
  /** IP reported for every pod; a test that serves a pod's HTTP endpoint on loopback uses 127.0.0.1. */
  podIP?: (pod: V1Pod) => string;
  /** Called once when a pod has been reported Running (e.g. to start its process). */
  onRunning?: (pod: V1Pod) => void;
  /** Called when a pod on this node is being deleted, before it is removed (e.g. to stop its process). */
  onDeleting?: (pod: V1Pod) => void;
}

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export class FakeKubelet {
  readonly nodeName: string;
  private readonly core: CoreV1Api;
  private watch?: AbortController;
  private stopped = false;
  private nextIp = 2;
  private readonly inFlight = new Set<Promise<unknown>>();

  private readonly kc: KubeConfig;
  private readonly opts: FakeKubeletOptions;

  constructor(kc: KubeConfig, opts: FakeKubeletOptions = {}) {
    this.kc = kc;
    this.opts = opts;
    this.nodeName = opts.nodeName ?? "fake-gpu-node";
    this.core = kc.makeApiClient(CoreV1Api);
  }

  async start(): Promise<void> {
    const gpuName = this.opts.gpuResourceName ?? "nvidia.com/gpu";
    const capacity = { cpu: "1000", memory: "4Ti", pods: "10000", [gpuName]: String(this.opts.gpus ?? 1024) };
    await this.core
      .createNode({
        body: {
          metadata: {
            name: this.nodeName,
            labels: {
              "kubernetes.io/hostname": this.nodeName,
              "specops.dev/fake-node": "true",
              ...this.opts.labels,
            },
          },
        },
      })
      .catch((err) => {
        if (err?.code !== 409) throw err;
      });
    const now = new Date().toISOString();
    await this.core.patchNodeStatus(
      {
        name: this.nodeName,
        body: {
          status: {
            capacity,
            allocatable: capacity,
            conditions: [
              {
                type: "Ready",
                status: "True",
                reason: "KubeletReady",
                message: "fake kubelet",
                lastHeartbeatTime: now,
                lastTransitionTime: now,
              },
            ],
          },
        },
      },
      mergePatch,
    );
    await this.resync();
  }

  /** Lists every pod, then watches from that point; on any watch end, does it again. */
  private async resync(): Promise<void> {
    this.watch?.abort();
    this.watch = undefined;
    if (this.stopped) return;
    const list = await this.core.listPodForAllNamespaces({});
    for (const pod of list.items) this.handle(pod);
    this.watch = await new Watch(this.kc).watch(
      "/api/v1/pods",
      { resourceVersion: list.metadata?.resourceVersion },
      (type, pod: V1Pod) => {
        if (type !== "DELETED") this.handle(pod);
      },
      () => this.resyncLater(),
    );
  }

  /** Resyncs after a pause, again and again while the API server is unreachable (e.g. restarted). */
  private resyncLater(): void {
    if (this.stopped) return;
    setTimeout(() => void this.resync().catch(() => this.resyncLater()), 200);
  }

  private handle(pod: V1Pod): void {
    const p = this.step(pod).catch(() => {
      // Conflicts and races with deletion are routine; the next watch event retries.
    });
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async step(pod: V1Pod): Promise<void> {
    const name = pod.metadata?.name ?? "";
    const namespace = pod.metadata?.namespace ?? "default";
    if (pod.metadata?.deletionTimestamp) {
      if (pod.spec?.nodeName === this.nodeName) {
        this.opts.onDeleting?.(pod);
        await this.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 });
      }
      return;
    }
    if (!pod.spec?.nodeName) {
      await this.core.createNamespacedBinding({
        namespace,
        body: { metadata: { name }, target: { apiVersion: "v1", kind: "Node", name: this.nodeName } },
      });
      return;
    }
    if (pod.spec.nodeName !== this.nodeName) return;
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") return;
    if (phase !== "Running") {
      await this.setRunning(pod);
      this.opts.onRunning?.(pod);
      return;
    }
    const outcome = this.opts.policy?.(pod);
    if (outcome) await this.finish(namespace, name, outcome);
  }

  private async setRunning(pod: V1Pod): Promise<void> {
    const now = new Date().toISOString();
    const podIP =
      this.opts.podIP?.(pod) ?? `10.244.${Math.floor(this.nextIp / 250)}.${(this.nextIp++ % 250) + 1}`;
    await this.core.patchNamespacedPodStatus(
      {
        name: pod.metadata?.name ?? "",
        namespace: pod.metadata?.namespace ?? "default",
        body: {
          status: {
            phase: "Running",
            podIP,
            podIPs: [{ ip: podIP }],
            hostIP: "10.0.0.10",
            startTime: now,
            conditions: [
              { type: "PodScheduled", status: "True", lastTransitionTime: now },
              { type: "Initialized", status: "True", lastTransitionTime: now },
              { type: "ContainersReady", status: "True", lastTransitionTime: now },
              { type: "Ready", status: "True", lastTransitionTime: now },
            ],
            containerStatuses: (pod.spec?.containers ?? []).map((c) => ({
              name: c.name,
              image: c.image ?? "",
              imageID: "",
              ready: true,
              started: true,
              restartCount: 0,
              state: { running: { startedAt: now } },
            })),
          },
        },
      },
      mergePatch,
    );
  }

  /** Ends a running pod as its container exiting with `outcome` would. */
  async finish(namespace: string, name: string, outcome: PodOutcome): Promise<void> {
    const pod = await this.core.readNamespacedPod({ name, namespace });
    const now = new Date().toISOString();
    const failed = outcome.exitCode !== 0;
    await this.core.patchNamespacedPodStatus(
      {
        name,
        namespace,
        body: {
          status: {
            phase: failed ? "Failed" : "Succeeded",
            conditions: [
              { type: "Ready", status: "False", reason: "PodCompleted", lastTransitionTime: now },
              { type: "ContainersReady", status: "False", reason: "PodCompleted", lastTransitionTime: now },
            ],
            containerStatuses: (pod.spec?.containers ?? []).map((c) => ({
              name: c.name,
              image: c.image ?? "",
              imageID: "",
              ready: false,
              started: false,
              restartCount: 0,
              state: {
                terminated: {
                  exitCode: outcome.exitCode,
                  reason: outcome.reason ?? (failed ? "Error" : "Completed"),
                  message: outcome.message,
                  startedAt: pod.status?.startTime ?? now,
                  finishedAt: now,
                },
              },
            })),
          },
        },
      },
      mergePatch,
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watch?.abort();
    await Promise.allSettled([...this.inFlight]);
  }
}
