// String interning for cached objects. JSON.parse gives every object its own copy of every string
// value, so 10,000 cached objects hold 10,000 copies of "specops.dev/v1alpha1", of each label key's
// value, of their owner's name and uid, of timestamps written in the same second. Cached objects
// live long; passing their strings through one table keeps one copy of each. The table is bounded:
// when it is full it starts over (strings already shared stay shared), so values of deleted objects
// cannot pile up in it.

export interface InternOptions {
  /** Entries before the table starts over. Default 131,072 (a few MB at most). */
  maxEntries?: number;
  /** Longer strings are kept as they are (rarely repeated, costly to hash). Default 128. */
  maxLength?: number;
}

/** Values that are unique per object version and never worth a table entry. */
const SKIPPED_KEYS = new Set(["resourceVersion"]);

export class StringInterner {
  readonly #table = new Map<string, string>();
  readonly #maxEntries: number;
  readonly #maxLength: number;

  constructor(opts: InternOptions = {}) {
    this.#maxEntries = opts.maxEntries ?? 131_072;
    this.#maxLength = opts.maxLength ?? 128;
  }

  get size(): number {
    return this.#table.size;
  }

  /** The table's copy of s (s itself the first time). */
  intern(s: string): string {
    if (s.length > this.#maxLength) return s;
    const shared = this.#table.get(s);
    if (shared !== undefined) return shared;
    if (this.#table.size >= this.#maxEntries) this.#table.clear();
    this.#table.set(s, s);
    return s;
  }

  /**
   * Replaces, in place, every string value in value's plain objects and arrays by its shared copy;
   * returns value. Only for objects this process owns (fresh from the wire or a transform); frozen
   * objects are left as they are.
   */
  internDeep<T>(value: T): T {
    this.#walk(value);
    return value;
  }

  #walk(value: unknown): void {
    if (typeof value !== "object" || value === null || Object.isFrozen(value)) return;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const v = value[i];
        if (typeof v === "string") value[i] = this.intern(v);
        else this.#walk(v);
      }
      return;
    }
    const o = value as Record<string, unknown>;
    for (const k in o) {
      const v = o[k];
      if (typeof v === "string") {
        if (!SKIPPED_KEYS.has(k)) o[k] = this.intern(v);
      } else this.#walk(v);
    }
  }
}
