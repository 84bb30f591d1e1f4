// One pass of the SpecServe controller: resolve the draft (waiting while a referenced DraftTraining
// trains), apply the serve Task, the serving workload (a Deployment, or a LeaderWorkerSet for
// multi-node replicas), the Service and the PodDisruptionBudget with server-side apply, and fold the
// workload's and pods' state into status, written only on change; Events follow the status.
// It never writes the SpecServe's spec: spec.replicas belongs to the user, kubectl scale or the
// autoscaler (scale.ts), and the operator only copies it onto the workload.

import type { SpecServe } from "../../api/kinds.ts";
import { specServeResource } from "../../api/kinds.ts";
import { deriveSignals, type Scrape } from "../../autoscaler/signals.ts";
import { apply } from "../../lib/apply.ts";
import { realClock } from "../../lib/clock.ts";
import type { Condition } from "../../lib/conditions.ts";
import { formatTime, setCondition } from "../../lib/conditions.ts";
import type { ReconcileContext, ReconcileResult } from "../../lib/controller.ts";
import { isNotFound, TerminalError } from "../../lib/errors.ts";
import { Deployments, type KubeObject, type Resource } from "../../lib/rest.ts";
import { parseDuration } from "../../lib/time.ts";
import {
  CustomResourceDefinitions,
  FIELD_MANAGER,
  LeaderWorkerSets,
  LWS_CRD_NAME,
  RESOURCES,
  type SpecServeDeps,
  type SpecServeWire,
} from "./controller.ts";
import * as desired from "./desired.ts";
import { decideRollout, measureTau } from "./gate.ts";
import { foldStatus, observeWorkload, type SpecServeStatus, type WorkloadObservation } from "./observe.ts";
import {
  ANNOTATIONS,
  childNames,
  type DraftPlan,
  type DraftTrainingObservation,
  LABELS,
  planDraft,
  serveTask,
} from "./plan.ts";
import { applyVerdict, planRollout, type RolloutPlan } from "./rollout.ts";
import { defaultFetchText, type PodScrape, readyPods, type ScrapablePod, scrapePods } from "./scrape.ts";
import { type PodMetrics, type SignalsOutcome, signalsStatus } from "./signals-status.ts";
import { updateSpecServeStatus } from "./status-write.ts";

/** status.signals' measurement window when spec.autoscaling.window is not set (its default too). */
export const DEFAULT_SIGNALS_WINDOW = "2m";

export function specServeReconciler(deps: SpecServeDeps) {
  const clock = deps.clock ?? realClock;
  const applyOpts = { fieldManager: FIELD_MANAGER, resources: RESOURCES };
  const fetchText = deps.scrapeMetrics ?? defaultFetchText;
  /** Scrapes at the start of a canary's analysis, by SpecServe uid; lost on restart (re-taken then). */
  const baselines = new Map<
    string,
    { candidate: string; time: number; canary: Scrape[]; stable: Scrape[] }
  >();
  /** The last status.signals scrape per pod uid, by SpecServe key; lost on restart (re-taken then). */
  const lastScrapes = new Map<string, { ssUid: string; timeMs: number; pods: PodMetrics[] }>();

  const scrape = (ss: SpecServe, pods: ScrapablePod[], signal: AbortSignal) =>
    scrapePods(pods, { port: ss.spec.port, signal, fetchText, now: () => clock.now() });
  const asScrapes = (results: PodScrape[]): Scrape[] =>
    results.flatMap((r) => (r.ok ? [{ pod: r.uid, text: r.text, time: r.timeMs / 1000 }] : []));

  return async function reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult> {
    const raw = deps.specServes.store.get(ctx.namespace, ctx.name);
    if (!raw || raw.metadata?.deletionTimestamp) {
      lastScrapes.delete(key);
      return undefined; // children go by garbage collection
    }
    const parsed = specServeResource.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new TerminalError(`invalid SpecServe: ${issue?.path.join(".")}: ${issue?.message}`);
    }
    const ss: SpecServe = parsed.data;
    const now = clock.now();
    const signal = ctx.signal;

    if (ss.metadata.annotations?.[ANNOTATIONS.paused] === "true") {
      // Paused: children stay exactly as they are; only say so.
      const status = { ...(raw.status ?? {}), state: "Paused" as const };
      const written = await updateSpecServeStatus(deps.client, raw, status);
      deps.specServes.recordWrite(raw, written);
      return undefined;
    }

    const draft = planDraft(ss, observeDraftTraining(ss));
    const multiNode = ss.spec.resources.nodesPerReplica > 1;
    let workload: WorkloadObservation | undefined;
    let lwsMissing = false;
    let plan: RolloutPlan | undefined;
    const pods = deps.pods.store
      .list(ss.metadata.namespace)
      .filter((p) => p.metadata?.labels?.[LABELS.owner] === ss.metadata.name);
    if (draft.state === "ready") {
      lwsMissing = multiNode && !(await lwsInstalled(signal));
      const hasServer =
        deps.deployments.store.get(ss.metadata.namespace, childNames(ss).server) !== undefined;
      plan = planRollout(ss, draft, raw.status?.rollout, { hasServer, now: formatTime(now) });
      if (plan.canary) plan = await gate(ss, plan, pods, now, signal);
      if (!lwsMissing) workload = await applyServing(ss, plan.stable, multiNode, signal);
      await applyCanary(ss, plan, signal);
    }

    const stablePods = pods.filter((p) => p.metadata?.labels?.[LABELS.canary] !== "true");
    let status = foldStatus(
      ss,
      { draft: plan?.stable ?? draft, workload, pods: stablePods, lwsMissing },
      now,
    );
    if (plan) status = { ...status, rollout: plan.rollout };
    emitRollout(raw, plan);
    emitTransitions(raw, status);
    let current = raw;
    let written = await updateSpecServeStatus(deps.client, raw, status);
    deps.specServes.recordWrite(raw, written);
    if (written) current = written;
    // status.signals after the fold is written, so a slow pod delays no other status.
    const measured = await measureSignals(key, ss, stablePods, now, signal);
    if (measured.outcome) {
      const { condition, signals } = measured.outcome;
      const conditions = setCondition(
        status.conditions as Condition[],
        condition,
        ss.metadata.generation,
        now,
      );
      status = { ...status, conditions, ...(signals ? { signals } : {}) };
      written = await updateSpecServeStatus(deps.client, current, status);
      deps.specServes.recordWrite(current, written);
    }
    const requeues = [measured.dueInMs];
    // A canary is measured on a clock, not on events.
    if (plan?.canary) {
      const windowMs = parseDuration(ss.spec.rollout.analysisWindow) ?? 600_000;
      requeues.push(Math.max(250, Math.min(15_000, windowMs / 4)));
    }
    // The LWS CRD is not watched; a LeaderWorkerSet's status is read, not cached.
    if (lwsMissing || multiNode) requeues.push(15_000);
    return { requeueAfterMs: Math.min(...requeues) };
  };

  /**
   * Scrapes the stable pods once per measurement window and folds the window into status.signals
   * and the MetricsAvailable condition (signals-status.ts). Returns when the next window is due.
   */
  async function measureSignals(
    key: string,
    ss: SpecServe,
    stablePods: KubeObject[],
    now: number,
    signal: AbortSignal,
  ): Promise<{ outcome?: SignalsOutcome; dueInMs: number }> {
    const window = ss.spec.autoscaling?.window ?? DEFAULT_SIGNALS_WINDOW;
    const windowMs = parseDuration(window) ?? 120_000;
    const uid = ss.metadata.uid ?? "";
    const last = lastScrapes.get(key);
    const kept = last && last.ssUid === uid ? last : undefined;
    // A reconcile for another reason in mid-window measures nothing (5% slack for timer jitter).
    if (kept && now - kept.timeMs < windowMs * 0.95) {
      return { dueInMs: Math.max(1000, kept.timeMs + windowMs - now) };
    }
    const results = await scrape(ss, readyPods(stablePods as ScrapablePod[]), signal);
    const outcome = signalsStatus({
      previous: ss.status?.signals,
      start: kept?.pods ?? [],
      end: results.flatMap((r) => (r.ok ? [{ uid: r.uid, pod: r.pod, text: r.text, timeMs: r.timeMs }] : [])),
      failed: results.flatMap((r) => (r.ok ? [] : [{ pod: r.pod, error: r.error }])),
      nowMs: now,
      window,
      windowMs,
    });
    lastScrapes.set(key, { ssUid: uid, timeMs: now, pods: outcome.keep });
    return { outcome, dueInMs: windowMs };
  }

  function observeDraftTraining(ss: SpecServe): DraftTrainingObservation | undefined {
    const ref = ss.spec.draft.draftTrainingRef;
    if (!ref) return undefined;
    const dt = deps.drafts.store.get(ss.metadata.namespace, ref.name) as
      | (KubeObject & {
          status?: { stage?: string; checkpoint?: { uri?: string }; conditions?: Condition[] };
        })
      | undefined;
    if (!dt) return { exists: false };
    return {
      exists: true,
      stage: dt.status?.stage,
      checkpointUri: dt.status?.checkpoint?.uri,
      failureMessage: dt.status?.conditions?.find((c) => c.type === "Succeeded" && c.status === "False")
        ?.message,
    };
  }

  async function lwsInstalled(signal: AbortSignal): Promise<boolean> {
    try {
      await deps.client.get(CustomResourceDefinitions, undefined, LWS_CRD_NAME, { signal });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async function applyServing(
    ss: SpecServe,
    draft: Extract<DraftPlan, { state: "ready" }>,
    multiNode: boolean,
    signal: AbortSignal,
  ): Promise<WorkloadObservation | undefined> {
    const ns = ss.metadata.namespace;
    const name = childNames(ss).server;
    const existing = deps.deployments.store.get(ns, name);
    let existingImage = existing?.metadata?.annotations?.[ANNOTATIONS.runtimeImage];
    if (multiNode && !existingImage) {
      const lws = await getOrUndefined(LeaderWorkerSets, ns, name, signal);
      existingImage = lws?.metadata?.annotations?.[ANNOTATIONS.runtimeImage];
    }
    const task = serveTask(ss, draft.source);
    const ctx: desired.BuildContext = {
      image: existingImage ?? deps.image,
      progressPort: deps.progressPort,
      task,
      draft: draft.display,
      draftUri: draft.source?.uri,
    };
    const applyOne = (obj: desired.DesiredObject) =>
      apply(deps.client, obj as KubeObject, applyOpts) as Promise<KubeObject>;
    const [workload] = await Promise.all([
      applyOne(multiNode ? desired.leaderWorkerSet(ss, ctx) : desired.deployment(ss, ctx)),
      applyOne(desired.taskConfigMap(ss, task)),
      applyOne(desired.service(ss, deps.progressPort)),
      applyOne(desired.podDisruptionBudget(ss)),
    ]);
    if (multiNode && existing) {
      // The replica shape changed from one node to several: the LeaderWorkerSet replaces the Deployment.
      await deps.client.delete(Deployments, ns, name, { signal }).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
    }
    if (!multiNode) {
      deps.deployments.recordWrite(existing, workload);
      // The cache is newer than what apply returned only when nothing changed; read status from it.
      return observeWorkload("Deployment", deps.deployments.store.get(ns, name) ?? workload);
    }
    return observeWorkload("LeaderWorkerSet", workload);
  }

  /** Measures the canary against the stable pods over the analysis window and applies the verdict. */
  async function gate(
    ss: SpecServe,
    plan: RolloutPlan,
    pods: SpecServeWire[] | KubeObject[],
    now: number,
    signal: AbortSignal,
  ): Promise<RolloutPlan> {
    const uid = ss.metadata.uid ?? "";
    const candidate = plan.rollout.candidateDraft ?? "";
    const ready = readyPods(pods as ScrapablePod[]);
    const canaryPods = ready.filter(
      (p) =>
        p.metadata?.labels?.[LABELS.canary] === "true" &&
        p.metadata?.labels?.[LABELS.draft] === desired.draftLabel(candidate),
    );
    const stablePods = ready.filter((p) => p.metadata?.labels?.[LABELS.canary] !== "true");
    // An unreachable pod counts as missing, not as zero.
    const scrapeAll = async (list: ScrapablePod[]) => asScrapes(await scrape(ss, list, signal));
    const base = baselines.get(uid);
    if (!base || base.candidate !== candidate) {
      // The window starts once the canary pods serve.
      if (canaryPods.length === 0) return plan;
      baselines.set(uid, {
        candidate,
        time: now,
        canary: await scrapeAll(canaryPods),
        stable: await scrapeAll(stablePods),
      });
      return plan;
    }
    const settings = {
      maxTauDrop: ss.spec.rollout.maxTauDrop,
      minTau: ss.spec.rollout.minTau,
      minRounds: ss.spec.rollout.minRounds,
      confidence: ss.spec.rollout.confidence,
      analysisWindowMs: parseDuration(ss.spec.rollout.analysisWindow) ?? 600_000,
    };
    const elapsedMs = now - base.time;
    if (elapsedMs < settings.analysisWindowMs) return plan;
    const windowSeconds = elapsedMs / 1000;
    const k = ss.spec.speculative.numSpeculativeTokens ?? 8;
    const measure = (start: Scrape[], end: Scrape[]) => {
      try {
        return end.length ? measureTau(deriveSignals(start, end, windowSeconds), k) : undefined;
      } catch {
        return undefined;
      }
    };
    const candidateTau = measure(base.canary, await scrapeAll(canaryPods));
    const currentTau = measure(base.stable, await scrapeAll(stablePods));
    const decision = decideRollout(candidateTau, currentTau, settings, elapsedMs);
    const next = applyVerdict(plan, decision, candidateTau, currentTau);
    if (!next.canary) baselines.delete(uid);
    return next;
  }

  async function applyCanary(ss: SpecServe, plan: RolloutPlan, signal: AbortSignal): Promise<void> {
    const ns = ss.metadata.namespace;
    const names = childNames(ss);
    if (!plan.canary) {
      if (!deps.deployments.store.get(ns, names.canary)) return;
      await deps.client.delete(Deployments, ns, names.canary, { signal }).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
      return;
    }
    const stableImage = deps.deployments.store.get(ns, names.server)?.metadata?.annotations?.[
      ANNOTATIONS.runtimeImage
    ];
    const task = serveTask(ss, plan.canary.source);
    const ctx: desired.BuildContext = {
      image: stableImage ?? deps.image,
      progressPort: deps.progressPort,
      task,
      draft: plan.canary.display,
      draftUri: plan.canary.source?.uri,
      canary: true,
    };
    await Promise.all([
      apply(deps.client, desired.taskConfigMap(ss, task, true) as KubeObject, applyOpts),
      apply(deps.client, desired.deployment(ss, ctx) as KubeObject, applyOpts),
    ]);
  }

  /** Events for a rollout's start and end (the status carries the figures too). */
  function emitRollout(raw: SpecServeWire, plan: RolloutPlan | undefined) {
    const before = raw.status?.rollout;
    const after = plan?.rollout;
    if (!after || (before?.state === after.state && before?.candidateDraft === after.candidateDraft)) return;
    if (after.state === "Canary") {
      deps.events.event(
        raw,
        "Normal",
        "CanaryStarted",
        `trying draft ${after.candidateDraft} beside ${after.currentDraft}`,
      );
    } else if (after.state === "Promoted") {
      deps.events.event(raw, "Normal", "DraftPromoted", `${after.candidateDraft}: ${after.message ?? ""}`);
    } else if (after.state === "RolledBack") {
      deps.events.event(raw, "Warning", "DraftRolledBack", `${after.candidateDraft}: ${after.message ?? ""}`);
    }
  }

  async function getOrUndefined(r: Resource, ns: string | undefined, name: string, signal: AbortSignal) {
    try {
      return await deps.client.get(r, ns, name, { signal });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Events when Degraded turns on or changes reason, and when the server becomes Ready. */
  function emitTransitions(raw: SpecServeWire, next: SpecServeStatus) {
    const before = (raw.status?.conditions ?? []) as Condition[];
    const after = (next.conditions ?? []) as Condition[];
    const find = (cs: Condition[], type: string) => cs.find((c) => c.type === type);
    const d0 = find(before, "Degraded");
    const d1 = find(after, "Degraded");
    if (d1?.status === "True" && (d0?.status !== "True" || d0.reason !== d1.reason)) {
      deps.events.event(raw, "Warning", d1.reason, d1.message);
    }
    const r0 = find(before, "Ready");
    const r1 = find(after, "Ready");
    if (r1?.status === "True" && r0?.status !== "True") deps.events.event(raw, "Normal", "Ready", r1.message);
    if (r1?.status === "False" && r1.reason !== r0?.reason && r1.reason !== "ReplicasNotReady") {
      deps.events.event(raw, r1.reason === "DraftTraining" ? "Normal" : "Warning", r1.reason, r1.message);
    }
  }
}
