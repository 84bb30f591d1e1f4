// Server-side apply of a controller's children, skipping the applies that provably change nothing:
// this process applied the same desired content before, and the informer still caches the very
// version that apply returned (any write by anyone since, a deletion or a lost label included,
// changes or removes the cached version). A child no informer caches is applied again once
// `resyncMs` has passed. The memory is this process's own: after a restart every child is applied
// once. A controller whose pass runs every window (status.signals, the autoscaler's writes) then
// costs no API write per child per pass; a changed spec, a drifted or deleted child is applied at
// the next pass as before.
import { createHash } from "node:crypto";
import { type Applied, type ApplyOptions, apply } from "./apply.ts";
import type { Client } from "./client.ts";
import type { Clock } from "./clock.ts";
import type { KubeObject } from "./rest.ts";
import type { Store } from "./store.ts";

/** Where a child is cached, and how its own writes reach the cache (an Informer has both). */
export interface ChildCache {
  readonly store: Store<KubeObject>;
  recordWrite(basedOn: KubeObject | undefined, written: KubeObject | undefined): void;
}

interface Memo {
  digest: string;
  resourceVersion: string | undefined;
  atMs: number;
}

export interface AppliedChildrenOptions extends ApplyOptions {
  clock: Clock;
  /** How long an uncached child's apply is trusted before it is applied again (default 10 min). */
  resyncMs?: number;
}

export const DEFAULT_RESYNC_MS = 10 * 60_000;

export class AppliedChildren {
  /** By owner key, then by child (kind, namespace, name). */
  readonly #memos = new Map<string, Map<string, Memo>>();
  readonly #client: Client;
  readonly #opts: AppliedChildrenOptions;
  readonly #resyncMs: number;

  constructor(client: Client, opts: AppliedChildrenOptions) {
    this.#client = client;
    this.#opts = opts;
    this.#resyncMs = opts.resyncMs ?? DEFAULT_RESYNC_MS;
  }

  /**
   * Applies desired unless nothing can have changed since this process last applied it (see the
   * file comment). Returns what the apply returned, or the cached object when skipped (undefined
   * for an uncached child).
   */
  async apply<T extends KubeObject>(
    owner: string,
    desired: T,
    cache?: ChildCache,
  ): Promise<{ object: Applied<T> | undefined; applied: boolean }> {
    const { namespace, name } = desired.metadata ?? {};
    const child = `${desired.kind} ${namespace ?? ""}/${name ?? ""}`;
    const digest = createHash("sha256").update(JSON.stringify(desired)).digest("base64");
    const memo = this.#memos.get(owner)?.get(child);
    const cached = cache?.store.get(namespace, name ?? "");
    const now = this.#opts.clock.now();
    if (memo && memo.digest === digest) {
      const unchanged = cache
        ? cached !== undefined &&
          !cached.metadata?.deletionTimestamp &&
          cached.metadata?.resourceVersion === memo.resourceVersion
        : now - memo.atMs < this.#resyncMs;
      if (unchanged) return { object: cached as Applied<T> | undefined, applied: false };
    }
    const written = await apply(this.#client, desired, this.#opts);
    cache?.recordWrite(cached, written as KubeObject);
    let memos = this.#memos.get(owner);
    if (!memos) {
      memos = new Map();
      this.#memos.set(owner, memos);
    }
    memos.set(child, { digest, resourceVersion: written.metadata?.resourceVersion, atMs: now });
    return { object: written, applied: true };
  }

  /** Forgets an owner's children (the owner is gone). */
  forget(owner: string): void {
    this.#memos.delete(owner);
  }
}
