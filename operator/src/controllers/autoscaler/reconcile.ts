// One pass of the autoscaler for one SpecServe. Decisions run on a clock: once per window (a
// reconcile for another reason in mid-window only requeues). Each decision scrapes the ready stable
// serving pods (scrape.ts, each under a deadline), derives the window's signals from the previous
// and this scrape (the one signal parser), reads the SPS table, runs the pure step (decide.ts),
// writes spec.replicas through /scale when it changes, then its own status fields (only on change),
// then the Events, then the metrics. Per-SpecServe memory (last scrapes, decision and drift state)
// lives here and is rebuilt after a restart (a first window only measures).
// With spec.autoscaling.signals.source Prometheus the window's signals are queried from Prometheus
// instead (prometheus-source.ts); the pods, the windows and the decision are the same.
import type { SpecServe } from "../../api/kinds.ts";
import { gpusOfReplica } from "../../autoscaler/cost.ts";
import type { Exposition } from "../../autoscaler/exposition.ts";
import { deriveSignals, type Scrape, type Signals } from "../../autoscaler/signals.ts";
import {
  loadSpsTable,
  QWEN3_8B_H200,
  type SpsFunction,
  spsFromModel,
  spsFromTable,
} from "../../autoscaler/sps.ts";
import { updateStatus } from "../../lib/apply.ts";
import { realClock } from "../../lib/clock.ts";
import type { ReconcileContext, ReconcileResult } from "../../lib/controller.ts";
import { isNotFound } from "../../lib/errors.ts";
import { ConfigMaps } from "../../lib/rest.ts";
import { freshnessMs, PodScrapes } from "../shared/pod-scrapes.ts";
import { SpecServes, type SpecServeWire } from "../specserve/controller.ts";
import { parseSpecServe } from "../specserve/parse.ts";
import { ANNOTATIONS, LABELS } from "../specserve/plan.ts";
import { writeReplicas } from "../specserve/scale.ts";
import { readyPods, type ScrapablePod } from "../specserve/scrape.ts";
import { type AutoscalerDeps, FIELD_MANAGER } from "./controller.ts";
import { type AutoscalerMemory, initialMemory, type StepOutput, step } from "./decide.ts";
import { isAutoscaled, windowSeconds } from "./policy.ts";
import { prometheusSource } from "./prometheus-source.ts";
import { currentOwned, disabledStatus, measuringStatus, type OwnedStatus } from "./status.ts";

interface PodScrape {
  uid: string;
  exposition: Exposition;
  timeMs: number;
}

interface Entry {
  uid: string;
  memory: AutoscalerMemory;
  /** The last decision's scrapes (the start of the next window) and the pods ready then. */
  lastScrapeMs?: number;
  scrapes: PodScrape[];
  readyUids: Set<string>;
}

/** A pod's identity across scrapes (scrape.ts keys its results by uid too). */
const podKey = (p: ScrapablePod) => p.metadata?.uid ?? p.metadata?.name ?? "";

/**
 * The window the scrapes span: the longest span of a pod scraped at both ends (a result may be a
 * shared one taken a moment before this decision), else the configured window.
 */
function windowSecondsOf(start: PodScrape[], end: PodScrape[], windowMs: number): number {
  const startMs = new Map(start.map((s) => [s.uid, s.timeMs]));
  let span = 0;
  for (const e of end) {
    const s = startMs.get(e.uid);
    if (s !== undefined) span = Math.max(span, e.timeMs - s);
  }
  return (span > 0 ? span : windowMs) / 1000;
}

/** How long a read SPS table is trusted before it is read again. */
const SPS_TABLE_TTL_MS = 60_000;
const MODEL_SOURCE = "first-principles model (Qwen3-8B on an H200)";
const modelSps = spsFromModel(QWEN3_8B_H200);

export function autoscalerReconciler(deps: AutoscalerDeps) {
  const clock = deps.clock ?? realClock;
  // One scrape a window per pod, shared with status.signals (the SpecServe controller).
  const scrapes = deps.scrapes ?? new PodScrapes({ fetchText: deps.fetchText, now: () => clock.now() });
  const entries = new Map<string, Entry>();
  const prometheus = prometheusSource({ client: deps.client, now: () => clock.now() });
  const tables = new Map<
    string,
    { ref: string; atMs: number; sps: SpsFunction; source: string; error?: string }
  >();

  return async function reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult> {
    const raw = deps.specServes.store.get(ctx.namespace, ctx.name);
    const ns = ctx.namespace ?? "";
    const forget = () => {
      entries.delete(key);
      tables.delete(key);
      prometheus.forget(key);
      deps.metrics.remove(ns, ctx.name);
    };
    if (!raw || raw.metadata?.deletionTimestamp) return void forget();
    // An invalid spec is the SpecServe controller's to report; nothing to scale.
    const parsed = parseSpecServe(raw);
    if (!parsed.success) return void forget();
    const ss = parsed.data;
    if (ss.metadata.annotations?.[ANNOTATIONS.paused] === "true") return undefined;
    const now = clock.now();
    if (!isAutoscaled(ss)) {
      forget();
      // Once it was on: say it is off now (spec.replicas is then the user's alone); compared on
      // each pass, written only when it differs.
      if (ss.status?.autoscaling) await writeStatus(raw, ss, disabledStatus(ss, now));
      return undefined;
    }
    const a = ss.spec.autoscaling as NonNullable<SpecServe["spec"]["autoscaling"]>;
    const windowMs = windowSeconds(a) * 1000;
    let entry = entries.get(key);
    if (!entry || entry.uid !== ss.metadata.uid) {
      entry = { uid: ss.metadata.uid ?? "", memory: initialMemory(), scrapes: [], readyUids: new Set() };
      entries.set(key, entry);
    }
    // A reconcile for another reason in mid-window decides nothing (5% slack for timer jitter).
    if (entry.lastScrapeMs !== undefined && now - entry.lastScrapeMs < windowMs * 0.95)
      return { requeueAfterMs: Math.max(100, entry.lastScrapeMs + windowMs - now) };

    const pods = deps.pods.store
      .withLabel(ns, LABELS.owner, ss.metadata.name ?? "")
      .filter((p) => p.metadata?.labels?.[LABELS.canary] !== "true") as ScrapablePod[];
    const ready = readyPods(pods);
    // signals.source Prometheus: nothing to scrape here; the window is queried below.
    const viaPrometheus = a.signals.source === "Prometheus";
    const timeoutMs = Math.min(5000, Math.max(1000, windowMs / 2));
    const results = await scrapes.scrape(viaPrometheus ? [] : ready, {
      port: ss.spec.port,
      signal: ctx.signal,
      timeoutMs,
      // A scrape of these pods the SpecServe controller took a moment ago serves this window too.
      since: now - freshnessMs(windowMs),
    });
    const failures: string[] = [];
    const end: PodScrape[] = [];
    // Parsed once in the shared scrape (a parse error is a failure there).
    for (const r of results) {
      if (r.ok) end.push({ uid: r.uid, exposition: r.exposition, timeMs: r.timeMs });
      else failures.push(`${r.pod}: ${r.error}`);
    }
    const first = entry.lastScrapeMs === undefined;
    const start = entry.scrapes;
    const readyBefore = entry.readyUids;
    entry.lastScrapeMs = now;
    entry.scrapes = end;
    entry.readyUids = new Set(ready.map(podKey));
    if (first) {
      await writeStatus(
        raw,
        ss,
        measuringStatus(ss, now, `measuring the first window of ${a.window} over ${ready.length} ready pods`),
      );
      return { requeueAfterMs: windowMs };
    }

    // Only pods that served the whole window count: one that just started carries no load yet and
    // has no start scrape (it counts from the next window), so a scale-up never reads as missing metrics.
    const servedWindow = ready.filter((p) => readyBefore.has(podKey(p))).length;
    if (ready.length > 0 && servedWindow === 0) {
      // Every ready pod started within the window (a new SpecServe, or all pods replaced): measure.
      await writeStatus(
        raw,
        ss,
        measuringStatus(ss, now, `the ${ready.length} ready pods started within the last window; measuring`),
      );
      return { requeueAfterMs: windowMs };
    }
    const startUids = new Set(start.map((s) => s.uid));
    let scraped = end.filter((s) => startUids.has(s.uid)).length;
    const toScrape = (s: PodScrape): Scrape => ({
      pod: s.uid,
      exposition: s.exposition,
      time: s.timeMs / 1000,
    });
    let signals: Signals | null = null;
    if (end.length > 0)
      signals = deriveSignals(start.map(toScrape), end.map(toScrape), windowSecondsOf(start, end, windowMs));
    let metricsError =
      ready.length === 0
        ? "no ready serving pod to scrape"
        : failures.length > 0
          ? `${failures.length} of ${ready.length} pods not read (${failures.slice(0, 3).join("; ")})`.slice(
              0,
              600,
            )
          : undefined;
    if (viaPrometheus) {
      const served = ready.filter((p) => readyBefore.has(podKey(p)));
      const read = await prometheus.measure({
        key,
        ss,
        pods: ready.map((p) => p.metadata?.name ?? ""),
        windowSeconds: windowMs / 1000,
        timeoutMs,
        signal: ctx.signal,
      });
      signals = read.signals;
      metricsError = ready.length === 0 ? metricsError : read.error;
      scraped = served.filter((p) => read.podsSeen.has(p.metadata?.name ?? "")).length;
    }
    const table = await spsFor(key, ss, raw, ctx.signal);
    const out = step({
      ss,
      autoscaling: a,
      nowMs: now,
      signals,
      metricsError,
      readyReplicas: servedWindow,
      scrapedReplicas: scraped,
      sps: table.sps,
      spsSource: table.source,
      memory: entry.memory,
    });
    if (out.write !== undefined) {
      await writeReplicas(deps.client, SpecServes, {
        namespace: ns,
        name: ctx.name,
        replicas: out.write,
        signal: ctx.signal,
      });
    }
    entry.memory = out.memory;
    await writeStatus(raw, ss, out.status);
    emit(raw, out);
    deps.metrics.record(ns, ctx.name, out, {
      nowMs: now,
      gpusPerReplica: gpusOfReplica(ss.spec.resources.gpusPerReplica, ss.spec.resources.nodesPerReplica),
      gpuProduct: ss.spec.resources.gpuProduct,
      generationTokensPerSecond: signals?.generationTokensPerSecond ?? null,
    });
    ctx.log.debug(
      {
        reason: out.decision.reason,
        desired: out.decision.desiredReplicas,
        tau: out.decision.figures.tau,
        ready: ready.length,
        servedWindow,
        scraped,
        failures: failures.length,
        message: out.decision.message,
        figures: out.decision.figures,
      },
      "autoscaler decision",
    );
    return { requeueAfterMs: windowMs };
  };

  /** Applies the owned status fields when they differ from the object's (updateStatus compares). */
  async function writeStatus(raw: SpecServeWire, ss: SpecServe, next: OwnedStatus) {
    const current: SpecServeWire = {
      ...raw,
      status: currentOwned(ss.status) as NonNullable<SpecServeWire["status"]>,
    };
    const written = await updateStatus(
      deps.client,
      SpecServes,
      current,
      next as NonNullable<SpecServeWire["status"]>,
      {
        fieldManager: FIELD_MANAGER,
      },
    );
    deps.specServes.recordWrite(undefined, written);
  }

  function emit(raw: SpecServeWire, out: StepOutput) {
    for (const e of out.events) deps.events.event(raw, e.type, e.reason, e.message);
  }

  /** SPS(B): the referenced ConfigMap's table, else (or when it cannot be read) the model. */
  async function spsFor(
    key: string,
    ss: SpecServe,
    raw: SpecServeWire,
    signal: AbortSignal,
  ): Promise<{ sps: SpsFunction; source: string }> {
    const ref = ss.spec.autoscaling?.spsTable;
    if (!ref) return { sps: modelSps, source: MODEL_SOURCE };
    const refKey = `${ref.configMapName}/${ref.key}`;
    const now = clock.now();
    const cached = tables.get(key);
    if (cached && cached.ref === refKey && now - cached.atMs < SPS_TABLE_TTL_MS) return cached;
    let loaded: { sps: SpsFunction; source: string; error?: string };
    try {
      const cm = await deps.client.get(ConfigMaps, ss.metadata.namespace, ref.configMapName, { signal });
      const text = cm.data?.[ref.key];
      if (text === undefined) throw new Error(`has no key ${ref.key}`);
      const table = loadSpsTable(JSON.parse(text));
      loaded = {
        sps: spsFromTable(table),
        source: `ConfigMap ${refKey}${table.gpuProduct ? ` (${table.gpuProduct})` : ""}, ${table.rows.length} rows`,
      };
    } catch (err) {
      if (signal.aborted) throw err;
      const why = isNotFound(err) ? "not found" : (err as Error).message;
      const error = `spsTable ConfigMap ${refKey}: ${why}`.slice(0, 400);
      loaded = { sps: modelSps, source: `${MODEL_SOURCE}; ${error}`, error };
      if (cached?.error !== error)
        deps.events.event(raw, "Warning", "SpsTableUnusable", `${error}; using the ${MODEL_SOURCE}`);
    }
    tables.set(key, { ref: refKey, atMs: now, ...loaded });
    return loaded;
  }
}
