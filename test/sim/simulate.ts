// One run of a policy on a trace: arrivals, routing, replicas, cold starts, scrapes through the real
// parser and signal code, the policy's decisions, and the SLO accounting. Deterministic per seed.
import { deriveSignals, type Scrape, type Signals } from "../../operator/src/autoscaler/signals.ts";
import type { SpsFunction } from "../../operator/src/autoscaler/sps.ts";
import { arrivalsFor, type Completion, Replica, renderMetrics, route, stepReplica } from "./fleet.ts";
import type { SimParams } from "./params.ts";
import { gaussian, rng } from "./rng.ts";
import type { Trace } from "./traces.ts";

export interface PolicyInput {
  now: number;
  signals: Signals | null;
  signalsTime: number | null;
  currentReplicas: number;
  readyReplicas: number;
  startingReplicas: number;
  scrapedReplicas: number;
}

export interface Policy {
  decide(input: PolicyInput): number;
}

export interface PolicyContext {
  params: SimParams;
  /** The SPS table policies are given (true physics sampled, each row off by up to spsTableError). */
  sps: SpsFunction;
  /** Only the clairvoyant oracle may look. */
  trace: Trace;
}

export type PolicyFactory = (ctx: PolicyContext) => Policy;

export interface MinuteRecord {
  minute: number;
  rate: number;
  replicas: number;
  ready: number;
  met: boolean;
  requests: number;
  requestsMet: number;
  ttftP95: number;
  tpotP95: number;
  speedP5: number;
}

export interface SimResult {
  minutes: MinuteRecord[];
  gpuHours: number;
  attainment: number;
  requestAttainment: number;
  scaleEvents: number;
  decisions: { time: number; from: number; to: number }[];
}

function weightedQuantile(values: { v: number; w: number }[], q: number): number {
  const sorted = [...values].sort((a, b) => a.v - b.v);
  const total = sorted.reduce((a, x) => a + x.w, 0);
  let acc = 0;
  for (const x of sorted) {
    acc += x.w;
    if (acc >= q * total) return x.v;
  }
  return sorted[sorted.length - 1]?.v ?? 0;
}

export function simulate(
  trace: Trace,
  params: SimParams,
  factory: PolicyFactory,
  sps: SpsFunction,
  initialReplicas: number,
): SimResult {
  const policy = factory({ params, sps, trace });
  const arrivalNoise = rng(params.seed);
  const scrapeNoise = rng(params.seed + 1);
  const coldNoise = rng(params.seed + 2);
  const dt = params.stepSeconds;
  const end = trace.minutes.length * 60;
  let replicas: Replica[] = [];
  let nextId = 0;
  const coldStart = () =>
    params.coldStartSeconds.min + coldNoise() * (params.coldStartSeconds.max - params.coldStartSeconds.min);
  for (let i = 0; i < initialReplicas; i++) {
    const r = new Replica(`pod-${nextId++}`, -600, -600 + 1);
    r.state = "ready";
    replicas.push(r);
  }
  let desired = initialReplicas;
  const decisions: SimResult["decisions"] = [];
  const minutes: MinuteRecord[] = [];
  let bucket: Completion[] = [];
  let gpuSeconds = 0;
  let previous = new Map<string, { text: string; time: number }>();
  let carry: Completion[] = [];

  const closeMinute = (m: number) => {
    const rec = trace.minutes[m];
    const done = bucket;
    bucket = carry;
    carry = [];
    const slo = params.slo;
    let met = true;
    let requests = 0;
    let requestsMet = 0;
    let ttft = 0;
    let tpot = 0;
    let speed = 0;
    if (done.length) {
      ttft = weightedQuantile(
        done.map((c) => ({ v: c.ttft, w: c.n })),
        0.95,
      );
      tpot = weightedQuantile(
        done.map((c) => ({ v: c.tpot, w: c.n })),
        0.95,
      );
      speed = weightedQuantile(
        done.map((c) => ({ v: c.speed, w: c.n })),
        0.05,
      );
      met = ttft <= slo.ttftP95 && tpot <= slo.tpotP95 && speed >= slo.minTokensPerSecondPerUser;
      for (const c of done) {
        requests += c.n;
        if (c.ttft <= slo.ttftP95 && c.tpot <= slo.tpotP95 && c.speed >= slo.minTokensPerSecondPerUser)
          requestsMet += c.n;
      }
    }
    minutes.push({
      minute: m,
      rate: rec?.rate ?? 0,
      replicas: replicas.length,
      ready: replicas.filter((r) => r.state === "ready").length,
      met,
      requests,
      requestsMet,
      ttftP95: ttft,
      tpotP95: tpot,
      speedP5: speed,
    });
  };

  for (let t = 0; t < end; t += dt) {
    const m = Math.floor(t / 60);
    const rec = trace.minutes[m];
    if (!rec) break;
    for (const r of replicas) if (r.state === "starting" && t >= r.readyAt) r.state = "ready";
    const ready = replicas.filter((r) => r.state === "ready");
    // Arrivals (Poisson-like noise), routed to ready replicas by least outstanding requests.
    const mean = rec.rate * dt;
    const count = Math.max(0, mean + Math.sqrt(mean) * gaussian(arrivalNoise));
    const targets = ready.length ? ready : replicas.slice(0, 1);
    const shares = route(targets, count);
    targets.forEach((r, i) => {
      const n = shares[i] ?? 0;
      if (n <= 0) return;
      // The step's arrivals are spread over the step, not all at its start.
      r.queue.push(
        ...arrivalsFor(params, n, rec.mix, t, dt, rec.prompt_tokens, rec.out_tokens, arrivalNoise),
      );
    });
    for (const r of replicas) {
      if (r.state === "starting") continue;
      for (const c of stepReplica(r, params, t, dt)) (Math.floor(c.time / 60) > m ? carry : bucket).push(c);
    }
    gpuSeconds += replicas.length * dt;
    replicas = replicas.filter((r) => r.state !== "draining" || r.outstanding() > 1e-9);

    // Scrape and decide.
    if (t > 0 && t % params.decisionIntervalSeconds === 0) {
      const now = t;
      const scrapes: Scrape[] = [];
      const before: Scrape[] = [];
      const next = new Map<string, { text: string; time: number }>();
      for (const r of replicas) {
        if (r.state !== "ready" || scrapeNoise() < params.scrapeFailureRate) continue;
        const text = renderMetrics(r, params);
        next.set(r.id, { text, time: now });
        scrapes.push({ pod: r.id, text, time: now });
        const prev = previous.get(r.id);
        if (prev && prev.time === now - params.decisionIntervalSeconds)
          before.push({ pod: r.id, text: prev.text, time: prev.time });
      }
      previous = next;
      const paired = scrapes.filter((s) => before.some((b) => b.pod === s.pod)).length;
      const signals = scrapes.length ? deriveSignals(before, scrapes, params.decisionIntervalSeconds) : null;
      const readyCount = replicas.filter((r) => r.state === "ready").length;
      const wanted = policy.decide({
        now,
        signals,
        signalsTime: signals ? now : null,
        currentReplicas: desired,
        readyReplicas: readyCount,
        startingReplicas: replicas.filter((r) => r.state === "starting").length,
        scrapedReplicas: paired,
      });
      const target = Math.min(params.maxReplicas, Math.max(params.minReplicas, Math.round(wanted)));
      if (target !== desired) decisions.push({ time: now, from: desired, to: target });
      desired = target;
      let active = replicas.filter((r) => r.state !== "draining");
      while (active.length < desired) {
        const r = new Replica(`pod-${nextId++}`, now, now + coldStart());
        replicas.push(r);
        active.push(r);
      }
      if (active.length > desired) {
        // Starting pods go first (newest first), then the least loaded ready ones drain.
        const order = [...active].sort((a, b) =>
          a.state === b.state ? a.outstanding() - b.outstanding() : a.state === "starting" ? -1 : 1,
        );
        for (const r of order.slice(0, active.length - desired)) {
          if (r.state === "starting") replicas = replicas.filter((x) => x !== r);
          else r.state = "draining";
        }
        active = replicas.filter((r) => r.state !== "draining");
      }
    }
    if ((t + dt) % 60 === 0) closeMinute(m);
  }
  const met = minutes.filter((x) => x.met).length;
  const req = minutes.reduce((a, x) => a + x.requests, 0);
  const reqMet = minutes.reduce((a, x) => a + x.requestsMet, 0);
  return {
    minutes,
    gpuHours: gpuSeconds / 3600,
    attainment: minutes.length ? met / minutes.length : 1,
    requestAttainment: req ? reqMet / req : 1,
    scaleEvents: decisions.length,
    decisions,
  };
}
