// The fleet: replicas doing continuous batching, simulated as fluid cohorts of requests in coarse
// steps. A step of a replica verifies B = R * (1 + k) tokens for its R decoding requests and takes
// 1 / SPS(B) (first-principles physics) plus the draft's forward; prefill of admitted prompts runs in
// chunks and takes up to maxPrefillShare of the replica's time while decodes run. Each request's
// acceptance is drawn around its domain's per-position rate. Replicas expose vLLM-format /metrics.
import { firstPrinciplesStepSeconds } from "../../operator/src/autoscaler/sps.ts";
import { DOMAINS, type Domain, type SimParams } from "./params.ts";

const TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
];
// Finer than vLLM's default (which starts at 10 ms) so that latency-driven policies can resolve a
// 7 ms SLO at all, and fine at the low end so that a p90 far below the SLO reads as such (with a
// first bucket of 5 ms it read as 4.5 ms at any load: an SLO-ratio policy could never scale down).
const TPOT_BUCKETS = [
  0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025, 0.03,
  0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1,
];

// vLLM 0.33.0's buckets (vllm/v1/metrics/buckets.py, runtime/tests/fixtures/upstream_facts.json) for the
// step figures, read only for their _sum and _count.
const INTER_TOKEN_LATENCY_BUCKETS = [
  0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
];
const ITERATION_TOKENS_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];

export interface Cohort {
  n: number;
  p: number;
  tau: number;
  domain: Domain;
  /** The cohort's requests arrive uniformly over [arrival, arrival + spread]. */
  arrival: number;
  spread: number;
  prefillStart?: number;
  prompt: number;
  out: number;
  prefillLeft: number;
  tokensLeft: number;
  firstTokenAt?: number;
  finishedAt?: number;
}

class Histogram {
  counts: number[];
  sum = 0;
  total = 0;
  readonly bounds: number[];
  constructor(bounds: number[]) {
    this.bounds = bounds;
    this.counts = bounds.map(() => 0);
  }
  clone(): Histogram {
    const h = new Histogram(this.bounds);
    h.counts = [...this.counts];
    h.sum = this.sum;
    h.total = this.total;
    return h;
  }
  observe(v: number, weight: number) {
    const i = this.bounds.findIndex((b) => v <= b);
    if (i >= 0) (this.counts as number[])[i] = (this.counts[i] ?? 0) + weight;
    this.sum += v * weight;
    this.total += weight;
  }
}

export interface Completion {
  time: number;
  n: number;
  ttft: number;
  tpot: number;
  speed: number;
}

export class Replica {
  state: "starting" | "ready" | "draining" = "starting";
  queue: Cohort[] = [];
  prefilling: Cohort[] = [];
  decoding: Cohort[] = [];
  counters = {
    drafts: 0,
    draftTokens: 0,
    accepted: 0,
    perPos: [] as number[],
    generation: 0,
    prompt: 0,
    success: 0,
  };
  /** Requests in the batch, averaged over the last step (what a scrape at any moment would see). */
  meanRunning = 0;
  ttft = new Histogram(TTFT_BUCKETS);
  tpot = new Histogram(TPOT_BUCKETS);
  /** Exposure only (no physics reads them): vLLM's per-request-step interval and per-step tokens. */
  interTokenLatency = new Histogram(INTER_TOKEN_LATENCY_BUCKETS);
  iterationTokens = new Histogram(ITERATION_TOKENS_BUCKETS);
  readonly id: string;
  readonly startedAt: number;
  readonly readyAt: number;
  /** When its engine's counters started (their _created). */
  readonly created: number;
  constructor(id: string, startedAt: number, readyAt: number) {
    this.id = id;
    this.startedAt = startedAt;
    this.readyAt = readyAt;
    this.created = readyAt;
  }
  /** A deep copy (the oracle tries replica counts on copies of the fleet). */
  clone(): Replica {
    const r = new Replica(this.id, this.startedAt, this.readyAt);
    r.state = this.state;
    r.queue = this.queue.map((c) => ({ ...c }));
    r.prefilling = this.prefilling.map((c) => ({ ...c }));
    r.decoding = this.decoding.map((c) => ({ ...c }));
    r.counters = { ...this.counters, perPos: [...this.counters.perPos] };
    r.meanRunning = this.meanRunning;
    r.ttft = this.ttft.clone();
    r.tpot = this.tpot.clone();
    r.interTokenLatency = this.interTokenLatency.clone();
    r.iterationTokens = this.iterationTokens.clone();
    return r;
  }
  outstanding(): number {
    let n = 0;
    for (const c of this.queue) n += c.n;
    for (const c of this.prefilling) n += c.n;
    for (const c of this.decoding) n += c.n;
    return n;
  }
  running(): number {
    let n = 0;
    for (const c of this.prefilling) n += c.n;
    for (const c of this.decoding) n += c.n;
    return n;
  }
}

/** Mean tau at draft length k of a request whose positions survive with p, p^2, ... */
export function tauOf(p: number, k: number): number {
  let tau = 1;
  for (let i = 1; i <= k; i++) tau += p ** i;
  return tau;
}

/** Per-request acceptance spread: two cohorts at z = -1 and +1 (mean and variance kept). */
export const SPREAD = [
  [-1, 0.5],
  [1, 0.5],
] as const;

export function arrivalsFor(
  params: SimParams,
  count: number,
  mix: Record<Domain, number>,
  time: number,
  spread: number,
  prompt: number,
  out: number,
  /** The step's acceptance wobble per domain, as a standard normal draw (the same for every replica). */
  wobble: (domain: Domain) => number,
): Cohort[] {
  const cohorts: Cohort[] = [];
  for (const d of DOMAINS) {
    const nDomain = count * mix[d];
    if (nDomain <= 0) continue;
    // Each step's acceptance wobbles a little around the domain's (acceptance variance over time).
    const base = params.acceptance[d] + 0.25 * params.acceptanceSpread * wobble(d);
    for (const [z, w] of SPREAD) {
      const p = Math.min(0.99, Math.max(0, base + z * params.acceptanceSpread));
      cohorts.push({
        n: nDomain * w,
        p,
        tau: tauOf(p, params.numSpeculativeTokens),
        domain: d,
        arrival: time,
        spread,
        prompt,
        out,
        prefillLeft: prompt,
        tokensLeft: Math.max(1, out - 1),
      });
    }
  }
  return cohorts;
}

/** Advances one replica by one step from `t`; returns the requests that completed. */
export function stepReplica(r: Replica, params: SimParams, t: number, dt: number): Completion[] {
  const k = params.numSpeculativeTokens;
  const done: Completion[] = [];
  // Admission into the batch (max_num_seqs), first come first served.
  let running = r.running();
  while (r.queue.length && running < params.maxBatch) {
    const c = r.queue[0] as Cohort;
    const room = params.maxBatch - running;
    if (c.n <= room) {
      r.queue.shift();
      r.prefilling.push(c);
      running += c.n;
    } else {
      r.prefilling.push({ ...c, n: room });
      c.n -= room;
      running += room;
    }
  }
  const inBatch = [...r.prefilling, ...r.decoding];
  let R = 0;
  let ctxSum = 0;
  for (const c of r.decoding) {
    R += c.n;
    ctxSum += c.n * (c.prompt + c.out - c.tokensLeft);
  }
  const ctx = R > 0 ? ctxSum / R : 0;
  // Prefill, FIFO, at the chunked rate; with decodes running it takes at most maxPrefillShare of the time.
  const share = R > 0 ? params.maxPrefillShare : 1;
  const prefillRate =
    (share * params.prefillChunk) /
    firstPrinciplesStepSeconds(params.model, params.prefillChunk, ctx, Math.max(1, R));
  const tokensBefore = r.counters.prompt + r.counters.generation;
  let clock = 0; // position in the step (s)
  let busy = 0; // seconds of prefill work in this step
  // One chunked-prefill step: the least time to a first token.
  const chunkStep = firstPrinciplesStepSeconds(params.model, params.prefillChunk, ctx, Math.max(1, R));
  const joined: { c: Cohort; at: number }[] = [];
  while (r.prefilling.length && clock < dt) {
    const c = r.prefilling[0] as Cohort;
    // Prefill of a cohort cannot start before its first request arrived.
    if (c.arrival - t > clock) clock = Math.min(dt, c.arrival - t);
    if (c.prefillStart === undefined) c.prefillStart = t + clock;
    const need = (c.prefillLeft * c.n) / prefillRate;
    if (clock + need <= dt) {
      clock += need;
      busy += need;
      r.counters.prompt += c.prefillLeft * c.n;
      c.prefillLeft = 0;
      // The cohort's middle request: served halfway through the work, or as it arrives when the
      // replica keeps up; plus one chunk step.
      const served = Math.max((c.prefillStart + t + clock) / 2, c.arrival + c.spread / 2) + chunkStep;
      c.firstTokenAt = served;
      c.arrival += c.spread / 2;
      r.prefilling.shift();
      joined.push({ c, at: Math.min(dt, served - t) });
      r.ttft.observe(c.firstTokenAt - c.arrival, c.n);
    } else {
      const tokens = ((dt - clock) * prefillRate) / c.n;
      c.prefillLeft -= tokens;
      r.counters.prompt += tokens * c.n;
      busy += dt - clock;
      clock = dt;
    }
  }
  // The step's batch, time-weighted: requests that finished prefill mid-step join the batch then.
  let batch = R;
  for (const { c, at } of joined) batch += (c.n * (dt - at)) / dt;
  const stepSeconds =
    firstPrinciplesStepSeconds(params.model, Math.max(1, batch * (1 + k)), ctx, batch) +
    (k > 0 ? params.draftSecondsPerStep : 0);
  // Decode time: the whole step, less prefill's share while prefill was busy.
  const decodeTime = dt - busy * (R > 0 ? share : 1);
  const steps = Math.max(0, decodeTime / stepSeconds);
  // Exposure: each decode step's wall time (prefill's share included), as vLLM's inter-token
  // latency sees it once per running request and step.
  const wallPerStep = steps > 0 ? dt / steps : 0;
  const advance = (c: Cohort, from: number, stepsHere: number, wall: number) => {
    const tokens = stepsHere * c.tau;
    const used = Math.min(stepsHere, c.tokensLeft / c.tau);
    if (wallPerStep > 0 && used > 0) r.interTokenLatency.observe(wallPerStep, used * c.n);
    r.counters.drafts += used * c.n;
    r.counters.draftTokens += used * c.n * k;
    r.counters.accepted += used * c.n * (c.tau - 1);
    for (let i = 0; i < k; i++)
      r.counters.perPos[i] = (r.counters.perPos[i] ?? 0) + used * c.n * c.p ** (i + 1);
    if (tokens >= c.tokensLeft) {
      const finish = t + from + (wall * c.tokensLeft) / tokens;
      r.counters.generation += c.tokensLeft * c.n;
      const decode = Math.max(1e-6, finish - (c.firstTokenAt ?? finish));
      const tpot = decode / Math.max(1, c.out - 1);
      r.tpot.observe(tpot, c.n);
      r.counters.success += c.n;
      done.push({
        time: finish,
        n: c.n,
        ttft: (c.firstTokenAt ?? finish) - c.arrival,
        tpot,
        speed: 1 / tpot,
      });
      c.tokensLeft = 0;
      c.finishedAt = finish;
      return true;
    }
    r.counters.generation += tokens * c.n;
    c.tokensLeft -= tokens;
    return false;
  };
  r.decoding = r.decoding.filter((c) => !advance(c, 0, steps, dt));
  for (const { c, at } of joined) {
    // The first token came with the prefill; decoding starts right after, for the rest of the step.
    c.tokensLeft = Math.max(0, c.tokensLeft);
    r.counters.generation += c.n;
    const wall = dt - at;
    if (!advance(c, at, (steps * wall) / dt, wall)) r.decoding.push(c);
  }
  // Exposure: the physics runs the step's time-averaged batch over the whole step (a request that
  // joins mid-step gets its share of the steps), so the engine steps all through a step with any batch.
  const engineSteps = batch > 0 ? steps : 0;
  if (engineSteps > 0)
    r.iterationTokens.observe(
      (r.counters.prompt + r.counters.generation - tokensBefore) / engineSteps,
      engineSteps,
    );
  let requestSeconds = 0;
  for (const c of inBatch) requestSeconds += c.n * Math.min(dt, (c.finishedAt ?? t + dt) - t);
  r.meanRunning = requestSeconds / dt;
  return done;
}

const fmt = (v: number) => (Number.isInteger(v) ? `${v}.0` : String(v));

/** The replica's /metrics text in vLLM v1's names and labels (one engine). */
export function renderMetrics(r: Replica, params: SimParams): string {
  const L = 'model_name="sim",engine="0"';
  const lines: string[] = [];
  const counter = (name: string, value: number, labels = L) => {
    lines.push(`# TYPE ${name}_total counter`, `${name}_total{${labels}} ${fmt(value)}`);
    lines.push(`# TYPE ${name}_created gauge`, `${name}_created{${labels}} ${fmt(r.created)}`);
  };
  const gauge = (name: string, value: number) =>
    lines.push(`# TYPE ${name} gauge`, `${name}{${L}} ${fmt(value)}`);
  const hist = (name: string, h: Histogram) => {
    lines.push(`# TYPE ${name} histogram`);
    let cum = 0;
    h.bounds.forEach((b, i) => {
      cum += h.counts[i] ?? 0;
      lines.push(`${name}_bucket{${L},le="${b}"} ${fmt(cum)}`);
    });
    lines.push(`${name}_bucket{${L},le="+Inf"} ${fmt(h.total)}`, `${name}_count{${L}} ${fmt(h.total)}`);
    lines.push(`${name}_sum{${L}} ${fmt(h.sum)}`, `${name}_created{${L}} ${fmt(r.created)}`);
  };
  let decodingN = 0;
  for (const c of r.decoding) decodingN += c.n;
  let waiting = 0;
  for (const c of r.queue) waiting += c.n;
  gauge("vllm:num_requests_running", r.meanRunning);
  gauge("vllm:num_requests_waiting", waiting);
  gauge("vllm:kv_cache_usage_perc", Math.min(1, (decodingN * 1000) / 600000));
  counter("vllm:prompt_tokens", r.counters.prompt);
  counter("vllm:generation_tokens", r.counters.generation);
  counter("vllm:request_success", r.counters.success, `${L},finished_reason="stop"`);
  counter("vllm:spec_decode_num_drafts", r.counters.drafts);
  counter("vllm:spec_decode_num_draft_tokens", r.counters.draftTokens);
  counter("vllm:spec_decode_num_accepted_tokens", r.counters.accepted);
  lines.push("# TYPE vllm:spec_decode_num_accepted_tokens_per_pos_total counter");
  for (let i = 0; i < params.numSpeculativeTokens; i++)
    lines.push(
      `vllm:spec_decode_num_accepted_tokens_per_pos_total{${L},position="${i}"} ${fmt(r.counters.perPos[i] ?? 0)}`,
    );
  hist("vllm:time_to_first_token_seconds", r.ttft);
  hist("vllm:request_time_per_output_token_seconds", r.tpot);
  hist("vllm:inter_token_latency_seconds", r.interTokenLatency);
  hist("vllm:iteration_tokens_total", r.iterationTokens);
  return `${lines.join("\n")}\n`;
}

/** Splits `count` arrivals over replicas to even out their outstanding requests (least-request routing). */
export function route(replicas: Replica[], count: number): number[] {
  const load = replicas.map((r) => r.outstanding());
  const shares = replicas.map(() => 0);
  if (!replicas.length || count <= 0) return shares;
  // Water-filling: raise the lowest loads to a common level until the arrivals are placed.
  const order = load.map((l, i) => [l, i] as const).sort((a, b) => a[0] - b[0]);
  let level = order[0]?.[0] ?? 0;
  let remaining = count;
  let j = 1;
  while (remaining > 0) {
    const next = j < order.length ? (order[j]?.[0] as number) : Number.POSITIVE_INFINITY;
    const fill = Math.min(remaining, (next - level) * j);
    level += fill / j;
    remaining -= fill;
    if (remaining > 0) j++;
  }
  for (let i = 0; i < j && i < order.length; i++) {
    const idx = order[i]?.[1] as number;
    shares[idx] = Math.max(0, level - (load[idx] ?? 0));
  }
  return shares;
}
