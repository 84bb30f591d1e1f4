// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection package:
// candidates poll every retryPeriod; a held lease is taken only when its record hasn't changed for
// leaseDuration as measured on *our* clock (no cross-node clock comparison); every write is a PUT
// carrying the resourceVersion we read, so two candidates can't both win. The leader renews every
// retryPeriod; every attempt (get + put) is bounded by what is left of the renew deadline, and
// when renewDeadline passes since the last successful renew, leadership ends at that instant, even
// with a request still hanging: `signal` aborts and onStoppedLeading runs, so controllers stop
// writing while the lease (leaseDuration > renewDeadline) still keeps a standby out.
// stop() releases the lease (empty holder, 1 s duration) so a standby takes over at its next poll,
// but only while still leading, and only over the lease version it last wrote (a PUT guarded by
// that resourceVersion): a replica that lost the lease never releases someone else's.

import type { V1Lease as V1LeaseModel } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { Client } from "./client.ts";
import { type Clock, deadlineSignal, realClock, sleep } from "./clock.ts";
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
  /** Aborted whenever this replica is not leading (before the first win, and from the loss on). */
  #term = abortedController("not leading yet");
  #leading = false;
  #observedRecord = "";
  #observedAt = 0;
  /** The lease as we last wrote it: release() must be based on it, not on a fresh read. */
  #held?: V1Lease;
  #running?: Promise<void>;
  /** Leadership ended by the deadline, not by stop(): the lease is not ours to release. */
  #lost = false;

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

  /** Live while this replica leads; aborts the moment it stops (deadline passed, stop()). */
  get signal(): AbortSignal {
    return this.#term.signal;
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
    if ((opts.release ?? true) && wasLeading && !this.#lost) await this.#release();
  }

  async #run(): Promise<void> {
    const { clock, logger: log, retryPeriodMs, renewDeadlineMs } = this.#o;
    const stopped = this.#abort.signal;
    log.info("campaigning for leadership");
    let acquiredAt = clock.now();
    while (!stopped.aborted) {
      acquiredAt = clock.now();
      if (await this.#attempt(renewDeadlineMs, stopped)) break;
      await sleep(clock, retryPeriodMs * (1 + 0.2 * Math.random()), stopped);
    }
    if (stopped.aborted) return;
    this.#term = new AbortController();
    this.#setLeading(true);
    log.info("became leader");
    this.#o.onStartedLeading();
    // Leadership ends when renewDeadline passes after the last renew attempt that succeeded
    // (measured from its start: the renewTime it wrote), whatever the requests in flight are doing.
    let renewedAt = acquiredAt;
    const lose = () => this.#endTerm("failed to renew the lease within the renew deadline; leadership lost");
    let expiry = clock.after(renewDeadlineMs - (clock.now() - renewedAt), lose);
    const leading = AbortSignal.any([stopped, this.#term.signal]);
    while (!leading.aborted) {
      await sleep(clock, retryPeriodMs, leading);
      if (leading.aborted) break;
      const attemptAt = clock.now();
      const left = renewedAt + renewDeadlineMs - attemptAt;
      if ((await this.#attempt(left, leading)) && !leading.aborted) {
        renewedAt = attemptAt;
        expiry.cancel();
        expiry = clock.after(renewDeadlineMs - (clock.now() - renewedAt), lose);
      }
    }
    expiry.cancel();
    this.#endTerm(stopped.aborted ? undefined : "leadership lost");
  }

  /** One acquire/renew, bounded by ms (and by signal). */
  async #attempt(ms: number, signal: AbortSignal): Promise<boolean> {
    if (ms <= 0) return false;
    const deadline = deadlineSignal(
      this.#o.clock,
      ms,
      () => new Error("lease renew attempt timed out"),
      signal,
    );
    try {
      return await this.#tryAcquireOrRenew(deadline.signal);
    } finally {
      deadline.cancel();
    }
  }

  /** Stops leading at once (idempotent): the signal aborts, then onStoppedLeading runs. */
  #endTerm(lostBecause: string | undefined): void {
    if (!this.#leading) return;
    if (lostBecause) this.#o.logger.error({ renewDeadlineMs: this.#o.renewDeadlineMs }, lostBecause);
    this.#lost = lostBecause !== undefined;
    this.#term.abort(new Error(lostBecause ?? "stopped leading"));
    this.#setLeading(false);
    this.#o.onStoppedLeading();
  }

  #setLeading(leading: boolean): void {
    this.#leading = leading;
    this.#o.metrics?.leaderStatus.set({ name: this.#o.name }, leading ? 1 : 0);
  }

  async #tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
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
        lease = await client.get(Leases, namespace, name, { signal });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        const created = await client.create(
          Leases,
          {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name, namespace },
            spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 },
          } as V1Lease,
          { signal },
        );
        this.#observe(created, now);
        this.#held = created;
        return true;
      }
      this.#observe(lease, now);
      const holder = lease.spec?.holderIdentity ?? "";
      const expired = this.#observedAt + (lease.spec?.leaseDurationSeconds ?? 0) * 1000 <= now;
      if (holder && holder !== identity && !expired) return false;
      const mine = holder === identity;
      const transitions = lease.spec?.leaseTransitions ?? 0;
      const updated = await client.replace(
        Leases,
        {
          ...lease,
          spec: {
            ...spec,
            acquireTime: mine ? lease.spec?.acquireTime : microTime(now),
            leaseTransitions: mine ? transitions : transitions + 1,
          },
        } as V1Lease,
        { signal },
      );
      this.#observe(updated, now);
      this.#held = updated;
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
    const { client, identity, clock, renewDeadlineMs, logger: log } = this.#o;
    const held = this.#held;
    if (held?.spec?.holderIdentity !== identity) return;
    const now = microTime(clock.now());
    const deadline = deadlineSignal(clock, renewDeadlineMs, () => new Error("releasing the lease timed out"));
    try {
      // Guarded by the resourceVersion we last wrote: if anyone wrote since, this is a 409.
      await client.replace(
        Leases,
        {
          ...held,
          spec: {
            holderIdentity: "",
            leaseDurationSeconds: 1,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: held.spec?.leaseTransitions ?? 0,
          },
        } as V1Lease,
        { signal: deadline.signal },
      );
      log.info("released lease");
    } catch (err) {
      log.warn({ err }, "releasing the lease failed; a standby takes over when it expires");
    } finally {
      deadline.cancel();
    }
  }
}

function abortedController(reason: string): AbortController {
  const c = new AbortController();
  c.abort(new Error(reason));
  return c;
}
