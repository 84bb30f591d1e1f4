"""The OpenAI-compatible server: exact greedy text, streaming, and vLLM metrics that agree with tau."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest

from specops_runtime.reference import data, tasks
from specops_runtime.reference.acceptance import tau_from_vllm_counters
from specops_runtime.reference.sampling import SamplingParams
from specops_runtime.reference.server import ServerHandle
from specops_runtime.reference.speculative import Generator

from .conftest import TARGET, context

MODEL = "tiny-qwen3"
MAX_TOKENS = 24


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def post_stream(url: str, body: dict) -> list[dict]:
    request = urllib.request.Request(
        url, json.dumps({**body, "stream": True}).encode(), {"Content-Type": "application/json"}
    )
    events = []
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for raw in response.read().decode().split("\n\n"):
            if raw.startswith("data: "):
                payload = raw[len("data: ") :]
                events.append({"done": True} if payload == "[DONE]" else json.loads(payload))
    assert events[-1] == {"done": True}
    return events[:-1]


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def servers(pipeline):
    params = {"target": TARGET, "servedModelName": MODEL}
    spec_app = tasks.build_server_app(
        {
            **params,
            "method": "dspark",
            "draft": {"uri": pipeline.draft_uri("dspark")},
            "speculative": {"numSpeculativeTokens": 4},
        },
        context(pipeline.root, "serve"),
    )
    off_app = tasks.build_server_app(params, context(pipeline.root, "serve-off"))  # no method: target alone
    spec, off = ServerHandle(spec_app).start(), ServerHandle(off_app).start()
    yield spec, off
    spec.stop()
    off.stop()


def greedy_text(target, prompt_ids: list[int]) -> str:
    model, tokenizer = target
    return tokenizer.decode(Generator(model).generate(prompt_ids, MAX_TOKENS, SamplingParams()).tokens)


def prompts() -> list[str]:
    return [ex.prompt for name in data.TASK_NAMES for ex in data.generate(name, 2, seed=77)]


def test_health_and_models(servers):
    spec, _ = servers
    assert get(spec.url + "/health")[0] == 200
    listing = json.loads(get(spec.url + "/v1/models")[1])
    assert listing["object"] == "list" and listing["data"][0]["id"] == MODEL


def test_bad_requests_are_400(servers):
    spec, _ = servers
    for body in ({"model": MODEL}, {"model": MODEL, "prompt": "hi", "temperature": -1}):
        with pytest.raises(urllib.error.HTTPError) as error:
            post(spec.url + "/v1/completions", body)
        assert error.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as error:
        post(spec.url + "/v1/chat/completions", {"model": MODEL, "messages": []})
    assert error.value.code == 400


def test_outputs_equal_target_greedy_and_metrics_match_tau(servers, target):
    spec, off = servers
    _, tokenizer = target
    _, before = get(spec.url + "/metrics")
    served = []  # per-request speculative stats returned by the server
    generated = prompt_tokens = requests = 0
    for text in prompts():
        messages = [{"role": "user", "content": text}]
        expected = greedy_text(target, tokenizer.chat_prompt(messages))
        chat = post(
            spec.url + "/v1/chat/completions",
            {"model": MODEL, "messages": messages, "max_tokens": MAX_TOKENS, "temperature": 0},
        )
        assert chat["choices"][0]["message"]["content"] == expected
        events = post_stream(
            spec.url + "/v1/chat/completions",
            {"model": MODEL, "messages": messages, "max_tokens": MAX_TOKENS, "temperature": 0},
        )
        streamed = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
        assert streamed == expected
        assert events[-1]["choices"][0]["finish_reason"] in ("stop", "length")
        completion_expected = greedy_text(target, tokenizer.completion_prompt(text))
        plain = post(
            spec.url + "/v1/completions",
            {"model": MODEL, "prompt": text, "max_tokens": MAX_TOKENS, "temperature": 0},
        )
        assert plain["choices"][0]["text"] == completion_expected
        streamed_plain = post_stream(
            spec.url + "/v1/completions",
            {"model": MODEL, "prompt": text, "max_tokens": MAX_TOKENS, "temperature": 0},
        )
        assert "".join(e["choices"][0]["text"] for e in streamed_plain) == completion_expected
        baseline = post(
            off.url + "/v1/chat/completions",
            {"model": MODEL, "messages": messages, "max_tokens": MAX_TOKENS, "temperature": 0},
        )
        assert baseline["choices"][0]["message"]["content"] == expected
        assert baseline["metrics"]["speculative_decoding"]["num_spec_steps"] == 0
        for body in (chat, events[-1], plain, streamed_plain[-1]):
            served.append(body["metrics"]["speculative_decoding"])
            generated += body["usage"]["completion_tokens"]
            prompt_tokens += body["usage"]["prompt_tokens"]
            requests += 1

    _, after = get(spec.url + "/metrics")

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    drafts = delta("vllm:spec_decode_num_drafts_total", model_name=MODEL, engine="0")
    accepted = delta("vllm:spec_decode_num_accepted_tokens_total", model_name=MODEL)
    draft_tokens = delta("vllm:spec_decode_num_draft_tokens_total", model_name=MODEL)
    assert drafts == sum(s["num_spec_steps"] for s in served) > 0
    assert accepted == sum(s["num_accepted_draft_tokens"] for s in served) > 0
    assert draft_tokens == sum(s["num_draft_tokens"] for s in served)
    # tau from the counters (vLLM formula) equals tau of the requests served (DeepSpec formula)
    emitted = sum(s["mean_acceptance_length"] * s["num_spec_steps"] for s in served if s["num_spec_steps"])
    assert tau_from_vllm_counters(drafts, accepted) == pytest.approx(emitted / drafts)
    per_pos = [delta("vllm:spec_decode_num_accepted_tokens_per_pos_total", position=str(i)) for i in range(4)]
    assert sum(per_pos) == accepted and per_pos == sorted(per_pos, reverse=True)
    assert delta("vllm:generation_tokens_total", model_name=MODEL) == generated
    assert delta("vllm:prompt_tokens_total", model_name=MODEL) == prompt_tokens
    assert delta("vllm:request_success_total") == requests
    assert delta("vllm:e2e_request_latency_seconds_count") == requests
    assert delta("vllm:time_to_first_token_seconds_count") == requests
    assert delta("vllm:inter_token_latency_seconds_count") > 0
    assert delta("vllm:request_time_per_output_token_seconds_count") > 0
    assert metric(after, "vllm:num_requests_running") == 0 and metric(after, "vllm:num_requests_waiting") == 0
    assert re.search(r'vllm:spec_decode_num_drafts_total\{engine="0",model_name="tiny-qwen3"\}', after)
    assert metric(after, "vllm:kv_cache_usage_perc") == 0  # nothing running: no KV slots held
    # vLLM pre-creates every position's per-position series; before any request they read 0
    positions = re.findall(
        r'vllm:spec_decode_num_accepted_tokens_per_pos_total\{[^}]*position="(\d+)"', before
    )
    assert sorted(map(int, set(positions))) == list(range(4))
    # The target-only server has no spec-decode series at all (vLLM registers none without speculation).
    _, off_metrics = get(off.url + "/metrics")
    assert "spec_decode" not in off_metrics and "vllm:kv_cache_usage_perc" in off_metrics
    assert metric(off_metrics, "vllm:request_success_total") == len(prompts())


def test_sampled_requests_are_reproducible_with_a_seed(servers):
    spec, _ = servers
    body = {"model": MODEL, "prompt": "tell me about cats", "max_tokens": 16, "temperature": 1.0, "seed": 5}
    first = post(spec.url + "/v1/completions", body)["choices"][0]["text"]
    assert post(spec.url + "/v1/completions", body)["choices"][0]["text"] == first


def test_concurrent_requests_queue_and_stay_exact(servers, target):
    """Requests arriving together are served one at a time (FIFO) and each stays exact."""
    from concurrent.futures import ThreadPoolExecutor

    spec, _ = servers
    _, tokenizer = target
    texts = prompts()
    expected = [greedy_text(target, tokenizer.completion_prompt(t)) for t in texts]

    def ask(text: str) -> str:
        body = {"model": MODEL, "prompt": text, "max_tokens": MAX_TOKENS, "temperature": 0}
        return post(spec.url + "/v1/completions", body)["choices"][0]["text"]

    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        answers = list(pool.map(ask, texts))
    assert answers == expected
    _, after = get(spec.url + "/metrics")
    assert metric(after, "vllm:num_requests_running") == 0
    assert metric(after, "vllm:num_requests_waiting") == 0
    assert metric(after, "vllm:request_queue_time_seconds_count") >= len(texts)


def test_api_key_guards_the_openai_endpoints_but_not_health_or_metrics(pipeline, monkeypatch):
    key = "sk-test-0123456789"
    monkeypatch.setenv("SPECOPS_API_KEY", key)  # as the SpecServe pod gets it from its Secret
    app = tasks.build_server_app(
        {"target": TARGET, "servedModelName": MODEL}, context(pipeline.root, "serve-key")
    )
    server = ServerHandle(app).start()
    try:
        body = json.dumps({"model": MODEL, "prompt": "hi", "max_tokens": 2}).encode()
        for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": key}):
            for path, data in (("/v1/completions", body), ("/v1/models", None)):
                request = urllib.request.Request(
                    server.url + path, data, {"Content-Type": "application/json", **headers}
                )
                with pytest.raises(urllib.error.HTTPError) as error:
                    urllib.request.urlopen(request, timeout=30)
                assert error.value.code == 401, (path, headers)
        request = urllib.request.Request(
            server.url + "/v1/completions",
            body,
            {"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert json.loads(response.read())["choices"][0]["text"]
        assert get(server.url + "/health")[0] == 200
        assert get(server.url + "/metrics")[0] == 200
    finally:
        server.stop()
