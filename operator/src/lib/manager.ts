// The Manager wires a process together: shared informers (one per kind, started on every replica
// so a standby's cache is warm), the probe/metrics server, leader election, and the controllers,
// which run only while this replica leads. stop() (SIGTERM/SIGINT via stopOnSignals) stops intake,
// drains in-flight reconciles up to the shutdown timeout, then releases the lease so a standby
// takes over at once. Losing the lease is fatal, as in controller-runtime: `stopped` rejects and
// the process should exit and restart clean.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { Client } from "./client.ts";
import { type Clock, realClock } from "./clock.ts";
import { Controller, type ControllerOptions } from "./controller.ts";
import { Informer, type InformerOptions } from "./informer.ts";
import { LeaderElector } from "./leaderelection.ts";
import { silentLogger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import type { KubeObject, Resource } from "./rest.ts";
import { type HealthServer, startHealthServer } from "./server.ts";

export interface LeaderElectionConfig {
  name: string;
  namespace: string;
  /** Default: leaderIdentity(hostname). */
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export interface ManagerOptions {
  client: Client;
  /** Namespaces the informers watch; undefined/empty = all. */
  namespaces?: readonly string[];
  /** Probe/metrics port; undefined = no server (0 = any free port). */
  port?: number;
  /** undefined = no election: controllers start as soon as caches sync. */
  leaderElection?: LeaderElectionConfig;
  shutdownTimeoutMs?: number;
  logger?: Logger;
  metrics?: Metrics;
  clock?: Clock;
}

/** A unique leader identity: the pod name plus a random suffix (two processes in one pod differ). */
export function leaderIdentity(podName: string): string {
  return `${podName}_${randomBytes(4).toString("hex")}`;
}

export class Manager {
  readonly client: Client;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Resolves after a graceful stop(); rejects if leadership is lost or start-up fails. */
  readonly stopped: Promise<void>;
  readonly #opts: ManagerOptions;
  readonly #clock: Clock;
  readonly #informers = new Map<string, Informer<KubeObject>>();
  readonly #controllers: Controller<KubeObject>[] = [];
  #elector?: LeaderElector;
  #server?: HealthServer;
  #stopping?: Promise<void>;
  #controllersRunning = false;
  #resolveStopped!: () => void;
  #rejectStopped!: (err: Error) => void;

  constructor(opts: ManagerOptions) {
    this.#opts = opts;
    this.client = opts.client;
    this.#clock = opts.clock ?? realClock;
    this.metrics = opts.metrics ?? new Metrics();
    this.logger = opts.logger ?? silentLogger;
    this.stopped = new Promise((resolve, reject) => {
      this.#resolveStopped = resolve;
      this.#rejectStopped = reject;
    });
    this.stopped.catch(() => {}); // callers may not await it; the rejection is logged in #lost
  }

  /** The shared informer for a kind (created on first use; one per apiVersion/kind). */
  informer<T extends KubeObject>(
    r: Resource<T>,
    opts: Pick<InformerOptions, "labelSelector" | "transform"> = {},
  ): Informer<T> {
    const id = `${r.apiVersion}/${r.kind}`;
    let inf = this.#informers.get(id);
    if (!inf) {
      inf = new Informer<KubeObject>(this.client, r as Resource, {
        namespaces: this.#opts.namespaces,
        clock: this.#clock,
        logger: this.logger,
        ...opts,
      });
      this.#informers.set(id, inf);
    }
    return inf as unknown as Informer<T>;
  }

  /** Creates a controller sharing this manager's metrics, logger and clock. */
  controller<T extends KubeObject>(opts: Omit<ControllerOptions<T>, "metrics">): Controller<T> {
    const c = new Controller<T>({ logger: this.logger, clock: this.#clock, ...opts, metrics: this.metrics });
    this.#controllers.push(c as unknown as Controller<KubeObject>);
    return c;
  }

  get port(): number | undefined {
    return this.#server?.port;
  }

  isLeader(): boolean {
    return this.#elector ? this.#elector.isLeader() : this.#controllersRunning;
  }

  /** undefined when ready, else why not (served on /readyz). */
  notReady(): string | undefined {
    if (this.#stopping) return "shutting down";
    const unsynced = [...this.#informers.values()]
      .filter((i) => !i.hasSynced())
      .map((i) => i.resource.plural);
    if (unsynced.length > 0) return `caches not synced: ${unsynced.join(", ")}`;
    return undefined;
  }

  /** Starts the server and informers, waits for the initial sync, then campaigns or starts controllers. */
  async start(): Promise<void> {
    const log = this.logger;
    if (this.#opts.port !== undefined) {
      this.#server = await startHealthServer({
        port: this.#opts.port,
        registry: this.metrics.registry,
        notReady: () => this.notReady(),
      });
      log.info({ port: this.#server.port }, "serving /healthz, /readyz and /metrics");
    }
    for (const inf of this.#informers.values()) inf.start();
    const abort = new AbortController();
    const synced = await Promise.race([
      Promise.all([...this.#informers.values()].map((i) => i.waitForSync(abort.signal))).then((r) =>
        r.every(Boolean),
      ),
      this.stopped.then(
        () => false,
        () => false,
      ),
    ]);
    abort.abort();
    if (!synced) return;
    log.info({ informers: [...this.#informers.values()].map((i) => i.resource.plural) }, "caches synced");

    const le = this.#opts.leaderElection;
    if (!le) return this.#startControllers();
    this.#elector = new LeaderElector({
      client: this.client,
      name: le.name,
      namespace: le.namespace,
      identity: le.identity ?? leaderIdentity(process.env.HOSTNAME ?? "specops"),
      leaseDurationMs: le.leaseDurationMs,
      renewDeadlineMs: le.renewDeadlineMs,
      retryPeriodMs: le.retryPeriodMs,
      clock: this.#clock,
      logger: log,
      metrics: this.metrics,
      onStartedLeading: () => this.#startControllers(),
      onStoppedLeading: () => {
        if (!this.#stopping) void this.#lost();
      },
    });
    void this.#elector.run();
  }

  /** Graceful stop: controllers drain (bounded), the lease is released, informers and server stop. */
  stop(): Promise<void> {
    this.#stopping ??= this.#shutdown({ release: true }).then(() => this.#resolveStopped());
    return this.#stopping;
  }

  /** Calls stop() on SIGTERM/SIGINT; a second signal exits at once. Logs stray promise rejections. */
  stopOnSignals(): void {
    const onSignal = (signal: string) => {
      if (this.#stopping) {
        this.logger.warn({ signal }, "second signal; exiting now");
        process.exit(1);
      }
      this.logger.info({ signal }, "shutting down");
      void this.stop();
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    process.on("unhandledRejection", (err) => this.logger.error({ err }, "unhandled promise rejection"));
  }

  #startControllers(): void {
    if (this.#controllersRunning || this.#stopping) return;
    this.#controllersRunning = true;
    for (const c of this.#controllers) c.start();
  }

  async #lost(): Promise<void> {
    this.logger.error("leadership lost; stopping");
    this.#stopping = this.#shutdown({ release: false });
    await this.#stopping;
    this.#rejectStopped(new Error("leader election lost"));
  }

  async #shutdown(opts: { release: boolean }): Promise<void> {
    const timeout = this.#opts.shutdownTimeoutMs ?? 30_000;
    const drained = await Promise.all(this.#controllers.map((c) => c.stop(timeout)));
    await this.#elector?.stop({ release: opts.release });
    await Promise.all([...this.#informers.values()].map((i) => i.stop()));
    await this.#server?.close();
    this.logger.info({ drained: drained.every(Boolean) }, "manager stopped");
  }
}
