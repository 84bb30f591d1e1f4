// Child object names: deterministic (a restarted operator finds what it made) and within
// Kubernetes' 63-character limit for names that end up in labels and pod hostnames.
import { createHash } from "node:crypto";

const MAX = 63;

/** `${base}-${suffix}`, shortened with a stable hash when it would exceed 63 characters. */
export function childName(base: string, suffix: string): string {
  const full = `${base}-${suffix}`;
  if (full.length <= MAX) return full;
  const hash = createHash("sha256").update(full).digest("hex").slice(0, 8);
  const keep = MAX - suffix.length - hash.length - 2;
  return `${base.slice(0, keep).replace(/-+$/, "")}-${hash}-${suffix}`;
}
