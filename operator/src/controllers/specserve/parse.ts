// A SpecServe parsed once per version for every controller that reads it: the informer replaces
// the cached object on each change, so a parse is kept per object (weakly). The SpecServe
// controller and the autoscaler both reconcile every version (each window brings two status
// writes), and a zod parse of a whole SpecServe was a few percent of a large fleet's CPU.
// Most versions differ only in status, so the spec (its schema and CEL rules, the larger part of a
// parse) is validated once per generation (which the API server moves on every spec change) and
// shared, frozen, by that generation's versions; the rest is parsed per version.
import { specServeResource } from "../../api/kinds.ts";
import { specServeSpec } from "../../api/specserve.ts";
import { deepFreeze } from "../../lib/objects.ts";
import type { SpecServeWire } from "./controller.ts";

type Parsed = ReturnType<typeof specServeResource.safeParse>;
type ParsedSpec = NonNullable<Extract<Parsed, { success: true }>["data"]>["spec"];

const parses = new WeakMap<SpecServeWire, Parsed>();
/** By uid: the valid spec of one generation. */
const specs = new Map<string, { generation: number; spec: ParsedSpec }>();
const SPECS_MAX = 10_000;
const everythingButSpec = specServeResource.omit({ spec: true });

/** specServeResource.safeParse of this cached object, computed at most once. */
export function parseSpecServe(raw: SpecServeWire): Parsed {
  let parsed = parses.get(raw);
  if (!parsed) {
    // An invalid spec or status (or one without uid and generation) takes the whole parse, whose
    // errors name the field from the object's root.
    parsed = parseBySpecGeneration(raw) ?? specServeResource.safeParse(raw);
    parses.set(raw, parsed);
  }
  return parsed;
}

function parseBySpecGeneration(raw: SpecServeWire): Parsed | undefined {
  const uid = raw.metadata?.uid;
  const generation = raw.metadata?.generation;
  if (!uid || generation === undefined) return undefined;
  let known = specs.get(uid);
  if (!known || known.generation !== generation) {
    const spec = specServeSpec.safeParse(raw.spec);
    if (!spec.success) return undefined;
    known = { generation, spec: deepFreeze(spec.data) };
    if (specs.size >= SPECS_MAX) specs.clear();
    specs.set(uid, known);
  }
  const { spec: _, ...rest } = raw;
  const others = everythingButSpec.safeParse(rest);
  if (!others.success) return undefined;
  return { success: true, data: { ...others.data, spec: known.spec } } as Parsed;
}
