// A SpecServe parsed once per version for every controller that reads it: the informer replaces
// the cached object on each change, so a parse is kept per object (weakly). The SpecServe
// controller and the autoscaler both reconcile every version (each window brings two status
// writes), and a zod parse of a whole SpecServe was a few percent of a large fleet's CPU.
import { specServeResource } from "../../api/kinds.ts";
import type { SpecServeWire } from "./controller.ts";

const parses = new WeakMap<SpecServeWire, ReturnType<typeof specServeResource.safeParse>>();

/** specServeResource.safeParse of this cached object, computed at most once. */
export function parseSpecServe(raw: SpecServeWire): ReturnType<typeof specServeResource.safeParse> {
  let parsed = parses.get(raw);
  if (!parsed) {
    parsed = specServeResource.safeParse(raw);
    parses.set(raw, parsed);
  }
  return parsed;
}
