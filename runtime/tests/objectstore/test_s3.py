"""s3:// against a real MinIO server: tasks read prompts from a bucket and publish what they made;
wrong credentials, a missing bucket and an unreachable endpoint fail naming the field; interrupted
copies resume file by file (requests counted by MinIO itself)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from specops_runtime.agent import objectstore, staging
from specops_runtime.agent.errors import InvalidTask, MissingInput, RetriableInfrastructure
from specops_runtime.agent.objectstore import Location

from .servers import free_port

RUNTIME = Path(__file__).resolve().parents[2]


def s3(minio, uri: str, field: str = "publish.uri") -> Location:
    return Location(uri, field, endpoint=minio.endpoint, region="us-east-1", path_style=True)


def make_bucket(minio, name: str) -> str:
    fs = objectstore.filesystem(s3(minio, f"s3://{name}"))
    if not fs.exists(name):
        fs.mkdir(name)
    return name


def checkpoint(root: Path, files: int) -> Path:
    root.mkdir(parents=True)
    for i in range(files):
        (root / f"model-{i:05d}-of-{files:05d}.safetensors").write_bytes(
            bytes([i % 251]) * (20_000 + 997 * i)
        )
    (root / "config.json").write_text('{"architectures": ["Qwen3DSparkModel"]}')
    return root


def run_agent(tmp_path: Path, task: dict, env: dict) -> tuple[int, dict]:
    task_file = tmp_path / "task.json"
    task_file.write_text(json.dumps(task))
    term = tmp_path / "termination-log"
    proc = subprocess.run(
        [sys.executable, "-m", "specops_runtime.agent", "--task", str(task_file)],
        env=dict(
            env,
            PYTHONPATH=str(RUNTIME),
            SPECOPS_TERMINATION_LOG=str(term),
            SPECOPS_PROGRESS_PORT=str(free_port()),
            SPECOPS_TORCH_THREADS="1",
        ),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert term.exists(), proc.stdout + proc.stderr
    return proc.returncode, {"result": json.loads(term.read_text()), "log": proc.stdout + proc.stderr}


def prompts_jsonl(path: Path, count: int = 24) -> Path:
    from specops_runtime.reference import data as synthetic

    examples = synthetic.mixture({"math": count // 2, "code": count - count // 2}, 7)
    rows = [synthetic.to_training_row(ex, i) for i, ex in enumerate(examples)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def store_fields(minio) -> dict:
    return {"endpoint": minio.endpoint, "region": "us-east-1", "pathStyle": True}


def prepare_data_task(tmp_path: Path, minio, prompts_uri: str, publish: dict | None = None) -> dict:
    task = {
        "apiVersion": "runtime.specops.dev/v1",
        "kind": "prepare-data",
        "backend": "reference",
        "output": {"path": str(tmp_path / "out")},
        "params": {"prompts": {"uri": prompts_uri, **store_fields(minio)}, "heldOutFraction": 0.1},
    }
    if publish:
        task["publish"] = publish
    return task


def test_prepare_data_reads_its_prompts_from_a_bucket(minio, s3_env, tmp_path):
    make_bucket(minio, "prompts")
    local = prompts_jsonl(tmp_path / "p.jsonl")
    objectstore.filesystem(s3(minio, "s3://prompts")).put_file(str(local), "prompts/sets/p.jsonl")
    code, run = run_agent(tmp_path, prepare_data_task(tmp_path, minio, "s3://prompts/sets/p.jsonl"), s3_env)
    assert code == 0, run["log"]
    rows = (tmp_path / "out" / "train.jsonl").read_text().splitlines()
    assert len(rows) == 24 - round(24 * 0.1)
    staged = tmp_path / "out" / ".work" / "staged" / "s3" / "prompts" / "sets" / "p.jsonl"
    assert staged.read_bytes() == local.read_bytes()
    assert "SECRET" not in run["log"] and s3_env["AWS_SECRET_ACCESS_KEY"] not in run["log"]


def test_eval_result_json_is_published_to_a_bucket(minio, s3_env, tmp_path):
    from specops_runtime.reference import tasks as reference_tasks

    make_bucket(minio, "evals")
    rows = reference_tasks._synthetic_rows("math", 3)
    (tmp_path / "math.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    objectstore.filesystem(s3(minio, "s3://evals")).put_file(
        str(tmp_path / "math.jsonl"), "evals/in/math.jsonl"
    )
    task = {
        "apiVersion": "runtime.specops.dev/v1",
        "kind": "eval",
        "backend": "reference",
        "output": {"path": str(tmp_path / "out")},
        "publish": {"uri": "s3://evals/runs/untrained", **store_fields(minio)},
        "params": {
            "target": {"uri": "builtin://tiny-qwen3"},
            "draft": {"uri": "builtin://untrained-draft"},
            "method": "dflash",
            "tasks": [
                {
                    "name": "math",
                    "samples": 3,
                    "source": {"uri": "s3://evals/in/math.jsonl", **store_fields(minio)},
                }
            ],
            "decoding": {"maxNewTokens": 16},
        },
    }
    code, run = run_agent(tmp_path, task, s3_env)
    assert code == 0, run["log"]
    published = run["result"]["outputs"]["published"]
    assert published["uri"] == "s3://evals/runs/untrained/result.json" and published["files"] == 1
    fs = objectstore.filesystem(s3(minio, "s3://evals"))
    remote = json.loads(fs.cat_file("evals/runs/untrained/result.json"))
    assert remote["taskKind"] == "eval" and remote["evaluation"]["results"][0]["name"] == "math"
    assert remote["evaluation"]["results"][0]["samples"] == 3
    assert published["sizeBytes"] == len(fs.cat_file("evals/runs/untrained/result.json"))


def _builtin_eval(tmp_path: Path, minio, publish_uri: str, gate: dict | None = None) -> dict:
    task = {
        "apiVersion": "runtime.specops.dev/v1",
        "kind": "eval",
        "backend": "reference",
        "output": {"path": str(tmp_path / "out")},
        "publish": {"uri": publish_uri, **store_fields(minio)},
        "params": {
            "target": {"uri": "builtin://tiny-qwen3"},
            "draft": {"uri": "builtin://untrained-draft"},
            "method": "dflash",
            "tasks": [{"name": "math", "samples": 2, "source": {"uri": "builtin://tiny-math"}}],
            "decoding": {"maxNewTokens": 8},
        },
    }
    if gate:
        task["params"]["gate"] = gate
    return task


def test_an_eval_that_missed_its_gate_publishes_its_figures_too(minio, s3_env, tmp_path):
    make_bucket(minio, "evals")
    task = _builtin_eval(tmp_path, minio, "s3://evals/runs/gated.json", gate={"minTau": 64})
    code, run = run_agent(tmp_path, task, s3_env)
    assert code == 14 and run["result"]["reason"] == "gateFailed", run["log"]
    assert run["result"]["outputs"]["published"]["uri"] == "s3://evals/runs/gated.json"
    remote = json.loads(objectstore.filesystem(s3(minio, "s3://evals")).cat_file("evals/runs/gated.json"))
    assert remote["evaluation"]["gate"]["verdict"] == "Failed" and remote["reason"] == "gateFailed"


def test_an_eval_whose_copy_fails_keeps_its_figures_and_exits_publish_failed(minio, s3_env, tmp_path):
    code, run = run_agent(tmp_path, _builtin_eval(tmp_path, minio, "s3://no-such-evals/run"), s3_env)
    assert code == 16 and run["result"]["reason"] == "publishFailed", run["log"]
    assert re.search(r"^publish\.uri: .*not found.*no-such-evals", run["result"]["message"])
    assert run["result"]["evaluation"]["results"][0]["name"] == "math"


@pytest.mark.parametrize(
    ("case", "reason", "expect"),
    [
        ("wrong credentials", "invalidTask", r"params\.prompts\.uri: .*refused the credentials"),
        ("missing bucket", "missingInput", r"params\.prompts\.uri: .*not found.*no-such-bucket"),
        (
            "unreachable endpoint",
            "retriableInfrastructure",
            r"params\.prompts\.uri: .*unreachable at http://127",
        ),
    ],
)
def test_store_failures_end_the_task_naming_the_field(minio, s3_env, tmp_path, case, reason, expect):
    import re

    make_bucket(minio, "prompts")
    env = dict(s3_env)
    uri = "s3://prompts/sets/p.jsonl"
    task = prepare_data_task(tmp_path, minio, uri)
    if case == "wrong credentials":
        env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret-key"
    elif case == "missing bucket":
        task["params"]["prompts"]["uri"] = "s3://no-such-bucket/p.jsonl"
    else:
        task["params"]["prompts"]["endpoint"] = f"http://127.0.0.1:{free_port()}"
    code, run = run_agent(tmp_path, task, env)
    assert run["result"]["reason"] == reason, run["log"]
    assert re.search(expect, run["result"]["message"]), run["result"]["message"]
    assert "not-the-secret-key" not in run["log"] + json.dumps(run["result"])


def test_publish_failures_name_the_publish_field(minio, s3_env, tmp_path):
    src = checkpoint(tmp_path / "ckpt", 2)
    with pytest.raises(MissingInput, match=r"publish\.uri: .*not found"):
        staging.sync_up(src, s3(minio, "s3://no-such-drafts/x"))
    wrong = Location(
        "s3://prompts/x", "publish.uri", endpoint=f"http://127.0.0.1:{free_port()}", path_style=True
    )
    with pytest.raises(RetriableInfrastructure, match=r"publish\.uri: .*unreachable"):
        staging.sync_up(src, wrong)


def test_wrong_credentials_are_refused_on_publish(minio, s3_env, tmp_path, monkeypatch):
    make_bucket(minio, "drafts")
    src = checkpoint(tmp_path / "ckpt", 1)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-key")
    with pytest.raises(InvalidTask, match=r"publish\.uri: .*refused the credentials"):
        staging.sync_up(src, s3(minio, "s3://drafts/x"))


def _interrupt_after(minio, files: int):
    """on_file hook that stops the server (as a lost network would) once `files` files arrived."""
    arrived = []
    lock = threading.Lock()

    def on_file(rel: str, sent: bool) -> None:
        with lock:
            arrived.append(rel)
            if len(arrived) == files:
                minio.stop()

    return on_file, arrived


def test_an_interrupted_upload_of_a_many_file_checkpoint_resumes_without_resending(minio, s3_env, tmp_path):
    make_bucket(minio, "drafts")
    src = checkpoint(tmp_path / "ckpt", 40)
    loc = s3(minio, "s3://drafts/qwen3/dspark-block7")
    on_file, arrived = _interrupt_after(minio, 15)
    with pytest.raises(RetriableInfrastructure, match=r"publish\.uri: "):
        staging.sync_up(src, loc, workers=1, on_file=on_file)
    minio.start()  # a fresh process: its request counters start at zero
    done = staging.sync_up(src, loc, workers=4)
    assert done["files"] == 41 and done["skippedFiles"] == len(arrived) == 15
    assert done["copiedFiles"] == 41 - 15
    assert minio.requests("putobject") == 41 - 15
    fs = objectstore.filesystem(loc)
    for p in src.iterdir():
        assert fs.cat_file(f"drafts/qwen3/dspark-block7/{p.name}") == p.read_bytes()
    again = staging.sync_up(src, loc)
    assert again["copiedFiles"] == 0 and again["checksum"] == done["checksum"]
    assert minio.requests("putobject") == 41 - 15


def test_an_interrupted_staging_of_a_many_file_checkpoint_resumes_without_refetching(minio, s3_env, tmp_path):
    make_bucket(minio, "models")
    src = checkpoint(tmp_path / "ckpt", 30)
    loc = s3(minio, "s3://models/target", field="params.target.uri")
    staging.sync_up(src, loc)
    dest = tmp_path / "staged" / "target"
    on_file, arrived = _interrupt_after(minio, 12)
    with pytest.raises(RetriableInfrastructure, match=r"params\.target\.uri: "):
        staging.sync_down(loc, dest, workers=1, on_file=on_file)
    # What arrived is complete under its final name; anything cut off stays a .partial file.
    for name in arrived:
        assert (dest / name).read_bytes() == (src / name).read_bytes()
    finals = {p.name for p in dest.iterdir() if not p.name.endswith(".partial")}
    assert finals == set(arrived)
    minio.start()
    done = staging.sync_down(loc, dest, workers=4)
    assert done["skippedFiles"] == len(arrived) == 12 and done["copiedFiles"] == 31 - 12
    assert minio.requests("getobject") == 31 - 12
    for p in src.iterdir():
        assert (dest / p.name).read_bytes() == p.read_bytes()
    # A local file that no longer matches what was staged is fetched again; the rest is not.
    (dest / "config.json").write_text("{}")
    assert staging.sync_down(loc, dest)["copiedFiles"] == 1


def test_staging_a_many_file_model_reports_its_progress_on_the_progress_endpoint(minio, s3_env, tmp_path):
    import urllib.request

    from specops_runtime.agent.progress import ProgressServer, ProgressState

    make_bucket(minio, "models")
    src = checkpoint(tmp_path / "ckpt", 24)
    staging.sync_up(src, s3(minio, "s3://models/big-target"))
    task = {
        "kind": "train",
        "output": {"path": str(tmp_path / "out")},
        "params": {"target": {"uri": "s3://models/big-target", **store_fields(minio)}},
    }
    state = ProgressState("train", "reference")
    server = ProgressServer(state, free_port(), host="127.0.0.1").start()
    seen: list[str] = []

    def report(message: str) -> None:  # what TaskContext.report does, plus what /progress then says
        state.update(message=message)
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/progress", timeout=5) as res:
            seen.append(json.loads(res.read())["message"])

    try:
        staging.stage_inputs(task, report)
    finally:
        server.stop()
    counted = [m for m in seen if m.startswith("staging s3://models/big-target: ")]
    assert counted, seen
    assert counted[-1].startswith("staging s3://models/big-target: 25/25 files, ")
    assert re.fullmatch(
        r"staging s3://models/big-target: \d+/25 files, [\d.]+ (B|KiB) of 737.5 KiB", counted[0]
    )
    assert (
        seen[-1].startswith("staged s3://models/big-target: 25 files")
        and "(25 copied, 0 already there)" in seen[-1]
    )
