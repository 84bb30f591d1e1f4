"""Entry points of the ``reference`` backend: ``fn(params, ctx)`` with the contract's Task params
(runtime/contract/task.schema.json, the same names the operator writes) and the agent's ctx
(``report``, ``log``, ``output_dir``, ``work_dir``, ``resolve``, ``should_stop``).

Params are validated and defaulted against the Task schema on entry (``contract_params.checked``,
idempotent after the agent), translated to the internals' arguments in ``contract_params``, and
results come back as the contract's sections (``outputs``, ``training``, ``evaluation``,
``profile``; extras in ``details``). Output file names come from contract ``stageOutputs``.

Locations: ``target.uri`` builtin://tiny-qwen3 (or tiny-qwen3-l<N>) or a pvc:// / local checkpoint
written by this backend; ``draft.uri`` a pvc:// / local draft checkpoint directory, its
``step_latest`` link or the train output holding it, or builtin://untrained-draft (random init).
hf:// is not read by this backend (exit 15). See ``builtins.py`` for every builtin name.

What each entry point reads (defaults are the schema's unless noted "reference default"):

prepare_data   prompts.uri (builtin://tiny-mix | tiny-math | tiny-code | tiny-chat, or a local
               JSONL of {conversations} / {turns} rows), maxSamples (reference default: 300 per
               synthetic set), heldOutFraction, seed.
               -> train.jsonl, eval_datasets/<set>.jsonl (builtin sets: tiny-math, ...)
regenerate     target, inputPath, temperature, topP, topK (-1 = off), minP, maxTokens (capped at
               the target's positions), concurrency (= batch size), thinking (must be false).
               -> train_regen.jsonl (+ train_regen_error.jsonl); resumable
target_cache   target, method, draft.targetLayerIds (default: low/mid/high spread), dataPaths,
               maxLength, minLossTokens, batchSize. -> target_cache/
train          target, method, draft {blockSize, numLayers (reference default 2; eagle3 1),
               targetLayerIds (must match the cache), dspark {markovRank, confidenceHead},
               eagle3 {stepLossDecay}}, training {epochs (default 10) | maxSteps, learningRate,
               warmupRatio, globalBatchSize (= the optimizer batch), checkpointInterval, seed;
               precision: always fp32 here; perGpuBatchSize, maxLength: not used},
               targetCachePath (else built from dataPaths into workDir), experiment ("draft").
               -> checkpoints/specops/<experiment>/step_N + step_latest; resumes from step_latest
evaluate       target, draft.uri, method (must match the checkpoint), tasks [{name, samples,
               source.uri}] (source: builtin://tiny-* or a local JSONL; without source:
               <evalDataDir>/<name>.jsonl, else the synthetic set math|code|chat|tiny-*; builtin
               sets default to 32 samples), decoding {temperature, maxNewTokens, numSpeculativeTokens
               (default the draft's block size), seed, thinking (must be false)}, baseline.
               gate, summary: by the agent. -> eval_results.json (full rows)
serve          target, method (omitted = target alone), draft.uri, speculative
               {numSpeculativeTokens, adaptiveVerification (DSpark confidence stop at 0.5)},
               port, servedModelName (default the target URI). Refused: extraEngineArgs,
               tensorParallelSize > 1, draftFormat native, loadAdaptation Engine. Serves until
               SIGTERM; /metrics has vLLM's names; tau and acceptance mirrored into progress.
profile        target, batchSizes, contextLength, repeats (endpoint refused; a draft is not
               timed). -> sps_table.json

Environment: SPECOPS_CACHE_DIR (tiny target cache), SPECOPS_TORCH_THREADS (default 1),
SPECOPS_DEVICE (default cuda when available).
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

from ..agent.contract import stage_outputs
from . import builtins
from . import contract_params as cp
from . import data as synthetic
from .device import configure_threads, pick_device
from .draft_config import SharedWeights, build_draft, draft_config_for_target, load_draft
from .regenerate import prompt_messages, read_jsonl
from .target import default_layer_ids, ensure_tiny_target, load_target

EVAL_PROMPT_SEED = 7919  # synthetic eval prompts come from their own seed stream
DEFAULT_PROMPTS_PER_SET = 300
SERVE_PROGRESS_INTERVAL_S = 1.0


def _setup():
    configure_threads(None)
    return pick_device(os.environ.get("SPECOPS_DEVICE") or None)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)


def _no_hub(uri: str, field: str) -> None:
    if uri.startswith("hf://"):
        raise cp.unsupported(field, "hf:// is not read; use builtin:// or stage it onto a PVC")


# --- models ----------------------------------------------------------------------------------


def target_path(params: dict, ctx) -> Path:
    """The target checkpoint directory of ``params.target`` (the tiny target is trained once)."""
    field = "params.target.uri"
    uri = params["target"]["uri"]
    name = builtins.name_of(uri)
    if name is not None:
        return ensure_tiny_target(builtins.target_recipe(name, field), report=ctx.report)
    _no_hub(uri, field)
    path = Path(ctx.resolve(uri, field))
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{field}: no target checkpoint (config.json) at {path}")
    return path


def _target(params: dict, ctx, device):
    path = target_path(params, ctx)
    model, tokenizer = load_target(path, device)
    return path, model, tokenizer


def _max_positions(model) -> int:
    return int(getattr(model.config, "max_position_embeddings", 1 << 30))


def checkpoint_dir(path: Path, field: str) -> Path:
    """A draft checkpoint: the directory itself, its ``step_latest``, or a train output's latest."""
    consts = stage_outputs()["train"]
    candidates = [path, path / consts["latestLink"]]
    root = path / consts["checkpointsDir"]
    if root.is_dir():
        candidates += [d / consts["latestLink"] for d in sorted(root.iterdir())]
    for candidate in candidates:
        if (candidate / "config.json").exists():
            return candidate.resolve()
    raise FileNotFoundError(f"{field}: no draft checkpoint (config.json) at {path}")


def load_draft_model(
    uri: str, method: str, block_hint: int | None, seed: int, model, ctx, device, field: str
):
    """The draft of ``uri`` (a checkpoint or builtin://untrained-draft) for ``method``."""
    shared = SharedWeights.from_target(model)
    name = builtins.name_of(uri)
    if name is not None:
        if name != builtins.UNTRAINED_DRAFT:
            raise FileNotFoundError(f"{field}: unknown builtin {name!r} (known: {builtins.UNTRAINED_DRAFT})")
        import torch

        shape = cp.draft_overrides(method, {"blockSize": block_hint or cp.DEFAULT_BLOCK_SIZE})
        config = draft_config_for_target(
            method, model.config, default_layer_ids(model.config.num_hidden_layers), **shape
        )
        torch.manual_seed(seed)
        return build_draft(config, shared).to(device).eval()
    _no_hub(uri, field)
    path = checkpoint_dir(Path(ctx.resolve(uri, field)), field)
    draft = load_draft(path, shared, device)
    if draft.config.method != method:
        raise ValueError(f"params.method: {method}, but the draft at {path} is a {draft.config.method} draft")
    if max(draft.config.target_layer_ids) >= model.config.num_hidden_layers:
        raise ValueError(f"{field}: the draft reads target layers the target does not have")
    return draft


# --- prepare-data ----------------------------------------------------------------------------


def _prompt_rows(params: dict, ctx) -> tuple[list[dict], bool]:
    """Training rows ({id, task, conversations}) of the prompt set, and whether it is builtin."""
    field = "params.prompts.uri"
    uri = params["prompts"]["uri"]
    name = builtins.name_of(uri)
    if name is not None:
        sets = builtins.prompt_tasks(name, field)
        total = params.get("maxSamples") or DEFAULT_PROMPTS_PER_SET * len(sets)
        counts = {t: total // len(sets) + (1 if i < total % len(sets) else 0) for i, t in enumerate(sets)}
        examples = synthetic.mixture(counts, params["seed"])
        return [synthetic.to_training_row(ex, i) for i, ex in enumerate(examples)], True
    _no_hub(uri, field)
    path = Path(ctx.resolve(uri, field))
    if not path.is_file():
        raise FileNotFoundError(f"{field}: no JSONL file at {path}")
    rows = read_jsonl(path)
    random.Random(params["seed"]).shuffle(rows)
    rows = rows[: params.get("maxSamples") or len(rows)]
    out = []
    for i, row in enumerate(rows):
        turns = row.get("conversations") or [{"role": "user", "content": t} for t in row.get("turns", [])]
        if not turns:
            raise ValueError(f"{field}: row {i} of {path} has neither conversations nor turns")
        out.append(
            {
                "id": row.get("id", f"{path.stem}-{i}"),
                "task": row.get("task") or path.stem,
                "conversations": turns,
            }
        )
    return out, False


def _eval_row(row: dict) -> dict:
    turns = row["conversations"]
    out = {
        "id": row["id"],
        "task": row["task"],
        "turns": [t["content"] for t in turns if t["role"] == "user"],
    }
    answers = [t["content"] for t in turns if t["role"] == "assistant"]
    return {**out, "reference": answers[-1]} if answers else out


def prepare_data(params: dict, ctx) -> dict:
    p = cp.checked("prepare-data", params, ctx.output_dir)
    names = stage_outputs()["prepareData"]
    rows, builtin = _prompt_rows(p, ctx)
    held_out = round(len(rows) * p["heldOutFraction"])
    if p["heldOutFraction"] > 0 and len(rows) > 1:
        held_out = min(max(1, held_out), len(rows) - 1)
    train_rows, eval_rows = rows[: len(rows) - held_out], rows[len(rows) - held_out :]
    train_path = ctx.output_dir / names["trainFile"]
    _write_jsonl(train_path, train_rows)
    eval_dir = ctx.output_dir / names["evalDataDir"]
    eval_dir.mkdir(parents=True, exist_ok=True)
    by_set: dict[str, list[dict]] = {}
    for row in eval_rows:
        name = builtins.eval_set_name(row["task"]) if builtin else row["task"]
        by_set.setdefault(name, []).append(_eval_row(row))
    for name, set_rows in by_set.items():
        _write_jsonl(eval_dir / f"{name}.jsonl", set_rows)
    ctx.report(
        stage="prepare-data",
        step=len(rows),
        total=len(rows),
        message=f"{len(train_rows)} train, {held_out} held out",
    )
    return {
        "outputs": {"dataPaths": [str(train_path)], "evalDataDir": str(eval_dir), "samples": len(train_rows)},
        "details": {"heldOut": {name: len(r) for name, r in by_set.items()}},
    }


# --- regenerate ------------------------------------------------------------------------------


def _input_file(path: str, field: str) -> Path:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{field}: {path} does not exist")
    return Path(path)


def regenerate(params: dict, ctx) -> dict:
    from .regenerate import regenerate_file

    p = cp.checked("regenerate", params, ctx.output_dir)
    settings = cp.regenerate_settings(p)
    source = _input_file(p["inputPath"], "params.inputPath")
    names = stage_outputs()["regenerate"]
    device = _setup()
    _, model, tokenizer = _target(p, ctx, device)
    out = ctx.output_dir / names["trainFile"]
    result = regenerate_file(model, tokenizer, source, out, settings, ctx.report)
    errors = ctx.output_dir / names["errorFile"]
    outputs = {"dataPaths": [str(out)], "samples": result["regenerated"] + result["skipped"]}
    if errors.exists():
        outputs["files"] = [str(errors)]
    return {"outputs": outputs, "details": {k: result[k] for k in ("regenerated", "skipped", "failed")}}


# --- target-cache ----------------------------------------------------------------------------


def _layer_ids(draft: dict, model) -> list[int]:
    layers = model.config.num_hidden_layers
    ids = cp.layer_ids(draft, default_layer_ids(layers))
    if any(i >= layers for i in ids):
        raise ValueError(f"params.draft.targetLayerIds: {ids} outside the target's {layers} layers")
    return ids


def _build_cache(p: dict, ctx, model, tokenizer, path: Path, out: Path) -> dict:
    from .target_cache import build_cache

    sources = [_input_file(x, f"params.dataPaths[{i}]") for i, x in enumerate(p["dataPaths"])]
    options = cp.cache_options(p)
    options["max_length"] = min(options["max_length"], _max_positions(model))
    return build_cache(
        model, tokenizer, sources, out, _layer_ids(p["draft"], model), str(path), report=ctx.report, **options
    )


def target_cache(params: dict, ctx) -> dict:
    p = cp.checked("target-cache", params, ctx.output_dir)
    cp.method_of(p)
    cp.check_draft_extras(p["draft"])
    device = _setup()
    path, model, tokenizer = _target(p, ctx, device)
    out = ctx.output_dir / stage_outputs()["targetCache"]["dir"]
    manifest = _build_cache(p, ctx, model, tokenizer, path, out)
    return {
        "outputs": {"targetCachePath": str(out), "samples": manifest["num_samples"]},
        "details": {
            "tokens": manifest["num_tokens"],
            "droppedSamples": manifest["dropped_samples"],
            "targetLayerIds": manifest["target_layer_ids"],
            "shards": len(manifest["shards"]),
        },
    }


# --- train -----------------------------------------------------------------------------------


def _training_cache(p: dict, ctx, model, tokenizer, path: Path):
    """(manifest, samples) from targetCachePath, or a cache built from dataPaths into workDir."""
    from .target_cache import MANIFEST, load_cache

    cache = p.get("targetCachePath")
    if cache and (Path(cache) / MANIFEST).exists():
        return load_cache(Path(cache))
    if not p.get("dataPaths"):
        if cache:
            raise FileNotFoundError(f"params.targetCachePath: no target cache at {cache}")
        raise ValueError("params.targetCachePath: required unless params.dataPaths is given")
    built = ctx.work_dir / stage_outputs()["targetCache"]["dir"]
    ctx.log(
        f"no target cache{f' at {cache}' if cache else ''}; building one from params.dataPaths in {built}"
    )
    spec = {k: p[k] for k in ("target", "method", "draft", "dataPaths")} | {
        "maxLength": p["training"]["maxLength"]
    }
    _build_cache(cp.checked("target-cache", spec, ctx.output_dir), ctx, model, tokenizer, path, built)
    return load_cache(built)


def train(params: dict, ctx) -> dict:
    from .train import train_draft

    p = cp.checked("train", params, ctx.output_dir)
    method = cp.method_of(p)
    shape = cp.draft_overrides(method, p["draft"])
    settings = cp.train_settings(p)
    device = _setup()
    path, model, tokenizer = _target(p, ctx, device)
    manifest, samples = _training_cache(p, ctx, model, tokenizer, path)
    ids = manifest["target_layer_ids"]
    wanted = p["draft"].get("targetLayerIds")
    if wanted and list(wanted) != list(ids):
        raise ValueError(f"params.draft.targetLayerIds: {wanted}, but the target cache holds layers {ids}")
    if manifest["target_model_name_or_path"] != str(path):
        ctx.log(
            f"warning: the cache was built for {manifest['target_model_name_or_path']}, "
            f"training against {path}"
        )
    if p["training"]["precision"] != "fp32":
        ctx.log(f"training.precision {p['training']['precision']}: the reference backend trains in fp32")
    config = draft_config_for_target(method, model.config, ids, target_model_name_or_path=str(path), **shape)
    consts = stage_outputs()["train"]
    out = ctx.output_dir / consts["checkpointsDir"] / cp.experiment_of(p)
    trained = train_draft(
        config,
        SharedWeights.from_target(model),
        samples,
        out,
        settings,
        device,
        report=ctx.report,
        log=ctx.log,
    )
    return cp.train_result(trained, trained["stepsPerEpoch"])


# --- eval ------------------------------------------------------------------------------------


def _synthetic_rows(task: str, count: int) -> list[dict]:
    return [
        synthetic.to_eval_row(ex, i) for i, ex in enumerate(synthetic.generate(task, count, EVAL_PROMPT_SEED))
    ]


def _jsonl_rows(path: Path, count: int | None, field: str) -> list[dict]:
    if path.is_dir():
        raise FileNotFoundError(f"{field}: {path} is a directory, not a JSONL file")
    if not path.is_file():
        raise FileNotFoundError(f"{field}: {path} does not exist")
    return read_jsonl(path)[:count]


def eval_rows(task: dict, params: dict, ctx, field: str) -> list[dict]:
    """Prompt rows of one eval task: its source, else evalDataDir/<name>.jsonl, else a builtin set."""
    count = task.get("samples")
    source = task.get("source")
    if source:
        src_field = f"{field}.source.uri"
        name = builtins.name_of(source["uri"])
        if name is not None:
            return _synthetic_rows(
                builtins.eval_source(name, src_field), count or cp.DEFAULT_BUILTIN_EVAL_SAMPLES
            )
        _no_hub(source["uri"], src_field)
        return _jsonl_rows(Path(ctx.resolve(source["uri"], src_field)), count, src_field)
    if params.get("evalDataDir"):
        path = Path(params["evalDataDir"]) / f"{task['name']}.jsonl"
        if path.is_file():
            return _jsonl_rows(path, count, "params.evalDataDir")
    synthetic_task = builtins.synthetic_task(task["name"])
    if synthetic_task is None:
        raise FileNotFoundError(
            f"{field}.name: no prompts for {task['name']!r}: give a source, put {task['name']}.jsonl in "
            f"params.evalDataDir, or use a builtin set (tiny-math, tiny-code, tiny-chat)"
        )
    return _synthetic_rows(synthetic_task, count or cp.DEFAULT_BUILTIN_EVAL_SAMPLES)


def evaluate(params: dict, ctx) -> dict:
    from .evaluate import evaluate_tasks

    p = cp.checked("eval", params, ctx.output_dir)
    method = cp.method_of(p)
    cp.eval_settings(p, 1, 1)  # refuse unsupported decoding options before loading anything
    names = [t["name"] for t in p["tasks"]]
    if len(set(names)) != len(names):
        raise ValueError("params.tasks: task names must be unique")
    device = _setup()
    _, model, tokenizer = _target(p, ctx, device)
    prompts = {}
    for i, task in enumerate(p["tasks"]):
        rows = eval_rows(task, p, ctx, f"params.tasks[{i}]")
        if not rows:
            raise ValueError(f"params.tasks[{i}]: {task['name']} has no prompts")
        prompts[task["name"]] = [tokenizer.chat_prompt(prompt_messages(r)) for r in rows]
    decoding = p["decoding"]
    draft = load_draft_model(
        p["draft"]["uri"],
        method,
        decoding.get("numSpeculativeTokens"),
        decoding["seed"],
        model,
        ctx,
        device,
        "params.draft.uri",
    )
    longest = max(len(x) for rows in prompts.values() for x in rows)
    room = max(1, _max_positions(model) - longest - draft.config.block_size - 1)
    settings = cp.eval_settings(p, draft.config.block_size, min(decoding["maxNewTokens"], room))
    result = evaluate_tasks(
        model, draft.drafter(), draft.config.target_layer_ids, prompts, settings, ctx.report
    )
    (ctx.output_dir / "eval_results.json").write_text(json.dumps(result, indent=2))
    return {
        "evaluation": {"results": [cp.task_result(name, row) for name, row in result["tasks"].items()]},
        "details": {
            "method": method,
            "draft": p["draft"]["uri"],
            "numSpeculativeTokens": settings.speculative_length,
            "maxNewTokens": settings.max_new_tokens,
            "tasks": {name: cp.eval_details(name, row) for name, row in result["tasks"].items()},
        },
    }


# --- serve -----------------------------------------------------------------------------------


def build_engine(params: dict, ctx):
    """(Engine, options) of a serve task: target alone when ``method`` is omitted."""
    from .metrics import VllmMetrics
    from .server import Engine, EngineConfig
    from .speculative import Generator

    p = cp.checked("serve", params, ctx.output_dir)
    options = cp.serve_options(p)
    device = _setup()
    path, model, tokenizer = _target(p, ctx, device)
    draft = None
    if p.get("method"):
        if not p.get("draft"):
            raise ValueError(
                f"params.draft: method {p['method']} needs a draft here "
                f"(builtin://{builtins.UNTRAINED_DRAFT} for a random one)"
            )
        draft = load_draft_model(
            p["draft"]["uri"],
            p["method"],
            options["speculative_length"],
            0,
            model,
            ctx,
            device,
            "params.draft.uri",
        )
        if options["confidence_threshold"] and not draft.config.enable_confidence_head:
            raise ValueError("params.speculative.adaptiveVerification: the draft has no confidence head")
    name = options["served_model_name"]
    config = EngineConfig(
        model_name=name,
        speculative_length=options["speculative_length"] or (draft.config.block_size if draft else 1),
        confidence_threshold=options["confidence_threshold"],
        max_model_len=_max_positions(model),
    )
    engine = Engine(
        Generator(
            model, draft.drafter() if draft else None, draft.config.target_layer_ids if draft else None
        ),
        tokenizer,
        config,
        # One sequence at a time: its KV budget is the model's context length.
        VllmMetrics.create(
            name,
            num_speculative_tokens=config.speculative_length if draft else 0,
            kv_capacity_tokens=config.max_model_len,
        ),
    )
    ctx.log(f"serving {name} (target {path}, speculation {'on' if draft else 'off'})")
    return engine, options


def build_server_app(params: dict, ctx):
    """The Starlette app of a serve task (tests run it in a background thread)."""
    from .server import build_app

    return build_app(build_engine(params, ctx)[0])


def _mirror_progress(engine, ctx, last: dict) -> dict:
    """Engine counters -> progress: tau (vLLM's 1 + accepted/drafts), acceptance, tokens/s."""
    from .acceptance import tau_from_vllm_counters

    now = engine.metrics.totals(engine.config.speculative_length)
    now["time"] = time.monotonic()
    fields: dict = {}
    if now["drafts"]:
        fields["tauEstimate"] = tau_from_vllm_counters(now["drafts"], now["accepted"])
        fields["acceptanceByPosition"] = [a / now["drafts"] for a in now["acceptedByPosition"]]
    if last:
        elapsed = now["time"] - last["time"]
        if elapsed > 0:
            fields["throughput"] = (now["generationTokens"] - last["generationTokens"]) / elapsed
            fields["throughputUnit"] = "tokens/s"
    if fields:
        ctx.report(**fields)
    return now


def serve(params: dict, ctx):
    """Serves until the agent's stop request (SIGTERM); returns None then (a terminated task)."""
    from .server import ServerHandle, build_app

    engine, options = build_engine(params, ctx)
    handle = ServerHandle(build_app(engine), host="0.0.0.0", port=options["port"]).start()
    ctx.report(stage="serve", message=f"serving {options['served_model_name']} on :{handle.port}")
    last: dict = {}
    try:
        while not ctx.should_stop():
            time.sleep(SERVE_PROGRESS_INTERVAL_S)
            last = _mirror_progress(engine, ctx, last)
    finally:
        handle.stop()
    return None


# --- profile ---------------------------------------------------------------------------------


def profile(params: dict, ctx) -> dict:
    from .profile import profile_sps

    p = cp.checked("profile", params, ctx.output_dir)
    if p.get("endpoint"):
        raise cp.unsupported("params.endpoint", "profiles its own in-process target only")
    device = _setup()
    _, model, _ = _target(p, ctx, device)
    if p.get("draft"):
        ctx.log("profile times the target's verification steps; the draft is not timed")
    table = profile_sps(model, p["batchSizes"], p["contextLength"], p["repeats"])
    result = cp.profile_result(table, p["contextLength"], str(device))
    (ctx.output_dir / "sps_table.json").write_text(json.dumps(result, indent=2))
    ctx.report(stage="profile", step=len(table), total=len(table))
    return result
