// Which updates of a SpecServe are worth a pass of each of its two controllers. Both write the
// SpecServe's status (the SpecServe controller its state, conditions, replica counts, rollout and
// signals; the autoscaler its decisions), and each status write comes back as an update to both:
// without these predicates every window's two writes cost each controller two more passes that
// read nothing new. A status write changes neither metadata.generation nor the metadata below, so
// an update is judged by the metadata, the generation and the status fields the pass reads. Pure.
import { isDeepStrictEqual } from "node:util";
import type { KubeObject } from "../../lib/rest.ts";

type Obj = KubeObject & { status?: Record<string, unknown> };

/** What a pass of either controller reads of metadata (labels, annotations such as paused, ...). */
function metadataChanged(old: Obj, obj: Obj): boolean {
  const a = old.metadata ?? {};
  const b = obj.metadata ?? {};
  return (
    a.uid !== b.uid ||
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    !isDeepStrictEqual(a.labels ?? {}, b.labels ?? {}) ||
    !isDeepStrictEqual(a.annotations ?? {}, b.annotations ?? {}) ||
    !isDeepStrictEqual(a.finalizers ?? [], b.finalizers ?? []) ||
    !isDeepStrictEqual(a.ownerReferences ?? [], b.ownerReferences ?? [])
  );
}

/** The autoscaler's length proposal, as far as the SpecServe controller acts on it: only to apply. */
function lengthsToApply(o: Obj): unknown {
  const proposal = (o.status?.autoscaling as { speculationLength?: { action?: string } } | undefined)
    ?.speculationLength;
  return proposal?.action === "apply" ? proposal : undefined;
}

/**
 * The SpecServe controller: any metadata or spec change; of status only what its pass reads as
 * input, the rollout state (kept in status so that a restart neither loses nor doubles a canary)
 * and the autoscaler's speculation-length proposal while its action is apply (it is rolled out
 * then; a recommendation only is not read). Its own outputs (state,
 * conditions, counts, signals) and the autoscaler's decisions are left to its periodic pass,
 * which every SpecServe has (the signals window), so a hand edit of them is still put right.
 */
export function specServeUpdateMatters(old: Obj, obj: Obj): boolean {
  return (
    metadataChanged(old, obj) ||
    !isDeepStrictEqual(old.status?.rollout, obj.status?.rollout) ||
    !isDeepStrictEqual(lengthsToApply(old), lengthsToApply(obj))
  );
}

/**
 * The autoscaler: any metadata or spec change (spec.replicas through /scale included: a CRD's
 * scale subresource bumps the generation). It decides on its own clock, once a window, and reads
 * the status it uses (its last decision, the promoted draft, the applied lengths) from the cache
 * when it decides, so no status write needs to wake it.
 */
export function autoscalerUpdateMatters(old: Obj, obj: Obj): boolean {
  return metadataChanged(old, obj);
}
