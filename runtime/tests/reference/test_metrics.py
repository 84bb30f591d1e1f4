"""The reference server's /metrics look like vLLM v1's where a parser would notice, held to the facts
recorded from vLLM 0.33.0 (tests/fixtures/upstream_facts.json)."""

import json
import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from specops_runtime.reference import metrics

VLLM = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "upstream_facts.json").read_text())[
    "vllm"
]


def _families(m: metrics.VllmMetrics) -> dict:
    return {f.name: f for f in text_string_to_metric_families(generate_latest(m.registry).decode())}


def test_every_series_is_a_vllm_metric_of_the_same_type_and_labels():
    text = generate_latest(metrics.VllmMetrics.create("m", num_speculative_tokens=3).registry).decode()
    for family in text_string_to_metric_families(text):
        if family.name.endswith("_created"):  # prometheus_client's companion series, in vLLM too
            continue
        assert VLLM["metrics"]["names"][family.name] == family.type, family.name
        for sample in family.samples:
            assert {"model_name", "engine"} <= set(sample.labels), sample
    assert VLLM["metrics"]["labelnames"] == ["model_name", "engine"]


def test_per_position_counters_exist_at_zero_for_every_position_from_the_start():
    assert VLLM["metrics"]["perPositionSeriesPrecreated"]
    fam = _families(metrics.VllmMetrics.create("m", num_speculative_tokens=5))
    per_pos = fam["vllm:spec_decode_num_accepted_tokens_per_pos"]
    samples = [s for s in per_pos.samples if s.name.endswith("_total")]
    assert sorted(int(s.labels["position"]) for s in samples) == [0, 1, 2, 3, 4]
    assert all(s.value == 0 for s in samples)
    assert fam["vllm:spec_decode_num_drafts"].samples[0].value == 0


def test_no_spec_decode_series_when_speculation_is_off():
    assert VLLM["metrics"]["specCountersOnlyWithSpeculativeConfig"]
    text = generate_latest(metrics.VllmMetrics.create("m").registry).decode()
    assert "spec_decode" not in text
    assert "vllm:generation_tokens_total" in text and "vllm:kv_cache_usage_perc" in text


def test_histogram_bounds_are_vllms():
    buckets = VLLM["metrics"]["buckets"]
    assert list(metrics.TIME_TO_FIRST_TOKEN_BUCKETS) == buckets["TIME_TO_FIRST_TOKEN_BUCKETS"]
    assert list(metrics.INTER_TOKEN_LATENCY_BUCKETS) == buckets["INTER_TOKEN_LATENCY_BUCKETS"]
    assert list(metrics.REQUEST_LATENCY_BUCKETS) == buckets["REQUEST_LATENCY_BUCKETS"]
    m = metrics.VllmMetrics.create("m")
    m.record_request(
        3, 4, "stop", ttft=100.0, e2e=120.0, queue=0.0
    )  # a slow first token still lands in a bucket
    text = generate_latest(m.registry).decode()
    les = re.findall(r'vllm:time_to_first_token_seconds_bucket\{[^}]*le="([^"]+)"', text)
    assert [float(x) for x in les if x != "+Inf"] == buckets["TIME_TO_FIRST_TOKEN_BUCKETS"]
    assert 'le="160.0"' in text and max(buckets["TIME_TO_FIRST_TOKEN_BUCKETS"]) == 2560.0


def test_kv_cache_usage_is_a_share_of_the_capacity():
    m = metrics.VllmMetrics.create("m", kv_capacity_tokens=200)

    def gauge():
        return m.registry.get_sample_value("vllm:kv_cache_usage_perc", {"model_name": "m", "engine": "0"})

    assert gauge() == 0.0
    m.set_kv_tokens(50)
    assert gauge() == 0.25
    m.set_kv_tokens(500)
    assert gauge() == 1.0
    m.set_kv_tokens(0)
    assert gauge() == 0.0
