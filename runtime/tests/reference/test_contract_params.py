"""The translation from the contract's Task params to the reference internals (no model needed)."""

from __future__ import annotations

import pytest

from specops_runtime.agent.errors import InvalidTask
from specops_runtime.reference import contract_params as cp

TARGET = {"uri": "builtin://tiny-qwen3"}


def test_checked_applies_the_schema_defaults_and_names_bad_fields(tmp_path):
    params = cp.checked("train", {"target": TARGET, "method": "dspark"}, tmp_path)
    assert params["draft"]["blockSize"] == 7
    assert params["training"]["learningRate"] == 0.0006 and params["training"]["globalBatchSize"] == 512
    assert cp.checked("train", params, tmp_path) == params  # idempotent (the agent already did it)
    with pytest.raises(
        InvalidTask, match=r"^params.training.learningRate: 5 is greater than the maximum of 1"
    ):
        cp.checked("train", {"target": TARGET, "method": "dspark", "training": {"learningRate": 5}}, tmp_path)
    with pytest.raises(InvalidTask, match=r"^params.draft.uri:"):
        cp.checked("eval", {"target": TARGET, "method": "dspark", "draft": {"uri": "/abs/path"}}, tmp_path)


def test_regenerate_settings(tmp_path):
    p = cp.checked(
        "regenerate",
        {"target": TARGET, "inputPath": "/d/train.jsonl", "topK": -1, "concurrency": 8},
        tmp_path,
    )
    settings = cp.regenerate_settings(p)
    assert (settings.temperature, settings.top_p, settings.top_k, settings.min_p) == (0.7, 0.8, 0, 0.0)
    assert settings.batch_size == 8 and settings.max_new_tokens == 4096
    assert cp.regenerate_settings({**p, "topK": 20}).top_k == 20


def test_train_settings_and_draft_shape(tmp_path):
    p = cp.checked(
        "train",
        {
            "target": TARGET,
            "method": "eagle3",
            "draft": {"blockSize": 5, "eagle3": {"stepLossDecay": 0.5}},
            "training": {"maxSteps": 40, "globalBatchSize": 16, "checkpointInterval": 10, "seed": 3},
        },
        tmp_path,
    )
    s = cp.train_settings(p)
    assert (s.max_steps, s.batch_size, s.learning_rate, s.checkpointing_steps, s.seed) == (
        40,
        16,
        0.0006,
        10,
        3,
    )
    assert s.step_loss_decay == 0.5
    assert (
        cp.train_settings({**p, "training": {**p["training"], "maxSteps": None}}).epochs == cp.DEFAULT_EPOCHS
    )
    assert cp.draft_overrides("eagle3", p["draft"]) == {
        "block_size": 5,
        "ttt_length": 5,
        "num_hidden_layers": 1,
    }
    dspark = cp.draft_overrides(
        "dspark", {"blockSize": 4, "numLayers": 3, "dspark": {"markovRank": 8, "confidenceHead": False}}
    )
    assert dspark == {
        "block_size": 4,
        "ttt_length": 4,
        "num_hidden_layers": 3,
        "markov_rank": 8,
        "enable_confidence_head": False,
    }
    assert cp.draft_overrides("dflash", {})["num_hidden_layers"] == cp.DEFAULT_BLOCK_LAYERS
    assert cp.experiment_of(p) == "draft"


def test_train_result_sections():
    trained = {
        "method": "dflash",
        "checkpoint": "/o/checkpoints/specops/draft/step_30",
        "steps": 30,
        "resumedFrom": None,
        "finalLoss": float("nan"),
        "acceptanceByPosition": [0.5],
        "tauEstimate": 1.5,
    }
    out = cp.train_result(trained, steps_per_epoch=10)
    assert out["outputs"]["checkpoint"] == {"path": trained["checkpoint"], "step": 30, "format": "reference"}
    assert out["training"] == {
        "step": 30,
        "totalSteps": 30,
        "epoch": 3.0,
        "tauEstimate": 1.5,
    }  # NaN loss left out


def test_eval_settings_and_task_rows(tmp_path):
    p = cp.checked(
        "eval", {"target": TARGET, "draft": TARGET, "method": "dflash", "baseline": True}, tmp_path
    )
    s = cp.eval_settings(p, draft_block_size=4, max_new_tokens=100)
    assert (s.sampling.temperature, s.speculative_length, s.seed, s.measure_baseline) == (
        1.0,
        4,
        980406,
        True,
    )
    p["decoding"]["numSpeculativeTokens"] = 2
    assert cp.eval_settings(p, 4, 100).speculative_length == 2
    row = {
        "samples": 3,
        "tau": 2.5,
        "acceptanceByPosition": [0.9, 1.0000001],
        "verifyRate": 0.5,
        "tokensPerSecond": 10.0,
        "speedup": None,
        "proposals": 7,
        "confidence": {},
    }
    assert cp.task_result("math", row) == {
        "name": "math",
        "samples": 3,
        "tau": 2.5,
        "acceptanceByPosition": [0.9, 1.0],
        "verifyRate": 0.5,
        "tokensPerSecond": 10.0,
    }
    assert cp.eval_details("math", row) == {"proposals": 7, "confidence": {}}


def test_serve_options(tmp_path):
    base = {"target": TARGET}
    p = cp.checked(
        "serve",
        {
            **base,
            "method": "dspark",
            "draft": TARGET,
            "speculative": {"numSpeculativeTokens": 3, "adaptiveVerification": True},
        },
        tmp_path,
    )
    assert cp.serve_options(p) == {
        "speculative_length": 3,
        "confidence_threshold": 0.5,
        "port": 8000,
        "served_model_name": "builtin://tiny-qwen3",
    }
    for extra, field in (
        ({"extraEngineArgs": ["--x"]}, "params.extraEngineArgs"),
        ({"draftFormat": "native"}, "params.draftFormat"),
        ({"speculative": {"loadAdaptation": "Engine"}}, "params.speculative.loadAdaptation"),
    ):
        with pytest.raises(NotImplementedError, match=rf"^{field}:"):
            cp.serve_options(cp.checked("serve", {**base, **extra}, tmp_path))
