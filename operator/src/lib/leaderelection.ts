// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection package:
// candidates poll every retryPeriod; a held lease is taken only when its record hasn't changed for
// leaseDuration as measured on *our* clock (no cross-node clock comparison); every write is a PUT
// carrying the resourceVersion we read, so two candidates can't both win. The leader renews every
// retryPeriod and gives up if it can't renew within renewDeadline. stop() releases the lease
// (empty holder, 1 s duration) so a standby takes over at its next poll instead of waiting it out.

import type { V1Lease as V1LeaseModel } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { Client } from "./client.ts";
import { type Clock, realClock, sleep } from "./clock.ts";
import { isConflict, isNotFound } from "./errors.ts";
import { silentLogger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { Leases, type Wire } from "./rest.ts";
import { microTime } from "./time.ts";

type V1Lease = Wire<V1LeaseModel>;

export interface LeaderElectionOptions {
  client: Client;
  /** Lease name, e.g. "specops-operator". */
  name: string;
  namespace: string;
  /** Unique per process: pod name + random suffix. */
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  /** Called once when leadership ends: lost, or given up by stop(). */
  onStoppedLeading: () => void;
  clock?: Clock;
  logger?: Logger;
  metrics?: Metrics;
}

export class LeaderElector {
  readonly #o: Required<Omit<LeaderElectionOptions, "metrics">> & { metrics?: Metrics };
  readonly #abort = new AbortController();
  #leading = false;
  #observedRecord = "";
  #observedAt = 0;
  #running?: Promise<void>;

  constructor(opts: LeaderElectionOptions) {
    this.#o = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      clock: realClock,
      logger: silentLogger,
      ...opts,
    };
    this.#o.logger = this.#o.logger.child({
      lease: `${opts.namespace}/${opts.name}`,
      identity: opts.identity,
    });
    if (this.#o.renewDeadlineMs >= this.#o.leaseDurationMs)
      throw new Error("renewDeadline must be < leaseDuration");
    this.#o.metrics?.leaderStatus.set({ name: opts.name }, 0);
  }

  isLeader(): boolean {
    return this.#leading;
  }

  /** Campaigns, leads until leadership is lost or stop() is called. Resolves then. */
  run(): Promise<void> {
    this.#running ??= this.#run();
    return this.#running;
  }

  /** Stops campaigning/renewing; with release (default) hands the lease back if held. */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    const wasLeading = this.#leading;
    this.#abort.abort();
    await this.#running;
    if ((opts.release ?? true) && wasLeading) await this.#release();
  }

  async #run(): Promise<void> {
    const { clock, logger: log, retryPeriodMs, renewDeadlineMs } = this.#o;
    const stopped = this.#abort.signal;
    log.info("campaigning for leadership");
    while (!stopped.aborted && !(await this.#tryAcquireOrRenew())) {
      await sleep(clock, retryPeriodMs * (1 + 0.2 * Math.random()), stopped);
    }
    if (stopped.aborted) return;
    this.#setLeading(true);
    log.info("became leader");
    this.#o.onStartedLeading();
    let lastRenew = clock.now();
    while (!stopped.aborted) {
      await sleep(clock, retryPeriodMs, stopped);
      if (stopped.aborted) break;
      if (await this.#tryAcquireOrRenew()) {
        lastRenew = clock.now();
      } else if (clock.now() - lastRenew >= renewDeadlineMs) {
        log.error({ renewDeadlineMs }, "failed to renew lease within the deadline; leadership lost");
        break;
      }
    }
    this.#setLeading(false);
    this.#o.onStoppedLeading();
  }

  #setLeading(leading: boolean): void {
    this.#leading = leading;
    this.#o.metrics?.leaderStatus.set({ name: this.#o.name }, leading ? 1 : 0);
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { client, name, namespace, identity, leaseDurationMs, clock, logger: log } = this.#o;
    const now = clock.now();
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
      renewTime: microTime(now),
    };
    try {
      let lease: V1Lease;
      try {
        lease = await client.get(Leases, namespace, name);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        const created = await client.create(Leases, {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 },
        } as V1Lease);
        this.#observe(created, now);
        return true;
      }
      this.#observe(lease, now);
      const holder = lease.spec?.holderIdentity ?? "";
      const expired = this.#observedAt + (lease.spec?.leaseDurationSeconds ?? 0) * 1000 <= now;
      if (holder && holder !== identity && !expired) return false;
      const mine = holder === identity;
      const transitions = lease.spec?.leaseTransitions ?? 0;
      const updated = await client.replace(Leases, {
        ...lease,
        spec: {
          ...spec,
          acquireTime: mine ? lease.spec?.acquireTime : microTime(now),
          leaseTransitions: mine ? transitions : transitions + 1,
        },
      } as V1Lease);
      this.#observe(updated, now);
      if (!mine) log.info({ previousHolder: holder || undefined }, "acquired lease");
      return true;
    } catch (err) {
      if (isConflict(err)) log.debug("lease changed under us; will retry");
      else log.warn({ err }, "lease acquire/renew failed");
      return false;
    }
  }

  /** Remembers when the lease record last changed, by our clock. */
  #observe(lease: V1Lease, now: number): void {
    const s = lease.spec ?? {};
    const record = `${s.holderIdentity}|${String(s.renewTime)}|${s.leaseTransitions}|${s.leaseDurationSeconds}`;
    if (record !== this.#observedRecord) {
      this.#observedRecord = record;
      this.#observedAt = now;
    }
  }

  async #release(): Promise<void> {
    const { client, namespace, name, identity, clock, logger: log } = this.#o;
    try {
      const lease = await client.get(Leases, namespace, name);
      if (lease.spec?.holderIdentity !== identity) return;
      const now = microTime(clock.now());
      await client.replace(Leases, {
        ...lease,
        spec: {
          holderIdentity: "",
          leaseDurationSeconds: 1,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: lease.spec?.leaseTransitions ?? 0,
        },
      } as V1Lease);
      log.info("released lease");
    } catch (err) {
      log.warn({ err }, "releasing the lease failed; a standby takes over when it expires");
    }
  }
}
