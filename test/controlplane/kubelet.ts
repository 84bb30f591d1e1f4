// Test edge, not a real kubelet: there is no real kubelet node here, so this stand-in plays the
// node's part through the API exactly as a kubelet would — it registers a GPU Node, binds pending
// pods to it (there is no scheduler), reports them Running and Ready, and ends them with the exit
// code and termination message a test asks for. A container whose Secret reference cannot be
// resolved stays Waiting with reason CreateContainerConfigError and the kubelet's own message
// (`secret "<name>" not found`, `couldn't find key <key> in Secret <ns>/<name>`, as
// pkg/kubelet/kubelet_pods.go makeEnvironmentVariables words them), retried until it resolves.
// Everything else (Jobs, ReplicaSets, garbage collection) is the real kube-controller-manager.
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
  /** Pods waiting on a Secret, looked at again each second (a kubelet retries with backoff). */
  private readonly retries = new Map<string, ReturnType<typeof setTimeout>>();

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
      const problem = await this.secretProblem(pod);
      if (problem) {
        await this.setWaiting(pod, problem);
        this.retryLater(pod);
        return;
      }
      await this.setRunning(pod);
      this.opts.onRunning?.(pod);
      return;
    }
    const outcome = this.opts.policy?.(pod);
    if (outcome) await this.finish(namespace, name, outcome);
  }

  /** The kubelet's message when a non-optional Secret reference of a container cannot be resolved. */
  private async secretProblem(pod: V1Pod): Promise<string | undefined> {
    const namespace = pod.metadata?.namespace ?? "default";
    const read = async (name: string) =>
      this.core.readNamespacedSecret({ name, namespace }).catch((err) => {
        if (err?.code === 404) return undefined;
        throw err;
      });
    for (const c of pod.spec?.containers ?? []) {
      for (const from of c.envFrom ?? []) {
        const ref = from.secretRef;
        if (ref?.name && !ref.optional && !(await read(ref.name))) return `secret "${ref.name}" not found`;
      }
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref?.name || ref.optional) continue;
        const secret = await read(ref.name);
        if (!secret) return `secret "${ref.name}" not found`;
        if (!(ref.key in (secret.data ?? {})))
          return `couldn't find key ${ref.key} in Secret ${namespace}/${ref.name}`;
      }
    }
    return undefined;
  }

  private retryLater(pod: V1Pod): void {
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    if (this.stopped || this.retries.has(key)) return;
    this.retries.set(
      key,
      setTimeout(() => {
        this.retries.delete(key);
        if (this.stopped) return;
        void this.core
          .readNamespacedPod({ name: pod.metadata?.name ?? "", namespace: pod.metadata?.namespace ?? "" })
          .then((fresh) => this.handle(fresh))
          .catch(() => undefined);
      }, 1000),
    );
  }

  /** Pending with the container waiting, as a kubelet reports a container it cannot create. */
  private async setWaiting(pod: V1Pod, message: string): Promise<void> {
    const reason = "CreateContainerConfigError";
    const current = pod.status?.containerStatuses?.[0]?.state?.waiting;
    if (current?.reason === reason && current.message === message) return;
    const now = new Date().toISOString();
    const names = (pod.spec?.containers ?? []).map((c) => c.name).join(" ");
    const notReady = { reason: "ContainersNotReady", message: `containers with unready status: [${names}]` };
    await this.core.patchNamespacedPodStatus(
      {
        name: pod.metadata?.name ?? "",
        namespace: pod.metadata?.namespace ?? "default",
        body: {
          status: {
            phase: "Pending",
            hostIP: "10.0.0.10",
            startTime: now,
            conditions: [
              { type: "PodScheduled", status: "True", lastTransitionTime: now },
              { type: "Initialized", status: "True", lastTransitionTime: now },
              { type: "ContainersReady", status: "False", lastTransitionTime: now, ...notReady },
              { type: "Ready", status: "False", lastTransitionTime: now, ...notReady },
            ],
            containerStatuses: (pod.spec?.containers ?? []).map((c) => ({
              name: c.name,
              image: c.image ?? "",
              imageID: "",
              ready: false,
              started: false,
              restartCount: 0,
              state: { waiting: { reason, message } },
            })),
          },
        },
      },
      mergePatch,
    );
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
    for (const t of this.retries.values()) clearTimeout(t);
    this.retries.clear();
    this.watch?.abort();
    await Promise.allSettled([...this.inFlight]);
  }
}
