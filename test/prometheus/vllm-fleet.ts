// Test edge (no GPU, no engine): a scripted fleet of vLLM v1 engines as their /metrics show them,
// each pod with its own series that advance with wall time (so every counter is monotonic whoever
// reads it when), a load shared evenly by the pods that run, a scripted acceptance by position,
// TTFT and TPOT. Names and label layout as vLLM v1 writes them (test/fixtures/metrics/vllm-dp2-*.prom):
// `engine` and `model_name` labels, `_total` counters with `_created`, `le` last in buckets.
// podText() is one pod's /metrics (a direct scrape); fleetText() is every pod's series with the
// namespace and pod labels a PodMonitor would attach, for a Prometheus scraping with honor_labels.
// With stepSeconds set, each engine also exposes the step figures the online SPS(B) estimate reads
// (test/fixtures/metrics/vllm-steps-*.prom: iteration_tokens_total, one observation per step, and
// inter_token_latency_seconds, one per running request per step; _count and _sum, no buckets).

export const TAU4 = [0.9, 0.8, 0.7, 0.6];
export const TAU2 = [0.6, 0.3, 0.1, 0];
const TTFT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1];
const TPOT_BUCKETS = [0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05];

interface EngineCounters {
  req: number;
  gen: number;
  prompt: number;
  drafts: number;
  draftTokens: number;
  accepted: number;
  perPos: number[];
  ttft: number[];
  ttftCount: number;
  tpot: number[];
  tpotCount: number;
  steps: number;
  stepTokens: number;
  intervals: number;
  intervalSeconds: number;
}

/** What an engine's step time is scripted from. */
export interface StepLoad {
  pod: string;
  engine: number;
  /** Requests running on the engine. */
  running: number;
  promptTokensPerSecond: number;
}

const zero = (): EngineCounters => ({
  req: 0,
  gen: 0,
  prompt: 0,
  drafts: 0,
  draftTokens: 0,
  accepted: 0,
  perPos: TAU4.map(() => 0),
  ttft: TTFT_BUCKETS.map(() => 0),
  ttftCount: 0,
  tpot: TPOT_BUCKETS.map(() => 0),
  tpotCount: 0,
  steps: 0,
  stepTokens: 0,
  intervals: 0,
  intervalSeconds: 0,
});

export class VllmFleet {
  /** Requests in flight and completions per second over the whole fleet. */
  running = 110;
  waiting = 0;
  rps = 16;
  promptTokens = 100;
  outputTokens = 1000;
  acceptance = TAU4;
  /** Each request's TPOT (seconds); its bucket holds the p95. */
  tpot = 0.004;
  /** Share of requests whose TTFT falls in (0.05, 0.1]; the rest in (0.1, 0.25]. */
  fastTtftShare = 0.7;
  /** Each engine's wall time of a step (seconds); null: the step figures are not exposed. */
  stepSeconds: ((load: StepLoad) => number) | null = null;
  /** Data-parallel engines per pod; the pod's share is split evenly among them. */
  readonly enginesPerPod: number;
  constructor(enginesPerPod = 1) {
    this.enginesPerPod = enginesPerPod;
  }
  private readonly pods = new Map<string, { created: number; engines: EngineCounters[] }>();
  private t = Date.now();

  addPod(name: string) {
    this.advance();
    if (!this.pods.has(name))
      this.pods.set(name, {
        created: Date.now() / 1000,
        engines: Array.from({ length: this.enginesPerPod }, zero),
      });
  }

  removePod(name: string) {
    this.advance();
    this.pods.delete(name);
  }

  podNames(): string[] {
    return [...this.pods.keys()].sort();
  }

  private advance() {
    const now = Date.now();
    const dt = (now - this.t) / 1000;
    this.t = now;
    const engines = [...this.pods.values()].flatMap((p) => p.engines);
    if (engines.length === 0) return;
    const running = this.running / engines.length;
    const req = (this.rps * dt) / engines.length;
    const gen = req * this.outputTokens;
    const tau = 1 + this.acceptance.reduce((a, b) => a + b, 0);
    const drafts = gen / tau;
    for (const c of engines) {
      c.req += req;
      c.gen += gen;
      c.prompt += req * this.promptTokens;
      c.drafts += drafts;
      c.draftTokens += drafts * this.acceptance.length;
      c.accepted += drafts * (tau - 1);
      this.acceptance.forEach((p, i) => {
        c.perPos[i] = (c.perPos[i] ?? 0) + drafts * p;
      });
      const fast = req * this.fastTtftShare;
      TTFT_BUCKETS.forEach((le, i) => {
        c.ttft[i] = (c.ttft[i] ?? 0) + (le >= 0.1 ? fast : 0) + (le >= 0.25 ? req - fast : 0);
      });
      c.ttftCount += req;
      TPOT_BUCKETS.forEach((le, i) => {
        if (this.tpot <= le) c.tpot[i] = (c.tpot[i] ?? 0) + req;
      });
      c.tpotCount += req;
    }
    if (!this.stepSeconds || !(dt > 0)) return;
    for (const [pod, { engines: own }] of this.pods)
      own.forEach((c, engine) => {
        const promptTokensPerSecond = (this.rps / engines.length) * this.promptTokens;
        const stepSeconds = this.stepSeconds?.({ pod, engine, running, promptTokensPerSecond }) ?? 0;
        if (!(stepSeconds > 0) || !(running > 0)) return;
        const steps = dt / stepSeconds;
        c.steps += steps;
        c.stepTokens += ((this.rps * dt) / engines.length) * (this.outputTokens + this.promptTokens);
        // Each running request's interval spans the step it got tokens in.
        c.intervals += steps * running;
        c.intervalSeconds += dt * running;
      });
  }

  private lines(name: string, extra: string): string[] {
    const pod = this.pods.get(name);
    if (!pod) return [];
    const engines = pod.engines.length;
    const out: string[] = [];
    const counter = (family: string, labels: string, value: number) =>
      out.push(
        `vllm:${family}_total{${labels}} ${value}`,
        `vllm:${family}_created{${labels}} ${pod.created}`,
      );
    pod.engines.forEach((c, e) => {
      const l = `${extra}engine="${e}",model_name="Qwen/Qwen3-8B"`;
      out.push(
        `vllm:num_requests_running{${l}} ${this.running / this.pods.size / engines}`,
        `vllm:num_requests_waiting{${l}} ${this.waiting / this.pods.size / engines}`,
        `vllm:kv_cache_usage_perc{${l}} 0.25`,
      );
      counter("request_success", `${l},finished_reason="stop"`, c.req);
      counter("generation_tokens", l, c.gen);
      counter("prompt_tokens", l, c.prompt);
      counter("spec_decode_num_drafts", l, c.drafts);
      counter("spec_decode_num_draft_tokens", l, c.draftTokens);
      counter("spec_decode_num_accepted_tokens", l, c.accepted);
      c.perPos.forEach((v, i) => {
        counter("spec_decode_num_accepted_tokens_per_pos", `${l},position="${i}"`, v);
      });
      const histogram = (family: string, bounds: number[], counts: number[], count: number) => {
        bounds.forEach((le, i) => {
          out.push(`vllm:${family}_bucket{${l},le="${le}"} ${counts[i]}`);
        });
        out.push(
          `vllm:${family}_bucket{${l},le="+Inf"} ${count}`,
          `vllm:${family}_count{${l}} ${count}`,
          `vllm:${family}_created{${l}} ${pod.created}`,
        );
      };
      histogram("time_to_first_token_seconds", TTFT_BUCKETS, c.ttft, c.ttftCount);
      histogram("request_time_per_output_token_seconds", TPOT_BUCKETS, c.tpot, c.tpotCount);
      if (this.stepSeconds) {
        // Read for _count and _sum only: buckets left out.
        const totals = (family: string, count: number, total: number) =>
          out.push(
            `vllm:${family}_count{${l}} ${count}`,
            `vllm:${family}_sum{${l}} ${total}`,
            `vllm:${family}_created{${l}} ${pod.created}`,
          );
        totals("iteration_tokens_total", c.steps, c.stepTokens);
        totals("inter_token_latency_seconds", c.intervals, c.intervalSeconds);
      }
    });
    return out;
  }

  /** Samples untyped (no # TYPE lines): the families of several engines interleave here. */
  private static text(lines: string[]): string {
    return `${lines.join("\n")}\n`;
  }

  /** One pod's /metrics. */
  podText(name: string): string {
    this.advance();
    return VllmFleet.text(this.lines(name, ""));
  }

  /** Every pod's series, labelled with namespace and pod. */
  fleetText(namespace: string): string {
    this.advance();
    const lines = this.podNames().flatMap((name) =>
      this.lines(name, `namespace="${namespace}",pod="${name}",`),
    );
    return VllmFleet.text(lines);
  }
}
