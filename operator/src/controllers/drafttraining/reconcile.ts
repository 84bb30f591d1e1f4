// One reconcile pass of a DraftTraining, level-triggered: read the object and its children from the
// caches, decide (pipeline.ts), bring the current stage's children to their desired state, fold in
// progress, write the status this controller owns, then emit the Events that status describes. An
// error that stops the pass is written into status (Reconciled=False with the server's message) and
// sent as a Warning Event before it is thrown, so the key is retried with backoff.
import { realClock } from "../../lib/clock.ts";
import type { ReconcileContext, ReconcileResult } from "../../lib/controller.ts";
import { TerminalError } from "../../lib/errors.ts";
import { addFinalizer } from "../../lib/finalizers.ts";
import { syncEvaluation, syncStage } from "./children.ts";
import {
  type DraftTrainingDeps,
  type DraftTrainingObject,
  DraftTrainings,
  FINALIZER,
  type JobObject,
} from "./controller.ts";
import type { JobStage } from "./desired.ts";
import { describeFailure, type SyncFailure, withFailure } from "./failures.ts";
import { observeJob } from "./observe.ts";
import { type Action, decide, type PipelineEvent } from "./pipeline.ts";
import { progressIntervalMs, storageLayout } from "./plan.ts";
import { withProgress } from "./poll.ts";
import { readObserved } from "./read.ts";
import { conditionsOf, writeStatus } from "./status.ts";
import { finalize, restartStage, tearDownRegenServer } from "./teardown.ts";

export function draftTrainingReconciler(deps: DraftTrainingDeps) {
  const clock = deps.clock ?? realClock;
  const build = { defaultImage: deps.image, progressPort: deps.progressPort };

  /** Carries out the decided actions; returns the stage Job when one was just created. */
  async function act(dt: DraftTrainingObject, actions: Action[]) {
    let created: { stage: JobStage; job: JobObject } | undefined;
    for (const action of actions) {
      switch (action.type) {
        case "runStage": {
          const job = await syncStage(deps, dt, action.stage, action.suspend, build);
          if (job) created = { stage: action.stage, job };
          break;
        }
        case "restartStage":
          await restartStage(deps, dt, action.stage);
          break;
        case "runEvaluation":
          await syncEvaluation(deps, dt);
          break;
        case "tearDownRegenServer":
          await tearDownRegenServer(deps, dt);
          break;
      }
    }
    return created;
  }

  return async function reconcile(_key: string, ctx: ReconcileContext): Promise<ReconcileResult> {
    let dt = deps.drafts.store.get(ctx.namespace, ctx.name);
    if (!dt) return undefined;
    const now = clock.now();
    if (dt.metadata.deletionTimestamp) {
      const deleting = dt;
      return finalize(deps, deleting, ctx, now).catch((err) => {
        // A deletion stuck on a refused call says why, where `kubectl describe` shows it.
        const described = describeFailure(err);
        if (described)
          deps.events.event(deleting, "Warning", described.reason, `cleaning up: ${described.message}`);
        throw err;
      });
    }
    if (dt.invalid) throw new TerminalError(dt.invalid, { reason: "InvalidSpec" });
    const { stage, observedGeneration } = dt.status ?? {};
    // Finished: nothing runs any more, only the regeneration server may still need tearing down. A
    // failed run whose spec changed since (a new generation) runs again from the failed stage.
    if (stage === "Succeeded" || (stage === "Failed" && observedGeneration === dt.metadata.generation)) {
      await tearDownRegenServer(deps, dt);
      return undefined;
    }

    const observed = readObserved(deps, dt, storageLayout(dt));
    let decision = decide(dt, observed, now);
    let failure: { described: SyncFailure; err: unknown } | undefined;
    try {
      const withFinalizer = await addFinalizer(deps.client, DraftTrainings, dt, FINALIZER);
      if (withFinalizer) {
        deps.drafts.recordWrite(dt, withFinalizer);
        dt = deps.drafts.store.get(ctx.namespace, ctx.name) ?? dt;
      }
      const created = await act(dt, decision.actions);
      if (created) {
        // Report the stage just started in this same status write rather than on the next pass.
        observed.jobs[created.stage] = observeJob(created.job, []);
        decision = decide(dt, observed, now);
      }
    } catch (err) {
      const described = describeFailure(err);
      if (!described) throw err;
      failure = { described, err };
    }

    let { status } = decision;
    const events: PipelineEvent[] = [...decision.events];
    if (decision.active && !failure) {
      const polled = await withProgress(deps, dt, status, now);
      status = polled.status;
      events.push(...polled.events);
    }
    const conditions = failure
      ? withFailure(conditionsOf(status), failure.described, dt.metadata.generation, now)
      : conditionsOf(status).filter((c) => c.type !== "Reconciled");
    if (failure) events.push({ type: "Warning", ...failure.described });
    try {
      await writeStatus(deps, dt, { ...status, conditions });
    } catch (err) {
      // The status cannot say it, so at least the Event does.
      const described = describeFailure(err);
      if (described)
        deps.events.event(dt, "Warning", described.reason, `writing status: ${described.message}`);
      throw err;
    }
    // Events describe the status just written, so they go out only once it is.
    for (const e of events) deps.events.event(dt, e.type, e.reason, e.message);
    if (failure) throw failure.err;
    return decision.active ? { requeueAfterMs: progressIntervalMs(dt) } : undefined;
  };
}
