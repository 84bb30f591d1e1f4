"""The deepspec backend: each task kind runs one DeepSpec script with the command built in
commands.py, parses its output into progress and a result."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ...agent.contract import stage_outputs
from ...agent.errors import InvalidTask, MissingInput, Unsupported
from .. import process
from . import commands
from .evaltable import EVAL_COLUMNS_NO_HEADER, parse_eval_tables
from .logparse import TrainProgress

BENCHMARK_SAMPLES = {
    "gsm8k": 500,
    "math500": 500,
    "aime25": 30,
    "humaneval": 164,
    "mbpp": 256,
    "livecodebench": 500,
    "mt-bench": 80,
    "alpaca": 500,
    "arena-hard-v2": 500,
}


def _python() -> str:
    return os.environ.get("SPECOPS_DEEPSPEC_PYTHON", sys.executable)


def _repo() -> str:
    repo = commands.deepspec_dir()
    if not Path(repo, "train.py").exists():
        raise Unsupported(f"backend: DeepSpec is not installed at {repo} (set SPECOPS_DEEPSPEC_DIR)")
    return repo


def _local_inputs(paths: list[str], field: str) -> None:
    for i, p in enumerate(paths):
        if not Path(p).exists():
            raise MissingInput(f"{field}[{i}]: {p} does not exist")


def prepare_data(params: dict, ctx) -> dict:
    repo = _repo()
    ctx.report(stage="download", message="downloading and splitting prompts")
    cmd = commands.prepare_data_command(params, ctx.task, _python())
    process.run(cmd, env=commands.node_env(ctx.task, dict(os.environ)), ctx=ctx, cwd=repo)
    names = stage_outputs()["prepareData"]
    train = ctx.output_dir / names["trainFile"]
    if not train.exists():
        raise MissingInput(f"output.path: download_and_split wrote no {train}")
    with open(train, encoding="utf-8") as f:
        samples = sum(1 for line in f if line.strip())
    return {
        "outputs": {
            "dataPaths": [str(train)],
            "evalDataDir": str(ctx.output_dir / names["evalDataDir"]),
            "samples": samples,
        }
    }


def regenerate(params: dict, ctx) -> dict:
    repo = _repo()
    _local_inputs([params["inputPath"]], "params.inputPath")
    cmd = commands.regenerate_command(params, ctx.task, _python())
    ctx.report(stage="regenerate", message=f"regenerating with {len(params['servers'])} server(s)")
    process.run(cmd, env=commands.node_env(ctx.task, dict(os.environ)), ctx=ctx, cwd=repo)
    names = stage_outputs()["regenerate"]
    out = ctx.output_dir / names["trainFile"]
    with open(out, encoding="utf-8") as f:
        samples = sum(1 for line in f if line.strip())
    files = [str(p) for p in [ctx.output_dir / names["errorFile"]] if p.exists()]
    return {"outputs": {"dataPaths": [str(out)], "samples": samples, **({"files": files} if files else {})}}


def target_cache(params: dict, ctx) -> dict:
    repo = _repo()
    _local_inputs(params["dataPaths"], "params.dataPaths")
    cmd = commands.target_cache_command(params, ctx.task, _python())
    ctx.report(stage="target-cache", message="caching target hidden states")
    process.run(cmd, env=commands.node_env(ctx.task, dict(os.environ)), ctx=ctx, cwd=repo)
    return {"outputs": {"targetCachePath": str(ctx.output_dir / stage_outputs()["targetCache"]["dir"])}}


def _latest_checkpoint(root: str) -> dict | None:
    latest = Path(root) / stage_outputs()["train"]["latestLink"]
    if not latest.exists():
        return None
    target = latest.resolve()
    step = target.name.removeprefix("step_")
    return {"path": str(target), "step": int(step) if step.isdigit() else None, "format": "deepspec"}


def train(params: dict, ctx) -> dict:
    repo = _repo()
    cache = params["targetCachePath"]
    if not Path(cache).exists():
        raise MissingInput(f"params.targetCachePath: {cache} does not exist")
    env = commands.node_env(ctx.task, dict(os.environ))
    cmd = commands.train_command(params, ctx.task, _python())
    root = commands.checkpoint_root(ctx.task, params)
    if (Path(root) / stage_outputs()["train"]["latestLink"]).exists():
        ctx.report(message=f"resuming from {root}/step_latest")
    tracker = TrainProgress(ctx.report)
    ctx.report(stage="train")
    process.run(cmd, env=env, ctx=ctx, cwd=repo, on_line=tracker)
    ckpt = _latest_checkpoint(root) or (
        {"path": tracker.checkpoint["path"], "step": tracker.checkpoint["step"], "format": "deepspec"}
        if tracker.checkpoint
        else None
    )
    result: dict = {}
    if ckpt:
        result["outputs"] = {"checkpoint": {k: v for k, v in ckpt.items() if v is not None}}
    if tracker.last:
        result["training"] = {k: tracker.last[k] for k in ("step", "epoch", "loss") if k in tracker.last} | {
            "totalSteps": tracker.last["total"]
        }
    if tracker.resumed_from:
        result["details"] = {"resumedFrom": tracker.resumed_from}
    return result


def _rows(path: Path) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def _eval_dir(params: dict, ctx, repo: str) -> tuple[Path, dict[str, int]]:
    """A run directory whose ./eval_datasets holds exactly the requested sets (DeepSpec asserts each
    file it opens exists), and the rows each set has."""
    run_dir = ctx.work_dir / "eval"
    data = run_dir / "eval_datasets"
    if data.exists():
        for old in data.iterdir():
            old.unlink()
    data.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    for i, t in enumerate(params["tasks"]):
        if t.get("source"):
            src = Path(ctx.resolve(t["source"]["uri"], f"params.tasks[{i}].source.uri"))
        else:
            base = Path(params["evalDataDir"]) if params.get("evalDataDir") else Path(repo, "eval_datasets")
            src = base / f"{t['name']}.jsonl"
        if not src.exists():
            raise MissingInput(f"params.tasks[{i}]: {src} does not exist")
        (data / f"{t['name']}.jsonl").symlink_to(src)
        rows[t["name"]] = _rows(src)
    return run_dir, rows


def evaluate(params: dict, ctx) -> dict:
    repo = _repo()
    decoding = params.get("decoding") or {}
    if decoding.get("thinking"):
        raise Unsupported("params.decoding.thinking: DeepSpec's evaluator decodes non-thinking only")
    if params.get("baseline"):
        raise Unsupported("params.baseline: DeepSpec's evaluator does not decode without speculation")
    if decoding.get("numSpeculativeTokens") is not None:
        raise Unsupported("params.decoding.numSpeculativeTokens: DeepSpec uses the draft's own block size")
    draft = ctx.resolve(params["draft"]["uri"], "params.draft.uri")
    if draft.startswith("/") and not Path(draft, "config.json").exists():
        raise MissingInput(f"params.draft.uri: no config.json in {draft}")
    for name in (t["name"] for t in params["tasks"] if t["name"] not in BENCHMARK_SAMPLES):
        if not any(t.get("source") for t in params["tasks"] if t["name"] == name):
            raise InvalidTask(f"params.tasks: custom task {name} needs a source")
    run_dir, rows = _eval_dir(params, ctx, repo)
    env = commands.node_env(ctx.task, dict(os.environ))
    # The driver imports specops_runtime in DeepSpec's interpreter: keep the agent's package importable.
    package_root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    cmd = commands.eval_command(params, ctx.task, BENCHMARK_SAMPLES, _python(), repo)
    names = [t["name"] for t in params["tasks"]]
    ctx.report(stage="eval", step=0, total=len(names), message="evaluating " + ", ".join(names))
    done: dict[str, dict] = {}

    def on_line(line: str) -> None:  # DeepSpec prints one headerless row per finished set
        for row in parse_eval_tables(line, columns=EVAL_COLUMNS_NO_HEADER):
            if row["name"] in rows and row["name"] not in done:
                done[row["name"]] = row
                ctx.report(step=len(done), tauEstimate=sum(r["tau"] for r in done.values()) / len(done))

    tail = process.run(cmd, env=env, ctx=ctx, cwd=str(run_dir), tail_lines=2000, on_line=on_line)
    final = {r["name"]: r for r in parse_eval_tables("\n".join(tail))}
    results: list[dict] = []
    for t, (name, cap) in zip(params["tasks"], commands.eval_tasks(params, BENCHMARK_SAMPLES), strict=True):
        row = final.get(name) or done.get(name)
        if row is None:
            raise MissingInput(f"params.tasks: DeepSpec's evaluator printed no result row for {t['name']}")
        row["samples"] = min(rows[name], cap) if cap else rows[name]
        results.append(row)
    return {"evaluation": {"results": results}}
