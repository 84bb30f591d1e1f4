// Cross-field rules are written once, in CEL. The CRD carries them as x-kubernetes-validations so the
// API server enforces them at admission; the zod schema evaluates the same expressions with a CEL
// interpreter so the operator and the runtime refuse exactly what the API server refuses.
import { parse } from "@marcbachmann/cel-js";
import type { z } from "zod";

export interface CelRule {
  /** CEL expression over `self` (and `oldSelf` for transition rules). */
  rule: string;
  /** Message shown to the user; it names the field. */
  message: string;
  /** JSON-path-like location of the offending field relative to the node, e.g. ".autoscaling.minReplicas". */
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}

/** A rule comparing the new object with the stored one (immutability); the API server checks it on update. */
export const isTransitionRule = (r: CelRule): boolean => /\boldSelf\b/.test(r.rule);

/** Turns ".a.b[0]" into ["a", "b", 0] for zod issue paths. */
export function fieldPathSegments(fieldPath: string | undefined): (string | number)[] {
  if (!fieldPath) return [];
  return [...fieldPath.matchAll(/\.([A-Za-z0-9_]+)|\[(\d+)\]|\['([^']+)'\]/g)].map((m) =>
    m[2] !== undefined ? Number(m[2]) : (m[1] ?? m[3] ?? ""),
  );
}

const compiled = new Map<string, ReturnType<typeof parse>>();

/** Evaluates one rule; an expression that cannot be evaluated counts as a violation, never as a pass. */
export function celHolds(rule: CelRule, bindings: Record<string, unknown>): boolean {
  try {
    let program = compiled.get(rule.rule);
    if (!program) {
      program = parse(rule.rule);
      compiled.set(rule.rule, program);
    }
    return program(bindings) === true;
  } catch {
    return false;
  }
}

/**
 * Attaches CEL rules to an object schema: as x-kubernetes-validations for the CRD and as a zod
 * refinement for run-time validation. Transition rules only go to the CRD (and validateUpdate).
 */
export function withRules<T extends z.ZodType>(schema: T, rules: CelRule[]): T {
  const refined = schema.superRefine((value, ctx) => {
    for (const r of rules) {
      if (isTransitionRule(r)) continue;
      if (!celHolds(r, { self: value })) {
        ctx.addIssue({ code: "custom", message: r.message, path: fieldPathSegments(r.fieldPath) });
      }
    }
  }) as unknown as T;
  const existing = schema.meta() ?? {};
  return refined.meta({ ...existing, "x-kubernetes-validations": rules }) as T;
}

/** CEL: exactly one of the named optional fields is set. */
export const exactlyOne = (...fields: string[]): string =>
  `[${fields.map((f) => `has(self.${f})`).join(", ")}].filter(x, x).size() == 1`;

/** CEL: at most one of the named optional fields is set. */
export const atMostOne = (...fields: string[]): string =>
  `[${fields.map((f) => `has(self.${f})`).join(", ")}].filter(x, x).size() <= 1`;

/** A spec-level rule that refuses changes to a field after creation. */
export const immutable = (field: string): CelRule => ({
  rule: `has(self.${field}) == has(oldSelf.${field}) && (!has(self.${field}) || self.${field} == oldSelf.${field})`,
  message: `spec.${field} is immutable: create a new resource to change it`,
  fieldPath: `.${field}`,
  reason: "FieldValueForbidden",
});
