"""Tiny end to end, in-process with the contract's params: target -> regenerate -> target cache ->
train eagle3 + dspark -> evaluate (trained vs untrained drafts, baseline, resume)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specops_runtime.reference import tasks
from specops_runtime.reference.target_cache import load_cache

from .conftest import TARGET, context

TASKS = [{"name": n, "samples": 12} for n in ("math", "code", "chat")]
DECODING = {"temperature": 1.0, "maxNewTokens": 32}


def test_regeneration_and_cache_layout(pipeline):
    details = pipeline.regenerated["details"]
    assert details["regenerated"] >= 0.95 * pipeline.data["outputs"]["samples"]
    regen_file = Path(pipeline.regenerated["outputs"]["dataPaths"][0])
    assert regen_file.name == "train_regen.jsonl"
    rows = [json.loads(line) for line in regen_file.read_text().splitlines()]
    assert all(r["status"] == "success" and r["conversations"][-1]["role"] == "assistant" for r in rows)
    cache_dir = Path(pipeline.cache["outputs"]["targetCachePath"])
    assert cache_dir.name == "target_cache"
    manifest, samples = load_cache(cache_dir)
    assert (
        manifest["version"] == 2
        and manifest["target_layer_ids"] == pipeline.cache["details"]["targetLayerIds"]
    )
    assert len(samples) == manifest["num_samples"] == pipeline.cache["outputs"]["samples"]
    first = samples[0]
    hidden = manifest["hidden_size"]
    assert first.features.shape == (first.length, hidden * len(manifest["target_layer_ids"]))
    assert first.final_hidden.shape == (first.length, hidden)
    assert 0 < first.answer_start < first.length


@pytest.mark.parametrize("method", ["eagle3", "dspark"])
def test_training_reports_progress_and_saves_hf_layout(pipeline, method):
    reports = [r for r in pipeline.train_reports[method] if r.get("stage") == "train"]
    assert len(reports) >= 3
    fields = {"step", "total", "loss", "epoch", "acceptanceByPosition", "tauEstimate", "etaSeconds"}
    assert all(fields <= set(r) for r in reports)
    assert [r["step"] for r in reports] == sorted(r["step"] for r in reports)
    result = pipeline.trained[method]
    assert reports[-1]["step"] == reports[-1]["total"] == result["training"]["totalSteps"]
    assert reports[-1]["etaSeconds"] == 0
    assert reports[-1]["loss"] < reports[0]["loss"]  # it learned something
    assert result["training"]["loss"] == pytest.approx(reports[-1]["loss"])
    checkpoint = Path(pipeline.checkpoint(method))
    assert checkpoint.parent == pipeline.root / f"train-{method}" / "checkpoints" / "specops" / "draft"
    assert result["outputs"]["checkpoint"]["step"] == result["training"]["step"]
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["architectures"] == [{"eagle3": "Qwen3Eagle3Model", "dspark": "Qwen3DSparkModel"}[method]]
    assert (checkpoint / "model.safetensors").exists()
    assert (checkpoint.parent / "step_latest").resolve() == checkpoint.resolve()


def _rows(result: dict) -> dict[str, dict]:
    return {r["name"]: r for r in result["evaluation"]["results"]}


@pytest.fixture(scope="module")
def evaluations(pipeline):
    out = {}
    for method in ("eagle3", "dspark"):
        common = {
            "target": TARGET,
            "method": method,
            "tasks": TASKS,
            "decoding": {**DECODING, "numSpeculativeTokens": 4},
        }
        out[method] = tasks.evaluate(
            {**common, "draft": {"uri": pipeline.draft_uri(method)}}, context(pipeline.root, f"eval-{method}")
        )
        out[f"{method}-untrained"] = tasks.evaluate(
            {**common, "draft": {"uri": "builtin://untrained-draft"}},
            context(pipeline.root, f"eval-{method}-untrained"),
        )
    return out


def _macro_tau(result: dict) -> float:
    rows = result["evaluation"]["results"]
    return sum(r["tau"] for r in rows) / len(rows)


@pytest.mark.parametrize("method", ["eagle3", "dspark"])
def test_trained_draft_beats_untrained_draft(evaluations, method):
    trained, untrained = evaluations[method], evaluations[f"{method}-untrained"]
    for result in (trained, untrained):
        assert list(_rows(result)) == ["math", "code", "chat"]
        for name, row in _rows(result).items():
            extra = result["details"]["tasks"][name]
            assert row["samples"] == 12
            assert len(row["acceptanceByPosition"]) == 4
            assert row["acceptanceByPosition"] == sorted(row["acceptanceByPosition"], reverse=True)
            assert 1.0 <= row["tau"] <= 5.0
            assert row["verifyRate"] == pytest.approx(row["tau"] / (extra["meanProposalLength"] + 1))
            assert row["tokensPerSecond"] > 0
            assert "speedup" not in row  # baseline: false
    assert _macro_tau(untrained) < 1.3
    if method == "dspark":  # the confidence head's predictions are reported per position (details)
        for name, row in _rows(trained).items():
            extra = trained["details"]["tasks"][name]
            calibration = extra["confidence"]
            assert all(0.0 <= p <= 1.0 for p in calibration["predictedByPosition"])
            assert calibration["roundsByPosition"][0] == extra["proposals"]
            assert calibration["observedByPosition"][0] == pytest.approx(row["acceptanceByPosition"][0])
    assert _macro_tau(trained) > _macro_tau(untrained) + 1.0
    for task in ("math", "code", "chat"):
        assert _rows(trained)[task]["tau"] > _rows(untrained)[task]["tau"] + 0.5, task


def test_evaluate_measures_target_only_baseline(pipeline):
    result = tasks.evaluate(
        {
            "target": TARGET,
            "draft": {"uri": pipeline.draft_uri("dspark")},
            "method": "dspark",
            "tasks": [{"name": "code", "samples": 3}],
            "decoding": {"maxNewTokens": 16},
            "baseline": True,
        },
        context(pipeline.root, "eval-baseline"),
    )
    row = _rows(result)["code"]
    assert result["details"]["numSpeculativeTokens"] == 4  # the draft's block size
    assert row["baselineTokensPerSecond"] > 0
    assert row["speedup"] == pytest.approx(row["tokensPerSecond"] / row["baselineTokensPerSecond"])
    saved = json.loads((pipeline.root / "eval-baseline" / "eval_results.json").read_text())
    assert saved["tasks"]["code"]["tau"] == row["tau"]


def test_tau_differs_by_task_predictability(evaluations):
    """Open chat is the least predictable task set (as in the paper's Table 1)."""
    for method in ("eagle3", "dspark"):
        rows = _rows(evaluations[method])
        assert rows["chat"]["tau"] < max(rows["math"]["tau"], rows["code"]["tau"]) - 0.3, method


def test_training_resumes_from_step_latest(pipeline):
    ctx = context(pipeline.root, "train-resume")
    params = {
        "target": TARGET,
        "method": "dflash",
        "draft": {"blockSize": 4},
        "training": {"maxSteps": 6, "checkpointInterval": 3, "globalBatchSize": 32},
        "targetCachePath": pipeline.cache["outputs"]["targetCachePath"],
    }
    first = tasks.train({**params, "training": {**params["training"], "maxSteps": 3}}, ctx)
    assert first["training"]["step"] == 3 and first["details"]["resumedFrom"] is None
    second = tasks.train(params, ctx)
    assert second["details"]["resumedFrom"] == 3 and second["training"]["step"] == 6
    assert second["outputs"]["checkpoint"]["path"].endswith("checkpoints/specops/draft/step_6")
    assert any("AUTO-RESUME" in line for line in ctx.logs)
    steps = [r["step"] for r in ctx.reports if r.get("stage") == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_train_builds_its_own_cache_from_data_paths(pipeline):
    """Without a target cache the reference trains from text (params.dataPaths)."""
    ctx = context(pipeline.root, "train-from-text")
    result = tasks.train(
        {
            "target": TARGET,
            "method": "eagle3",
            "draft": {"blockSize": 2},
            "training": {"maxSteps": 2, "globalBatchSize": 8},
            "dataPaths": pipeline.regenerated["outputs"]["dataPaths"],
        },
        ctx,
    )
    assert result["training"]["step"] == 2
    assert (ctx.work_dir / "target_cache" / "manifest.json").exists()
