// Errors that stop a pass: a TerminalError (a spec the API server let through but the operator
// cannot serve) becomes Ready=False with the reason, state Failed and a Warning Event.

import { realClock } from "../../lib/clock.ts";
import { type Condition, setCondition } from "../../lib/conditions.ts";
import type { ReconcileContext } from "../../lib/controller.ts";
import type { TerminalError } from "../../lib/errors.ts";
import type { SpecServeDeps } from "./controller.ts";
import { updateSpecServeStatus } from "./status-write.ts";

/** Records a TerminalError on the object: Ready=False with the reason. */
export function recordTerminalError(deps: Pick<SpecServeDeps, "client" | "specServes" | "events" | "clock">) {
  return async (err: TerminalError, ctx: ReconcileContext) => {
    const raw = deps.specServes.store.get(ctx.namespace, ctx.name);
    if (!raw) return;
    const now = (deps.clock ?? realClock).now();
    const conditions = setCondition(
      (raw.status?.conditions ?? []) as Condition[],
      { type: "Ready", status: "False", reason: "InvalidSpec", message: err.message },
      raw.metadata?.generation,
      now,
    );
    deps.events.event(raw, "Warning", "InvalidSpec", err.message);
    await updateSpecServeStatus(deps.client, raw, { ...raw.status, state: "Failed", conditions });
  };
}
