// Metric names of the engines the autoscaler reads, as they appear on /metrics. Facts recorded in
// test/fixtures/metrics/ with their upstream source: vLLM v1 (vllm/v1/metrics/loggers.py,
// vllm/v1/spec_decode/metrics.py) and SGLang (python/sglang/srt/metrics/collector.py).
import { type Sample, type SeriesFilter, seriesFilter } from "./exposition.ts";

export type EngineKind = "vllm" | "sglang";

export interface EngineMetrics {
  kind: EngineKind;
  /** Prefix of every family: `vllm:`, `sglang:` or (newer SGLang builds) `sglang_`. */
  prefix: string;
  /** Counter families (exposed with _total and _created). */
  counters: {
    generationTokens: string;
    promptTokens: string;
    requestsFinished: string;
    drafts?: string;
    draftTokens?: string;
    acceptedTokens?: string;
    acceptedTokensPerPosition?: string;
  };
  gauges: {
    running: string;
    waiting: string;
    /** KV-cache use 0..1, in order of preference. */
    kvCacheUsage: string[];
    /** SGLang's snapshot acceptance length over its last log interval (never rate() it). */
    acceptLength?: string;
    acceptRate?: string;
    /** SGLang's verify window per request-step (speculative_num_draft_tokens, bonus slot included). */
    verifyTokens?: string;
  };
  histograms: {
    ttft: string;
    /** Per-token time per output token, in order of preference. */
    tpot: string[];
    /** One observation per running request per decode step: the step's wall time (_sum / _count). */
    stepInterval?: string;
    /** One observation per engine step (_count: the steps). */
    engineSteps?: string;
    /** One observation per output token, _sum the intervals between outputs (SGLang). */
    tokenInterval?: string;
  };
}

const VLLM: EngineMetrics = {
  kind: "vllm",
  prefix: "vllm:",
  counters: {
    generationTokens: "generation_tokens",
    promptTokens: "prompt_tokens",
    requestsFinished: "request_success",
    drafts: "spec_decode_num_drafts",
    draftTokens: "spec_decode_num_draft_tokens",
    acceptedTokens: "spec_decode_num_accepted_tokens",
    acceptedTokensPerPosition: "spec_decode_num_accepted_tokens_per_pos",
  },
  gauges: {
    running: "num_requests_running",
    waiting: "num_requests_waiting",
    kvCacheUsage: ["kv_cache_usage_perc", "gpu_cache_usage_perc"],
  },
  histograms: {
    ttft: "time_to_first_token_seconds",
    // inter_token_latency_seconds is one observation per step under speculation, not per token.
    tpot: ["request_time_per_output_token_seconds", "time_per_output_token_seconds"],
    // Read for their _sum and _count only (the online SPS(B) estimate, sps-online.ts).
    stepInterval: "inter_token_latency_seconds",
    engineSteps: "iteration_tokens_total",
  },
};

const sglang = (prefix: string): EngineMetrics => ({
  kind: "sglang",
  prefix,
  counters: {
    generationTokens: "generation_tokens",
    promptTokens: "prompt_tokens",
    requestsFinished: "num_requests",
  },
  gauges: {
    running: "num_running_reqs",
    waiting: "num_queue_reqs",
    kvCacheUsage: ["token_usage"],
    acceptLength: "spec_accept_length",
    acceptRate: "spec_accept_rate",
    verifyTokens: "spec_num_draft_tokens",
  },
  histograms: {
    ttft: "time_to_first_token_seconds",
    // Per request, as vLLM's first choice: request_time_per_output_token_seconds (SGLang 0.5.23,
    // runtime/tests/fixtures/upstream_facts.json); else the inter-token latency, which SGLang already
    // keeps per token (the interval divided by the new tokens).
    tpot: ["request_time_per_output_token_seconds", "inter_token_latency_seconds"],
    // Its _sum and _count also give the step time (sps-online.ts, with the acceptance length).
    tokenInterval: "inter_token_latency_seconds",
  },
});

/**
 * An engine's names when its kind is known but no sample is at hand (a Prometheus query is built
 * before any series is read). SGLang's prefix is then either of its two; see SGLANG_PREFIXES.
 */
export const engineMetrics = (kind: EngineKind): EngineMetrics =>
  kind === "vllm" ? VLLM : sglang("sglang:");

/** Both prefixes SGLang builds have used (`sglang:` and, newer, `sglang_`). */
export const SGLANG_PREFIXES = ["sglang:", "sglang_"] as const;

/** The engine whose names the samples use, or null when neither engine's names appear. */
export function detectEngine(samples: readonly Sample[]): EngineMetrics | null {
  for (const s of samples) {
    if (s.name.startsWith("vllm:")) return VLLM;
    if (s.name.startsWith("sglang:")) return sglang("sglang:");
    if (s.name.startsWith("sglang_")) return sglang("sglang_");
  }
  return null;
}

/** Every series name the signal parser reads, over all engines (suffixes as exposed). */
const READ_SERIES: ReadonlySet<string> = new Set(
  [VLLM, sglang("sglang:"), sglang("sglang_")].flatMap((e) => {
    const c = Object.values(e.counters).filter((v): v is string => v !== undefined);
    const g = [
      e.gauges.running,
      e.gauges.waiting,
      ...e.gauges.kvCacheUsage,
      e.gauges.acceptLength,
      e.gauges.acceptRate,
      e.gauges.verifyTokens,
    ];
    const h = [e.histograms.ttft, ...e.histograms.tpot];
    const { stepInterval, engineSteps, tokenInterval } = e.histograms;
    const totalsOnly = [stepInterval, engineSteps, tokenInterval].filter((f): f is string => f !== undefined);
    return [
      ...c.flatMap((f) => [`${f}_total`, `${f}_created`]),
      ...g.filter((f): f is string => f !== undefined),
      ...h.flatMap((f) => [`${f}_bucket`, `${f}_count`, `${f}_sum`, `${f}_created`]),
      ...totalsOnly.flatMap((f) => [`${f}_count`, `${f}_sum`, `${f}_created`]),
    ].map((name) => e.prefix + name);
  }),
);

/**
 * Whether the signal parser reads a series of this name: a scrape kept between windows needs no
 * other (a vLLM pod exposes some 600 samples, of which it reads about 100).
 */
export const readsSeries = (name: string): boolean => READ_SERIES.has(name);

/** READ_SERIES as the scrape path's filter: a line of any other series is skipped unallocated. */
export const readSeriesFilter: SeriesFilter = seriesFilter(READ_SERIES);
