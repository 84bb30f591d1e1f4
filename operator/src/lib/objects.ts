// Small helpers on plain objects that controllers building desired state share.

/** A shallow copy of o without its undefined-valued keys (SSA bodies and status stay minimal). */
export function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
