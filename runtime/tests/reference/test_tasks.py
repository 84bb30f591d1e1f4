"""Task entry points: parameter validation, data determinism, tokenizer, profile."""

from __future__ import annotations

import json

import pytest

from specops_runtime.reference import data, tasks
from specops_runtime.reference.context import RunContext
from specops_runtime.reference.tokenizer import build_tiny_tokenizer


@pytest.fixture
def ctx(tmp_path):
    return RunContext(output_dir=tmp_path / "out", work_dir=tmp_path / "work")


def test_data_is_deterministic_by_seed_and_tasks_differ():
    assert data.generate("math", 20, 1) == data.generate("math", 20, 1)
    assert data.generate("math", 20, 1) != data.generate("math", 20, 2)
    assert {ex.task for ex in data.mixture({"math": 3, "chat": 2}, 0)} == {"math", "chat"}


def test_tokenizer_round_trips_every_generated_text():
    tokenizer = build_tiny_tokenizer(data.vocabulary_words())
    assert tokenizer.vocab_size == 512
    for name in data.TASK_NAMES:
        for ex in data.generate(name, 50, 3):
            for text in (ex.prompt, ex.answer):
                ids = tokenizer.encode(text)
                assert tokenizer.decode(ids) == text
                assert 4 not in ids  # never <unk>: the vocabulary covers the task sets
    assert tokenizer.decode(tokenizer.encode("zebra 7 cats")) == "zebra 7 cats"  # char fallback


def test_prepare_data_writes_deepspec_rows(ctx):
    result = tasks.prepare_data(
        {
            "tasks": [{"name": "math", "samples": 5}, {"name": "chat", "samples": 3}],
            "evalSamples": 2,
            "seed": 4,
        },
        ctx,
    )
    rows = [json.loads(line) for line in open(result["trainData"])]
    assert len(rows) == 8 and result["samples"] == 8
    assert (
        rows[0]["conversations"][0]["role"] == "user" and rows[0]["conversations"][1]["role"] == "assistant"
    )
    assert set(result["evalData"]) == {"math", "chat"}
    evals = [json.loads(line) for line in open(result["evalData"]["math"])]
    assert len(evals) == 2 and "turns" in evals[0]


@pytest.mark.parametrize(
    "fn,params,field",
    [
        (tasks.prepare_data, {"tasks": [{"name": "poetry"}]}, "tasks.name"),
        (tasks.prepare_data, {"tasks": "math"}, "tasks"),
        (tasks.prepare_data, {"tasks": [{"name": "math", "samples": -1}]}, "samples"),
        (tasks.train, {"method": "medusa", "targetCache": "/nope"}, "method"),
        (tasks.train, {"method": "eagle3"}, "targetCache"),
        (tasks.train, {"method": "eagle3", "targetCache": "/nonexistent"}, "targetCache"),
        (tasks.regenerate, {}, "trainData"),
        (tasks.regenerate, {"trainData": "/nonexistent.jsonl"}, "trainData"),
        (tasks.target_cache, {"trainData": "/nonexistent.jsonl"}, "trainData"),
        (tasks.evaluate, {"targetModel": "/no/such/model"}, "targetModel"),
        (tasks.profile, {"targetModel": "/no/such/model"}, "targetModel"),
    ],
)
def test_bad_parameters_name_the_field(fn, params, field, ctx):
    with pytest.raises(ValueError, match=rf"^{field}:"):
        fn(params, ctx)


def test_bad_numbers_name_the_field(ctx, target_path):
    base = {"targetModel": str(target_path)}
    with pytest.raises(ValueError, match=r"^draftModel:"):
        tasks.evaluate(base, ctx)
    with pytest.raises(ValueError, match=r"^temperature:"):
        tasks.evaluate({**base, "draftModel": "untrained", "method": "dflash", "temperature": -0.5}, ctx)
    with pytest.raises(ValueError, match=r"^speculation:"):
        tasks.build_server_app({**base, "speculation": "maybe"}, ctx)
    with pytest.raises(ValueError, match=r"^batchSizes:"):
        tasks.profile({**base, "batchSizes": [0, 4]}, ctx)
    with pytest.raises(ValueError, match=r"^blockSize:"):
        tasks.evaluate({**base, "draftModel": "untrained", "method": "dspark", "blockSize": 0}, ctx)


def test_profile_returns_an_sps_table(ctx, target_path):
    result = tasks.profile(
        {"targetModel": str(target_path), "batchSizes": [1, 8, 64], "repeats": 5, "contextLength": 32}, ctx
    )
    table = result["table"]
    assert [row["tokens"] for row in table] == [1, 8, 64]
    for row in table:
        assert row["stepsPerSecond"] == pytest.approx(1000.0 / row["stepTimeMs"])
        assert row["tokensPerSecond"] == pytest.approx(row["tokens"] * row["stepsPerSecond"])
    # Verifying more tokens per step never makes a step cheaper by a wide margin (noise allowed).
    assert table[-1]["stepTimeMs"] > 0.5 * table[0]["stepTimeMs"]
    assert json.loads((ctx.output_dir / "sps_table.json").read_text())["table"] == table
