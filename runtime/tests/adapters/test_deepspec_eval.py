"""DeepSpec evaluation with custom task sets and per-task sample counts.

DeepSpec's real evaluator needs CUDA and the models, so these tests use a stand-in eval.py (the
true edge: no GPU) with the same module interface the driver relies on — TASKS, a parse_args that
sets args.tasks = list(TASKS) from the recorded eval.py flags, main(local_rank, args) — and the
stand-in loads ./eval_datasets/<name>.jsonl the way base_evaluator does (asserting it exists, then
shuffling with Random(seed) and cutting to the cap)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from specops_runtime.adapters import process
from specops_runtime.adapters.deepspec import tasks
from specops_runtime.agent.context import TaskContext
from specops_runtime.agent.progress import ProgressState
from specops_runtime.agent.validation import validate_task

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FACTS = json.loads((FIXTURES / "upstream_facts.json").read_text())["deepspec"]
RUNTIME = Path(__file__).resolve().parents[2]


def stand_in_eval_py() -> str:
    flags = FACTS["scripts"]["eval.py"]["flags"]
    adds = "\n".join(
        f"    parser.add_argument({flag!r}, required={bool(info.get('required'))})"
        for flag, info in flags.items()
    )
    return f'''"""Stand-in for DeepSpec's eval.py (GPU-only upstream): same flags and module interface."""
import argparse, json, random
from pathlib import Path

TASKS = {[tuple(t) for t in FACTS["eval"]["tasks"]]!r}


def parse_args():
    parser = argparse.ArgumentParser()
{adds}
    args = parser.parse_args()
    args.tasks = list(TASKS)
    return args


def main(local_rank, args):
    out = {{"local_rank": local_rank, "temperature": args.temperature, "tasks": [], "rows": {{}}}}
    for name, cap in args.tasks:
        path = Path("{FACTS["eval"]["datasetRoot"]}") / f"{{name}}.jsonl"
        assert path.exists()
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if cap is not None and len(rows) > cap:
            random.Random(int(args.seed)).shuffle(rows)
            rows = rows[:cap]
        out["tasks"].append([name, cap])
        out["rows"][name] = len(rows)
    Path("stand_in_out.json").write_text(json.dumps(out))
'''


def _jsonl(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"turns": [f"q{i}"]}) + "\n" for i in range(n)))
    return path


def test_driver_runs_eval_py_main_on_the_requested_sets_and_caps(tmp_path):
    repo = tmp_path / "deepspec"
    repo.mkdir()
    (repo / "eval.py").write_text(stand_in_eval_py())
    run = tmp_path / "run"
    (run / "eval_datasets").mkdir(parents=True)
    _jsonl(run / "eval_datasets" / "gsm8k.jsonl", 12)
    _jsonl(run / "eval_datasets" / "my-chat.jsonl", 5)  # a custom set; none of DeepSpec's others exist
    cmd = [
        sys.executable, "-m", "specops_runtime.adapters.deepspec.eval_driver", "--deepspec-dir", str(repo),
        "--tasks", '[["gsm8k",4],["my-chat",null]]', "--nprocs", "1", "--",
        "--target_name_or_path", "t", "--draft_name_or_path", "d", "--temperature", "0.5", "--seed", "3",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(RUNTIME)}
    proc = subprocess.run(cmd, cwd=run, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads((run / "stand_in_out.json").read_text())
    assert out["tasks"] == [["gsm8k", 4], ["my-chat", None]]
    assert out["rows"] == {"gsm8k": 4, "my-chat": 5} and out["temperature"] == "0.5"


def test_driver_refuses_bad_task_lists():
    from specops_runtime.adapters.deepspec.eval_driver import parse_tasks

    assert parse_tasks('[["a",1],["b",null]]') == [("a", 1), ("b", None)]
    for bad in ("[]", '[["a",0]]', '[["a"]]', '{"a":1}'):
        with pytest.raises(ValueError, match="--tasks"):
            parse_tasks(bad)


def _ctx(tmp_path, params):
    task = validate_task(
        {
            "apiVersion": "runtime.specops.dev/v1",
            "kind": "eval",
            "backend": "deepspec",
            "output": {"path": str(tmp_path / "out")},
            "storage": {"pvcMounts": {"work": str(tmp_path / "pvc")}},
            "params": params,
        }
    )
    ctx = TaskContext(task, ProgressState(task["kind"], task["backend"]))
    ctx.prepare_dirs()
    return ctx


def test_evaluate_stages_exactly_the_requested_sets_and_reports_their_sample_counts(tmp_path, monkeypatch):
    repo = tmp_path / "deepspec"
    (repo / "eval_datasets").mkdir(parents=True)
    (repo / "train.py").write_text("")
    _jsonl(repo / "eval_datasets" / "gsm8k.jsonl", 9)  # fewer rows than DeepSpec's cap of 500
    draft = tmp_path / "pvc" / "dt1" / "step_latest"
    draft.mkdir(parents=True)
    (draft / "config.json").write_text('{"architectures": ["Qwen3DSparkModel"]}')
    _jsonl(tmp_path / "pvc" / "chat.jsonl", 30)
    monkeypatch.setenv("SPECOPS_DEEPSPEC_DIR", str(repo))
    ctx = _ctx(
        tmp_path,
        {
            "target": {"uri": "hf://Qwen/Qwen3-8B"},
            "draft": {"uri": "pvc://work/dt1/step_latest"},
            "method": "dspark",
            "tasks": [
                {"name": "gsm8k"},
                {"name": "my-chat", "samples": 20, "source": {"uri": "pvc://work/chat.jsonl"}},
            ],
        },
    )
    seen = {}

    def fake_run(cmd, *, env, ctx, cwd=None, on_line=None, **_):  # the GPU-only evaluator's stdout
        seen.update(cmd=cmd, cwd=cwd, staged=sorted(os.listdir(Path(cwd) / "eval_datasets")), env=env)
        text = (FIXTURES / "deepspec_eval_stdout.txt").read_text()
        for line in text.splitlines():
            on_line(line)
        return text.splitlines()

    monkeypatch.setattr(process, "run", fake_run)
    result = tasks.evaluate(ctx.task["params"], ctx)
    assert seen["staged"] == ["gsm8k.jsonl", "my-chat.jsonl"]  # exactly the requested sets
    assert json.loads(seen["cmd"][seen["cmd"].index("--tasks") + 1]) == [["gsm8k", 500], ["my-chat", 20]]
    assert str(RUNTIME) in seen["env"]["PYTHONPATH"].split(os.pathsep)
    results = result["evaluation"]["results"]
    assert [(r["name"], r["samples"]) for r in results] == [("gsm8k", 9), ("my-chat", 20)]
    assert results[0]["tau"] == 6.17 and len(results[1]["acceptanceByPosition"]) == 6
    snap = ctx.progress.snapshot()
    assert snap["step"] == 2 and snap["tauEstimate"] == pytest.approx((6.17 + 3.72) / 2)
