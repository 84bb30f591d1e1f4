"""Prometheus metrics under vLLM v1's names, labels (model_name, engine) and bucket bounds, in a
private registry. As in vLLM (vllm/v1/spec_decode/metrics.py), the spec-decode counters exist only
when speculation is configured, and the per-position counter has a zero series for every position
0..k-1 from the start."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# vLLM 0.33.0's default bounds (vllm/v1/metrics/buckets.py; tests hold them to the recorded facts).
REQUEST_LATENCY_BUCKETS = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)
TIME_TO_FIRST_TOKEN_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
INTER_TOKEN_LATENCY_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)


@dataclass
class VllmMetrics:
    registry: CollectorRegistry
    model_name: str
    engine: str = "0"
    num_speculative_tokens: int = 0  # 0: speculation off, no spec-decode series at all
    kv_capacity_tokens: int = 0  # the KV budget kv_cache_usage_perc is a share of

    @classmethod
    def create(
        cls, model_name: str, engine: str = "0", num_speculative_tokens: int = 0, kv_capacity_tokens: int = 0
    ) -> VllmMetrics:
        self = cls(CollectorRegistry(), model_name, engine, num_speculative_tokens, kv_capacity_tokens)
        labels = ["model_name", "engine"]
        reg = self.registry
        # prometheus_client appends _total to counters, which yields vLLM's exposed names.
        if num_speculative_tokens:
            self.num_drafts = Counter(
                "vllm:spec_decode_num_drafts", "Number of spec decoding drafts.", labels, registry=reg
            )
            self.num_draft_tokens = Counter(
                "vllm:spec_decode_num_draft_tokens", "Number of draft tokens.", labels, registry=reg
            )
            self.num_accepted_tokens = Counter(
                "vllm:spec_decode_num_accepted_tokens", "Number of accepted tokens.", labels, registry=reg
            )
            self.accepted_per_pos = Counter(
                "vllm:spec_decode_num_accepted_tokens_per_pos",
                "Accepted tokens per draft position.",
                [*labels, "position"],
                registry=reg,
            )
        self.prompt_tokens = Counter(
            "vllm:prompt_tokens", "Number of prefill tokens processed.", labels, registry=reg
        )
        self.generation_tokens = Counter(
            "vllm:generation_tokens", "Number of generation tokens processed.", labels, registry=reg
        )
        self.request_success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            [*labels, "finished_reason"],
            registry=reg,
        )
        self.running = Gauge(
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            labels,
            registry=reg,
        )
        self.waiting = Gauge(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed.", labels, registry=reg
        )
        self.kv_cache_usage = Gauge(
            "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", labels, registry=reg
        )
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            labels,
            buckets=TIME_TO_FIRST_TOKEN_BUCKETS,
            registry=reg,
        )
        self.itl = Histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds (one observation per output step).",
            labels,
            buckets=INTER_TOKEN_LATENCY_BUCKETS,
            registry=reg,
        )
        self.tpot = Histogram(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            labels,
            buckets=INTER_TOKEN_LATENCY_BUCKETS,
            registry=reg,
        )
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            labels,
            buckets=REQUEST_LATENCY_BUCKETS,
            registry=reg,
        )
        self.queue_time = Histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            labels,
            buckets=REQUEST_LATENCY_BUCKETS,
            registry=reg,
        )
        series = [self.prompt_tokens, self.generation_tokens, self.running, self.waiting, self.kv_cache_usage]
        if num_speculative_tokens:
            series += [self.num_drafts, self.num_draft_tokens, self.num_accepted_tokens]
            for position in range(num_speculative_tokens):  # vLLM pre-creates every position's series
                self.accepted_per_pos.labels(model_name, engine, str(position))
        for metric in series:
            metric.labels(model_name, engine)  # expose zero-valued series from the start
        return self

    def _l(self, metric, **extra):
        return metric.labels(model_name=self.model_name, engine=self.engine, **extra)

    def record_round(self, proposal_len: int, accepted: int) -> None:
        if not self.num_speculative_tokens:
            raise ValueError("record_round: speculation is off for this engine")
        self._l(self.num_drafts).inc()
        self._l(self.num_draft_tokens).inc(proposal_len)
        self._l(self.num_accepted_tokens).inc(accepted)
        for position in range(accepted):
            self._l(self.accepted_per_pos, position=str(position)).inc()

    def record_request(
        self, prompt_tokens: int, generated: int, finish_reason: str, ttft: float, e2e: float, queue: float
    ) -> None:
        self._l(self.prompt_tokens).inc(prompt_tokens)
        self._l(self.generation_tokens).inc(generated)
        self._l(self.request_success, finished_reason=finish_reason).inc()
        self._l(self.ttft).observe(ttft)
        self._l(self.e2e).observe(e2e)
        self._l(self.queue_time).observe(queue)
        if generated > 1:
            self._l(self.tpot).observe((e2e - ttft) / (generated - 1))

    def observe_itl(self, seconds: float) -> None:
        self._l(self.itl).observe(seconds)

    def gauge_running(self, delta: int) -> None:
        self._l(self.running).inc(delta)

    def gauge_waiting(self, delta: int) -> None:
        self._l(self.waiting).inc(delta)

    def set_kv_tokens(self, tokens: int) -> None:
        """KV slots in use (the running sequence's length) as a share of the capacity."""
        share = min(tokens / self.kv_capacity_tokens, 1.0) if self.kv_capacity_tokens else 0.0
        self._l(self.kv_cache_usage).set(share)

    def totals(self, positions: int) -> dict:
        """Counter totals the serving task mirrors into the agent's progress."""

        def value(name: str, **extra: str) -> float:
            labels = {"model_name": self.model_name, "engine": self.engine, **extra}
            return self.registry.get_sample_value(name, labels) or 0.0

        return {
            "drafts": value("vllm:spec_decode_num_drafts_total"),
            "accepted": value("vllm:spec_decode_num_accepted_tokens_total"),
            "acceptedByPosition": [
                value("vllm:spec_decode_num_accepted_tokens_per_pos_total", position=str(i))
                for i in range(positions)
            ],
            "generationTokens": value("vllm:generation_tokens_total"),
        }
