// Run-time validation of SpecOps objects with the same rules the API server enforces: the zod
// schemas (types, ranges, patterns, defaults) and the CEL rules, including transition rules on update.
import type { z } from "zod";
import {
  acceptanceEvalResource,
  draftTrainingResource,
  KINDS,
  type KindName,
  specServeResource,
} from "./kinds.ts";
import { type CelRule, celHolds, isTransitionRule } from "./rules.ts";

export interface FieldError {
  /** Dotted path as the API server prints it, e.g. spec.autoscaling.minReplicas. */
  field: string;
  message: string;
}

export type Validation<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

const RESOURCE_SCHEMAS: { [K in KindName]: z.ZodType } = {
  DraftTraining: draftTrainingResource,
  AcceptanceEval: acceptanceEvalResource,
  SpecServe: specServeResource,
};

export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (acc, seg) => (typeof seg === "number" ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)),
    "",
  );
}

export function isKindName(kind: unknown): kind is KindName {
  return KINDS.some((k) => k.kind === kind);
}

/** Validates a whole object (apiVersion, kind, metadata, spec, status) and applies defaults. */
export function validateResource(obj: unknown): Validation<unknown> {
  const kind = (obj as { kind?: unknown } | null)?.kind;
  if (!isKindName(kind)) {
    return {
      ok: false,
      errors: [{ field: "kind", message: `must be one of ${KINDS.map((k) => k.kind).join(", ")}` }],
    };
  }
  const result = RESOURCE_SCHEMAS[kind].safeParse(obj);
  if (result.success) return { ok: true, value: result.data };
  return {
    ok: false,
    errors: result.error.issues.map((i) => ({ field: formatPath(i.path), message: i.message })),
  };
}

function transitionRules(kind: KindName): CelRule[] {
  const def = KINDS.find((k) => k.kind === kind);
  const rules = (def?.spec.meta()?.["x-kubernetes-validations"] as CelRule[] | undefined) ?? [];
  return rules.filter(isTransitionRule);
}

/** Validates an update: the new object on its own, then the spec's transition rules (immutability). */
export function validateUpdate(oldObj: unknown, newObj: unknown): Validation<unknown> {
  const fresh = validateResource(newObj);
  if (!fresh.ok) return fresh;
  const stored = validateResource(oldObj);
  if (!stored.ok) return fresh;
  const kind = (newObj as { kind: KindName }).kind;
  const self = (fresh.value as { spec: unknown }).spec;
  const oldSelf = (stored.value as { spec: unknown }).spec;
  const errors = transitionRules(kind)
    .filter((r) => !celHolds(r, { self, oldSelf }))
    .map((r) => ({ field: `spec${r.fieldPath ?? ""}`, message: r.message }));
  return errors.length ? { ok: false, errors } : fresh;
}
