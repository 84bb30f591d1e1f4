"""Exact vLLM and SGLang command lines per method (engines.md), managed-flag refusal, metrics."""

import json

import pytest

from specops_runtime.adapters import engines, serving, sglang, vllm
from specops_runtime.agent.errors import InvalidTask
from specops_runtime.agent.validation import validate_task


def _params(method, **spec):
    doc = {
        "apiVersion": "runtime.specops.dev/v1", "kind": "serve", "backend": "vllm", "output": {"path": "/o"},
        "params": {"target": {"uri": "hf://Qwen/Qwen3-8B"}, "draft": {"uri": "pvc://d/x"}, "method": method, "speculative": spec},
    }  # fmt: skip
    return validate_task(doc)["params"]


HEAD = ["--host", "0.0.0.0", "--port", "8000", "--served-model-name", "Qwen/Qwen3-8B"]


def _spec(cmd):
    return json.loads(cmd[cmd.index("--speculative-config") + 1])


def test_vllm_eagle3():
    cmd = vllm.command(_params("eagle3", numSpeculativeTokens=3), "Qwen/Qwen3-8B", "/drafts/e3", "native")
    assert cmd == ["vllm", "serve", "Qwen/Qwen3-8B", *HEAD, "--tensor-parallel-size", "1",
                   "--speculative-config", '{"method":"eagle3","model":"/drafts/e3","num_speculative_tokens":3}']  # fmt: skip


def test_vllm_deepspec_dflash_runs_as_dspark_but_zlab_dflash_stays_dflash():
    p = _params("dflash", numSpeculativeTokens=7)
    assert _spec(vllm.command(p, "T", "/drafts/my-dflash", "deepspec"))["method"] == "dspark"
    assert _spec(vllm.command(p, "T", "z-lab/Qwen3-8B-DFlash-b16", "native")) == {
        "method": "dflash", "model": "z-lab/Qwen3-8B-DFlash-b16", "num_speculative_tokens": 7,
    }  # fmt: skip


def test_vllm_load_adaptation_and_adaptive_verification():
    p = _params(
        "dspark",
        numSpeculativeTokens=7,
        loadAdaptation="Engine",
        adaptiveVerification=True,
        lengthByBatchSize=[
            {"minBatch": 1, "maxBatch": 8, "tokens": 7},
            {"minBatch": 9, "maxBatch": 64, "tokens": 0},
        ],
    )
    assert _spec(vllm.command(p, "T", "/d", "deepspec")) == {
        "method": "dspark", "model": "/d", "num_speculative_tokens": 7,
        "num_speculative_tokens_per_batch_size": [[1, 8, 7], [9, 64, 0]],
        "enable_adaptive_verification": True,
    }  # fmt: skip
    with pytest.raises(InvalidTask, match="adaptiveVerification"):
        vllm.command(_params("eagle3", adaptiveVerification=True), "T", "/d", "native")


def test_vllm_batch_size_schedule_in_upstreams_form():
    """Ranges sorted, first at batch 1, none overlapping: what vLLM 0.33.0's
    validate_and_normalize_dynamic_sd_schedule accepts (an unsorted spec list is sorted here)."""
    p = _params("eagle3", numSpeculativeTokens=5, loadAdaptation="Engine", lengthByBatchSize=[
        {"minBatch": 4, "maxBatch": 256, "tokens": 2}, {"minBatch": 1, "maxBatch": 3, "tokens": 5}])  # fmt: skip
    assert _spec(vllm.command(p, "T", "/d", "native"))["num_speculative_tokens_per_batch_size"] == [
        [1, 3, 5], [4, 256, 2]]  # fmt: skip
    for bad, why in (([{"minBatch": 2, "maxBatch": 8, "tokens": 3}], "start at minBatch 1"),
                     ([{"minBatch": 1, "maxBatch": 8, "tokens": 3}, {"minBatch": 8, "maxBatch": 9, "tokens": 1}],
                      "overlap")):  # fmt: skip
        p["speculative"]["lengthByBatchSize"] = bad
        with pytest.raises(InvalidTask, match=why):
            vllm.command(p, "T", "/d", "native")


def test_vllm_length_tuning_apply_serves_the_static_length_until_a_schedule_is_applied():
    p = _params("eagle3", numSpeculativeTokens=5, loadAdaptation="Engine", lengthTuning="Apply")
    assert _spec(vllm.command(p, "T", "/d", "native")) == {
        "method": "eagle3", "model": "/d", "num_speculative_tokens": 5}  # fmt: skip
    p["speculative"]["lengthByBatchSize"] = [{"minBatch": 1, "maxBatch": 256, "tokens": 3}]
    assert _spec(vllm.command(p, "T", "/d", "native"))["num_speculative_tokens_per_batch_size"] == [
        [1, 256, 3]
    ]
    p["speculative"].pop("lengthByBatchSize")
    p["speculative"]["lengthTuning"] = "Recommend"
    with pytest.raises(InvalidTask, match="lengthByBatchSize"):
        vllm.command(p, "T", "/d", "native")


def test_sglang_methods():
    base = [
        "python",
        "-m",
        "sglang.launch_server",
        "--model-path",
        "Qwen/Qwen3-8B",
        *HEAD,
        "--tp-size",
        "1",
        "--enable-metrics",
    ]
    e3 = sglang.command(_params("eagle3", numSpeculativeTokens=3), "Qwen/Qwen3-8B", "/d", "native")
    assert e3 == base + ["--speculative-algorithm", "EAGLE3", "--speculative-draft-model-path", "/d",
                         "--speculative-num-steps", "3", "--speculative-eagle-topk", "1", "--speculative-num-draft-tokens", "4"]  # fmt: skip
    ds = sglang.command(_params("dspark", numSpeculativeTokens=7), "Qwen/Qwen3-8B", "/d", "deepspec")
    assert ds[len(base):] == ["--speculative-algorithm", "DSPARK", "--speculative-draft-model-path", "/d",
                              "--speculative-dspark-block-size", "7", "--speculative-num-steps", "1",
                              "--speculative-eagle-topk", "1", "--speculative-num-draft-tokens", "8"]  # fmt: skip
    zlab = sglang.command(_params("dflash", numSpeculativeTokens=15), "Qwen/Qwen3-8B", "/z", "native")
    assert zlab[len(base):] == ["--speculative-algorithm", "DFLASH", "--speculative-draft-model-path", "/z",
                                "--speculative-num-draft-tokens", "16"]  # fmt: skip
    assert sglang.command(_params("dflash"), "T", "/d", "deepspec")[-3] == "DSPARK"
    adaptive = sglang.command(
        _params("eagle3", numSpeculativeTokens=3, loadAdaptation="Engine"), "T", "/d", "native"
    )
    assert adaptive[-1] == "--speculative-adaptive"
    with pytest.raises(InvalidTask, match="loadAdaptation"):
        sglang.command(_params("dspark", loadAdaptation="Engine"), "T", "/d", "deepspec")


@pytest.mark.parametrize(
    "arg", ["--port=9000", "--speculative-config", "--model", "--tp-size=2", "--enable-metrics"]
)
def test_managed_flags_are_refused(arg):
    p = _params("eagle3")
    p["extraEngineArgs"] = ["--max-model-len=8192", arg]
    for build in (vllm.command, sglang.command):
        with pytest.raises(InvalidTask, match=r"^params\.extraEngineArgs\[1\]"):
            build(p, "T", "/d", "native")


def test_extra_args_are_appended():
    p = _params("eagle3")
    p["extraEngineArgs"] = ["--max-model-len=8192", "--gpu-memory-utilization", "0.9"]
    assert vllm.command(p, "T", "/d", "native")[-3:] == [
        "--max-model-len=8192",
        "--gpu-memory-utilization",
        "0.9",
    ]


def test_draft_format_from_config(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"architectures": ["Qwen3DSparkModel"], "markov_rank": 0})
    )
    assert engines.draft_format({"draftFormat": "auto"}, str(tmp_path)) == "deepspec"
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["DFlashDraftModel"]}))
    assert engines.draft_format({"draftFormat": "auto"}, str(tmp_path)) == "native"
    assert engines.draft_format({"draftFormat": "deepspec"}, "org/repo") == "deepspec"


VLLM_METRICS = """\
# TYPE vllm:spec_decode_num_drafts_total counter
vllm:spec_decode_num_drafts_total{engine="0",model_name="q"} 100.0
# TYPE vllm:spec_decode_num_accepted_tokens_total counter
vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="q"} 250.0
# TYPE vllm:spec_decode_num_accepted_tokens_per_pos_total counter
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="q",position="0"} 90.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="q",position="1"} 60.0
"""


def test_acceptance_from_engine_metrics():
    assert serving.acceptance_from_metrics(VLLM_METRICS) == {
        "tauEstimate": 3.5,
        "acceptanceByPosition": [0.9, 0.6],
    }
    sg = '# TYPE sglang:spec_accept_length gauge\nsglang:spec_accept_length{model_name="q"} 4.2\n'
    assert serving.acceptance_from_metrics(sg) == {"tauEstimate": 4.2}
    assert serving.acceptance_from_metrics("") == {}


def _target_only_params():
    doc = {
        "apiVersion": "runtime.specops.dev/v1", "kind": "serve", "backend": "vllm", "output": {"path": "/o"},
        "params": {"target": {"uri": "hf://Qwen/Qwen3-8B"}},
    }  # fmt: skip
    return validate_task(doc)["params"]


def test_target_alone_has_no_speculative_flags():
    p = _target_only_params()
    assert vllm.command(p, "Qwen/Qwen3-8B", None, "native") == [
        "vllm", "serve", "Qwen/Qwen3-8B", *HEAD, "--tensor-parallel-size", "1"]  # fmt: skip
    assert not [
        a for a in sglang.command(p, "Qwen/Qwen3-8B", None, "native") if a.startswith("--speculative")
    ]


@pytest.mark.parametrize("engine", [vllm, sglang])
def test_a_draft_without_method_is_refused(engine):
    with pytest.raises(InvalidTask, match="params.method"):
        engine.command(_target_only_params(), "Qwen/Qwen3-8B", "/drafts/x", "native")


def test_dflash_draft_tokens_mean_the_same_on_both_engines():
    """numSpeculativeTokens = k draft tokens: vLLM's num_speculative_tokens is k; SGLang's DFLASH
    --speculative-num-draft-tokens is the verify window, anchor included (an alias of its block size)."""
    import json as _json
    from pathlib import Path

    facts = _json.loads(
        (Path(__file__).resolve().parents[1] / "fixtures" / "upstream_facts.json").read_text()
    )
    assert "verify window" in facts["sglang"]["speculativeFlagHelp"]["--speculative-dflash-block-size"]
    for k in (1, 7, 15):
        p = _params("dflash", numSpeculativeTokens=k)
        assert _spec(vllm.command(p, "T", "/z", "native"))["num_speculative_tokens"] == k
        cmd = sglang.command(p, "T", "/z", "native")
        assert cmd[cmd.index("--speculative-num-draft-tokens") + 1] == str(k + 1)
        ds = sglang.command(_params("dspark", numSpeculativeTokens=k), "T", "/d", "deepspec")
        assert ds[ds.index("--speculative-num-draft-tokens") + 1] == str(k + 1)
        assert ds[ds.index("--speculative-dspark-block-size") + 1] == str(k)
