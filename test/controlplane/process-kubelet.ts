// Test and demo edge, not a real kubelet: there is no real kubelet node here yet, so each
// SpecOps pod's runtime container runs as a local process of the project's Python runtime instead
// of an image. The pod's task ConfigMap becomes a file, its storage claims become folders under one
// local root (the container's mount paths are rewritten to them), its scratch emptyDir a folder of
// the pod, its env is passed through, and its exit code and termination message are reported on the
// pod exactly as a kubelet would.
// Every pod shares this machine's loopback, so each container port gets a free local port (the
// task's serving port and the progress port are rewritten to it), and serviceAddress() stands in
// for a Service: a local port that forwards connections to a ready pod process behind it.
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { DEFAULT_PVC_ROOT, DEFAULT_TASK_PATH, RUNTIME_ENV } from "../../operator/src/contract/constants.ts";
import { SCRATCH_PATH } from "../../operator/src/controllers/shared/pod.ts";
import { FakeKubelet } from "./kubelet.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

export interface ProcessKubeletOptions {
  /** Local folder standing in for every PersistentVolumeClaim (one subfolder per claim). */
  storageRoot: string;
  python?: string;
  onOutput?: (pod: string, line: string) => void;
}

export class ProcessKubelet {
  readonly kubelet: FakeKubelet;
  readonly #core: CoreV1Api;
  readonly #opts: ProcessKubeletOptions;
  readonly #running = new Map<string, ReturnType<typeof spawn>>();
  /** Local port of each pod's container ports, by "namespace/pod" then port name and number. */
  readonly #ports = new Map<
    string,
    { labels: Record<string, string>; byName: Map<string, number>; byNumber: Map<number, number> }
  >();
  readonly #forwarders = new Map<string, { server: Server; port: number }>();
  /** Each pod's own loopback address (its podIP) and the listeners there that stand for its ports. */
  readonly #podIPs = new Map<string, string>();
  readonly #podListeners = new Map<string, Server[]>();
  #nextPodIP = 0;

  constructor(kc: KubeConfig, opts: ProcessKubeletOptions) {
    this.#opts = opts;
    this.#core = kc.makeApiClient(CoreV1Api);
    this.kubelet = new FakeKubelet(kc, {
      nodeName: "local-process-node",
      // A podIP of its own on the loopback range for each pod, so podIP:containerPort reaches it
      // (the operator reads progress and metrics that way) while processes share one network.
      podIP: (pod) => this.#podIP(`${pod.metadata?.namespace ?? "default"}/${pod.metadata?.name}`),
      onRunning: (pod) => void this.#run(pod).catch((err) => this.#fail(pod, `could not start: ${err}`)),
      // As a kubelet does on deletion: the container gets SIGTERM (the grace period is not played).
      onDeleting: (pod) =>
        this.#running.get(`${pod.metadata?.namespace ?? "default"}/${pod.metadata?.name}`)?.kill("SIGTERM"),
    });
  }

  start(): Promise<void> {
    return this.kubelet.start();
  }

  async stop(): Promise<void> {
    for (const p of this.#running.values()) p.kill("SIGTERM");
    for (const f of this.#forwarders.values()) f.server.close();
    for (const listeners of this.#podListeners.values()) for (const l of listeners) l.close();
    await this.kubelet.stop();
  }

  /**
   * A local address standing in for a Service port: connections are forwarded to the local port of
   * a pod process the Service selects (the first that runs; picked per connection).
   */
  async serviceAddress(
    namespace: string,
    service: string,
    portName: string,
  ): Promise<{ host: string; port: number }> {
    const key = `${namespace}/${service}/${portName}`;
    const existing = this.#forwarders.get(key);
    if (existing) return { host: "127.0.0.1", port: existing.port };
    const svc = await this.#core.readNamespacedService({ name: service, namespace });
    const sp = svc.spec?.ports?.find((p) => p.name === portName);
    if (!sp) throw new Error(`Service ${namespace}/${service} has no port ${portName}`);
    const selector = svc.spec?.selector ?? {};
    const backend = (): number | undefined => {
      for (const [podKey, ports] of this.#ports) {
        if (!podKey.startsWith(`${namespace}/`) || !this.#running.has(podKey)) continue;
        if (!Object.entries(selector).every(([k, v]) => ports.labels[k] === v)) continue;
        const target = sp.targetPort ?? sp.port;
        const local =
          typeof target === "number" ? ports.byNumber.get(target) : ports.byName.get(String(target));
        if (local) return local;
      }
      return undefined;
    };
    const server = createServer((socket) => {
      const port = backend();
      if (port) pipeTo(socket, port);
      else socket.destroy();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    this.#forwarders.set(key, { server, port });
    return { host: "127.0.0.1", port };
  }

  /** serviceAddress for a Service port given by number (as a cluster DNS URL names it). */
  async serviceAddressByPort(
    namespace: string,
    service: string,
    port: number,
  ): Promise<{ host: string; port: number }> {
    const svc = await this.#core.readNamespacedService({ name: service, namespace });
    const name = svc.spec?.ports?.find((p) => p.port === port)?.name;
    if (!name) throw new Error(`Service ${namespace}/${service} has no named port ${port}`);
    return this.serviceAddress(namespace, service, name);
  }

  #podIP(key: string): string {
    let ip = this.#podIPs.get(key);
    if (!ip) {
      const n = this.#nextPodIP++;
      ip = `127.10.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`;
      this.#podIPs.set(key, ip);
    }
    return ip;
  }

  /** Listeners on the pod's own address at its container ports, forwarding to the process's ports. */
  async #listenAsPod(key: string, byNumber: Map<number, number>): Promise<void> {
    const ip = this.#podIP(key);
    const listeners: Server[] = [];
    for (const [containerPort, local] of byNumber) {
      const server = createServer((socket) => pipeTo(socket, local));
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(containerPort, ip, () => resolve());
      });
      listeners.push(server);
    }
    this.#podListeners.set(key, listeners);
  }

  #forgetPod(key: string): void {
    for (const l of this.#podListeners.get(key) ?? []) l.close();
    this.#podListeners.delete(key);
    this.#podIPs.delete(key);
  }

  async #run(pod: V1Pod): Promise<void> {
    const ns = pod.metadata?.namespace ?? "default";
    const name = pod.metadata?.name ?? "";
    const container = pod.spec?.containers[0];
    const taskVolume = pod.spec?.volumes?.find((v) => v.configMap);
    if (!container || !taskVolume?.configMap?.name)
      return this.#fail(pod, "no runtime container or task volume");
    const dir = join(this.#opts.storageRoot, ".pods", ns, name);
    mkdirSync(dir, { recursive: true });
    const cm = await this.#core.readNamespacedConfigMap({ name: taskVolume.configMap.name, namespace: ns });
    // The container sees claims under DEFAULT_PVC_ROOT; here they are folders under storageRoot.
    // and the pod's scratch emptyDir is a folder of its own.
    const task = (cm.data?.["task.json"] ?? "{}")
      .replaceAll(`${DEFAULT_PVC_ROOT}/`, `${this.#opts.storageRoot}/`)
      .replaceAll(`${SCRATCH_PATH}/`, `${join(dir, "scratch")}/`);
    // Each container port gets its own local port; the serving port inside the task follows it.
    const byName = new Map<string, number>();
    const byNumber = new Map<number, number>();
    for (const p of container.ports ?? []) {
      const local = await freePort();
      byNumber.set(p.containerPort, local);
      if (p.name) byName.set(p.name, local);
    }
    const parsedTask = JSON.parse(task);
    const servePort = parsedTask?.params?.port;
    if (typeof servePort === "number" && byNumber.has(servePort))
      parsedTask.params.port = byNumber.get(servePort);
    // A Service's cluster DNS name (a load task's endpoint) has no DNS here: its stand-in address.
    const endpoint = typeof parsedTask?.params?.endpoint === "string" ? parsedTask.params.endpoint : "";
    const svc = /^http:\/\/([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?:([0-9]+)(\/.*)?$/.exec(
      endpoint,
    );
    if (svc?.[1] && svc[2] && svc[3]) {
      const a = await this.serviceAddressByPort(svc[2], svc[1], Number(svc[3]));
      parsedTask.params.endpoint = `http://${a.host}:${a.port}${svc[4] ?? ""}`;
    }
    this.#ports.set(`${ns}/${name}`, { labels: pod.metadata?.labels ?? {}, byName, byNumber });
    await this.#listenAsPod(`${ns}/${name}`, byNumber);
    const taskFile = join(dir, "task.json");
    writeFileSync(taskFile, JSON.stringify(parsedTask, null, 2));
    const terminationLog = join(dir, "termination-log");
    const env: Record<string, string> = { ...process.env } as Record<string, string>;
    // As a kubelet does: envFrom Secrets first (keys become variables, with the optional prefix),
    // then env entries, which win.
    for (const from of container.envFrom ?? []) {
      if (!from.secretRef?.name) continue;
      const secret = await this.#core.readNamespacedSecret({ name: from.secretRef.name, namespace: ns });
      for (const [k, v] of Object.entries(secret.data ?? {}))
        env[`${from.prefix ?? ""}${k}`] = Buffer.from(v, "base64").toString("utf8");
    }
    for (const e of container.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      const ref = e.valueFrom?.secretKeyRef;
      if (ref?.name && ref.key) {
        // As a kubelet does: the key's value from the Secret (a missing one fails the pod).
        const secret = await this.#core.readNamespacedSecret({ name: ref.name, namespace: ns });
        const value = secret.data?.[ref.key];
        if (value === undefined)
          return this.#fail(pod, `couldn't find key ${ref.key} in Secret ${ns}/${ref.name}`);
        env[e.name] = Buffer.from(value, "base64").toString("utf8");
      }
    }
    env[RUNTIME_ENV.pvcRoot] = this.#opts.storageRoot;
    env[RUNTIME_ENV.task] = taskFile;
    env[RUNTIME_ENV.terminationLog] = terminationLog;
    const progressPort = byName.get("progress");
    if (progressPort) env[RUNTIME_ENV.progressPort] = String(progressPort);
    const args = (container.args ?? []).map((a) => (a === DEFAULT_TASK_PATH ? taskFile : a));
    const python = this.#opts.python ?? join(root, "runtime/.venv/bin/python");
    const child = spawn(python, ["-m", "specops_runtime.agent", ...args], {
      cwd: join(root, "runtime"),
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#running.set(`${ns}/${name}`, child);
    const forward = (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n")) if (line.trim()) this.#opts.onOutput?.(name, line);
    };
    child.stdout.on("data", forward);
    child.stderr.on("data", forward);
    child.on("exit", (code, signal) => {
      this.#running.delete(`${ns}/${name}`);
      this.#ports.delete(`${ns}/${name}`);
      this.#forgetPod(`${ns}/${name}`);
      let message: string | undefined;
      try {
        message = readFileSync(terminationLog, "utf8");
      } catch {
        message = undefined;
      }
      const exitCode = code ?? (signal ? 128 + 15 : 1);
      void this.kubelet.finish(ns, name, { exitCode, message }).catch(() => undefined);
    });
  }

  async #fail(pod: V1Pod, message: string): Promise<void> {
    await this.kubelet
      .finish(pod.metadata?.namespace ?? "default", pod.metadata?.name ?? "", { exitCode: 1, message })
      .catch(() => undefined);
  }
}

/** Joins a connection to a local process's port, both ways, closing both when either fails. */
function pipeTo(socket: Socket, port: number): void {
  const upstream = connect(port, "127.0.0.1");
  socket.pipe(upstream).pipe(socket);
  const close = () => {
    socket.destroy();
    upstream.destroy();
  };
  socket.on("error", close);
  upstream.on("error", close);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
