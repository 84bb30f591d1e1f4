// The informer's store: objects by "namespace/name", plus an index by owner UID so a controller can
// list its children without a label selector. On the way in, managedFields are stripped (large,
// changed by every write, and no reconciler should read them) and string values are interned
// (intern.ts): at 10,000 objects, per-object copies of the same apiVersion, labels, owner names and
// uids were a large part of the cache. The owner index holds the objects themselves, one reference
// per owner for the usual single child, so it costs no key strings and no Set per owner.
import { StringInterner } from "./intern.ts";
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

/** One table for every cache in the process: a child's ownerReference shares its owner's uid and name. */
const sharedStrings = new StringInterner();

export class Cache<T extends KubeObject> implements Store<T> {
  readonly #objects = new Map<string, T>();
  readonly #owned = new Map<string, T | T[]>();
  readonly #strings: StringInterner;

  constructor(opts: { strings?: StringInterner } = {}) {
    this.#strings = opts.strings ?? sharedStrings;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.#objects.get(namespace ? `${namespace}/${name}` : name);
  }

  list(namespace?: string): T[] {
    const all = [...this.#objects.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  byOwner(ownerUid: string): T[] {
    const owned = this.#owned.get(ownerUid);
    if (owned === undefined) return [];
    return Array.isArray(owned) ? [...owned] : [owned];
  }

  /** Stores obj (stripped, strings interned); returns the previous version. */
  upsert(obj: T): T | undefined {
    const key = keyOf(obj);
    const old = this.#objects.get(key);
    if (old) this.#unindex(old);
    const stored = this.#strings.internDeep(stripManagedFields(obj));
    this.#objects.set(key, stored);
    for (const ref of stored.metadata?.ownerReferences ?? []) {
      const owned = this.#owned.get(ref.uid);
      if (owned === undefined) this.#owned.set(ref.uid, stored);
      else if (Array.isArray(owned)) {
        if (!owned.includes(stored)) owned.push(stored);
      } else if (owned !== stored) this.#owned.set(ref.uid, [owned, stored]);
    }
    return old;
  }

  remove(obj: T): T | undefined {
    const key = keyOf(obj);
    const old = this.#objects.get(key);
    if (!old) return undefined;
    this.#objects.delete(key);
    this.#unindex(old);
    return old;
  }

  #unindex(obj: T): void {
    for (const ref of obj.metadata?.ownerReferences ?? []) {
      const owned = this.#owned.get(ref.uid);
      if (owned === obj) this.#owned.delete(ref.uid);
      else if (Array.isArray(owned)) {
        const rest = owned.filter((o) => o !== obj);
        if (rest.length === 0) this.#owned.delete(ref.uid);
        else this.#owned.set(ref.uid, rest.length === 1 ? (rest[0] as T) : rest);
      }
    }
  }
}
