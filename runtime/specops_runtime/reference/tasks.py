"""Entry points of the ``reference`` backend, one per task kind.

Every function is ``fn(params: dict, ctx) -> dict`` where ``ctx`` has ``report(**fields)``,
``log(msg)``, ``output_dir`` and ``work_dir`` (see ``context.RunContext``). Results are JSON-able.
A bad parameter raises ``ValueError`` whose message starts with the field name.

Common parameters
  targetModel   checkpoint directory (HF layout) or "specops/tiny-qwen3" (default: the tiny target,
                trained once and cached by recipe hash under cacheDir)
  tinyTarget    recipe overrides for the tiny target {hiddenSize, numLayers, numHeads,
                numKeyValueHeads, intermediateSize, trainSteps, batchSize, learningRate,
                samplesPerTask, seed} (each distinct recipe is trained once and cached)
  cacheDir      cache root (default $SPECOPS_CACHE_DIR or ~/.cache/specops)
  device        "cpu" / "cuda" (default: cuda when available)
  threads       torch CPU threads (default 1; tiny models run fastest single-threaded)
  seed          random seed (default 0)
  outputDir     where results go (default ctx.output_dir)

prepare_data   tasks [{name: math|code|chat, samples, evalSamples?}] (default 300 train / 16 eval
               each), evalSamples (default 16). Writes train.jsonl (DeepSpec rows) and
               eval/<task>.jsonl. -> {trainData, evalData: {task: path}, samples, evalSamples}
regenerate     trainData (jsonl file or a directory holding train.jsonl), temperature (0.7),
               topP (0.8), topK (20), maxNewTokens (48), batchSize (64).
               Writes regenerated.jsonl (+ regenerated_error.jsonl); resumable.
target_cache   trainData (regenerated jsonl, file/dir/list), targetLayerIds (default: low/mid/high
               spread), maxLength (256), batchSize (32), maxShardSamples (4096).
               Writes manifest.json + shard_*.safetensors. -> manifest summary
train          method (eagle3 | dflash | dspark), targetCache (dir), blockSize (4; also the
               speculative length), numLayers (2; eagle3 always 1), epochs (3) or maxSteps,
               batchSize (32), learningRate (3e-3), warmupRatio (0.04), tttLength (= blockSize),
               stepLossDecay (0.8), numAnchors (8), markovRank (dspark 16), confidenceAlpha (1.0),
               tvWeight (1.0), loggingSteps (10), checkpointingSteps (0 = final only).
               Writes step_<N>/ + step_latest; resumes from step_latest. -> {checkpoint, ...}
evaluate       draftModel (checkpoint dir, or "untrained" with method/blockSize/numLayers/
               targetLayerIds for a random-init baseline of the same shape), evalData (dir of
               <task>.jsonl or {task: path}; default: fresh prompts from the generators),
               tasks [{name, samples}] (limit/select), temperature (1.0), topP, topK,
               maxNewTokens (48), speculativeLength (draft's block size), confidenceThreshold (0),
               measureBaseline (true). -> {tasks: {task: {samples, tau, acceptanceByPosition,
               verifyRate, proposals, meanProposalLength, generatedTokens, tokensPerSecond,
               baselineTokensPerSecond, speedup, confidence? (DSpark: predicted vs observed
               acceptance by position)}}, summary: macro means} (+ eval_results.json)
serve          draftModel (optional), speculation ("on" | "off"; off = target only),
               speculativeLength, confidenceThreshold, host (0.0.0.0), port (8000),
               servedModelName, maxModelLen (512). Blocks until the server stops.
profile        batchSizes ([1, 2, 4, 8, 16, 32, 64]), contextLength (64), repeats (20).
               -> {table: [{tokens, stepTimeMs, stepsPerSecond, tokensPerSecond}]} (+ sps_table.json)
make_target    (extra) builds / finds the tiny target. -> {targetModel}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import data as synthetic
from .device import configure_threads, pick_device
from .draft_config import METHODS, SharedWeights, build_draft, draft_config_for_target, load_draft
from .sampling import SamplingParams
from .target import default_layer_ids, load_target, recipe_from_params, resolve_target_path

# ---------------------------------------------------------------------------------------------
# parameter helpers


def _get(params: dict, key: str, kind: type, default: Any = None, minimum: float | None = None) -> Any:
    value = params.get(key, default)
    if value is None:
        return None
    try:
        if kind is bool:
            if isinstance(value, str):
                value = value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        value = kind(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{key}: expected {kind.__name__}, got {value!r}") from error
    if minimum is not None and value < minimum:
        raise ValueError(f"{key}: must be >= {minimum}")
    return value


def _output_dir(params: dict, ctx) -> Path:
    out = Path(params.get("outputDir") or ctx.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _cache_root(params: dict) -> Path | None:
    return Path(params["cacheDir"]) if params.get("cacheDir") else None


def _setup(params: dict):
    configure_threads(_get(params, "threads", int, None, 1))
    return pick_device(params.get("device"))


def _target_path(params: dict, ctx) -> Path:
    recipe = recipe_from_params(params.get("tinyTarget"))
    return resolve_target_path(params.get("targetModel"), _cache_root(params), ctx.report, recipe)


def _target(params: dict, ctx, device):
    path = _target_path(params, ctx)
    model, tokenizer = load_target(path, device)
    return path, model, tokenizer


def _task_counts(
    params: dict, default_train: int, default_eval: int
) -> tuple[dict[str, int], dict[str, int]]:
    tasks = params.get("tasks")
    if tasks is None:
        tasks = [{"name": name} for name in synthetic.TASK_NAMES]
    if not isinstance(tasks, list) or not tasks:
        raise ValueError("tasks: must be a non-empty list of {name, samples}")
    train, evals = {}, {}
    for entry in tasks:
        entry = {"name": entry} if isinstance(entry, str) else entry
        name = entry.get("name")
        if name not in synthetic.GENERATORS:
            raise ValueError(f"tasks.name: unknown task set {name!r}")
        train[name] = _get(entry, "samples", int, default_train, 0)
        evals[name] = _get(entry, "evalSamples", int, _get(params, "evalSamples", int, default_eval, 0), 0)
    return train, evals


def _jsonl_sources(value: Any, field: str, default_name: str) -> list[Path]:
    if value is None:
        raise ValueError(f"{field}: required")
    items = value if isinstance(value, list) else [value]
    paths = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            path = path / default_name
        if not path.is_file():
            raise ValueError(f"{field}: {path} does not exist")
        paths.append(path)
    return paths


def _sampling(params: dict, default_temperature: float) -> SamplingParams:
    return SamplingParams(
        temperature=_get(params, "temperature", float, default_temperature, 0.0),
        top_k=_get(params, "topK", int, 0, 0),
        top_p=_get(params, "topP", float, 1.0),
    ).validate()


# ---------------------------------------------------------------------------------------------
# task kinds


def make_target(params: dict, ctx) -> dict:
    _setup(params)
    path = _target_path(params, ctx)
    return {"targetModel": str(path)}


def prepare_data(params: dict, ctx) -> dict:
    seed = _get(params, "seed", int, 0)
    train_counts, eval_counts = _task_counts(params, 300, 16)
    out = _output_dir(params, ctx)
    train_path = out / "train.jsonl"
    rows = [synthetic.to_training_row(ex, i) for i, ex in enumerate(synthetic.mixture(train_counts, seed))]
    train_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    eval_dir = out / "eval"
    eval_dir.mkdir(exist_ok=True)
    eval_paths = {}
    for name, count in eval_counts.items():
        # A different seed stream keeps evaluation prompts apart from training prompts.
        examples = synthetic.generate(name, count, seed + 7919)
        path = eval_dir / f"{name}.jsonl"
        path.write_text(
            "".join(json.dumps(synthetic.to_eval_row(ex, i)) + "\n" for i, ex in enumerate(examples))
        )
        eval_paths[name] = str(path)
    ctx.report(stage="prepare_data", step=len(rows), total=len(rows), message=f"{len(rows)} training rows")
    return {
        "trainData": str(train_path),
        "evalData": eval_paths,
        "evalDir": str(eval_dir),
        "samples": len(rows),
        "evalSamples": sum(eval_counts.values()),
    }


def regenerate(params: dict, ctx) -> dict:
    from .regenerate import RegenerateSettings, regenerate_file

    device = _setup(params)
    sources = _jsonl_sources(params.get("trainData"), "trainData", "train.jsonl")
    settings = RegenerateSettings(
        temperature=_get(params, "temperature", float, 0.7, 0.0),
        top_p=_get(params, "topP", float, 0.8),
        top_k=_get(params, "topK", int, 20, 0),
        max_new_tokens=_get(params, "maxNewTokens", int, 48, 1),
        batch_size=_get(params, "batchSize", int, 64, 1),
        seed=_get(params, "seed", int, 0),
    )
    if not 0 < settings.top_p <= 1:
        raise ValueError("topP: must be in (0, 1]")
    _, model, tokenizer = _target(params, ctx, device)
    out = _output_dir(params, ctx) / "regenerated.jsonl"
    results = [regenerate_file(model, tokenizer, src, out, settings, ctx.report) for src in sources]
    return {
        "trainData": str(out),
        "samples": sum(r["samples"] for r in results),
        "regenerated": sum(r["regenerated"] for r in results),
        "failed": sum(r["failed"] for r in results),
    }


def target_cache(params: dict, ctx) -> dict:
    from .target_cache import build_cache

    device = _setup(params)
    sources = _jsonl_sources(params.get("trainData"), "trainData", "regenerated.jsonl")
    path, model, tokenizer = _target(params, ctx, device)
    layer_ids = params.get("targetLayerIds") or default_layer_ids(model.config.num_hidden_layers)
    if not isinstance(layer_ids, list) or not all(isinstance(i, int) for i in layer_ids):
        raise ValueError("targetLayerIds: must be a list of integers")
    out = _output_dir(params, ctx)
    manifest = build_cache(
        model,
        tokenizer,
        sources,
        out,
        layer_ids,
        str(path),
        max_length=_get(params, "maxLength", int, 256, 8),
        batch_size=_get(params, "batchSize", int, 32, 1),
        max_shard_samples=_get(params, "maxShardSamples", int, 4096, 1),
        report=ctx.report,
    )
    return {
        "targetCache": str(out),
        "samples": manifest["num_samples"],
        "tokens": manifest["num_tokens"],
        "targetLayerIds": manifest["target_layer_ids"],
        "shards": len(manifest["shards"]),
    }


def _method(params: dict) -> str:
    method = params.get("method")
    if method not in METHODS:
        raise ValueError(f"method: must be one of {', '.join(METHODS)}")
    return method


def _draft_shape(params: dict, method: str, model, layer_ids: list[int], target_name: str):
    block = _get(params, "blockSize", int, 4, 1)
    return draft_config_for_target(
        method,
        model.config,
        layer_ids,
        block_size=block,
        num_hidden_layers=_get(params, "numLayers", int, 2, 1),
        num_anchors=_get(params, "numAnchors", int, 8, 1),
        markov_rank=_get(params, "markovRank", int, None, 0),
        ttt_length=_get(params, "tttLength", int, block, 1),
        target_model_name_or_path=target_name,
    )


def train(params: dict, ctx) -> dict:
    from .target_cache import load_cache
    from .train import TrainSettings, train_draft

    device = _setup(params)
    method = _method(params)
    cache_dir = params.get("targetCache")
    if not cache_dir:
        raise ValueError("targetCache: required")
    manifest, samples = load_cache(Path(cache_dir))
    path, model, _ = _target(params, ctx, device)
    if params.get("targetModel") and manifest["target_model_name_or_path"] != str(path):
        ctx.log(
            f"warning: cache was built for {manifest['target_model_name_or_path']}, training against {path}"
        )
    config = _draft_shape(params, method, model, manifest["target_layer_ids"], str(path))
    settings = TrainSettings(
        epochs=_get(params, "epochs", int, 3, 1),
        max_steps=_get(params, "maxSteps", int, None, 1),
        batch_size=_get(params, "batchSize", int, 32, 1),
        learning_rate=_get(params, "learningRate", float, 3e-3, 0.0),
        warmup_ratio=_get(params, "warmupRatio", float, 0.04, 0.0),
        seed=_get(params, "seed", int, 0),
        step_loss_decay=_get(params, "stepLossDecay", float, 0.8, 0.0),
        tv_weight=_get(params, "tvWeight", float, 1.0, 0.0),
        confidence_alpha=_get(params, "confidenceAlpha", float, 1.0, 0.0),
        logging_steps=_get(params, "loggingSteps", int, 10, 1),
        checkpointing_steps=_get(params, "checkpointingSteps", int, 0, 0),
    )
    result = train_draft(
        config,
        SharedWeights.from_target(model),
        samples,
        _output_dir(params, ctx),
        settings,
        device,
        report=ctx.report,
        log=ctx.log,
    )
    result["targetModel"] = str(path)
    return result


def _drafter_from_params(params: dict, model, device):
    """(draft model or None, layer ids, default speculative length)."""
    draft_spec = params.get("draftModel")
    if not draft_spec:
        return None, None, 0
    shared = SharedWeights.from_target(model)
    if draft_spec == "untrained":
        import torch

        layer_ids = params.get("targetLayerIds") or default_layer_ids(model.config.num_hidden_layers)
        config = _draft_shape(params, _method(params), model, layer_ids, "")
        torch.manual_seed(_get(params, "seed", int, 0))
        draft = build_draft(config, shared).to(device).eval()
    else:
        if not (Path(draft_spec) / "config.json").exists():
            raise ValueError(f"draftModel: {draft_spec} is not a draft checkpoint directory")
        draft = load_draft(Path(draft_spec), shared, device)
    return draft, draft.config.target_layer_ids, draft.config.block_size


def _eval_prompts(params: dict, tokenizer) -> dict[str, list[list[int]]]:
    from .regenerate import prompt_messages, read_jsonl

    seed = _get(params, "seed", int, 0)
    _, eval_counts = _task_counts(params, 0, 16)
    if isinstance(params.get("tasks"), list):  # tasks[].samples limits evaluation here
        for entry in params["tasks"]:
            if isinstance(entry, dict) and entry.get("samples") is not None:
                eval_counts[entry["name"]] = _get(entry, "samples", int, 16, 1)
    source = params.get("evalData")
    prompts: dict[str, list[list[int]]] = {}
    for name, count in eval_counts.items():
        if source is None:
            rows = [
                synthetic.to_eval_row(ex, i)
                for i, ex in enumerate(synthetic.generate(name, count, seed + 7919))
            ]
        else:
            path = Path(source[name]) if isinstance(source, dict) else Path(source) / f"{name}.jsonl"
            if not path.is_file():
                raise ValueError(f"evalData: {path} does not exist")
            rows = read_jsonl(path)[:count]
        prompts[name] = [tokenizer.chat_prompt(prompt_messages(r)) for r in rows]
    return prompts


def evaluate(params: dict, ctx) -> dict:
    from .evaluate import EvalSettings, evaluate_tasks

    device = _setup(params)
    path, model, tokenizer = _target(params, ctx, device)
    draft, layer_ids, block = _drafter_from_params(params, model, device)
    if draft is None:
        raise ValueError("draftModel: required (a checkpoint directory or 'untrained')")
    settings = EvalSettings(
        sampling=_sampling(params, 1.0),
        max_new_tokens=_get(params, "maxNewTokens", int, 48, 1),
        speculative_length=_get(params, "speculativeLength", int, block, 1),
        seed=_get(params, "seed", int, 980406),
        measure_baseline=_get(params, "measureBaseline", bool, True),
        confidence_threshold=_get(params, "confidenceThreshold", float, 0.0, 0.0),
    )
    prompts = _eval_prompts(params, tokenizer)
    result = evaluate_tasks(model, draft.drafter(), layer_ids, prompts, settings, ctx.report)
    result.update(
        {
            "method": draft.config.method,
            "targetModel": str(path),
            "draftModel": str(params.get("draftModel")),
            "temperature": settings.sampling.temperature,
            "speculativeLength": settings.speculative_length,
        }
    )
    (_output_dir(params, ctx) / "eval_results.json").write_text(json.dumps(result, indent=2))
    return result


def build_server_app(params: dict, ctx):
    """The Starlette app for ``serve`` (separate so tests can run it in a background thread)."""
    from .metrics import VllmMetrics
    from .server import Engine, EngineConfig, build_app
    from .speculative import Generator

    device = _setup(params)
    path, model, tokenizer = _target(params, ctx, device)
    speculation = str(params.get("speculation", "on")).lower()
    if speculation not in ("on", "off"):
        raise ValueError("speculation: must be 'on' or 'off'")
    draft, layer_ids, block = (
        (None, None, 0) if speculation == "off" else _drafter_from_params(params, model, device)
    )
    name = params.get("servedModelName") or (str(params.get("targetModel") or "specops/tiny-qwen3"))
    engine = Engine(
        Generator(model, draft.drafter() if draft is not None else None, layer_ids),
        tokenizer,
        EngineConfig(
            model_name=name,
            speculative_length=_get(params, "speculativeLength", int, block or 4, 1),
            confidence_threshold=_get(params, "confidenceThreshold", float, 0.0, 0.0),
            max_model_len=_get(params, "maxModelLen", int, 512, 8),
        ),
        VllmMetrics.create(name),
    )
    ctx.log(f"serving {name} (target {path}, speculation {'on' if draft is not None else 'off'})")
    return build_app(engine)


def serve(params: dict, ctx) -> dict:
    import uvicorn

    app = build_server_app(params, ctx)
    host = params.get("host", "0.0.0.0")
    port = _get(params, "port", int, 8000, 0)
    ctx.report(stage="serve", message=f"listening on {host}:{port}")
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return {"stopped": True, "host": host, "port": port}


def profile(params: dict, ctx) -> dict:
    from .profile import profile_sps

    device = _setup(params)
    path, model, _ = _target(params, ctx, device)
    sizes = params.get("batchSizes", [1, 2, 4, 8, 16, 32, 64])
    if not isinstance(sizes, list):
        raise ValueError("batchSizes: must be a list of positive integers")
    table = profile_sps(
        model,
        [int(b) for b in sizes],
        _get(params, "contextLength", int, 64, 1),
        _get(params, "repeats", int, 20, 1),
    )
    result = {"targetModel": str(path), "device": str(device), "table": table}
    (_output_dir(params, ctx) / "sps_table.json").write_text(json.dumps(result, indent=2))
    ctx.report(stage="profile", step=len(table), total=len(table))
    return result


TASKS = {
    "make_target": make_target,
    "prepare_data": prepare_data,
    "regenerate": regenerate,
    "target_cache": target_cache,
    "train": train,
    "evaluate": evaluate,
    "serve": serve,
    "profile": profile,
}
