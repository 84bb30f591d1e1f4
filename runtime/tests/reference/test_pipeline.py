"""Tiny end to end: target -> regenerate -> target cache -> train eagle3 + dspark -> evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specops_runtime.reference import tasks
from specops_runtime.reference.target_cache import load_cache

from .conftest import context

EVAL = {
    "temperature": 1.0,
    "maxNewTokens": 32,
    "measureBaseline": False,
    "tasks": [{"name": n, "samples": 12} for n in ("math", "code", "chat")],
}


def test_regeneration_and_cache_layout(pipeline):
    assert pipeline.regenerated["regenerated"] >= 0.95 * pipeline.regenerated["samples"]
    rows = [json.loads(line) for line in Path(pipeline.regenerated["trainData"]).read_text().splitlines()]
    assert all(r["status"] == "success" and r["conversations"][-1]["role"] == "assistant" for r in rows)
    manifest, samples = load_cache(Path(pipeline.cache["targetCache"]))
    assert manifest["version"] == 2 and manifest["target_layer_ids"] == pipeline.cache["targetLayerIds"]
    assert len(samples) == manifest["num_samples"] == pipeline.cache["samples"]
    first = samples[0]
    hidden = manifest["hidden_size"]
    assert first.features.shape == (first.length, hidden * len(manifest["target_layer_ids"]))
    assert first.final_hidden.shape == (first.length, hidden)
    assert 0 < first.answer_start < first.length


@pytest.mark.parametrize("method", ["eagle3", "dspark"])
def test_training_reports_progress_and_saves_hf_layout(pipeline, method):
    reports = [r for r in pipeline.train_reports[method] if r.get("stage") == "train"]
    assert len(reports) >= 3
    assert all(
        {"step", "total", "loss", "epoch", "acceptanceByPosition", "tauEstimate"} <= set(r) for r in reports
    )
    assert [r["step"] for r in reports] == sorted(r["step"] for r in reports)
    assert reports[-1]["step"] == reports[-1]["total"] == pipeline.trained[method]["steps"]
    assert reports[-1]["loss"] < reports[0]["loss"]  # it learned something
    checkpoint = Path(pipeline.trained[method]["checkpoint"])
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["architectures"] == [{"eagle3": "Qwen3Eagle3Model", "dspark": "Qwen3DSparkModel"}[method]]
    assert (checkpoint / "model.safetensors").exists()
    assert (checkpoint.parent / "step_latest").resolve() == checkpoint.resolve()


@pytest.fixture(scope="module")
def evaluations(pipeline):
    out = {}
    for method in ("eagle3", "dspark"):
        common = {**EVAL, "targetModel": str(pipeline.target_path), "evalData": pipeline.data["evalDir"]}
        out[method] = tasks.evaluate(
            {**common, "draftModel": pipeline.trained[method]["checkpoint"]},
            context(pipeline.root, f"eval-{method}"),
        )
        out[f"{method}-untrained"] = tasks.evaluate(
            {
                **common,
                "draftModel": "untrained",
                "method": method,
                "blockSize": 4,
                "targetLayerIds": pipeline.cache["targetLayerIds"],
            },
            context(pipeline.root, f"eval-{method}-untrained"),
        )
    return out


@pytest.mark.parametrize("method", ["eagle3", "dspark"])
def test_trained_draft_beats_untrained_draft(evaluations, method):
    trained, untrained = evaluations[method], evaluations[f"{method}-untrained"]
    for result in (trained, untrained):
        assert set(result["tasks"]) == {"math", "code", "chat"}
        for row in result["tasks"].values():
            assert row["samples"] == 12
            assert len(row["acceptanceByPosition"]) == 4
            assert row["acceptanceByPosition"] == sorted(row["acceptanceByPosition"], reverse=True)
            assert 1.0 <= row["tau"] <= 5.0
            assert row["verifyRate"] == pytest.approx(row["tau"] / (row["meanProposalLength"] + 1))
            assert row["tokensPerSecond"] > 0
    assert untrained["summary"]["tau"] < 1.3
    if method == "dspark":  # the confidence head's predictions are reported per position
        for row in trained["tasks"].values():
            calibration = row["confidence"]
            assert all(0.0 <= p <= 1.0 for p in calibration["predictedByPosition"])
            assert calibration["roundsByPosition"][0] == row["proposals"]
            assert calibration["observedByPosition"][0] == pytest.approx(row["acceptanceByPosition"][0])
    assert trained["summary"]["tau"] > untrained["summary"]["tau"] + 1.0
    for task in ("math", "code", "chat"):
        assert trained["tasks"][task]["tau"] > untrained["tasks"][task]["tau"] + 0.5, task
    # macro summary = unweighted mean of the task rows
    taus = [row["tau"] for row in trained["tasks"].values()]
    assert trained["summary"]["tau"] == pytest.approx(sum(taus) / 3)


def test_evaluate_measures_target_only_baseline(pipeline):
    result = tasks.evaluate(
        {
            "targetModel": str(pipeline.target_path),
            "draftModel": pipeline.trained["dspark"]["checkpoint"],
            "tasks": [{"name": "code", "samples": 3}],
            "maxNewTokens": 16,
        },
        context(pipeline.root, "eval-baseline"),
    )
    row = result["tasks"]["code"]
    assert row["baselineTokensPerSecond"] > 0
    assert row["speedup"] == pytest.approx(row["tokensPerSecond"] / row["baselineTokensPerSecond"])
    assert result["summary"]["speedup"] == pytest.approx(row["speedup"])
    saved = json.loads((pipeline.root / "eval-baseline" / "eval_results.json").read_text())
    assert saved["tasks"]["code"] == row


def test_tau_differs_by_task_predictability(evaluations):
    """Open chat is the least predictable task set (as in the paper's Table 1)."""
    for method in ("eagle3", "dspark"):
        rows = evaluations[method]["tasks"]
        assert rows["chat"]["tau"] < max(rows["math"]["tau"], rows["code"]["tau"]) - 0.3, method


def test_training_resumes_from_step_latest(pipeline):
    ctx = context(pipeline.root, "train-resume")
    params = {
        "targetModel": str(pipeline.target_path),
        "method": "dflash",
        "targetCache": pipeline.cache["targetCache"],
        "maxSteps": 6,
        "checkpointingSteps": 3,
        "loggingSteps": 1,
        "blockSize": 4,
    }
    first = tasks.train({**params, "maxSteps": 3}, ctx)
    assert first["steps"] == 3 and first["resumedFrom"] is None
    second = tasks.train(params, ctx)
    assert second["resumedFrom"] == 3 and second["steps"] == 6
    assert any("AUTO-RESUME" in line for line in ctx.logs)
    steps = [r["step"] for r in ctx.reports if r.get("stage") == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]
