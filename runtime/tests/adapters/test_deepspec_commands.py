"""Exact DeepSpec command lines and environments."""

import pytest

from specops_runtime.adapters.deepspec import commands
from specops_runtime.agent.errors import InvalidTask
from specops_runtime.agent.validation import validate_task

OUT = "/mnt/specops/pvc/work/dt1/train"


def _task(kind, params, backend="deepspec", **extra):
    doc = {
        "apiVersion": "runtime.specops.dev/v1",
        "kind": kind,
        "backend": backend,
        "output": {"path": OUT},
        "params": params,
    }
    doc.update(extra)
    return validate_task(doc)


def _opts(cmd):
    return [cmd[i + 1] for i, a in enumerate(cmd) if a == "--opts"]


def test_train_command_maps_every_first_class_field():
    t = _task(
        "train",
        {
            "target": {"uri": "hf://Qwen/Qwen3-8B"},
            "method": "dspark",
            "targetCachePath": "/mnt/specops/pvc/work/cache",
            "draft": {
                "blockSize": 5,
                "numLayers": 3,
                "targetLayerIds": [1, 9, 17],
                "dspark": {},
                "configOverrides": {"train.torch_compile": "false"},
            },
            "training": {
                "maxSteps": 1000,
                "learningRate": 0.0003,
                "globalBatchSize": 64,
                "perGpuBatchSize": 2,
            },
        },
        distributed={"nodes": 2, "gpusPerNode": 8, "masterAddr": "dt1-0.dt1"},
    )
    cmd = commands.train_command(t["params"], t, python="python")
    assert cmd[:4] == ["python", "train.py", "--config", "config/dspark/dspark_qwen3_8b.py"]
    assert _opts(cmd) == [
        'model.target_model_name_or_path="Qwen/Qwen3-8B"',
        "model.block_size=5",
        "model.num_draft_layers=3",
        "model.target_layer_ids=[1, 9, 17]",
        "model.markov_rank=64",
        "model.confidence_head_alpha=1.0",
        'project_name="specops"',
        'exp_name="draft"',
        "seed=42",
        "train.lr=0.0003",
        "train.warmup_ratio=0.04",
        'train.precision="bf16"',
        "train.local_batch_size=2",
        "train.global_batch_size=64",
        "logging.checkpointing_steps=3000",
        "data.max_length=4096",
        'data.target_cache_path="/mnt/specops/pvc/work/cache"',
        "train.max_train_steps=1000",
        "train.torch_compile=false",
    ]


def test_eagle3_uses_ttt_length_and_pvc_target_resolves_to_mount():
    t = _task(
        "train",
        {
            "target": {"uri": "pvc://models/qwen3-4b"},
            "method": "eagle3",
            "targetCachePath": "/c",
            "training": {"epochs": 2},
        },
    )
    cmd = commands.train_command(t["params"], t)
    assert "--config" in cmd and cmd[cmd.index("--config") + 1] == "config/eagle3/eagle3_qwen3_4b.py"
    opts = _opts(cmd)
    assert opts[0] == 'model.target_model_name_or_path="/mnt/specops/pvc/models/qwen3-4b"'
    assert "model.ttt_length=7" in opts and "train.num_train_epochs=2" in opts
    assert not any(o.startswith("model.block_size") for o in opts)


def test_unknown_target_needs_an_explicit_config():
    t = _task(
        "train",
        {"target": {"uri": "hf://meta-llama/Llama-3.1-8B"}, "method": "dflash", "targetCachePath": "/c"},
    )
    with pytest.raises(InvalidTask, match=r"^params\.deepspecConfig"):
        commands.train_command(t["params"], t)
    t["params"]["deepspecConfig"] = "config/dflash/my_llama.py"
    assert commands.train_command(t["params"], t)[3] == "config/dflash/my_llama.py"


def test_managed_override_is_refused():
    t = _task("train", {"target": {"uri": "hf://Qwen/Qwen3-8B"}, "method": "dspark", "targetCachePath": "/c"})
    t["params"]["draft"]["configOverrides"] = {"train.lr": "1"}  # the CRD's CEL refuses it; so does the agent
    with pytest.raises(InvalidTask, match=r"params\.draft\.configOverrides\.train\.lr"):
        commands.train_command(t["params"], t)


def test_node_env_follows_deepspec_launcher_semantics():
    t = _task(
        "train",
        {"target": {"uri": "hf://Qwen/Qwen3-8B"}, "method": "dspark", "targetCachePath": "/c"},
        distributed={"nodes": 4, "gpusPerNode": 8, "masterAddr": "dt1-0.dt1"},
    )
    env = commands.node_env(t, {"JOB_COMPLETION_INDEX": "2", "LOCAL_RANK": "5", "PATH": "/bin"})
    assert (env["RANK"], env["WORLD_SIZE"], env["MASTER_ADDR"], env["MASTER_PORT"]) == (
        "2",
        "4",
        "dt1-0.dt1",
        "29500",
    )
    assert env["HOME"] == OUT and "LOCAL_RANK" not in env and env["PATH"] == "/bin"
    # HOME moves onto the output volume; the Hub cache is placed deliberately, not under it
    assert env["HF_HOME"] == "/tmp/.cache/huggingface"
    moved = commands.node_env(t, {"JOB_COMPLETION_INDEX": "2", "HOME": "/home/specops"})
    assert moved["HOME"] == OUT and moved["HF_HOME"] == "/home/specops/.cache/huggingface"
    assert commands.node_env(t, {"RANK": "0", "HF_HOME": "/models/hf"})["HF_HOME"] == "/models/hf"
    with pytest.raises(InvalidTask, match=r"^distributed\.nodes"):
        commands.node_env(t, {"JOB_COMPLETION_INDEX": "4"})
    t["distributed"].pop("masterAddr")
    with pytest.raises(InvalidTask, match=r"^distributed\.masterAddr"):
        commands.node_env(t, {"RANK": "0"})
    assert commands.node_env(t, {"RANK": "0", "MASTER_ADDR": "10.0.0.1"})["MASTER_ADDR"] == "10.0.0.1"


def test_data_commands():
    t = _task("prepare-data", {"prompts": {"uri": "hf://mlabonne/open-perfectblend"}, "maxSamples": 1000})
    assert commands.prepare_data_command(t["params"], t) == [
        "python", "scripts/data/download_and_split.py", "--dataset-name", "mlabonne/open-perfectblend",
        "--test-size", "0.05", "--seed", "42", "--train-output-path", f"{OUT}/train.jsonl",
        "--test-output-dir", f"{OUT}/eval_datasets", "--skip-existing", "--sample-size", "1000",
    ]  # fmt: skip
    t = _task(
        "regenerate",
        {
            "target": {"uri": "hf://Qwen/Qwen3-4B"},
            "inputPath": "/d/train.jsonl",
            "servers": ["regen-0.svc:8000", "regen-1.svc:8000"],
        },
    )
    assert commands.regenerate_command(t["params"], t) == [
        "python", "scripts/data/generate_train_data.py", "--model", "Qwen/Qwen3-4B",
        "--server-address", "regen-0.svc:8000", "regen-1.svc:8000",
        "--concurrency", "32", "--temperature", "0.7", "--top-p", "0.8", "--top-k", "20", "--min-p", "0",
        "--max-tokens", "4096", "--disable-thinking", "--resume",
        "--input-file-path", "/d/train.jsonl", "--output-file-path", f"{OUT}/train_regen.jsonl",
    ]  # fmt: skip
    t = _task(
        "target-cache",
        {
            "target": {"uri": "hf://Qwen/Qwen3-4B"},
            "method": "dspark",
            "dataPaths": ["/d/a.jsonl", "/d/b.jsonl"],
        },
    )
    cmd = commands.target_cache_command(t["params"], t)
    assert cmd[:12] == [
        "python", "scripts/data/prepare_target_cache.py", "--config", "config/dspark/dspark_qwen3_4b.py",
        "--train-data-path", "/d/a.jsonl", "--train-data-path", "/d/b.jsonl",
        "--output-dir", f"{OUT}/target_cache", "--local-batch-size", "16",
    ]  # fmt: skip
    # the cache records the same target string training will assert on
    assert 'model.target_model_name_or_path="Qwen/Qwen3-4B"' in _opts(cmd)


def test_eval_runs_every_requested_set_in_one_driver_run_with_per_task_caps():
    t = _task("eval", {
        "target": {"uri": "hf://Qwen/Qwen3-8B"}, "draft": {"uri": "pvc://work/dt1/step_latest"}, "method": "dspark",
        "tasks": [{"name": "gsm8k"}, {"name": "mt-bench", "samples": 10}, {"name": "my-chat", "samples": 7,
                   "source": {"uri": "pvc://data/chat.jsonl"}}, {"name": "my-code", "source": {"uri": "pvc://data/c.jsonl"}}],
    })  # fmt: skip
    cmd = commands.eval_command(t["params"], t, {"gsm8k": 500, "mt-bench": 80}, repo="/opt/deepspec")
    assert cmd == [
        "python", "-m", "specops_runtime.adapters.deepspec.eval_driver", "--deepspec-dir", "/opt/deepspec",
        "--tasks", '[["gsm8k",500],["mt-bench",10],["my-chat",7],["my-code",null]]', "--",
        "--target_name_or_path", "Qwen/Qwen3-8B", "--draft_name_or_path", "/mnt/specops/pvc/work/dt1/step_latest",
        "--max-new-tokens", "2048", "--temperature", "1", "--seed", "980406",
    ]  # fmt: skip


def test_eagle3_layer_count_uses_deepspec_key_and_must_be_one():
    params = {"target": {"uri": "hf://Qwen/Qwen3-8B"}, "method": "eagle3", "targetCachePath": "/c"}
    t = _task("train", {**params, "draft": {"numLayers": 1, "eagle3": {"stepLossDecay": 0.7}}})
    opts = _opts(commands.train_command(t["params"], t))
    assert "model.draft_num_hidden_layers=1" in opts and "model.step_loss_decay=0.7" in opts
    assert not any(o.startswith("model.num_draft_layers") for o in opts)
    t = _task("train", {**params, "draft": {"numLayers": 2}})
    with pytest.raises(InvalidTask, match=r"^params\.draft\.numLayers: .*draft_num_hidden_layers == 1"):
        commands.train_command(t["params"], t)


def test_dspark_confidence_head_is_its_loss_weight():
    params = {"target": {"uri": "hf://Qwen/Qwen3-4B"}, "method": "dspark", "targetCachePath": "/c"}
    t = _task("train", {**params, "draft": {"dspark": {"confidenceHead": False, "markovRank": 0}}})
    opts = _opts(commands.train_command(t["params"], t))
    assert "model.confidence_head_alpha=0.0" in opts and "model.markov_rank=0" in opts
    assert not any("enable_confidence_head" in o for o in opts)


def test_thinking_regeneration_passes_deepspecs_reasoning_flags():
    params = {"target": {"uri": "hf://Qwen/Qwen3-4B"}, "inputPath": "/d/t.jsonl", "servers": ["s:8000"]}
    t = _task("regenerate", {**params, "thinking": True})
    cmd = commands.regenerate_command(t["params"], t)
    assert "--enable-thinking" in cmd and "--is-reasoning-model" in cmd and "--disable-thinking" not in cmd
    t = _task("regenerate", params)
    cmd = commands.regenerate_command(t["params"], t)
    assert (
        "--disable-thinking" in cmd and "--enable-thinking" not in cmd and "--is-reasoning-model" not in cmd
    )
