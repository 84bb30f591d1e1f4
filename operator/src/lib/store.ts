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
  /** Objects in namespace whose label `key` is `value` (an index per label key, built on first use). */
  withLabel(namespace: string | undefined, key: string, value: string): T[];
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
  /** By label key, then "namespace/value": the objects carrying it (one, or several). */
  readonly #labelled = new Map<string, Map<string, T | T[]>>();
  readonly #strings: StringInterner;

  constructor(opts: { strings?: StringInterner } = {}) {
    this.#strings = opts.strings ?? sharedStrings;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.#objects.get(namespace ? `${namespace}/${name}` : name);
  }

  list(namespace?: string): T[] {
    if (namespace === undefined) return [...this.#objects.values()];
    const out: T[] = [];
    for (const o of this.#objects.values()) if (o.metadata?.namespace === namespace) out.push(o);
    return out;
  }

  byOwner(ownerUid: string): T[] {
    return copyOf(this.#owned.get(ownerUid));
  }

  withLabel(namespace: string | undefined, key: string, value: string): T[] {
    let index = this.#labelled.get(key);
    if (!index) {
      // Built once per label key a reconciler asks for, then kept up to date by upsert and remove
      // (a SpecServe's pods out of every pod of the namespace, each window, was a fleet's garbage).
      index = new Map();
      this.#labelled.set(key, index);
      for (const o of this.#objects.values()) addTo(index, labelKeyOf(o, key), o);
    }
    return copyOf(index.get(`${namespace ?? ""}/${value}`));
  }

  /** Stores obj (stripped, strings interned); returns the previous version. */
  upsert(obj: T): T | undefined {
    const key = keyOf(obj);
    const old = this.#objects.get(key);
    if (old) this.#unindex(old);
    const stored = this.#strings.internDeep(stripManagedFields(obj));
    this.#objects.set(key, stored);
    for (const ref of stored.metadata?.ownerReferences ?? []) addTo(this.#owned, ref.uid, stored);
    for (const [label, index] of this.#labelled) addTo(index, labelKeyOf(stored, label), stored);
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
    for (const ref of obj.metadata?.ownerReferences ?? []) removeFrom(this.#owned, ref.uid, obj);
    for (const [label, index] of this.#labelled) removeFrom(index, labelKeyOf(obj, label), obj);
  }
}

/** "namespace/value" of an object's label, or undefined when it has none. */
function labelKeyOf(obj: KubeObject, label: string): string | undefined {
  const value = obj.metadata?.labels?.[label];
  return value === undefined ? undefined : `${obj.metadata?.namespace ?? ""}/${value}`;
}

const copyOf = <T>(entry: T | T[] | undefined): T[] =>
  entry === undefined ? [] : Array.isArray(entry) ? [...entry] : [entry];

/** Adds obj under key: the object itself for the usual single one, an array past it. */
function addTo<T>(index: Map<string, T | T[]>, key: string | undefined, obj: T): void {
  if (key === undefined) return;
  const entry = index.get(key);
  if (entry === undefined) index.set(key, obj);
  else if (Array.isArray(entry)) {
    if (!entry.includes(obj)) entry.push(obj);
  } else if (entry !== obj) index.set(key, [entry, obj]);
}

function removeFrom<T>(index: Map<string, T | T[]>, key: string | undefined, obj: T): void {
  if (key === undefined) return;
  const entry = index.get(key);
  if (entry === obj) index.delete(key);
  else if (Array.isArray(entry)) {
    const rest = entry.filter((o) => o !== obj);
    if (rest.length === 0) index.delete(key);
    else index.set(key, rest.length === 1 ? (rest[0] as T) : rest);
  }
}
