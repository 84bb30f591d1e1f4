// One run of a policy on a trace: arrivals, routing, replicas, cold starts, scrapes through the real
// parser and signal code, the policy's decisions, and the SLO accounting. Deterministic per seed.
// The arrivals' noise and the acceptance wobble are drawn per step, before the run, so every policy
// (and the oracle's trials) sees the same arrivals whatever its replica count (common random numbers).
import { deriveSignals, type Scrape, type Signals } from "../../operator/src/autoscaler/signals.ts";
import type { SpsFunction } from "../../operator/src/autoscaler/sps.ts";
import { arrivalsFor, type Completion, Replica, renderMetrics, route, stepReplica } from "./fleet.ts";
import { DOMAINS, type Domain, type SimParams } from "./params.ts";
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

/** Per step of the trace: the arrival count's standard normal draw and each domain's acceptance wobble. */
export interface StepNoise {
  arrivals: number[];
  wobble: Record<Domain, number>[];
}

export function stepNoise(trace: Trace, params: SimParams): StepNoise {
  const next = rng(params.seed);
  const steps = Math.ceil((trace.minutes.length * 60) / params.stepSeconds);
  const arrivals: number[] = [];
  const wobble: Record<Domain, number>[] = [];
  for (let i = 0; i < steps; i++) {
    arrivals.push(gaussian(next));
    wobble.push(Object.fromEntries(DOMAINS.map((d) => [d, gaussian(next)])) as Record<Domain, number>);
  }
  return { arrivals, wobble };
}

/**
 * The fleet's physical state: replicas, completions not yet accounted, minutes closed, GPU-seconds.
 * `step` advances it by one step; `resize` adds or drains replicas; `clone` copies it (the oracle's trials).
 */
export class Fleet {
  replicas: Replica[] = [];
  nextId = 0;
  minutes: MinuteRecord[] = [];
  gpuSeconds = 0;
  private bucket: Completion[] = [];
  private carry: Completion[] = [];
  readonly trace: Trace;
  readonly params: SimParams;
  readonly noise: StepNoise;

  constructor(trace: Trace, params: SimParams, noise: StepNoise, initialReplicas: number) {
    this.trace = trace;
    this.params = params;
    this.noise = noise;
    for (let i = 0; i < initialReplicas; i++) this.add(-600, -600 + 1, "ready");
  }

  clone(): Fleet {
    const f = new Fleet(this.trace, this.params, this.noise, 0);
    f.replicas = this.replicas.map((r) => r.clone());
    f.nextId = this.nextId;
    f.minutes = [...this.minutes];
    f.gpuSeconds = this.gpuSeconds;
    f.bucket = [...this.bucket];
    f.carry = [...this.carry];
    return f;
  }

  add(startedAt: number, readyAt: number, state: Replica["state"] = "starting"): Replica {
    const r = new Replica(`pod-${this.nextId++}`, startedAt, readyAt);
    r.state = state;
    this.replicas.push(r);
    return r;
  }

  /** Replicas that are neither draining nor gone: starting and ready ones. */
  active(): Replica[] {
    return this.replicas.filter((r) => r.state !== "draining");
  }

  /** To `desired` active replicas: new ones start (`readyAt` decides when they serve); starting pods go first, then the least loaded ready ones drain. */
  resize(desired: number, now: number, readyAt: () => number) {
    const active = this.active();
    for (let n = active.length; n < desired; n++) this.add(now, readyAt());
    if (active.length > desired) {
      const order = [...active].sort((a, b) =>
        a.state === b.state ? a.outstanding() - b.outstanding() : a.state === "starting" ? -1 : 1,
      );
      for (const r of order.slice(0, active.length - desired)) {
        if (r.state === "starting") this.replicas = this.replicas.filter((x) => x !== r);
        else r.state = "draining";
      }
    }
  }

  /** One step from t: readiness, arrivals routed by least outstanding requests, batches, accounting. */
  step(t: number) {
    const params = this.params;
    const dt = params.stepSeconds;
    const m = Math.floor(t / 60);
    const rec = this.trace.minutes[m];
    if (!rec) return;
    for (const r of this.replicas) if (r.state === "starting" && t >= r.readyAt) r.state = "ready";
    const ready = this.replicas.filter((r) => r.state === "ready");
    const i = Math.round(t / dt);
    const mean = rec.rate * dt;
    const count = Math.max(0, mean + Math.sqrt(mean) * (this.noise.arrivals[i] ?? 0));
    const wobble = this.noise.wobble[i];
    const targets = ready.length ? ready : this.replicas.slice(0, 1);
    const shares = route(targets, count);
    targets.forEach((r, j) => {
      const n = shares[j] ?? 0;
      if (n <= 0) return;
      // The step's arrivals are spread over the step, not all at its start.
      r.queue.push(
        ...arrivalsFor(params, n, rec.mix, t, dt, rec.prompt_tokens, rec.out_tokens, (d) => wobble?.[d] ?? 0),
      );
    });
    for (const r of this.replicas) {
      if (r.state === "starting") continue;
      for (const c of stepReplica(r, params, t, dt))
        (Math.floor(c.time / 60) > m ? this.carry : this.bucket).push(c);
    }
    this.gpuSeconds += this.replicas.length * dt;
    this.replicas = this.replicas.filter((r) => r.state !== "draining" || r.outstanding() > 1e-9);
    if ((t + dt) % 60 === 0) this.closeMinute(m);
  }

  /** Advances a whole minute (its steps from minute * 60). */
  runMinute(minute: number) {
    for (let t = minute * 60; t < (minute + 1) * 60; t += this.params.stepSeconds) this.step(t);
  }

  private closeMinute(m: number) {
    const rec = this.trace.minutes[m];
    const done = this.bucket;
    this.bucket = this.carry;
    this.carry = [];
    const slo = this.params.slo;
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
    this.minutes.push({
      minute: m,
      rate: rec?.rate ?? 0,
      replicas: this.replicas.length,
      ready: this.replicas.filter((r) => r.state === "ready").length,
      met,
      requests,
      requestsMet,
      ttftP95: ttft,
      tpotP95: tpot,
      speedP5: speed,
    });
  }

  result(decisions: SimResult["decisions"]): SimResult {
    const minutes = this.minutes;
    const met = minutes.filter((x) => x.met).length;
    const req = minutes.reduce((a, x) => a + x.requests, 0);
    const reqMet = minutes.reduce((a, x) => a + x.requestsMet, 0);
    return {
      minutes,
      gpuHours: this.gpuSeconds / 3600,
      attainment: minutes.length ? met / minutes.length : 1,
      requestAttainment: req ? reqMet / req : 1,
      scaleEvents: decisions.length,
      decisions,
    };
  }
}

export function simulate(
  trace: Trace,
  params: SimParams,
  factory: PolicyFactory,
  sps: SpsFunction,
  initialReplicas: number,
): SimResult {
  const policy = factory({ params, sps, trace });
  const scrapeNoise = rng(params.seed + 1);
  const coldNoise = rng(params.seed + 2);
  const dt = params.stepSeconds;
  const end = trace.minutes.length * 60;
  const fleet = new Fleet(trace, params, stepNoise(trace, params), initialReplicas);
  const coldStart = () =>
    params.coldStartSeconds.min + coldNoise() * (params.coldStartSeconds.max - params.coldStartSeconds.min);
  let desired = initialReplicas;
  const decisions: SimResult["decisions"] = [];
  let previous = new Map<string, { text: string; time: number }>();

  for (let t = 0; t < end; t += dt) {
    fleet.step(t);
    // Scrape and decide.
    if (t > 0 && t % params.decisionIntervalSeconds === 0) {
      const now = t;
      const scrapes: Scrape[] = [];
      const before: Scrape[] = [];
      const next = new Map<string, { text: string; time: number }>();
      for (const r of fleet.replicas) {
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
      const wanted = policy.decide({
        now,
        signals,
        signalsTime: signals ? now : null,
        currentReplicas: desired,
        readyReplicas: fleet.replicas.filter((r) => r.state === "ready").length,
        startingReplicas: fleet.replicas.filter((r) => r.state === "starting").length,
        scrapedReplicas: paired,
      });
      const target = Math.min(params.maxReplicas, Math.max(params.minReplicas, Math.round(wanted)));
      if (target !== desired) decisions.push({ time: now, from: desired, to: target });
      desired = target;
      fleet.resize(desired, now, () => now + coldStart());
    }
  }
  return fleet.result(decisions);
}
