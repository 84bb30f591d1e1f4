// Signals over a window from two scrapes of every serving pod. Pure: the caller scrapes.
// Counters are differenced per series (pod + labels, so several data-parallel engines per pod stay
// apart); a series that went down or whose _created moved restarted, and counts from its restart;
// a pod that appeared within the window counts only when its _created shows it started inside the
// window; a pod that left is dropped (its last counts are lost with it). Gauges come from the later
// scrape; SGLang's acceptance gauges are snapshots and are averaged, never differenced.
import { detectEngine, type EngineKind, type EngineMetrics } from "./engines.ts";
import { type Exposition, parseExposition, type Sample } from "./exposition.ts";
import type { EngineSteps, TokenIntervals } from "./sps-online.ts";

export interface Scrape {
  pod: string;
  /** Metrics text, or an already parsed exposition. */
  text?: string;
  exposition?: Exposition;
  /** Unix seconds of the scrape, when known (lets a new pod's _created place it in the window). */
  time?: number;
}

export interface Signals {
  engine: EngineKind | null;
  windowSeconds: number;
  tau: number | null;
  acceptanceRate: number | null;
  acceptanceByPosition: number[] | null;
  /** Verification rounds in the window, where the engine counts them (vLLM's num_drafts). */
  rounds?: number | null;
  running: number | null;
  waiting: number | null;
  ttftP50: number | null;
  ttftP90: number | null;
  ttftP95: number | null;
  tpotP50: number | null;
  tpotP90: number | null;
  tpotP95: number | null;
  /**
   * The histogram bucket [lower, upper] the p95 fell in: how finely it was measured. A p95 in the
   * first bucket (lower 0) is only an upper bound (Prometheus interpolates it from zero).
   */
  ttftP95Bucket?: [number, number] | null;
  tpotP95Bucket?: [number, number] | null;
  tokensPerSecondPerUser: number | null;
  generationTokensPerSecond: number | null;
  promptTokensPerSecond: number | null;
  requestsPerSecond: number | null;
  kvCacheUsage: number | null;
  /**
   * vLLM's engine-step figures over the window, one entry per engine scraped at both ends: exact,
   * from histogram _sum and _count and counter increases (the online SPS(B) estimate reads them).
   * Absent on SGLang.
   */
  steps?: EngineSteps[] | null;
  /**
   * SGLang's token times over the window, one entry per pod scraped at both ends (its tokenizer
   * times all its schedulers): the online SPS(B) estimate derives step figures from them. Absent on vLLM.
   */
  tokenIntervals?: TokenIntervals[] | null;
  pods: { scraped: number; appeared: string[]; left: string[]; resetSeries: number };
}

interface PodSamples {
  pod: string;
  time: number | undefined;
  samples: Sample[];
  /** Where each series sits in `samples`, shared by this pod's scrapes of the same shape. */
  layout: Layout;
}

/**
 * The shape of one pod's exposition: its samples' names and label sets (by identity: the scrape
 * path's parse shares both across scrapes), and indexes into `samples` built from them as read. A
 * pod exposes the same series in the same order scrape after scrape, so this is built once per pod
 * rather than once per scrape (per-scrape maps were most of what a window's derivation allocated).
 */
interface Layout {
  names: readonly string[];
  labels: readonly Record<string, string>[];
  /** Sample indexes by series name. */
  byName: Map<string, number[]>;
  /** By the label left out, then series name: the index of each labelPart's sample (the last kept). */
  series: Map<string, Map<string, Map<string, number>>>;
  /** By the label left out: each sample's series key (pod + labels), built as read. */
  keys: Map<string, (string | undefined)[]>;
}

const NO_INDEXES: readonly number[] = Object.freeze([]);

/**
 * Labels sorted (minus `drop`), by labels object: the scrape path's parse shares one frozen object
 * per label text (exposition.ts), so this is built once per label set, not per sample and window.
 */
const labelParts = new WeakMap<Record<string, string>, Map<string, string>>();
function labelPart(labels: Record<string, string>, drop = ""): string {
  let byDrop = labelParts.get(labels);
  if (!byDrop) {
    byDrop = new Map();
    labelParts.set(labels, byDrop);
  }
  let part = byDrop.get(drop);
  if (part === undefined) {
    const parts: string[] = [];
    for (const k of Object.keys(labels).sort()) if (k !== drop) parts.push(k, "=", labels[k] as string, ",");
    part = parts.join("");
    byDrop.set(drop, part);
  }
  return part;
}

/** pod + labels sorted (minus `drop`). */
const seriesKey = (pod: string, labels: Record<string, string>, drop?: string) =>
  `${pod}\u0000${labelPart(labels, drop)}`;

/** Each pod's last layout, least recently used first (a pod that went is dropped past the limit). */
const layouts = new Map<string, Layout>();
const LAYOUTS_LIMIT = 5000;

function sameLayout(layout: Layout, samples: readonly Sample[]): boolean {
  if (layout.names.length !== samples.length) return false;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i] as Sample;
    if (s.name !== layout.names[i] || s.labels !== layout.labels[i]) return false;
  }
  return true;
}

function layoutOf(pod: string, samples: readonly Sample[]): Layout {
  let layout = layouts.get(pod);
  if (layout && sameLayout(layout, samples)) {
    // Most recently used goes last.
    layouts.delete(pod);
    layouts.set(pod, layout);
    return layout;
  }
  const byName = new Map<string, number[]>();
  samples.forEach((sample, i) => {
    const list = byName.get(sample.name);
    if (list) list.push(i);
    else byName.set(sample.name, [i]);
  });
  layout = {
    names: samples.map((x) => x.name),
    labels: samples.map((x) => x.labels),
    byName,
    series: new Map(),
    keys: new Map(),
  };
  layouts.delete(pod);
  layouts.set(pod, layout);
  if (layouts.size > LAYOUTS_LIMIT) layouts.delete(layouts.keys().next().value as string);
  return layout;
}

function parsed(s: Scrape): PodSamples {
  const exposition = s.exposition ?? parseExposition(s.text ?? "");
  return {
    pod: s.pod,
    time: s.time,
    samples: exposition.samples,
    layout: layoutOf(s.pod, exposition.samples),
  };
}

/** Indexes of a pod's samples of one series name. */
const named = (p: PodSamples, name: string): readonly number[] => p.layout.byName.get(name) ?? NO_INDEXES;

/** A sample's series key: pod + its labels (minus `drop`), kept in the pod's layout. */
function keyOf(p: PodSamples, index: number, drop = ""): string {
  let keys = p.layout.keys.get(drop);
  if (!keys) {
    keys = [];
    p.layout.keys.set(drop, keys);
  }
  let key = keys[index];
  if (key === undefined) {
    key = seriesKey(p.pod, (p.samples[index] as Sample).labels, drop);
    keys[index] = key;
  }
  return key;
}

/** One pod's sample index of a series name by labelPart (minus `drop`), the last of a repeated series kept. */
function seriesOf(p: PodSamples, name: string, drop = ""): Map<string, number> {
  let byName = p.layout.series.get(drop);
  if (!byName) {
    byName = new Map();
    p.layout.series.set(drop, byName);
  }
  let series = byName.get(name);
  if (!series) {
    series = new Map();
    for (const i of named(p, name)) series.set(labelPart((p.samples[i] as Sample).labels, drop), i);
    byName.set(name, series);
  }
  return series;
}

/** The value of a pod's series found by seriesOf, if it has it. */
function valueAt(p: PodSamples | undefined, series: Map<string, number> | undefined, part: string) {
  const i = series?.get(part);
  return i === undefined || !p ? undefined : (p.samples[i] as Sample).value;
}

/** Samples of one exact series name, keyed by pod + labels (minus `drop`). */
function byKey(pods: PodSamples[], name: string, drop?: string): Map<string, Sample> {
  const out = new Map<string, Sample>();
  for (const p of pods) for (const i of named(p, name)) out.set(keyOf(p, i, drop), p.samples[i] as Sample);
  return out;
}

interface DeltaContext {
  before: PodSamples[];
  after: PodSamples[];
  beforePods: Set<string>;
  /**
   * Each pod's scrape at either end, in the order first given (the last one given, were a pod
   * given twice, as a map keyed by pod + labels keeps the last value).
   */
  beforeByPod: Map<string, PodSamples>;
  afterByPod: Map<string, PodSamples>;
  windowSeconds: number;
  resets: Set<string>;
}

/** Start of the window for a pod seen only in the later scrape, if its scrape time is known. */
function windowStart(ctx: DeltaContext, pod: string): number | undefined {
  const t = ctx.after.find((p) => p.pod === pod)?.time;
  return t === undefined ? undefined : t - ctx.windowSeconds;
}

/**
 * For one pod's two scrapes: whether a series (by labelPart) restarted within the window, judged
 * on other series of the pod (a histogram's buckets on its _count); undefined when they cannot tell.
 */
type ResetOf = (after: PodSamples, before: PodSamples | undefined) => (part: string) => boolean | undefined;

/**
 * Visits the per-series increase of `valueName` over the window, pod by pod (a series is its pod +
 * labels, so series of two pods never pair). `createdName` is the series' _created gauge; `drop` a
 * label left out of the key (le for buckets, whose reset is judged on the family's _count). The
 * series maps are kept per exposition, so a window allocates nearly nothing here.
 */
function eachIncrease(
  ctx: DeltaContext,
  valueName: string,
  createdName: string,
  visit: (key: string, increase: number, sample: Sample, pod: string) => void,
  drop?: string,
  resetOf?: ResetOf,
): void {
  for (const a of ctx.afterByPod.values()) {
    const after = seriesOf(a, valueName);
    if (after.size === 0) continue;
    const b = ctx.beforeByPod.get(a.pod);
    const appeared = !ctx.beforePods.has(a.pod);
    const before = b && seriesOf(b, valueName);
    const createdAfter = seriesOf(a, createdName, drop);
    const createdBefore = b && seriesOf(b, createdName, drop);
    const resetOfPart = resetOf?.(a, b);
    for (const [part, index] of after) {
      const now = a.samples[index] as Sample;
      const key = keyOf(a, index);
      const createdPart = drop ? labelPart(now.labels, drop) : part;
      const created = valueAt(a, createdAfter, createdPart);
      if (appeared) {
        // A pod that appeared: its counts belong to the window only if it started inside it.
        const start = windowStart(ctx, a.pod);
        if (created !== undefined && start !== undefined && created >= start)
          visit(key, now.value, now, a.pod);
        continue;
      }
      const prev = valueAt(b, before, part);
      if (prev === undefined) {
        // prometheus_client creates a labelled child at its first increment: all of it is new.
        visit(key, now.value, now, a.pod);
        continue;
      }
      const createdPrev = valueAt(b, createdBefore, createdPart);
      const restarted =
        resetOfPart?.(createdPart) ??
        (now.value < prev || (created !== undefined && createdPrev !== undefined && created > createdPrev));
      if (restarted) ctx.resets.add(`${valueName}\u0000${drop ? keyOf(a, index, drop) : key}`);
      visit(key, restarted ? now.value : now.value - prev, now, a.pod);
    }
  }
}

/** Per-series increase of `valueName` over the window, by pod + labels (see eachIncrease). */
function increases(ctx: DeltaContext, valueName: string, createdName: string): Map<string, number> {
  const out = new Map<string, number>();
  eachIncrease(ctx, valueName, createdName, (key, inc) => out.set(key, inc));
  return out;
}

/** The sum of a counter family's increases over every series. */
function counterTotal(ctx: DeltaContext, family: string): number {
  let total = 0;
  eachIncrease(ctx, `${family}_total`, `${family}_created`, (_key, inc) => {
    total += inc;
  });
  return total;
}

function counterIncreases(ctx: DeltaContext, family: string): Map<string, number> {
  return increases(ctx, `${family}_total`, `${family}_created`);
}

const sum = (values: Iterable<number>) => {
  let total = 0;
  for (const v of values) total += v;
  return total;
};

/** Prometheus histogram_quantile over bucket increases summed across series. */
export function histogramQuantile(q: number, buckets: Map<number, number>): number | null {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Number.POSITIVE_INFINITY) ?? 0;
  if (bounds.length < 2 || total <= 0) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const bound of bounds) {
    const count = buckets.get(bound) ?? 0;
    if (count >= rank) {
      if (bound === Number.POSITIVE_INFINITY) return lowerBound;
      if (count === lowerCount) return bound;
      return lowerBound + ((bound - lowerBound) * (rank - lowerCount)) / (count - lowerCount);
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound;
}

/** The bucket [lower, upper] that holds quantile q (upper is Infinity past the last finite bound). */
export function histogramBucket(q: number, buckets: Map<number, number>): [number, number] | null {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Number.POSITIVE_INFINITY) ?? 0;
  if (bounds.length < 2 || total <= 0) return null;
  let lowerBound = 0;
  for (const bound of bounds) {
    if ((buckets.get(bound) ?? 0) >= q * total) return [lowerBound, bound];
    lowerBound = bound;
  }
  return [lowerBound, Number.POSITIVE_INFINITY];
}

function histogramQuantiles(
  ctx: DeltaContext,
  family: string,
): {
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p95Bucket: [number, number] | null;
} | null {
  let counted = 0;
  eachIncrease(ctx, `${family}_count`, `${family}_created`, () => {
    counted++;
  });
  if (counted === 0) return null;
  // A series restarted when its _count fell or its _created moved; its buckets then count from zero.
  const [countName, createdName] = [`${family}_count`, `${family}_created`];
  const restarted: ResetOf = (a, b) => {
    const [count1, count0] = [seriesOf(a, countName), b && seriesOf(b, countName)];
    const [created1, created0] = [seriesOf(a, createdName), b && seriesOf(b, createdName)];
    return (part) => {
      const after = valueAt(a, count1, part);
      const before = valueAt(b, count0, part);
      const c1 = valueAt(a, created1, part);
      const c0 = valueAt(b, created0, part);
      if (after === undefined || before === undefined) return undefined;
      return after < before || (c1 !== undefined && c0 !== undefined && c1 > c0);
    };
  };
  const merged = new Map<number, number>();
  eachIncrease(
    ctx,
    `${family}_bucket`,
    `${family}_created`,
    (_key, inc, sample) => {
      const le = sample.labels.le;
      if (le === undefined) return;
      const bound = le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le);
      merged.set(bound, (merged.get(bound) ?? 0) + inc);
    },
    "le",
    restarted,
  );
  return {
    p50: histogramQuantile(0.5, merged),
    p90: histogramQuantile(0.9, merged),
    p95: histogramQuantile(0.95, merged),
    p95Bucket: histogramBucket(0.95, merged),
  };
}

function gaugeValues(pods: PodSamples[], name: string): number[] {
  const values: number[] = [];
  for (const p of pods)
    for (const i of named(p, name)) {
      const value = (p.samples[i] as Sample).value;
      if (Number.isFinite(value)) values.push(value);
    }
  return values;
}

function firstPresent(pods: PodSamples[], prefix: string, names: string[]): number[] {
  for (const n of names) {
    const v = gaugeValues(pods, prefix + n);
    if (v.length > 0) return v;
  }
  return [];
}

const hasFamily = (pods: PodSamples[], name: string) => pods.some((p) => p.layout.byName.has(name));

/**
 * Derives the signals from scrapes at the start and at the end of a window of `windowSeconds`.
 * Throws ExpositionError when a scrape's text is malformed (the caller treats that pod as missing).
 */
export function deriveSignals(startScrapes: Scrape[], endScrapes: Scrape[], windowSeconds: number): Signals {
  if (!(windowSeconds > 0)) throw new Error(`window must be positive, got ${windowSeconds}`);
  const memo = memoOf(startScrapes, endScrapes, windowSeconds);
  if (memo.hit) return memo.hit;
  const out = derive(startScrapes, endScrapes, windowSeconds);
  memo.keep(out);
  return out;
}

/**
 * The last derivation per end exposition: status.signals and the autoscaler read the same shared
 * scrapes, so the second reader of a window gets the first one's signals (the same object: callers
 * only read it), once. Only scrapes given parsed take part (a text is parsed afresh each time).
 */
const derivations = new WeakMap<
  Exposition,
  { start: Fingerprint[]; end: Fingerprint[]; windowSeconds: number; signals: Signals }
>();
/**
 * A scrape as the memo remembers it: weakly, so that a window's entry never keeps the scrapes of
 * the window before alive (a chain of entries would keep every scrape ever taken).
 */
interface Fingerprint {
  ref: WeakRef<Exposition>;
  pod: string;
  time: number | undefined;
}
const fingerprint = (x: Scrape): Fingerprint => ({
  ref: new WeakRef(x.exposition as Exposition),
  pod: x.pod,
  time: x.time,
});
const sameScrapes = (a: Fingerprint[], b: Scrape[]) =>
  a.length === b.length &&
  a.every((x, i) => {
    const y = b[i] as Scrape;
    return x.ref.deref() === y.exposition && x.pod === y.pod && x.time === y.time;
  });
function memoOf(start: Scrape[], end: Scrape[], windowSeconds: number) {
  const first = end[0]?.exposition;
  const parsedOnly = first !== undefined && [...start, ...end].every((x) => x.exposition !== undefined);
  const last = first && parsedOnly ? derivations.get(first) : undefined;
  const hit =
    last &&
    last.windowSeconds === windowSeconds &&
    sameScrapes(last.start, start) &&
    sameScrapes(last.end, end)
      ? last.signals
      : undefined;
  // Two readers: once the second had it, the entry can go.
  if (hit && first) derivations.delete(first);
  return {
    hit,
    keep(signals: Signals) {
      if (first && parsedOnly)
        derivations.set(first, {
          start: start.map(fingerprint),
          end: end.map(fingerprint),
          windowSeconds,
          signals,
        });
    },
  };
}

/** The engine of the first pod whose samples tell (as detectEngine over all their samples). */
function engineOf(pods: PodSamples[]) {
  for (const p of pods) {
    const engine = detectEngine(p.samples);
    if (engine) return engine;
  }
  return null;
}

/** Signals of a window in which nothing was measured (every figure null). */
export function noFigures(
  engine: EngineKind | null,
  windowSeconds: number,
  pods: Signals["pods"] = { scraped: 0, appeared: [], left: [], resetSeries: 0 },
): Signals {
  return {
    engine,
    windowSeconds,
    tau: null,
    acceptanceRate: null,
    acceptanceByPosition: null,
    running: null,
    waiting: null,
    ttftP50: null,
    ttftP90: null,
    ttftP95: null,
    tpotP50: null,
    tpotP90: null,
    tpotP95: null,
    ttftP95Bucket: null,
    tpotP95Bucket: null,
    tokensPerSecondPerUser: null,
    generationTokensPerSecond: null,
    promptTokensPerSecond: null,
    requestsPerSecond: null,
    kvCacheUsage: null,
    pods,
  };
}

function derive(startScrapes: Scrape[], endScrapes: Scrape[], windowSeconds: number): Signals {
  const before = startScrapes.map(parsed);
  const after = endScrapes.map(parsed);
  const beforePods = new Set(before.map((p) => p.pod));
  const afterPods = new Set(after.map((p) => p.pod));
  const engine = engineOf(after) ?? engineOf(before);
  const byPod = (list: PodSamples[]) => {
    const map = new Map<string, PodSamples>();
    for (const p of list) map.set(p.pod, p);
    return map;
  };
  const ctx: DeltaContext = {
    before,
    after,
    beforePods,
    beforeByPod: byPod(before),
    afterByPod: byPod(after),
    windowSeconds,
    resets: new Set(),
  };
  const pods = {
    scraped: after.length,
    appeared: [...afterPods].filter((p) => !beforePods.has(p)).sort(),
    left: [...beforePods].filter((p) => !afterPods.has(p)).sort(),
    resetSeries: 0,
  };
  const empty = noFigures(engine?.kind ?? null, windowSeconds, pods);
  if (!engine) return empty;
  const out = { ...empty, ...deriveForEngine(ctx, engine) };
  out.pods.resetSeries = ctx.resets.size;
  return out;
}

function rateOf(ctx: DeltaContext, engine: EngineMetrics, family: string): number | null {
  const name = engine.prefix + family;
  if (!hasFamily(ctx.after, `${name}_total`)) return null;
  return counterTotal(ctx, name) / ctx.windowSeconds;
}

function deriveForEngine(ctx: DeltaContext, engine: EngineMetrics): Partial<Signals> {
  const p = engine.prefix;
  const out: Partial<Signals> = {};
  const runningNow = gaugeValues(ctx.after, p + engine.gauges.running);
  const waitingNow = gaugeValues(ctx.after, p + engine.gauges.waiting);
  out.running = runningNow.length ? sum(runningNow) : null;
  out.waiting = waitingNow.length ? sum(waitingNow) : null;
  const kv = firstPresent(ctx.after, p, engine.gauges.kvCacheUsage);
  out.kvCacheUsage = kv.length ? sum(kv) / kv.length : null;

  out.generationTokensPerSecond = rateOf(ctx, engine, engine.counters.generationTokens);
  out.promptTokensPerSecond = rateOf(ctx, engine, engine.counters.promptTokens);
  out.requestsPerSecond = rateOf(ctx, engine, engine.counters.requestsFinished);

  const ttft = histogramQuantiles(ctx, p + engine.histograms.ttft);
  out.ttftP50 = ttft?.p50 ?? null;
  out.ttftP90 = ttft?.p90 ?? null;
  out.ttftP95 = ttft?.p95 ?? null;
  out.ttftP95Bucket = ttft?.p95Bucket ?? null;
  for (const family of engine.histograms.tpot) {
    const tpot = histogramQuantiles(ctx, p + family);
    if (!tpot) continue;
    out.tpotP50 = tpot.p50;
    out.tpotP90 = tpot.p90;
    out.tpotP95 = tpot.p95;
    out.tpotP95Bucket = tpot.p95Bucket;
    break;
  }

  // Mean running over the window (both ends), for tokens per second per user.
  const runningBefore = gaugeValues(ctx.before, p + engine.gauges.running);
  const meanRunning =
    runningBefore.length && out.running !== null ? (sum(runningBefore) + out.running) / 2 : out.running;
  out.tokensPerSecondPerUser =
    out.generationTokensPerSecond !== null && meanRunning
      ? out.generationTokensPerSecond / meanRunning
      : null;

  if (engine.kind === "vllm") {
    Object.assign(out, vllmAcceptance(ctx, engine));
    out.steps = vllmSteps(ctx, engine);
  } else {
    Object.assign(out, sglangAcceptance(ctx, engine));
    out.tokenIntervals = sglangTokenIntervals(ctx, engine);
  }
  return out;
}

function vllmAcceptance(ctx: DeltaContext, engine: EngineMetrics): Partial<Signals> {
  const { drafts, acceptedTokens, draftTokens, acceptedTokensPerPosition } = engine.counters;
  if (!drafts || !acceptedTokens || !hasFamily(ctx.after, `${engine.prefix + drafts}_total`)) return {};
  const draftInc = counterIncreases(ctx, engine.prefix + drafts);
  const acceptedInc = counterIncreases(ctx, engine.prefix + acceptedTokens);
  // Only series seen in both counters, so a pod that lost one of them does not skew the ratio.
  let draftSum = 0;
  let acceptedSum = 0;
  for (const [key, d] of draftInc) {
    const a = acceptedInc.get(key);
    if (a === undefined) continue;
    draftSum += d;
    acceptedSum += a;
  }
  if (draftSum <= 0) return {};
  const out: Partial<Signals> = { tau: 1 + acceptedSum / draftSum, rounds: draftSum };
  if (draftTokens) {
    const dt = counterTotal(ctx, engine.prefix + draftTokens);
    out.acceptanceRate = dt > 0 ? sum(acceptedInc.values()) / dt : null;
  }
  if (acceptedTokensPerPosition) {
    const family = engine.prefix + acceptedTokensPerPosition;
    const byPosition: number[] = [];
    eachIncrease(ctx, `${family}_total`, `${family}_created`, (_key, inc, sample) => {
      const position = Number(sample.labels.position);
      if (!Number.isInteger(position) || position < 0 || position > 64) return;
      byPosition[position] = (byPosition[position] ?? 0) + inc;
    });
    if (byPosition.length) out.acceptanceByPosition = Array.from(byPosition, (v) => (v ?? 0) / draftSum);
  }
  return out;
}

/** Per-series increase of a histogram's _count and _sum over the window (null when absent). */
function histogramTotals(
  ctx: DeltaContext,
  family: string,
): { count: Map<string, number>; sum: Map<string, number> } | null {
  if (!hasFamily(ctx.after, `${family}_count`) || !hasFamily(ctx.after, `${family}_sum`)) return null;
  return {
    count: increases(ctx, `${family}_count`, `${family}_created`),
    sum: increases(ctx, `${family}_sum`, `${family}_created`),
  };
}

/** Each engine's step figures (pod + labels: data-parallel engines stay apart), for those that expose them all. */
function vllmSteps(ctx: DeltaContext, engine: EngineMetrics): EngineSteps[] | null {
  const { stepInterval, engineSteps } = engine.histograms;
  const { drafts, draftTokens, promptTokens } = engine.counters;
  if (!stepInterval || !engineSteps || !drafts || !draftTokens) return null;
  const intervals = histogramTotals(ctx, engine.prefix + stepInterval);
  const steps = histogramTotals(ctx, engine.prefix + engineSteps);
  if (!intervals || !steps || !hasFamily(ctx.after, `${engine.prefix + drafts}_total`)) return null;
  const draftInc = counterIncreases(ctx, engine.prefix + drafts);
  const draftTokenInc = counterIncreases(ctx, engine.prefix + draftTokens);
  const promptInc = counterIncreases(ctx, engine.prefix + promptTokens);
  const running0 = byKey(ctx.before, engine.prefix + engine.gauges.running);
  const running1 = byKey(ctx.after, engine.prefix + engine.gauges.running);
  const out: EngineSteps[] = [];
  for (const [key, n] of steps.count) {
    const r0 = running0.get(key)?.value;
    const r1 = running1.get(key)?.value;
    const e = {
      steps: n,
      intervals: intervals.count.get(key),
      intervalSeconds: intervals.sum.get(key),
      drafts: draftInc.get(key),
      draftTokens: draftTokenInc.get(key),
      promptTokens: promptInc.get(key),
    };
    if (!Object.values(e).every((v) => v !== undefined)) continue;
    const running = r0 !== undefined && r1 !== undefined ? (r0 + r1) / 2 : r1;
    out.push({
      ...(e as EngineSteps),
      ...(running !== undefined && Number.isFinite(running) ? { running } : {}),
    });
  }
  return out;
}

function sglangAcceptance(ctx: DeltaContext, engine: EngineMetrics): Partial<Signals> {
  const name = engine.prefix + (engine.gauges.acceptLength ?? "");
  // Weight each pod's snapshot by the tokens it generated in the window; an idle pod's gauge says
  // nothing about the current traffic.
  const generated = engine.prefix + engine.counters.generationTokens;
  const perPod = new Map<string, number>();
  eachIncrease(ctx, `${generated}_total`, `${generated}_created`, (_key, inc, _sample, pod) =>
    perPod.set(pod, (perPod.get(pod) ?? 0) + inc),
  );
  let weighted = 0;
  let weights = 0;
  let plain = 0;
  let count = 0;
  for (const pod of ctx.after) {
    for (const i of named(pod, name)) {
      const s = pod.samples[i] as Sample;
      if (!(s.value >= 1)) continue;
      const w = perPod.get(pod.pod) ?? 0;
      weighted += s.value * w;
      weights += w;
      plain += s.value;
      count++;
    }
  }
  const out: Partial<Signals> = {};
  if (count > 0) out.tau = weights > 0 ? weighted / weights : plain / count;
  const rates = gaugeValues(ctx.after, engine.prefix + (engine.gauges.acceptRate ?? "")).filter((v) => v > 0);
  if (rates.length) out.acceptanceRate = sum(rates) / rates.length;
  return out;
}

/** Per pod, the sum of a series name's increases over its series (labels apart). */
function increaseByPod(ctx: DeltaContext, valueName: string, createdName: string): Map<string, number> {
  const out = new Map<string, number>();
  eachIncrease(ctx, valueName, createdName, (_key, inc, _sample, pod) =>
    out.set(pod, (out.get(pod) ?? 0) + inc),
  );
  return out;
}

/** Per pod, the mean of a gauge over its series (schedulers: data-parallel ranks, or every TP rank). */
function gaugeMeanByPod(pods: PodSamples[], name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of pods) {
    const values = named(p, name)
      .map((i) => (p.samples[i] as Sample).value)
      .filter(Number.isFinite);
    if (values.length) out.set(p.pod, sum(values) / values.length);
  }
  return out;
}

/**
 * Each SGLang pod's token times (inter_token_latency_seconds _count and _sum increases), with its
 * acceptance length and verify window at the window's end (snapshot gauges, as its tau is read),
 * running (mean of the two ends) and prompt tokens; null when the pods expose no such histogram.
 */
function sglangTokenIntervals(ctx: DeltaContext, engine: EngineMetrics): TokenIntervals[] | null {
  const family = engine.histograms.tokenInterval;
  if (!family) return null;
  const name = engine.prefix + family;
  if (!hasFamily(ctx.after, `${name}_count`) || !hasFamily(ctx.after, `${name}_sum`)) return null;
  const tokens = increaseByPod(ctx, `${name}_count`, `${name}_created`);
  const seconds = increaseByPod(ctx, `${name}_sum`, `${name}_created`);
  const prompt = engine.prefix + engine.counters.promptTokens;
  const promptTokens = increaseByPod(ctx, `${prompt}_total`, `${prompt}_created`);
  const gauge = (pods: PodSamples[], g: string | undefined) =>
    g ? gaugeMeanByPod(pods, engine.prefix + g) : new Map<string, number>();
  const acceptLength = gauge(ctx.after, engine.gauges.acceptLength);
  const verifyTokens = gauge(ctx.after, engine.gauges.verifyTokens);
  const running0 = gauge(ctx.before, engine.gauges.running);
  const running1 = gauge(ctx.after, engine.gauges.running);
  const out: TokenIntervals[] = [];
  for (const [pod, n] of tokens) {
    const s = seconds.get(pod);
    if (s === undefined) continue;
    const r0 = running0.get(pod);
    const r1 = running1.get(pod);
    const running = r0 !== undefined && r1 !== undefined ? (r0 + r1) / 2 : r1;
    const optional = { acceptLength: acceptLength.get(pod), verifyTokens: verifyTokens.get(pod), running };
    out.push({
      tokens: n,
      seconds: s,
      promptTokens: promptTokens.get(pod) ?? 0,
      ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)),
    });
  }
  return out;
}
