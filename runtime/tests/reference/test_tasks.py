"""Task entry points with the contract's params: data determinism, tokenizer, prepare-data,
eval prompt sources, refusals that name the field, profile."""

from __future__ import annotations

import json

import pytest

from specops_runtime.agent.errors import classify
from specops_runtime.reference import data, tasks
from specops_runtime.reference.context import RunContext
from specops_runtime.reference.tokenizer import build_tiny_tokenizer

TARGET = {"uri": "builtin://tiny-qwen3"}


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


def test_prepare_data_splits_builtin_prompts_into_train_and_held_out_sets(ctx):
    result = tasks.prepare_data(
        {"prompts": {"uri": "builtin://tiny-mix"}, "maxSamples": 30, "heldOutFraction": 0.2, "seed": 4}, ctx
    )
    train = ctx.output_dir / "train.jsonl"
    assert result["outputs"]["dataPaths"] == [str(train)]
    rows = [json.loads(line) for line in train.read_text().splitlines()]
    assert len(rows) == result["outputs"]["samples"] == 24
    assert (
        rows[0]["conversations"][0]["role"] == "user" and rows[0]["conversations"][1]["role"] == "assistant"
    )
    eval_dir = ctx.output_dir / "eval_datasets"
    assert result["outputs"]["evalDataDir"] == str(eval_dir)
    held_out = {p.stem: [json.loads(x) for x in p.read_text().splitlines()] for p in eval_dir.glob("*.jsonl")}
    assert set(held_out) <= {"tiny-math", "tiny-code", "tiny-chat"}
    assert sum(len(v) for v in held_out.values()) == 6 and all(
        "turns" in r for v in held_out.values() for r in v
    )
    assert not {r["id"] for r in rows} & {r["id"] for v in held_out.values() for r in v}
    again = tasks.prepare_data(
        {"prompts": {"uri": "builtin://tiny-mix"}, "maxSamples": 30, "heldOutFraction": 0.2, "seed": 4}, ctx
    )
    assert again == result and [json.loads(x) for x in train.read_text().splitlines()] == rows


def test_prepare_data_reads_a_local_jsonl_through_pvc(ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECOPS_PVC_ROOT", str(tmp_path / "pvc"))
    source = tmp_path / "pvc" / "claim" / "prompts.jsonl"
    source.parent.mkdir(parents=True)
    source.write_text("".join(json.dumps({"turns": [f"count by 2 from {i} :"]}) + "\n" for i in range(10)))
    result = tasks.prepare_data(
        {"prompts": {"uri": "pvc://claim/prompts.jsonl"}, "heldOutFraction": 0.1}, ctx
    )
    assert result["outputs"]["samples"] == 9
    held = (ctx.output_dir / "eval_datasets" / "prompts.jsonl").read_text().splitlines()
    assert len(held) == 1 and json.loads(held[0])["turns"][0].startswith("count by 2")


def test_eval_prompts_come_from_source_eval_data_dir_or_builtin_sets(ctx, tmp_path):
    held_out = tmp_path / "eval_datasets"
    held_out.mkdir()
    (held_out / "tiny-chat.jsonl").write_text(json.dumps({"id": "x", "turns": ["tell me about cats"]}) + "\n")
    params = {"evalDataDir": str(held_out)}
    custom = tasks.eval_rows(
        {"name": "tiny-math", "samples": 3, "source": {"uri": "builtin://tiny-math"}}, params, ctx, "t"
    )
    assert [r["task"] for r in custom] == ["math"] * 3
    assert tasks.eval_rows({"name": "tiny-chat"}, params, ctx, "t") == [
        {"id": "x", "turns": ["tell me about cats"]}
    ]
    own = tasks.eval_rows({"name": "code", "samples": 2}, params, ctx, "t")
    assert [r["task"] for r in own] == ["code", "code"]
    assert len(tasks.eval_rows({"name": "tiny-code"}, {}, ctx, "t")) == 32  # a builtin set's standard count
    with pytest.raises(FileNotFoundError, match=r"^params.tasks\[0\].name: no prompts for 'gsm8k'"):
        tasks.eval_rows({"name": "gsm8k"}, params, ctx, "params.tasks[0]")
    with pytest.raises(FileNotFoundError, match=r"^t.source.uri: unknown builtin 'tiny-poems'"):
        tasks.eval_rows({"name": "p", "source": {"uri": "builtin://tiny-poems"}}, params, ctx, "t")


BASE_TRAIN = {"target": TARGET, "method": "eagle3", "targetCachePath": "/nonexistent"}


@pytest.mark.parametrize(
    "fn,params,reason,field",
    [
        (tasks.prepare_data, {"prompts": {"uri": "builtin://poetry"}}, "missingInput", "params.prompts.uri"),
        (tasks.prepare_data, {"prompts": {"uri": "hf://org/data"}}, "unsupported", "params.prompts.uri"),
        (tasks.prepare_data, {"prompts": "builtin://tiny-mix"}, "invalidTask", "params.prompts"),
        (
            tasks.prepare_data,
            {"prompts": {"uri": "builtin://tiny-mix"}, "maxSample": 3},
            "invalidTask",
            "params.maxSample",
        ),
        (tasks.train, {**BASE_TRAIN, "method": "medusa"}, "invalidTask", "params.method"),
        (
            tasks.train,
            {**BASE_TRAIN, "training": {"learningRate": 5}},
            "invalidTask",
            "params.training.learningRate",
        ),
        (
            tasks.train,
            {**BASE_TRAIN, "draft": {"configOverrides": {"a.b": "1"}}},
            "unsupported",
            "params.draft.configOverrides",
        ),
        (tasks.train, BASE_TRAIN, "missingInput", "params.targetCachePath"),
        (tasks.regenerate, {"target": TARGET}, "invalidTask", "params.inputPath"),
        (
            tasks.regenerate,
            {"target": TARGET, "inputPath": "/nonexistent.jsonl"},
            "missingInput",
            "params.inputPath",
        ),
        (
            tasks.regenerate,
            {"target": TARGET, "inputPath": "/x.jsonl", "thinking": True},
            "unsupported",
            "params.thinking",
        ),
        (
            tasks.target_cache,
            {"target": TARGET, "method": "dflash", "dataPaths": ["/no.jsonl"]},
            "missingInput",
            "params.dataPaths[0]",
        ),
        (
            tasks.evaluate,
            {"target": {"uri": "builtin://tiny-llama"}, "draft": TARGET, "method": "dflash"},
            "missingInput",
            "params.target.uri",
        ),
        (
            tasks.evaluate,
            {
                "target": TARGET,
                "draft": {"uri": "pvc://nope/x"},
                "method": "dflash",
                "tasks": [{"name": "math"}],
            },
            "missingInput",
            "params.draft.uri",
        ),
        (
            tasks.evaluate,
            {
                "target": TARGET,
                "draft": {"uri": "builtin://nope"},
                "method": "dflash",
                "tasks": [{"name": "math"}],
            },
            "missingInput",
            "params.draft.uri",
        ),
        (
            tasks.evaluate,
            {"target": TARGET, "draft": TARGET, "method": "dflash", "decoding": {"thinking": True}},
            "unsupported",
            "params.decoding.thinking",
        ),
        (
            tasks.evaluate,
            {"target": {"uri": "s3://bucket/model"}, "draft": TARGET, "method": "dflash"},
            "missingInput",  # not staged: the agent stages object stores before dispatch
            "params.target.uri",
        ),
        (tasks.profile, {"target": {"uri": "pvc://nope/model"}}, "missingInput", "params.target.uri"),
        (
            tasks.profile,
            {"target": TARGET, "endpoint": "http://engine:8000"},
            "unsupported",
            "params.endpoint",
        ),
        (
            tasks.build_server_app,
            {"target": TARGET, "tensorParallelSize": 2},
            "unsupported",
            "params.tensorParallelSize",
        ),
        (tasks.build_server_app, {"target": TARGET, "method": "dflash"}, "invalidTask", "params.draft"),
    ],
)
def test_bad_parameters_name_the_field(fn, params, reason, field, ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECOPS_PVC_ROOT", str(tmp_path / "pvc"))
    with pytest.raises(Exception) as error:
        fn(params, ctx)
    assert classify(error.value) == reason, error.value
    assert str(error.value).startswith(f"{field}:"), str(error.value)


def test_profile_returns_an_sps_table(ctx):
    result = tasks.profile(
        {"target": TARGET, "batchSizes": [1, 8, 64], "repeats": 5, "contextLength": 32}, ctx
    )
    points = result["profile"]["points"]
    assert [p["batchSize"] for p in points] == [1, 8, 64]
    table = result["details"]["table"]
    for point, row in zip(points, table, strict=True):
        assert point["stepsPerSecond"] == row["stepsPerSecond"] == pytest.approx(1000.0 / row["stepTimeMs"])
        assert row["tokensPerSecond"] == pytest.approx(row["tokens"] * row["stepsPerSecond"])
    # Verifying more tokens per step never makes a step cheaper by a wide margin (noise allowed).
    assert table[-1]["stepTimeMs"] > 0.5 * table[0]["stepTimeMs"]
    assert json.loads((ctx.output_dir / "sps_table.json").read_text()) == result
