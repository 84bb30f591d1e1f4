// Small helpers on plain objects that controllers building desired state share.

/** A shallow copy of o without its undefined-valued keys (SSA bodies and status stay minimal). */
export function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/**
 * Freezes a value and everything it holds: for a parsed value shared between objects or versions,
 * so a reconciler that wrote into it throws instead of changing what the others read.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
