"""Every command line and config the DeepSpec, vLLM and SGLang adapters build uses only what upstream
defines at the pinned versions (tests/fixtures/upstream_facts.json, recorded by
scripts/record_upstream_facts.py from DeepSpec afdfa7c and the vLLM / SGLang wheels)."""

import json
from itertools import product
from pathlib import Path

import pytest

from specops_runtime.adapters import serving, sglang, vllm
from specops_runtime.adapters.deepspec import commands
from specops_runtime.adapters.deepspec.tasks import BENCHMARK_SAMPLES
from specops_runtime.agent.errors import InvalidTask
from specops_runtime.agent.validation import validate_task

FACTS = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "upstream_facts.json").read_text())
DS, VLLM, SGL = FACTS["deepspec"], FACTS["vllm"], FACTS["sglang"]
OUT = "/mnt/specops/pvc/work/dt1/out"
TARGETS = {"qwen3_4b": "hf://Qwen/Qwen3-4B", "qwen3_8b": "hf://Qwen/Qwen3-8B", "qwen3_14b": "hf://Qwen/Qwen3-14B",
           "gemma4_12b": "hf://google/gemma-4-12B-it"}  # fmt: skip


def _task(kind, params, backend="deepspec"):
    doc = {"apiVersion": "runtime.specops.dev/v1", "kind": kind, "backend": backend, "output": {"path": OUT}}
    return validate_task({**doc, "params": params})


def check_argv(argv: list[str], script: dict) -> set[str]:
    """Parse argv as the script's argparse would: every option defined, store_true options take no
    value, required ones present, mutually exclusive ones not together. Returns the options used."""
    flags = script["flags"]
    names = {alias: flag for flag, info in flags.items() for alias in [flag, *info.get("aliases", [])]}
    used: set[str] = set()
    i = 0
    while i < len(argv):
        arg = argv[i]
        assert arg.startswith("-"), f"stray value {arg!r} in {argv}"
        assert arg in names, f"{arg} is not an option of this script (upstream defines {sorted(flags)})"
        flag = names[arg]
        used.add(flag)
        info = flags[flag]
        i += 1
        if info.get("action") in ("store_true", "store_false"):
            continue
        if info.get("nargs") == "+":
            assert i < len(argv) and not argv[i].startswith("--"), f"{arg} needs values"
            while i < len(argv) and not argv[i].startswith("--"):
                i += 1
            continue
        assert i < len(argv) and not argv[i].startswith("--"), f"{arg} needs a value"
        i += 1
    missing = {f for f, info in flags.items() if info.get("required")} - used
    assert not missing, f"required options missing: {missing}"
    for group in script.get("mutuallyExclusive", []):
        assert len(used & set(group)) <= 1, f"mutually exclusive: {group}"
    return used


def opts_keys(cmd: list[str]) -> list[str]:
    return [cmd[i + 1].split("=", 1)[0] for i, a in enumerate(cmd) if a == "--opts"]


def full_draft(method: str) -> dict:
    """Every first-class draft field the method takes."""
    draft = {
        "blockSize": 6,
        "numLayers": 1 if method == "eagle3" else 3,
        "targetLayerIds": [1, 9, 17, 25, 33],
    }
    if method == "dspark":
        draft["dspark"] = {"markovRank": 32, "confidenceHead": False}
    if method == "eagle3":
        draft["eagle3"] = {"stepLossDecay": 0.7}
    return draft


TRAINING = {"maxSteps": 10, "learningRate": 1e-4, "warmupRatio": 0.1, "precision": "bf16",
            "perGpuBatchSize": 2, "globalBatchSize": 64, "checkpointInterval": 5, "maxLength": 2048, "seed": 7}  # fmt: skip


@pytest.mark.parametrize(("method", "target"), list(product(("eagle3", "dflash", "dspark"), TARGETS)))
def test_train_and_target_cache_use_only_flags_and_keys_deepspec_defines(method, target):
    config = f"config/{method}/{method}_{target}.py"
    keys = set(DS["configs"][config]["keys"])
    draft = full_draft(method)
    params = {"target": {"uri": TARGETS[target]}, "method": method, "targetCachePath": "/c", "draft": draft}
    for training in (TRAINING, {**{k: v for k, v in TRAINING.items() if k != "maxSteps"}, "epochs": 2}):
        t = _task("train", {**params, "training": training})
        cmd = commands.train_command(t["params"], t)
        assert cmd[1] == "train.py" and cmd[3] == config
        check_argv(cmd[2:], DS["scripts"]["train.py"])
        unknown = set(opts_keys(cmd)) - keys
        assert not unknown, f"parse_opts_to_config would raise KeyError for {unknown}"

    t = _task("target-cache", {"target": params["target"], "method": method, "dataPaths": ["/d/a.jsonl"],
                               "draft": draft})  # fmt: skip
    cmd = commands.target_cache_command(t["params"], t)
    check_argv(cmd[2:], DS["scripts"]["scripts/data/prepare_target_cache.py"])
    assert not set(opts_keys(cmd)) - keys


def test_managed_keys_are_real_config_keys():
    """Every key SpecOps manages exists in some DeepSpec config (a misspelt one protects nothing)."""
    from specops_runtime.agent.contract import constants

    all_keys = set().union(*(set(c["keys"]) for c in DS["configs"].values()))
    assert set(constants()["managedDeepspecKeys"]) <= all_keys


@pytest.mark.parametrize("thinking", [False, True])
def test_data_commands_use_only_defined_flags(thinking):
    t = _task("prepare-data", {"prompts": {"uri": "hf://mlabonne/open-perfectblend"}, "maxSamples": 100})
    cmd = commands.prepare_data_command(t["params"], t)
    check_argv(cmd[2:], DS["scripts"]["scripts/data/download_and_split.py"])
    t = _task("regenerate", {"target": {"uri": "hf://Qwen/Qwen3-4B"}, "inputPath": "/d/t.jsonl",
                             "servers": ["a:1", "b:2"], "thinking": thinking})  # fmt: skip
    used = check_argv(
        commands.regenerate_command(t["params"], t)[2:], DS["scripts"]["scripts/data/generate_train_data.py"]
    )
    assert ("--enable-thinking" in used) is thinking and ("--disable-thinking" in used) is not thinking


def test_eval_passes_only_eval_py_flags_and_the_standard_caps_are_deepspecs():
    assert DS["eval"]["tasksFixedInParseArgs"]  # why the adapter drives eval.py rather than flags it lacks
    assert BENCHMARK_SAMPLES == dict(DS["eval"]["tasks"])
    t = _task("eval", {"target": {"uri": "hf://Qwen/Qwen3-8B"}, "draft": {"uri": "pvc://w/step_latest"},
                       "method": "dspark", "tasks": [{"name": "gsm8k", "samples": 3}],
                       "decoding": {"temperature": 0.5, "maxNewTokens": 64, "seed": 1}})  # fmt: skip
    cmd = commands.eval_command(t["params"], t, BENCHMARK_SAMPLES)
    check_argv(cmd[cmd.index("--") + 1 :], DS["scripts"]["eval.py"])


# ---- vLLM ---------------------------------------------------------------------------------------


def _serve(backend, method, **extra):
    params = {"target": {"uri": "hf://Qwen/Qwen3-8B"}, "draft": {"uri": "hf://org/draft"}, "method": method}
    return _task("serve", {**params, **extra}, backend=backend)["params"]


SPEC_VARIANTS = [
    {},
    {"speculative": {"numSpeculativeTokens": 5}},
    {"speculative": {"numSpeculativeTokens": 3, "loadAdaptation": "Engine",
                     "lengthByBatchSize": [{"minBatch": 1, "maxBatch": 8, "tokens": 3}]}},
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "fmt", "variant"),
    list(product(("eagle3", "dflash", "dspark"), ("native", "deepspec"), range(3))),
)
def test_vllm_command_and_speculative_config_use_only_upstream_names(method, fmt, variant):
    params = _serve("vllm", method, **SPEC_VARIANTS[variant])
    cmd = vllm.command(params, "Qwen/Qwen3-8B", "/d", fmt, "main")
    for a in cmd[3:]:
        if a.startswith("--"):
            assert a in VLLM["serveFlags"], a
    cfg = json.loads(cmd[cmd.index("--speculative-config") + 1])
    assert set(cfg) <= set(VLLM["speculativeConfig"]["keys"]), set(cfg) - set(
        VLLM["speculativeConfig"]["keys"]
    )
    assert cfg["method"] in VLLM["speculativeConfig"]["methods"]
    assert VLLM["speculativeConfig"]["extraKeys"] == "forbid"  # an unknown key would stop vLLM at start-up


def test_vllm_adaptive_verification_key_exists():
    params = _serve("vllm", "dspark", speculative={"adaptiveVerification": True})
    cfg = vllm.speculative_config(params, "/d", "deepspec")
    assert set(cfg) <= set(VLLM["speculativeConfig"]["keys"])


# ---- SGLang -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "fmt", "variant"),
    list(product(("eagle3", "dflash", "dspark"), ("native", "deepspec"), (0, 1))),
)
def test_sglang_command_uses_only_upstream_flags_and_algorithms(method, fmt, variant):
    params = _serve("sglang", method, **SPEC_VARIANTS[variant])
    cmd = sglang.command(params, "Qwen/Qwen3-8B", "/d", fmt, "main")
    assert cmd[:3] == ["python", "-m", SGL["launchModule"]]
    for a in cmd[3:]:
        if a.startswith("--"):
            assert a in SGL["serverFlags"], a
    algorithm = cmd[cmd.index("--speculative-algorithm") + 1]
    assert algorithm in SGL["speculativeAlgorithms"]


def test_engine_metric_names_the_agent_reads_exist_upstream():
    import inspect

    source = inspect.getsource(serving.acceptance_from_metrics)
    for name in (
        "spec_decode_num_drafts",
        "spec_decode_num_accepted_tokens",
        "spec_decode_num_accepted_tokens_per_pos",
    ):
        assert f"vllm:{name}_total" in source and VLLM["metrics"]["names"][f"vllm:{name}"] == "counter"
    assert "sglang:spec_accept_length" in source and "sglang:spec_accept_length" in SGL["metrics"]["names"]


def test_the_facts_were_recorded_from_the_versions_the_dockerfile_pins():
    import re

    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    arg = {m[1]: m[2] for m in re.finditer(r"^ARG (\w+)=(\S+)$", dockerfile, re.M)}
    assert arg["VLLM_IMAGE"].endswith(":v" + VLLM["source"]["version"])
    assert arg["SGLANG_IMAGE"].endswith(":v" + SGL["source"]["version"])
    assert DS["source"]["commit"].startswith(arg["DEEPSPEC_COMMIT"])
    assert f"github.com/{DS['source']['repository']}.git" in dockerfile


def test_adapter_constants_are_deepspecs():
    assert commands.EAGLE3_EVAL_LAYERS == DS["eval"]["eagle3DraftNumHiddenLayers"]
    for name, config in DS["configs"].items():
        if name.startswith("config/dspark/"):
            assert config["defaults"]["model.confidence_head_alpha"] == commands.DSPARK_CONFIDENCE_ALPHA
        if name.startswith("config/dflash/"):  # DeepSpec's DFlash: no confidence head, no Markov head
            assert config["defaults"]["model.confidence_head_alpha"] == 0.0
            assert config["defaults"]["model.markov_rank"] == 0


# ---- Drafts built into the target (SpecServe draft.builtIn) ---------------------------------------

BUILT_IN = json.loads(
    (
        Path(__file__).resolve().parents[3] / "test" / "fixtures" / "engines" / "builtin-drafts.json"
    ).read_text()
)


def _built_in(backend, method, **extra):
    params = {"target": {"uri": "hf://deepseek-ai/DeepSeek-V3"}, "method": method}
    return _task("serve", {**params, **extra}, backend=backend)["params"]


@pytest.mark.parametrize("method", sorted(BUILT_IN["vllm"]["methods"]))
def test_vllm_built_in_draft_is_the_recorded_method_with_no_model(method):
    params = _built_in("vllm", method, speculative={"numSpeculativeTokens": 3})
    cmd = vllm.command(params, "deepseek-ai/DeepSeek-V3", None, "native")
    cfg = json.loads(cmd[cmd.index("--speculative-config") + 1])
    assert cfg == {**BUILT_IN["vllm"]["methods"][method]["speculativeConfig"], "num_speculative_tokens": 3}
    assert cfg["method"] in VLLM["speculativeConfig"]["methods"] and set(cfg) <= set(
        VLLM["speculativeConfig"]["keys"]
    )


def test_vllm_methods_the_adapter_passes_exist_in_the_pinned_version():
    assert VLLM["source"]["version"] == vllm.PINNED_VERSION
    assert vllm.METHODS <= set(VLLM["speculativeConfig"]["methods"])


def test_vllm_refuses_a_method_missing_from_the_pinned_version(monkeypatch):
    monkeypatch.setattr(vllm, "METHODS", vllm.METHODS - {"mtp"})  # as if 0.33.0 lacked it
    with pytest.raises(InvalidTask, match=r"params\.method: vLLM 0\.33\.0 has no speculative method 'mtp'"):
        vllm.command(_built_in("vllm", "mtp"), "T", None, "native")


def test_vllm_built_in_refusals_name_the_field():
    with pytest.raises(InvalidTask, match=r"params\.draft: method mtp loads its heads from the target"):
        vllm.command(_serve("vllm", "mtp"), "T", "/d", "native")
    with pytest.raises(InvalidTask, match=r"params\.draft: vLLM needs a draft model for eagle3"):
        vllm.command(_built_in("vllm", "eagle3"), "T", None, "native")


def test_sglang_mtp_is_the_recorded_algorithm_with_the_target_as_draft_and_a_k_plus_1_window():
    facts = BUILT_IN["sglang"]["methods"]["mtp"]
    params = _built_in("sglang", "mtp", speculative={"numSpeculativeTokens": 3})
    cmd = sglang.command(params, "deepseek-ai/DeepSeek-V3", None, "native", "main")
    for a in cmd[3:]:
        if a.startswith("--"):
            assert a in SGL["serverFlags"], a
    flag = lambda name: cmd[cmd.index(name) + 1]  # noqa: E731
    assert [facts["flags"][0], flag(facts["flags"][0])] == facts["flags"]
    assert flag("--speculative-algorithm") in SGL["speculativeAlgorithms"]
    assert flag("--speculative-draft-model-path") == "deepseek-ai/DeepSeek-V3"
    assert flag("--speculative-draft-model-revision") == "main"
    # the recorded verify window: num-draft-tokens = num-steps + 1 with topk 1
    assert (flag("--speculative-num-steps"), flag("--speculative-eagle-topk")) == ("3", "1")
    assert flag("--speculative-num-draft-tokens") == "4"


def test_sglang_built_in_refusals_name_the_field():
    with pytest.raises(
        InvalidTask, match=r"params\.draft: SGLang 0\.5\.23 needs --speculative-draft-model-path"
    ):
        sglang.command(_built_in("sglang", "dspark"), "T", None, "native")
    with pytest.raises(InvalidTask, match=r"params\.draft: method mtp loads its heads"):
        sglang.command(_serve("sglang", "mtp"), "T", "/d", "native")
    assert SGL["source"]["version"] == sglang.PINNED_VERSION


def test_sglang_api_key_flag_exists_and_is_masked_in_the_logged_command(monkeypatch):
    from specops_runtime.adapters import process

    key = "sk-secret-abcdef123456"
    monkeypatch.setenv("SPECOPS_API_KEY", key)
    cmd = sglang.command(_built_in("sglang", "mtp"), "T", None, "native")
    assert "--api-key" in SGL["serverFlags"] and cmd[cmd.index("--api-key") + 1] == key
    logged = process.describe(cmd, {"SPECOPS_API_KEY": key})
    assert key not in logged and "--api-key ***" in logged
    monkeypatch.delenv("SPECOPS_API_KEY")
    assert "--api-key" not in sglang.command(_built_in("sglang", "mtp"), "T", None, "native")


def test_a_built_in_draft_resolves_to_no_draft_and_is_reported():
    assert serving.resolve_draft(_built_in("vllm", "mtp"), None, "vllm") == (
        None,
        "native",
        {"builtInDraft": True},
    )
    alone = _task("serve", {"target": {"uri": "hf://Qwen/Qwen3-8B"}}, backend="vllm")["params"]
    assert serving.resolve_draft(alone, None, "vllm") == (None, "native", {})


def test_vllm_batch_size_schedule_is_what_upstream_validates():
    dyn = VLLM["dynamicSpeculation"]
    assert dyn["key"] in VLLM["speculativeConfig"]["keys"]
    assert dyn["firstRangeStartsAt1"] and dyn["rangesSortedNonOverlapping"] and dyn["tokensAtLeast0"]
    ranges = [{"minBatch": 64, "maxBatch": 256, "tokens": 0}, {"minBatch": 1, "maxBatch": 63, "tokens": 3}]
    params = _serve("vllm", "eagle3", speculative={"numSpeculativeTokens": 3, "loadAdaptation": "Engine",
                                                   "lengthByBatchSize": ranges})  # fmt: skip
    cfg = vllm.speculative_config(params, "/d", "native")
    schedule = cfg[dyn["key"]]
    assert schedule == sorted(schedule) and schedule[0][0] == 1
    assert all(prev[1] < cur[0] for prev, cur in zip(schedule, schedule[1:], strict=False))
    for bad in ([{"minBatch": 2, "maxBatch": 9, "tokens": 1}],
                [{"minBatch": 1, "maxBatch": 9, "tokens": 1}, {"minBatch": 5, "maxBatch": 20, "tokens": 0}]):  # fmt: skip
        params["speculative"]["lengthByBatchSize"] = bad
        with pytest.raises(InvalidTask, match="lengthByBatchSize"):
            vllm.speculative_config(params, "/d", "native")
