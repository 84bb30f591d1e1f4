"""The one place where the contract's Task params become the reference internals' arguments, and
the internals' results become the contract's result sections.

Everything here is pure (no model, no files): ``tasks.py`` loads models and data and calls these.
Field names in errors are the Task's (``params.training.learningRate``), so the agent's exit
codes name what the user wrote: ValueError -> invalidTask (10), FileNotFoundError ->
missingInput (11), NotImplementedError -> unsupported (15).
"""

from __future__ import annotations

import math
from pathlib import Path

from .draft_config import METHODS
from .evaluate import EvalSettings
from .regenerate import RegenerateSettings
from .sampling import SamplingParams
from .train import TrainSettings

# Defaults the contract leaves to the backend (documented in tasks.py).
DEFAULT_EPOCHS = 10  # contract: "default 10 unless maxSteps is set"
DEFAULT_BLOCK_LAYERS = 2  # dflash / dspark decoder layers of a tiny draft (eagle3 always has 1)
DEFAULT_BLOCK_SIZE = 7  # the contract's draft.blockSize default (untrained drafts use it too)
DEFAULT_BUILTIN_EVAL_SAMPLES = 32  # a builtin eval set's "standard count"
ADAPTIVE_CONFIDENCE_THRESHOLD = 0.5  # predicted chain survival below which a DSpark draft stops
CHECKPOINT_FORMAT = "reference"


def checked(kind: str, params: dict, output_dir: Path) -> dict:
    """``params`` validated against the Task schema of ``kind`` with its defaults applied.

    The agent has already done this for a mounted Task (it is idempotent); in-process callers
    (tests, the benchmark) get the same checks and defaults instead of a second vocabulary."""
    from ..agent import contract
    from ..agent.validation import validate_task

    doc = {
        "apiVersion": contract.constants()["apiVersion"],
        "kind": kind,
        "backend": "reference",
        "output": {"path": str(Path(output_dir).resolve())},
        "params": params,
    }
    return validate_task(doc)["params"]


def unsupported(field: str, why: str) -> NotImplementedError:
    return NotImplementedError(f"{field}: {why} (reference backend)")


def method_of(params: dict, field: str = "params.method") -> str:
    method = params.get("method")
    if method not in METHODS:
        raise ValueError(f"{field}: must be one of {', '.join(METHODS)}")
    return method


# --- regenerate ------------------------------------------------------------------------------


def regenerate_settings(params: dict) -> RegenerateSettings:
    if params.get("thinking"):
        raise unsupported("params.thinking", "the tiny target has no thinking mode")
    top_k = params["topK"]
    return RegenerateSettings(
        temperature=params["temperature"],
        top_p=params["topP"],
        top_k=0 if top_k <= 0 else top_k,  # contract: -1 disables; internal: 0 = off
        min_p=params["minP"],
        max_new_tokens=params["maxTokens"],
        batch_size=params["concurrency"],  # in-process: requests in flight = one batch
        seed=0,
    )


# --- target cache and draft shape ------------------------------------------------------------


def cache_options(params: dict) -> dict:
    return {
        "max_length": params["maxLength"],
        "batch_size": params["batchSize"],
        "min_loss_tokens": params["minLossTokens"],
    }


def check_draft_extras(draft: dict) -> None:
    if draft.get("configOverrides"):
        raise unsupported("params.draft.configOverrides", "DeepSpec config overrides do not apply")


def draft_overrides(method: str, draft: dict) -> dict:
    """Keyword arguments of ``draft_config_for_target`` from the contract's ``draft`` shape."""
    check_draft_extras(draft)
    block = draft.get("blockSize", DEFAULT_BLOCK_SIZE)
    out = {
        "block_size": block,
        "ttt_length": block,
        "num_hidden_layers": draft.get("numLayers") or (1 if method == "eagle3" else DEFAULT_BLOCK_LAYERS),
    }
    dspark = draft.get("dspark")
    if dspark is not None:
        out["markov_rank"] = dspark["markovRank"]
        out["enable_confidence_head"] = dspark["confidenceHead"]
    return out


def layer_ids(draft: dict, default: list[int]) -> list[int]:
    return list(draft.get("targetLayerIds") or default)


# --- train -----------------------------------------------------------------------------------


def train_settings(params: dict) -> TrainSettings:
    training = params["training"]
    eagle3 = (params.get("draft") or {}).get("eagle3") or {}
    return TrainSettings(
        epochs=training.get("epochs") or DEFAULT_EPOCHS,
        max_steps=training.get("maxSteps"),
        # One process holds the whole batch: the global batch is the optimizer batch.
        batch_size=training["globalBatchSize"],
        learning_rate=training["learningRate"],
        warmup_ratio=training["warmupRatio"],
        seed=training["seed"],
        step_loss_decay=eagle3.get("stepLossDecay", TrainSettings.step_loss_decay),
        checkpointing_steps=training["checkpointInterval"],
    )


def experiment_of(params: dict) -> str:
    return params.get("experiment") or "draft"


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def train_result(trained: dict, steps_per_epoch: int) -> dict:
    """Result sections of a finished training run (``train.train_draft``'s return value)."""
    training = {"step": trained["steps"], "totalSteps": trained["steps"]}
    training["epoch"] = round(trained["steps"] / max(1, steps_per_epoch), 4)
    for key, value in (("loss", trained["finalLoss"]), ("tauEstimate", trained["tauEstimate"])):
        if _finite(value) is not None:
            training[key] = _finite(value)
    return {
        "outputs": {
            "checkpoint": {
                "path": trained["checkpoint"],
                "step": trained["steps"],
                "format": CHECKPOINT_FORMAT,
            }
        },
        "training": training,
        "details": {
            "method": trained["method"],
            "resumedFrom": trained["resumedFrom"],
            "acceptanceByPosition": trained["acceptanceByPosition"],
        },
    }


# --- eval ------------------------------------------------------------------------------------


def sampling(decoding: dict) -> SamplingParams:
    return SamplingParams(temperature=decoding["temperature"]).validate()


def eval_settings(params: dict, draft_block_size: int, max_new_tokens: int) -> EvalSettings:
    decoding = params["decoding"]
    if decoding.get("thinking"):
        raise unsupported("params.decoding.thinking", "the tiny target has no thinking mode")
    return EvalSettings(
        sampling=sampling(decoding),
        max_new_tokens=max_new_tokens,
        speculative_length=decoding.get("numSpeculativeTokens") or draft_block_size,
        seed=decoding["seed"],
        measure_baseline=params["baseline"],
    )


_TASK_RESULT_KEYS = (
    "samples",
    "tau",
    "acceptanceByPosition",
    "verifyRate",
    "tokensPerSecond",
    "baselineTokensPerSecond",
    "speedup",
)


def task_result(name: str, row: dict) -> dict:
    """A contract taskResult from an ``evaluate.evaluate_tasks`` row (extras stay in details)."""
    out: dict = {"name": name}
    for key in _TASK_RESULT_KEYS:
        value = row.get(key)
        if value is None:
            continue
        if key == "acceptanceByPosition":
            out[key] = [min(1.0, max(0.0, float(a))) for a in value][:64]
        elif key == "samples":
            out[key] = int(value)
        elif _finite(value) is not None:
            out[key] = max(0.0, _finite(value))
    vllm = row.get("vllmConvention")
    if vllm and vllm.get("drafts"):
        out["vllmConvention"] = {
            "tau": max(0.0, float(vllm["tau"])),
            "acceptanceByPosition": [min(1.0, max(0.0, float(a))) for a in vllm["acceptanceByPosition"]][:64],
            "drafts": int(vllm["drafts"]),
        }
    return out


def eval_details(name: str, row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in (*_TASK_RESULT_KEYS, "vllmConvention")}


# --- serve -----------------------------------------------------------------------------------


def serve_options(params: dict) -> dict:
    """Engine options of a serve task; refuses what a one-request-at-a-time CPU engine lacks."""
    spec = params["speculative"]
    if params.get("extraEngineArgs"):
        raise unsupported("params.extraEngineArgs", "the reference engine takes no engine arguments")
    if params["tensorParallelSize"] != 1:
        raise unsupported("params.tensorParallelSize", "the reference engine runs on one device")
    if params["draftFormat"] == "native":
        raise unsupported("params.draftFormat", "only drafts written by the reference backend load")
    if spec["loadAdaptation"] != "Off" or spec.get("lengthByBatchSize"):
        raise unsupported("params.speculative.loadAdaptation", "the engine decodes one request at a time")
    if params.get("draft") and not params.get("method"):
        raise ValueError("params.method: a draft needs a method")
    return {
        "speculative_length": spec.get("numSpeculativeTokens"),
        "confidence_threshold": ADAPTIVE_CONFIDENCE_THRESHOLD if spec["adaptiveVerification"] else 0.0,
        "port": params["port"],
        "served_model_name": params.get("servedModelName") or params["target"]["uri"],
    }


# --- profile ---------------------------------------------------------------------------------


def profile_result(table: list[dict], context_length: int, device: str) -> dict:
    return {
        "profile": {
            "points": [{"batchSize": r["tokens"], "stepsPerSecond": r["stepsPerSecond"]} for r in table]
        },
        "details": {"contextLength": context_length, "device": device, "table": table},
    }
