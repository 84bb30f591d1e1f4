"""The load task against the real reference server: the offline evaluation's prompts and decoding
settings, the API key only in the Authorization header, refused and unreachable endpoints named."""

from __future__ import annotations

import json

import pytest

from specops_runtime.agent import load as live
from specops_runtime.agent.errors import InvalidTask, RetriableInfrastructure
from specops_runtime.reference import tasks
from specops_runtime.reference.regenerate import prompt_messages
from specops_runtime.reference.server import ServerHandle, build_app

from .conftest import TARGET, context

KEY = "s3cret-load-key"
DECODING = {"temperature": 0.0, "maxNewTokens": 8, "seed": 7, "thinking": False}
TASKS = [{"name": "tiny-math", "samples": 3, "source": {"uri": "builtin://tiny-math"}}]


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    """The target alone, requiring an API key (the reference server's /v1 middleware)."""
    engine, _ = tasks.build_engine({"target": TARGET}, context(tmp_path_factory.mktemp("serve"), "serve"))
    server = ServerHandle(build_app(engine, api_key=KEY)).start()
    yield server
    server.stop()


def params(url: str, **over) -> dict:
    return {
        "endpoint": f"{url}/v1",
        "tasks": TASKS,
        "decoding": DECODING,
        "concurrency": 2,
        "requestTimeoutSeconds": 60,
        **over,
    }


def test_prompts_are_the_offline_evaluations(tmp_path):
    ctx = context(tmp_path, "rows")
    rows = live.task_rows(TASKS[0], {}, ctx, "params.tasks[0]")
    assert rows == tasks.eval_rows(TASKS[0], {}, ctx, "params.tasks[0]")
    assert [live.prompt_messages(r) for r in rows] == [prompt_messages(r) for r in rows]
    assert live.prompt_messages({"turns": ["a", "b"]}) == prompt_messages({"turns": ["a", "b"]})


def test_request_body_follows_the_decoding_settings():
    body = live.request_body("m", [{"role": "user", "content": "x"}], DECODING, 3)
    assert body["seed"] == 7 + 3
    assert (body["max_tokens"], body["temperature"], body["stream"]) == (8, 0.0, False)


def test_jsonl_source_is_read_without_the_reference_backend(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(json.dumps({"turns": [f"q{i}"]}) for i in range(5)) + "\n")
    rows = live.task_rows(
        {"name": "x", "samples": 2, "source": {"uri": str(f)}}, {}, context(tmp_path, "j"), "t"
    )
    assert [live.prompt_messages(r) for r in rows] == [
        [{"role": "user", "content": "q0"}],
        [{"role": "user", "content": "q1"}],
    ]


def test_load_with_the_key_answers_every_prompt_and_never_records_the_key(
    keyed_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("SPECOPS_API_KEY", KEY)
    ctx = context(tmp_path, "load")
    result = live.load(params(keyed_server.url), ctx)
    row = result["load"]["tasks"][0]
    assert (row["name"], row["requests"]) == ("tiny-math", 3)
    assert row["completionTokens"] > 0 and row["promptTokens"] > 0
    assert result["load"]["model"] == TARGET["uri"]  # from GET /v1/models
    assert KEY not in json.dumps(result) and all(KEY not in line for line in ctx.logs)


def test_a_refused_request_is_invalid_and_names_the_endpoint(keyed_server, tmp_path, monkeypatch):
    monkeypatch.delenv("SPECOPS_API_KEY", raising=False)
    with pytest.raises(InvalidTask, match=r"params\.endpoint: GET .*/v1/models: HTTP 401"):
        live.load(params(keyed_server.url), context(tmp_path, "nokey"))


def test_an_unreachable_endpoint_is_retriable(tmp_path):
    with pytest.raises(
        RetriableInfrastructure, match=r"params\.endpoint: GET http://127\.0\.0\.1:9/v1/models"
    ):
        live.load(params("http://127.0.0.1:9", model=None), context(tmp_path, "down"))
