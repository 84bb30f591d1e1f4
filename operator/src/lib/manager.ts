// The Manager wires a process together: shared informers (one per kind, started on every replica
// so a standby's cache is warm), the probe/metrics server, leader election, and the controllers,
// which run only while this replica leads. `client` is fenced (fencedclient.ts): its writes are
// refused, and those in flight cut, whenever this replica may not write, and reconcilers see the
// same signal as ctx.signal. start() fails, naming what is missing, when a cache cannot sync (RBAC
// refuses a list, a CRD is not installed, or cacheSyncTimeoutMs passes). stop() (SIGTERM/SIGINT
// via stopOnSignals) stops intake, drains in-flight reconciles up to the shutdown timeout, fences
// writes, then releases the lease so a standby takes over at once. Losing the lease is fatal, as in
// controller-runtime: writes stop that instant, reconciles are aborted without a drain, `stopped`
// rejects, and the process should exit and restart clean.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { Client } from "./client.ts";
import { type Clock, realClock } from "./clock.ts";
import { Controller, type ControllerOptions } from "./controller.ts";
import { FencedClient } from "./fencedclient.ts";
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
  /** start() fails when the caches have not synced within this. Default 2 min (controller-runtime's). */
  cacheSyncTimeoutMs?: number;
  logger?: Logger;
  metrics?: Metrics;
  clock?: Clock;
}

/** A unique leader identity: the pod name plus a random suffix (two processes in one pod differ). */
export function leaderIdentity(podName: string): string {
  return `${podName}_${randomBytes(4).toString("hex")}`;
}

export class Manager {
  /** For controllers: fenced by leadership (writes refused unless this replica may write). */
  readonly client: Client;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Resolves after a graceful stop(); rejects if leadership is lost or start-up fails. */
  readonly stopped: Promise<void>;
  readonly #opts: ManagerOptions;
  readonly #clock: Clock;
  /** The unfenced client: informers and the elector read and renew with it. */
  readonly #raw: Client;
  /** Live while controllers may write: from leading (or start, without election) to loss/stop. */
  #term: AbortController;
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
    this.#raw = opts.client;
    this.#term = new AbortController();
    if (opts.leaderElection) this.#term.abort(new Error("not leading"));
    this.client = new FencedClient(opts.client, () => this.#term.signal);
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
      inf = new Informer<KubeObject>(this.#raw, r as Resource, {
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
    const c = new Controller<T>({
      logger: this.logger,
      clock: this.#clock,
      ...opts,
      metrics: this.metrics,
      signal: this.#termSignal(),
    });
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

  /**
   * Starts the server and informers, waits for the initial sync, then campaigns or starts
   * controllers. Rejects (and the manager stops) when the caches cannot sync.
   */
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
    let synced: boolean;
    try {
      synced = await this.#waitForCaches();
    } catch (err) {
      log.error({ err }, "caches did not sync; stopping");
      this.#stopping ??= this.#shutdown({ release: false, drainMs: 0 });
      await this.#stopping;
      this.#rejectStopped(err as Error);
      throw err;
    }
    if (!synced || this.#stopping) return;
    log.info({ informers: [...this.#informers.values()].map((i) => i.resource.plural) }, "caches synced");

    const le = this.#opts.leaderElection;
    if (!le) return this.#startControllers();
    this.#elector = new LeaderElector({
      client: this.#raw,
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

  /** Graceful stop: controllers drain (bounded), writes are fenced, the lease is released, informers and server stop. */
  stop(): Promise<void> {
    this.#stopping ??= this.#shutdown({
      release: true,
      drainMs: this.#opts.shutdownTimeoutMs ?? 30_000,
    }).then(() => this.#resolveStopped());
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

  /** The signal controllers observe: follows #term even though #term is replaced on leading. */
  #termSignal(): AbortSignal {
    const relay = new AbortController();
    this.#onTermEnd.push((reason) => relay.abort(reason));
    return relay.signal;
  }

  readonly #onTermEnd: ((reason: unknown) => void)[] = [];

  #endTerm(reason: Error): void {
    if (this.#term.signal.aborted) return;
    this.#term.abort(reason);
    for (const f of this.#onTermEnd.splice(0)) f(reason);
  }

  #startControllers(): void {
    if (this.#controllersRunning || this.#stopping) return;
    this.#controllersRunning = true;
    if (this.#term.signal.aborted) this.#term = new AbortController();
    for (const c of this.#controllers) c.start();
  }

  async #waitForCaches(): Promise<boolean> {
    const informers = [...this.#informers.values()];
    const timeoutMs = this.#opts.cacheSyncTimeoutMs ?? 120_000;
    const abort = new AbortController();
    let timer: { cancel(): void } | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = this.#clock.after(timeoutMs, () => {
        const unsynced = informers.filter((i) => !i.hasSynced());
        const why = unsynced
          .map((i) => `${i.resource.plural}${i.lastError ? ` (last error: ${i.lastError.message})` : ""}`)
          .join(", ");
        reject(new Error(`caches not synced within ${timeoutMs} ms: ${why}`));
      });
    });
    try {
      return await Promise.race([
        Promise.all(informers.map((i) => i.waitForSync(abort.signal))).then((r) => r.every(Boolean)),
        timedOut,
        this.stopped.then(
          () => false,
          () => false,
        ),
      ]);
    } finally {
      timer?.cancel();
      abort.abort();
    }
  }

  async #lost(): Promise<void> {
    this.logger.error("leadership lost; stopping now, without draining");
    this.#endTerm(new Error("leadership lost"));
    this.#stopping = this.#shutdown({ release: false, drainMs: 0 });
    await this.#stopping;
    this.#rejectStopped(new Error("leader election lost"));
  }

  async #shutdown(opts: { release: boolean; drainMs: number }): Promise<void> {
    const drained = await Promise.all(this.#controllers.map((c) => c.stop(opts.drainMs)));
    // No write after this point: the lease may be released (or lapse) next.
    this.#endTerm(new Error("stopping"));
    await this.#elector?.stop({ release: opts.release });
    await Promise.all([...this.#informers.values()].map((i) => i.stop()));
    await this.#server?.close();
    this.logger.info({ drained: drained.every(Boolean) }, "manager stopped");
  }
}
