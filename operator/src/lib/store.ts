// The informer's store: objects by "namespace/name", plus an index by controller-owner UID so a
// controller can list its children without a label selector. managedFields are stripped on the
// way in: they are large, change on every write and no reconciler should read them.
import { type KubeObject, keyOf } from "./rest.ts";

export interface Store<T extends KubeObject> {
  get(namespace: string | undefined, name: string): T | undefined;
  /** All objects, or only those in namespace. */
  list(namespace?: string): T[];
  /** Objects whose ownerReferences name ownerUid (any owner, controller or not). */
  byOwner(ownerUid: string): T[];
}

export function stripManagedFields<T extends KubeObject>(obj: T): T {
  if (!obj.metadata?.managedFields) return obj;
  const { managedFields: _, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

export class Cache<T extends KubeObject> implements Store<T> {
  readonly #objects = new Map<string, T>();
  readonly #owned = new Map<string, Set<string>>();

  get(namespace: string | undefined, name: string): T | undefined {
    return this.#objects.get(namespace ? `${namespace}/${name}` : name);
  }

  list(namespace?: string): T[] {
    const all = [...this.#objects.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  byOwner(ownerUid: string): T[] {
    return [...(this.#owned.get(ownerUid) ?? [])].flatMap((k) => this.#objects.get(k) ?? []);
  }

  /** Stores obj (stripped); returns the previous version. */
  upsert(obj: T): T | undefined {
    const key = keyOf(obj);
    const old = this.#objects.get(key);
    if (old) this.#unindex(key, old);
    const stored = stripManagedFields(obj);
    this.#objects.set(key, stored);
    for (const ref of stored.metadata?.ownerReferences ?? []) {
      const keys = this.#owned.get(ref.uid) ?? new Set<string>();
      this.#owned.set(ref.uid, keys);
      keys.add(key);
    }
    return old;
  }

  remove(obj: T): T | undefined {
    const key = keyOf(obj);
    const old = this.#objects.get(key);
    if (!old) return undefined;
    this.#objects.delete(key);
    this.#unindex(key, old);
    return old;
  }

  #unindex(key: string, obj: T): void {
    for (const ref of obj.metadata?.ownerReferences ?? []) {
      const keys = this.#owned.get(ref.uid);
      keys?.delete(key);
      if (keys?.size === 0) this.#owned.delete(ref.uid);
    }
  }
}
