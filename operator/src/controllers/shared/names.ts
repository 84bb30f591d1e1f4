// Names and label values derived from a resource's name: deterministic (a restarted operator finds
// what it made) and within Kubernetes' limits, which a valid resource name (up to 253 characters,
// dots allowed) can exceed. Too-long values are shortened with a stable hash of the full value, so
// two long names never collide and the same name always gives the same result.
import { createHash } from "node:crypto";

/** Names that end up in labels (job-name), pod hostnames and Services: DNS-1123 labels. */
const MAX_LABEL = 63;

const hash8 = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 8);

/** `${base}-${suffix}`, shortened with a stable hash when it would exceed 63 characters. */
export function childName(base: string, suffix: string): string {
  const full = `${base}-${suffix}`;
  if (full.length <= MAX_LABEL) return full;
  const keep = MAX_LABEL - suffix.length - 8 - 2;
  return `${base.slice(0, keep).replace(/[-.]+$/, "")}-${hash8(full)}-${suffix}`;
}

/**
 * A Service name (DNS-1035 label: lowercase letters, digits and '-', starting with a letter) for a
 * child: dots of a DNS-subdomain resource name become '-', a leading digit gets an 's' before it.
 * Names that are already valid are returned unchanged, so existing Services keep their names.
 */
export function serviceName(base: string, suffix: string): string {
  const name = childName(base, suffix);
  if (/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(name)) return name;
  const cleaned = name.replaceAll(".", "-").replace(/-{2,}/g, "-");
  return /^[a-z]/.test(cleaned) ? cleaned : childName(`s${base.replaceAll(".", "-")}`, suffix);
}

/** A label value (at most 63 characters) standing for value: itself when short, else a stable hash-shortened form. */
export function labelValue(value: string): string {
  if (value.length <= MAX_LABEL) return value;
  return `${value.slice(0, MAX_LABEL - 9).replace(/[-._]+$/, "")}-${hash8(value)}`;
}
