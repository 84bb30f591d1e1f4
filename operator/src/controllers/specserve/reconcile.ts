// One pass of the SpecServe controller: resolve the draft (waiting while a referenced DraftTraining
// trains), apply the serve Task, the serving workload (a Deployment, or a LeaderWorkerSet for
// multi-node replicas), the Service and the PodDisruptionBudget with server-side apply (skipped for
// a child that is still exactly what this process last applied: lib/applied.ts), and fold the
// workload's and pods' state into status, written only on change; Events follow the status.
// It never writes the SpecServe's spec: spec.replicas belongs to the user, kubectl scale or the
// autoscaler (scale.ts), and the operator only copies it onto the workload.

import type { SpecServe } from "../../api/kinds.ts";
import { deriveSignals, type Scrape } from "../../autoscaler/signals.ts";
import { AppliedChildren, type ChildCache } from "../../lib/applied.ts";
import { apply } from "../../lib/apply.ts";
import { realClock } from "../../lib/clock.ts";
import type { Condition } from "../../lib/conditions.ts";
import { formatTime, setCondition } from "../../lib/conditions.ts";
import type { ReconcileContext, ReconcileResult } from "../../lib/controller.ts";
import { isNotFound, TerminalError } from "../../lib/errors.ts";
import { ConfigMaps, Deployments, type KubeObject, type Resource } from "../../lib/rest.ts";
import { parseDuration } from "../../lib/time.ts";
import { PodScrapes } from "../shared/pod-scrapes.ts";
import { baselineConfigMap, baselineFromConfigMap, type RolloutBaseline } from "./baseline.ts";
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
import {
  applyLengthVerdict,
  decideLengthRollout,
  formatRanges,
  type LengthPlan,
  lengthCandidateId,
  lengthsLabel,
  measureLength,
  planLengthRollout,
} from "./length-rollout.ts";
import { foldStatus, observeWorkload, type SpecServeStatus, type WorkloadObservation } from "./observe.ts";
import { parseSpecServe } from "./parse.ts";
import {
  ANNOTATIONS,
  childNames,
  type DraftPlan,
  type DraftTrainingObservation,
  LABELS,
  planDraft,
  serveTask,
} from "./plan.ts";
import { applyVerdict, planRollout } from "./rollout.ts";
import { defaultFetchText, type PodScrape, readyPods, type ScrapablePod, scrapePods } from "./scrape.ts";
import { signalsMeter } from "./signals-meter.ts";
import { updateSpecServeStatus } from "./status-write.ts";

export function specServeReconciler(deps: SpecServeDeps) {
  const clock = deps.clock ?? realClock;
  const applyOpts = { fieldManager: FIELD_MANAGER, resources: RESOURCES };
  // The serving children are applied when they may differ from what this process last applied
  // (lib/applied.ts): most passes come from status writes and the signals clock, and change none.
  const children = new AppliedChildren(deps.client, { ...applyOpts, clock });
  const fetchText = deps.scrapeMetrics ?? defaultFetchText;
  /** Scrapes at the start of a canary's analysis, by SpecServe uid; also in a ConfigMap (baseline.ts). */
  const baselines = new Map<string, RolloutBaseline>();
  const scrape = (ss: SpecServe, pods: ScrapablePod[], signal: AbortSignal) =>
    scrapePods(pods, { port: ss.spec.port, signal, fetchText, now: () => clock.now() });
  // status.signals reads through the scrape cache it shares with the autoscaler (one scrape a window).
  const shared = deps.scrapes ?? new PodScrapes({ fetchText, now: () => clock.now() });
  const meter = signalsMeter({
    scrape: (ss, pods, signal, since) => shared.scrape(pods, { port: ss.spec.port, signal, since }),
    latestMs: (ss, pod) => shared.latest(pod, ss.spec.port)?.timeMs,
  });
  const asScrapes = (results: PodScrape[]): Scrape[] =>
    results.flatMap((r) => (r.ok ? [{ pod: r.uid, text: r.text, time: r.timeMs / 1000 }] : []));

  return async function reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult> {
    const raw = deps.specServes.store.get(ctx.namespace, ctx.name);
    if (!raw || raw.metadata?.deletionTimestamp) {
      meter.forget(key);
      children.forget(key);
      return undefined; // children go by garbage collection
    }
    const parsed = parseSpecServe(raw);
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
    let plan: LengthPlan | undefined;
    const pods = deps.pods.store.withLabel(ss.metadata.namespace, LABELS.owner, ss.metadata.name ?? "");
    if (draft.state === "ready") {
      lwsMissing = multiNode && !(await lwsInstalled(signal));
      const hasServer =
        deps.deployments.store.get(ss.metadata.namespace, childNames(ss).server) !== undefined;
      const drafts = planRollout(ss, draft, raw.status?.rollout, { hasServer, now: formatTime(now) });
      plan = planLengthRollout(ss, drafts, raw.status?.rollout, { iso: formatTime(now), ms: now });
      if (plan.canary) plan = await gate(ss, plan, pods, now, signal);
      if (!lwsMissing) workload = await applyServing(key, ss, plan, multiNode, signal);
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
    const measured = await meter.measure(key, ss, stablePods, now, signal);
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
    key: string,
    ss: SpecServe,
    plan: LengthPlan,
    multiNode: boolean,
    signal: AbortSignal,
  ): Promise<WorkloadObservation | undefined> {
    const draft: Extract<DraftPlan, { state: "ready" }> = plan.stable;
    const ns = ss.metadata.namespace;
    const name = childNames(ss).server;
    const existing = deps.deployments.store.get(ns, name);
    let existingImage = existing?.metadata?.annotations?.[ANNOTATIONS.runtimeImage];
    if (multiNode && !existingImage) {
      const lws = await getOrUndefined(LeaderWorkerSets, ns, name, signal);
      existingImage = lws?.metadata?.annotations?.[ANNOTATIONS.runtimeImage];
    }
    const task = serveTask(ss, draft.source, plan.stableLengths);
    const ctx: desired.BuildContext = {
      image: existingImage ?? deps.image,
      progressPort: deps.progressPort,
      task,
      draft: draft.display,
      draftUri: draft.source?.uri,
      ...(plan.stableLengths?.length ? { lengths: lengthsLabel(plan.stableLengths) } : {}),
    };
    const applyOne = async (obj: desired.DesiredObject, cache?: ChildCache) =>
      (await children.apply(key, obj as KubeObject, cache)).object as KubeObject | undefined;
    const [workload] = await Promise.all([
      // A LeaderWorkerSet's status is read from its apply (it is not cached): applied every pass.
      multiNode
        ? (apply(
            deps.client,
            desired.leaderWorkerSet(ss, ctx) as KubeObject,
            applyOpts,
          ) as Promise<KubeObject>)
        : applyOne(desired.deployment(ss, ctx), deps.deployments),
      applyOne(desired.taskConfigMap(ss, task), deps.configMaps),
      applyOne(desired.service(ss, deps.progressPort), deps.services),
      applyOne(desired.podDisruptionBudget(ss), deps.podDisruptionBudgets),
    ]);
    if (multiNode && existing) {
      // The replica shape changed from one node to several: the LeaderWorkerSet replaces the Deployment.
      await deps.client.delete(Deployments, ns, name, { signal }).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
    }
    if (!multiNode) {
      // The cache is newer than what apply returned only when nothing changed; read status from it.
      const current = deps.deployments.store.get(ns, name) ?? workload;
      return current && observeWorkload("Deployment", current);
    }
    return workload && observeWorkload("LeaderWorkerSet", workload);
  }

  /** Measures the canary against the stable pods over the analysis window and applies the verdict. */
  async function gate(
    ss: SpecServe,
    plan: LengthPlan,
    pods: SpecServeWire[] | KubeObject[],
    now: number,
    signal: AbortSignal,
  ): Promise<LengthPlan> {
    const uid = ss.metadata.uid ?? "";
    const lengthCandidate = plan.rollout.candidateKind === "Length" ? plan.canaryLengths : undefined;
    // The gate's baseline is keyed on what the candidate changes: its draft, or its schedule.
    const candidate = lengthCandidate
      ? lengthCandidateId(lengthCandidate)
      : (plan.rollout.candidateDraft ?? "");
    const ready = readyPods(pods as ScrapablePod[]);
    const canaryPods = ready.filter(
      (p) =>
        p.metadata?.labels?.[LABELS.canary] === "true" &&
        (lengthCandidate
          ? p.metadata?.labels?.[LABELS.lengths] === lengthsLabel(lengthCandidate)
          : p.metadata?.labels?.[LABELS.draft] === desired.draftLabel(candidate)),
    );
    const stablePods = ready.filter((p) => p.metadata?.labels?.[LABELS.canary] !== "true");
    // An unreachable pod counts as missing, not as zero.
    const scrapeAll = async (list: ScrapablePod[]) => asScrapes(await scrape(ss, list, signal));
    let base = baselines.get(uid);
    if (!base || base.candidate !== candidate) {
      // After a restart the window resumes from the baseline ConfigMap, when it is this candidate's.
      base = await loadBaseline(ss, candidate, plan, signal);
      if (base) baselines.set(uid, base);
    }
    if (!base) {
      // The window starts once the canary pods serve.
      if (canaryPods.length === 0) return plan;
      const [canary, stable] = await Promise.all([scrapeAll(canaryPods), scrapeAll(stablePods)]);
      const taken: RolloutBaseline = { candidate, timeMs: now, canary, stable };
      // Stored before status names it, so a status that names a start always has its counters.
      await apply(deps.client, baselineConfigMap(ss, taken) as KubeObject, applyOpts);
      baselines.set(uid, taken);
      return withAnalysisStart(plan, taken);
    }
    plan = withAnalysisStart(plan, base);
    const settings = {
      maxTauDrop: ss.spec.rollout.maxTauDrop,
      minTau: ss.spec.rollout.minTau,
      minRounds: ss.spec.rollout.minRounds,
      confidence: ss.spec.rollout.confidence,
      analysisWindowMs: parseDuration(ss.spec.rollout.analysisWindow) ?? 600_000,
    };
    const elapsedMs = now - base.timeMs;
    if (elapsedMs < settings.analysisWindowMs) return plan;
    const windowSeconds = elapsedMs / 1000;
    const k = ss.spec.speculative.numSpeculativeTokens ?? 8;
    const derive = (start: Scrape[], end: Scrape[]) => {
      try {
        return end.length ? deriveSignals(start, end, windowSeconds) : undefined;
      } catch {
        return undefined;
      }
    };
    const candidateSignals = derive(base.canary, await scrapeAll(canaryPods));
    const currentSignals = derive(base.stable, await scrapeAll(stablePods));
    let next: LengthPlan;
    if (lengthCandidate) {
      const tpot = ss.spec.autoscaling?.slo.tpotP95;
      const tpotMs = tpot !== undefined ? parseDuration(tpot) : undefined;
      const c = candidateSignals && measureLength(candidateSignals);
      const s = currentSignals && measureLength(currentSignals);
      const lengthSettings = { ...settings, ...(tpotMs !== undefined ? { tpotP95: tpotMs / 1000 } : {}) };
      const decision = decideLengthRollout(c, s, lengthSettings, elapsedMs);
      next = applyLengthVerdict(plan, decision, c, s, formatTime(now));
    } else {
      const candidateTau = candidateSignals && measureTau(candidateSignals, k);
      const currentTau = currentSignals && measureTau(currentSignals, k);
      const decision = decideRollout(candidateTau, currentTau, settings, elapsedMs);
      const verdict = applyVerdict(plan, decision, candidateTau, currentTau);
      // A draft promoted or rolled back leaves the applied schedule as it was.
      next = {
        ...verdict,
        stableLengths: plan.stableLengths,
        ...(verdict.canary ? { canaryLengths: plan.canaryLengths } : {}),
      };
    }
    if (!next.canary) {
      baselines.delete(uid);
      await deleteIfExists(ConfigMaps, ss.metadata.namespace, childNames(ss).rolloutBaseline, signal);
    }
    return next;
  }

  /** The stored baseline of this candidate's window, if status.rollout names the same start. */
  async function loadBaseline(
    ss: SpecServe,
    candidate: string,
    plan: LengthPlan,
    signal: AbortSignal,
  ): Promise<RolloutBaseline | undefined> {
    const start = plan.rollout.analysisStartTime;
    if (!start) return undefined; // no window began for this candidate (none to resume)
    const cm = (await getOrUndefined(
      ConfigMaps,
      ss.metadata.namespace,
      childNames(ss).rolloutBaseline,
      signal,
    )) as { data?: Record<string, string> } | undefined;
    const base = baselineFromConfigMap(cm?.data, candidate);
    return base && formatTime(base.timeMs) === start ? base : undefined;
  }

  async function deleteIfExists(r: Resource, ns: string | undefined, name: string, signal: AbortSignal) {
    await deps.client.delete(r, ns, name, { signal }).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
  }

  async function applyCanary(ss: SpecServe, plan: LengthPlan, signal: AbortSignal): Promise<void> {
    const ns = ss.metadata.namespace;
    const names = childNames(ss);
    if (!plan.canary) {
      if (!deps.deployments.store.get(ns, names.canary)) return;
      await deleteIfExists(Deployments, ns, names.canary, signal);
      await deleteIfExists(ConfigMaps, ns, names.rolloutBaseline, signal);
      return;
    }
    const stableImage = deps.deployments.store.get(ns, names.server)?.metadata?.annotations?.[
      ANNOTATIONS.runtimeImage
    ];
    const task = serveTask(ss, plan.canary.source, plan.canaryLengths);
    const ctx: desired.BuildContext = {
      image: stableImage ?? deps.image,
      progressPort: deps.progressPort,
      task,
      draft: plan.canary.display,
      draftUri: plan.canary.source?.uri,
      canary: true,
      ...(plan.canaryLengths?.length ? { lengths: lengthsLabel(plan.canaryLengths) } : {}),
    };
    await Promise.all([
      apply(deps.client, desired.taskConfigMap(ss, task, true) as KubeObject, applyOpts),
      apply(deps.client, desired.deployment(ss, ctx) as KubeObject, applyOpts),
    ]);
  }

  /** Events for a rollout's start and end (the status carries the figures too). */
  function emitRollout(raw: SpecServeWire, plan: LengthPlan | undefined) {
    const before = raw.status?.rollout;
    const after = plan?.rollout;
    if (after?.candidateKind === "Length") return emitLengthRollout(raw, before, after);
    if (
      after?.state === "Stable" &&
      before?.currentDraft &&
      before.currentDraft !== after.currentDraft &&
      after.message
    ) {
      // A new draft rolled without the gate (pinned, or multi-node replicas): say so and why.
      deps.events.event(raw, "Warning", "DraftRolledUngated", `${after.currentDraft}: ${after.message}`);
      return;
    }
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

  /** Events for a length schedule's rollout: started, promoted (what, when, gain), rolled back, stopped. */
  function emitLengthRollout(
    raw: SpecServeWire,
    before: NonNullable<SpecServeWire["status"]>["rollout"] | undefined,
    after: NonNullable<LengthPlan["rollout"]>,
  ) {
    const wasLengthCanary = before?.state === "Canary" && before.candidateKind === "Length";
    if (before?.state === after.state && before?.candidateKind === after.candidateKind) return;
    const l = after.lengths;
    const ranges = formatRanges(l?.candidate);
    const gain =
      l?.predictedGain !== undefined ? `, predicted goodput gain ${(l.predictedGain * 100).toFixed(1)}%` : "";
    if (after.state === "Canary") {
      deps.events.event(
        raw,
        "Normal",
        "LengthCanaryStarted",
        `trying draft length per batch size ${ranges}${gain}`,
      );
    } else if (after.state === "Promoted") {
      deps.events.event(
        raw,
        "Normal",
        "LengthSchedulePromoted",
        `${ranges} applied${gain}: ${after.message ?? ""}`,
      );
    } else if (after.state === "RolledBack") {
      deps.events.event(
        raw,
        "Warning",
        "LengthScheduleRolledBack",
        `${ranges}${gain}: ${after.message ?? ""}`,
      );
    } else if (wasLengthCanary) {
      deps.events.event(raw, "Normal", "LengthCanaryStopped", after.message ?? "the length canary stopped");
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

const withAnalysisStart = (plan: LengthPlan, base: RolloutBaseline): LengthPlan => ({
  ...plan,
  rollout: { ...plan.rollout, analysisStartTime: formatTime(base.timeMs) },
});
