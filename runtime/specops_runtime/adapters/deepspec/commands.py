"""Exact DeepSpec command lines and environments for each stage (pure functions: unit-tested)."""

from __future__ import annotations

import json
import os
import re

from ...agent import locations
from ...agent.contract import constants, stage_outputs
from ...agent.errors import InvalidTask

DEFAULT_DEEPSPEC_DIR = "/opt/deepspec"

# DeepSpec ships config/<method>/<method>_<target>.py for these targets.
_TARGET_CONFIGS = (
    (re.compile(r"qwen3[-_]?4b", re.I), "qwen3_4b"),
    (re.compile(r"qwen3[-_]?8b", re.I), "qwen3_8b"),
    (re.compile(r"qwen3[-_]?14b", re.I), "qwen3_14b"),
    (re.compile(r"gemma[-_]?4.*12b", re.I), "gemma4_12b"),
)


def deepspec_dir() -> str:
    return os.environ.get(constants()["env"]["deepspecDir"], DEFAULT_DEEPSPEC_DIR)


def config_path(params: dict) -> str:
    if params.get("deepspecConfig"):
        return params["deepspecConfig"]
    method, uri = params["method"], params["target"]["uri"]
    for pattern, name in _TARGET_CONFIGS:
        if pattern.search(uri):
            return f"config/{method}/{method}_{name}.py"
    raise InvalidTask(
        f"params.deepspecConfig: DeepSpec has no {method} config for {uri}; name one (config/<method>/<file>.py)"
    )


def yaml_value(value) -> str:
    """--opts values are parsed with yaml.safe_load; JSON is valid YAML and keeps strings strings."""
    return json.dumps(value)


def target_ref(params: dict, task: dict) -> str:
    # The same string at target-cache and train time: DeepSpec compares them literally.
    return locations.resolve(params["target"]["uri"], task, "params.target.uri")


# DeepSpec's Eagle3 evaluator asserts draft_num_hidden_layers == 1 (deepspec/eval/eagle3/evaluator.py).
EAGLE3_EVAL_LAYERS = 1
# DeepSpec's DSpark configs weight the confidence loss 1.0; the head exists iff the weight is > 0.
DSPARK_CONFIDENCE_ALPHA = 1.0


def model_opts(params: dict, task: dict) -> list[str]:
    """The model.* keys, named as each method's DeepSpec config names them (parse_opts_to_config
    raises KeyError on a key the config lacks)."""
    draft, method = params.get("draft") or {}, params["method"]
    opts = {"model.target_model_name_or_path": target_ref(params, task)}
    if method == "eagle3":
        opts["model.ttt_length"] = draft.get("blockSize", 7)
        if draft.get("eagle3"):
            opts["model.step_loss_decay"] = draft["eagle3"]["stepLossDecay"]
        if draft.get("numLayers") is not None:
            if draft["numLayers"] != EAGLE3_EVAL_LAYERS:
                raise InvalidTask(
                    f"params.draft.numLayers: DeepSpec's Eagle3 evaluator requires "
                    f"model.draft_num_hidden_layers == {EAGLE3_EVAL_LAYERS}, got {draft['numLayers']}"
                )
            opts["model.draft_num_hidden_layers"] = draft["numLayers"]
    else:
        opts["model.block_size"] = draft.get("blockSize", 7)
        if draft.get("numLayers") is not None:
            opts["model.num_draft_layers"] = draft["numLayers"]
    if draft.get("targetLayerIds") is not None:
        opts["model.target_layer_ids"] = draft["targetLayerIds"]
    if method == "dspark" and draft.get("dspark"):
        opts["model.markov_rank"] = draft["dspark"]["markovRank"]
        opts["model.confidence_head_alpha"] = (
            DSPARK_CONFIDENCE_ALPHA if draft["dspark"]["confidenceHead"] else 0.0
        )
    return [f"{k}={yaml_value(v)}" for k, v in opts.items()]


def override_opts(params: dict) -> list[str]:
    managed = set(constants()["managedDeepspecKeys"])
    out = []
    for key, value in ((params.get("draft") or {}).get("configOverrides") or {}).items():
        if key in managed:
            raise InvalidTask(f"params.draft.configOverrides.{key}: set by SpecOps from a first-class field")
        out.append(f"{key}={value}")  # user-written YAML, passed as written
    return out


def train_opts(params: dict, task: dict) -> list[str]:
    t = params.get("training") or {}
    opts: dict = {
        "project_name": "specops",
        "exp_name": params.get("experiment") or "draft",
        "seed": t.get("seed", 42),
        "train.lr": t.get("learningRate", 6e-4),
        "train.warmup_ratio": t.get("warmupRatio", 0.04),
        "train.precision": t.get("precision", "bf16"),
        "train.local_batch_size": t.get("perGpuBatchSize", 1),
        "train.global_batch_size": t.get("globalBatchSize", 512),
        "logging.checkpointing_steps": t.get("checkpointInterval", 3000),
        "data.max_length": t.get("maxLength", 4096),
        "data.target_cache_path": params["targetCachePath"],
    }
    if t.get("epochs") is not None:
        opts["train.num_train_epochs"] = t["epochs"]
    if t.get("maxSteps") is not None:
        opts["train.max_train_steps"] = t["maxSteps"]
    return (
        model_opts(params, task) + [f"{k}={yaml_value(v)}" for k, v in opts.items()] + override_opts(params)
    )


def _with_opts(cmd: list[str], opts: list[str]) -> list[str]:
    for o in opts:
        cmd += ["--opts", o]
    return cmd


def train_command(params: dict, task: dict, python: str = "python") -> list[str]:
    return _with_opts([python, "train.py", "--config", config_path(params)], train_opts(params, task))


def checkpoint_root(task: dict, params: dict) -> str:
    """finalize_cfg puts checkpoints at ~/checkpoints/<project>/<exp>; HOME is the output dir."""
    checkpoints = stage_outputs()["train"]["checkpointsDir"]  # checkpoints/<project>, project "specops"
    return os.path.join(task["output"]["path"], checkpoints, params.get("experiment") or "draft")


def node_env(task: dict, environ: dict[str, str]) -> dict[str, str]:
    """DeepSpec's launcher semantics (not torchrun's): RANK = node rank, WORLD_SIZE = node count;
    train.py spawns one worker per visible GPU itself."""
    dist = task.get("distributed") or {}
    nodes = int(dist.get("nodes", 1))
    rank_raw = environ.get("JOB_COMPLETION_INDEX") or environ.get("RANK") or "0"
    if not rank_raw.isdigit() or int(rank_raw) >= nodes:
        raise InvalidTask(f"distributed.nodes: node rank {rank_raw} is outside 0..{nodes - 1}")
    master = environ.get("MASTER_ADDR") or dist.get("masterAddr")
    if not master:
        if nodes > 1:
            raise InvalidTask("distributed.masterAddr: required for more than one node (or env MASTER_ADDR)")
        master = "127.0.0.1"
    env = dict(environ)
    env.update(
        RANK=rank_raw,
        WORLD_SIZE=str(nodes),
        MASTER_ADDR=master,
        MASTER_PORT=environ.get("MASTER_PORT") or str(dist.get("masterPort", 29500)),
        HOME=task["output"]["path"],
        # HOME moves onto the output volume (finalize_cfg writes ~/checkpoints there); the Hub cache
        # stays where it was, so model downloads do not land in every stage's output.
        HF_HOME=environ.get("HF_HOME")
        or os.path.join(environ.get("HOME") or "/tmp", ".cache", "huggingface"),
        PYTHONUNBUFFERED="1",
    )
    env.pop("LOCAL_RANK", None)  # set by torchrun-style launchers; DeepSpec derives it per spawned worker
    return env


def prepare_data_command(params: dict, task: dict, python: str = "python") -> list[str]:
    out = task["output"]["path"]
    prompts = params["prompts"]
    name = locations.resolve(prompts["uri"], task, "params.prompts.uri")
    cmd = [
        python,
        "scripts/data/download_and_split.py",
        "--dataset-name",
        name,
        "--test-size",
        str(params.get("heldOutFraction", 0.05)),
        "--seed",
        str(params.get("seed", 42)),
        "--train-output-path",
        os.path.join(out, stage_outputs()["prepareData"]["trainFile"]),
        "--test-output-dir",
        os.path.join(out, stage_outputs()["prepareData"]["evalDataDir"]),
        "--skip-existing",
    ]
    if params.get("maxSamples") is not None:
        cmd += ["--sample-size", str(params["maxSamples"])]
    return cmd


def regenerate_command(params: dict, task: dict, python: str = "python") -> list[str]:
    if not params.get("servers"):
        raise InvalidTask("params.servers: deepspec regeneration needs OpenAI-compatible target servers")
    cmd = [
        python,
        "scripts/data/generate_train_data.py",
        "--model",
        target_ref(params, task),
        "--server-address",
    ]
    cmd += list(params["servers"])
    cmd += [
        "--concurrency",
        str(params.get("concurrency", 32)),
        "--temperature",
        str(params.get("temperature", 0.7)),
        "--top-p",
        str(params.get("topP", 0.8)),
        "--top-k",
        str(params.get("topK", 20)),
        "--min-p",
        str(params.get("minP", 0)),
        "--max-tokens",
        str(params.get("maxTokens", 4096)),
    ]
    # generate_train_data.py: --enable-thinking / --disable-thinking set the chat template's
    # enable_thinking; --is-reasoning-model keeps the answer's reasoning_content as "thinking".
    if params.get("thinking", False):
        cmd += ["--enable-thinking", "--is-reasoning-model"]
    else:
        cmd.append("--disable-thinking")
    cmd += [
        "--resume",
        "--input-file-path",
        params["inputPath"],
        "--output-file-path",
        os.path.join(task["output"]["path"], stage_outputs()["regenerate"]["trainFile"]),
    ]
    return cmd


def target_cache_command(params: dict, task: dict, python: str = "python") -> list[str]:
    cmd = [python, "scripts/data/prepare_target_cache.py", "--config", config_path(params)]
    for p in params["dataPaths"]:
        cmd += ["--train-data-path", p]
    cmd += [
        "--output-dir",
        os.path.join(task["output"]["path"], stage_outputs()["targetCache"]["dir"]),
        "--local-batch-size",
        str(params.get("batchSize", 16)),
        "--min-loss-tokens",
        str(params.get("minLossTokens", 14)),
    ]
    opts = model_opts(params, task) + [f"data.max_length={yaml_value(params.get('maxLength', 4096))}"]
    return _with_opts(cmd, opts + override_opts(params))


EVAL_DRIVER = "specops_runtime.adapters.deepspec.eval_driver"


def eval_tasks(params: dict, standard: dict[str, int]) -> list[tuple[str, int | None]]:
    """(name, sample cap) per requested task in order; a standard set defaults to DeepSpec's own cap,
    a custom set to all its rows (DeepSpec reads a None cap as no cap)."""
    return [(t["name"], t.get("samples") or standard.get(t["name"])) for t in params.get("tasks") or []]


def eval_command(
    params: dict, task: dict, standard: dict[str, int], python: str = "python", repo: str | None = None
) -> list[str]:
    """eval.py fixes its task list in parse_args (args.tasks = TASKS): the driver parses eval.py's own
    flags with eval.py's parse_args, replaces args.tasks with the requested sets and caps, and spawns
    eval.py's main the way eval.py does. Everything after "--" is an eval.py flag."""
    draft = locations.resolve(params["draft"]["uri"], task, "params.draft.uri")
    decoding = params.get("decoding") or {}
    return [
        python,
        "-m",
        EVAL_DRIVER,
        "--deepspec-dir",
        repo or deepspec_dir(),
        "--tasks",
        json.dumps(eval_tasks(params, standard), separators=(",", ":")),
        "--",
        "--target_name_or_path",
        target_ref(params, task),
        "--draft_name_or_path",
        draft,
        "--max-new-tokens",
        str(decoding.get("maxNewTokens", 2048)),
        "--temperature",
        str(decoding.get("temperature", 1.0)),
        "--seed",
        str(decoding.get("seed", 980406)),
    ]
