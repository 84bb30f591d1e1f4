// One reconcile pass of an AcceptanceEval, level-triggered: read it, its draft and its Job from the
// caches, label it for leaderboards, decide (decide.ts), bring this generation's children to their
// desired state, write the status this controller owns, then emit the Events that status describes
// and export its figures. An error that stops the pass is written into status (Reconciled=False with
// the server's message) and sent as a Warning Event before it is thrown, so the key is retried.
import { type AcceptanceEval, acceptanceEvalResource } from "../../api/kinds.ts";
import { realClock } from "../../lib/clock.ts";
import { setCondition } from "../../lib/conditions.ts";
import type { ReconcileContext, ReconcileResult } from "../../lib/controller.ts";
import { isNotFound, TerminalError } from "../../lib/errors.ts";
import { Jobs } from "../../lib/rest.ts";
import { describeFailure, withFailure } from "../drafttraining/failures.ts";
import { syncEval } from "./children.ts";
import {
  type AcceptanceEvalDeps,
  type AcceptanceEvalObject,
  AcceptanceEvals,
  FIELD_MANAGER,
} from "./controller.ts";
import { type AcceptanceEvalStatus, type Action, decide, type EvalEvent } from "./decide.ts";
import { decideLive, type LiveAction } from "./live.ts";
import { actLive, measureFinished, readLive, withSpecServeModel } from "./liveio.ts";
import { leaderboardLabels } from "./plan.ts";
import { readObserved } from "./read.ts";
import { conditionsOf, writeStatus } from "./status.ts";

export function acceptanceEvalReconciler(deps: AcceptanceEvalDeps) {
  const clock = deps.clock ?? realClock;

  async function act(
    ae: AcceptanceEval,
    actions: (Action | LiveAction)[],
    signal: AbortSignal | undefined,
    now: number,
  ): Promise<void> {
    for (const action of actions) {
      if (action.type === "runEval") await syncEval(deps, ae, action.draft);
      else if (action.type === "snapshot" || action.type === "runLoad")
        await actLive(deps, ae, action, signal, now);
      else
        await deps.client
          .delete(Jobs, ae.metadata.namespace, action.name, { propagationPolicy: "Background" })
          .catch((err) => {
            if (!isNotFound(err)) throw err;
          });
    }
  }

  /** The leaderboard labels, under this controller's field manager, when they differ. */
  async function ensureLabels(raw: AcceptanceEvalObject, ae: AcceptanceEval): Promise<AcceptanceEvalObject> {
    const want = leaderboardLabels(ae);
    const have = raw.metadata?.labels ?? {};
    if (Object.entries(want).every(([k, v]) => have[k] === v)) return raw;
    // A merge patch, not an apply: an apply racing the object's deletion would create it again.
    const written = await deps.client.patch(
      AcceptanceEvals,
      ae.metadata.namespace,
      ae.metadata.name ?? "",
      { metadata: { labels: want } },
      { type: "merge", fieldManager: FIELD_MANAGER },
    );
    deps.evals.recordWrite(raw, written);
    return deps.evals.store.get(ae.metadata.namespace, ae.metadata.name ?? "") ?? written;
  }

  return async function reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult> {
    let raw = deps.evals.store.get(ctx.namespace, ctx.name);
    if (!raw || raw.metadata?.deletionTimestamp) {
      // Children are owned (garbage-collected with the object); only the metrics are ours to drop.
      deps.metrics.remove(key);
      return undefined;
    }
    const parsed = acceptanceEvalResource.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new TerminalError(`invalid AcceptanceEval: ${issue?.path.join(".")}: ${issue?.message}`, {
        reason: "InvalidSpec",
      });
    }
    const ae: AcceptanceEval = parsed.data;
    const now = clock.now();
    let failure: { reason: string; message: string; err: unknown } | undefined;
    let decision: ReturnType<typeof decideLive>;
    if (ae.spec.draft.specServeRef) {
      // Live: a finished window is read (scrapes) before deciding, so deciding stays pure.
      const live = readLive(deps, ae);
      try {
        await measureFinished(deps, ae, live, ctx.signal, now);
      } catch (err) {
        const described = describeFailure(err);
        if (!described) throw err;
        failure = { ...described, err };
      }
      decision = failure ? { status: ae.status ?? {}, actions: [], events: [] } : decideLive(ae, live, now);
    } else decision = decide(ae, readObserved(deps, ae), now);
    try {
      raw = await ensureLabels(raw, ae.spec.draft.specServeRef ? withSpecServeModel(deps, ae) : ae);
      if (!failure) await act(ae, decision.actions, ctx.signal, now);
    } catch (err) {
      const described = describeFailure(err);
      if (!described) throw err;
      failure = { ...described, err };
    }
    const events: EvalEvent[] = [...decision.events];
    const conditions = failure
      ? withFailure(conditionsOf(decision.status), failure, ae.metadata.generation, now).filter(
          // withFailure also sets Ready and Progressing, which this kind does not have.
          (c) => c.type !== "Ready" && c.type !== "Progressing",
        )
      : conditionsOf(decision.status).filter((c) => c.type !== "Reconciled");
    if (failure) events.push({ type: "Warning", reason: failure.reason, message: failure.message });
    const status: AcceptanceEvalStatus = {
      ...decision.status,
      conditions: conditions as AcceptanceEvalStatus["conditions"],
    };
    try {
      await writeStatus(deps, raw, status);
    } catch (err) {
      const described = describeFailure(err);
      if (described)
        deps.events.event(raw, "Warning", described.reason, `writing status: ${described.message}`);
      throw err;
    }
    // Events describe the status just written, so they go out only once it is.
    for (const e of events) deps.events.event(raw, e.type, e.reason, e.message);
    deps.metrics.record({ ...ae, metadata: { ...ae.metadata, labels: raw.metadata?.labels }, status });
    if (failure) throw failure.err;
    return undefined;
  };
}

/** Records a TerminalError on the object: phase Failed and Succeeded=False with the error's reason. */
export function recordTerminalError(deps: Pick<AcceptanceEvalDeps, "client" | "evals" | "events" | "clock">) {
  return async (err: TerminalError, ctx: ReconcileContext) => {
    const raw = deps.evals.store.get(ctx.namespace, ctx.name);
    if (!raw) return;
    const now = (deps.clock ?? realClock).now();
    const generation = raw.metadata?.generation;
    const conditions = setCondition(
      conditionsOf(raw.status),
      { type: "Succeeded", status: "False", reason: err.reason, message: err.message },
      generation,
      now,
    );
    await writeStatus(deps, raw, {
      ...raw.status,
      observedGeneration: generation,
      phase: "Failed",
      conditions: conditions as AcceptanceEvalStatus["conditions"],
    });
    deps.events.event(raw, "Warning", err.reason, err.message);
  };
}
