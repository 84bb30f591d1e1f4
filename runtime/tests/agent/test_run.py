"""End-to-end runs of the agent: dispatch, result, progress over HTTP during a run, SIGTERM."""

import json
import signal
import time
import urllib.request

import pytest

from specops_runtime.agent import main as agent_main
from specops_runtime.agent.dispatch import resolve
from specops_runtime.agent.errors import Unsupported

from .conftest import free_port, run_agent, task

# --- dispatch with a tiny backend of this test module (the reference backend is the other team's) ---
CALLS: list = []


def train(params, ctx):
    CALLS.append(params)
    ctx.report(step=3, total=3, loss=0.5, tau=2.5)
    assert ctx.output_dir.exists() and ctx.work_dir.exists()
    return {"outputs": {"checkpoint": {"path": str(ctx.output_dir / "ckpt"), "step": 3}}, "note": "extra"}


def evaluate(params, ctx):
    return {
        "evaluation": {
            "results": [
                {"name": "gsm8k", "samples": 5, "tau": 2.0},
                {"name": "mt-bench", "samples": 5, "tau": 1.5},
            ]
        }
    }


def target_cache(params, ctx):
    raise FileNotFoundError("params.dataPaths[0]: /nope does not exist")


TEST_MODULES = {"reference": __name__}


def _ref_task(tmp_path, kind="train", **params):
    base = {"target": {"uri": "builtin://tiny"}, "method": "dspark"}
    if kind == "eval":
        base["draft"] = {"uri": "builtin://tiny-draft"}
    if kind == "target-cache":
        base["dataPaths"] = ["/nope"]
    base.update(params)
    return {
        "apiVersion": "runtime.specops.dev/v1",
        "kind": kind,
        "backend": "reference",
        "output": {"path": str(tmp_path / "out")},
        "params": base,
    }


def _run_inprocess(tmp_path, doc, monkeypatch):
    monkeypatch.setenv("SPECOPS_TERMINATION_LOG", str(tmp_path / "term"))
    (tmp_path / "task.json").write_text(json.dumps(doc))
    rc = agent_main.run(str(tmp_path / "task.json"), modules=TEST_MODULES, port=0)
    result = (
        json.loads((tmp_path / "out" / "result.json").read_text())
        if (tmp_path / "out" / "result.json").exists()
        else None
    )
    return rc, result, json.loads((tmp_path / "term").read_text())


def test_dispatch_runs_the_backend_function_and_writes_the_result(tmp_path, monkeypatch):
    CALLS.clear()
    rc, result, term = _run_inprocess(tmp_path, _ref_task(tmp_path), monkeypatch)
    assert rc == 0
    assert CALLS[0]["training"]["learningRate"] == 0.0006  # defaults applied before dispatch
    assert result["status"] == "succeeded" and result["outputs"]["checkpoint"]["step"] == 3
    assert result["details"] == {"note": "extra"}
    assert term["resultPath"] == str(tmp_path / "out" / "result.json")


def test_eval_gate_failure_exits_14_and_keeps_results(tmp_path, monkeypatch):
    doc = _ref_task(tmp_path, "eval", gate={"minTau": 2.0, "minTauPerTask": {"gsm8k": 1.5}})
    doc["params"]["tasks"] = [{"name": "gsm8k"}, {"name": "mt-bench"}]
    rc, result, term = _run_inprocess(tmp_path, doc, monkeypatch)
    assert rc == 14
    assert result["evaluation"]["summary"]["macroTau"] == pytest.approx(1.75)
    assert result["evaluation"]["gate"]["verdict"] == "Failed"
    assert term["reason"] == "gateFailed"


def test_eval_gate_pass(tmp_path, monkeypatch):
    doc = _ref_task(tmp_path, "eval", gate={"minTau": 1.7})
    doc["params"]["tasks"] = [{"name": "gsm8k"}, {"name": "mt-bench"}]
    rc, result, _ = _run_inprocess(tmp_path, doc, monkeypatch)
    assert rc == 0 and result["evaluation"]["gate"] == {"verdict": "Passed"}


def test_backend_exception_maps_to_exit_code(tmp_path, monkeypatch):
    rc, result, term = _run_inprocess(tmp_path, _ref_task(tmp_path, "target-cache"), monkeypatch)
    assert rc == 11 and result["reason"] == "missingInput"
    assert "params.dataPaths[0]" in term["message"]


def test_kind_without_implementation_is_unsupported():
    with pytest.raises(Unsupported):
        resolve("reference", "profile", TEST_MODULES)
    with pytest.raises(Unsupported):
        resolve("reference", "train", {"reference": "specops_runtime.no_such_backend"})


def test_reference_backend_dispatch_when_present():
    pytest.importorskip("specops_runtime.reference.tasks")
    assert callable(resolve("reference", "train"))


# --- a fake DeepSpec checkout: train.py prints DeepSpec-style log lines and writes checkpoints ---
FAKE_TRAIN = r"""
import os, sys, time
home = os.environ["HOME"]
root = os.path.join(home, "checkpoints", "specops", "draft")
os.makedirs(root, exist_ok=True)
assert os.environ["RANK"] == "0" and os.environ["WORLD_SIZE"] == "1", os.environ["RANK"]
print("config:", sys.argv[1:], flush=True)
for step in range(1, 31):
    print(f"2026-11-28 10:00:{step:02d} epoch={step // 10} step={step}/30 loss={3.0 - step * 0.05:.4f} | elapsed={step * 0.1:.2f}min | remaining={(30 - step) * 0.1:.2f}min", flush=True)
    if step == 20:
        d = os.path.join(root, "step_20"); os.makedirs(d, exist_ok=True)
        if os.path.lexists(os.path.join(root, "step_latest")): os.remove(os.path.join(root, "step_latest"))
        os.symlink(os.path.abspath(d), os.path.join(root, "step_latest"))
        print(f"Saved checkpoint to {d}", flush=True)
    time.sleep(float(os.environ.get("FAKE_STEP_SECONDS", "0.1")))
"""


@pytest.fixture
def fake_deepspec(tmp_path):
    repo = tmp_path / "deepspec"
    repo.mkdir()
    (repo / "train.py").write_text(FAKE_TRAIN)
    (tmp_path / "cache").mkdir()
    return repo


def _get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
        return r.read().decode()


def test_progress_endpoint_serves_json_and_metrics_during_a_deepspec_run(tmp_path, fake_deepspec):
    port = free_port()
    env = {
        "SPECOPS_DEEPSPEC_DIR": str(fake_deepspec),
        "SPECOPS_PROGRESS_PORT": str(port),
        "FAKE_STEP_SECONDS": "0.1",
    }
    proc = run_agent(tmp_path, task(tmp_path), env, wait=False)
    seen = None
    deadline = time.time() + 30
    while time.time() < deadline and proc.poll() is None:
        try:
            snap = json.loads(_get(port, "/progress"))
            if snap.get("step", 0) >= 5:
                seen = snap
                metrics = _get(port, "/metrics")
                break
        except OSError:
            pass
        time.sleep(0.1)
    out, err = proc.communicate(timeout=60)
    assert seen is not None, err
    assert seen["state"] == "running" and seen["total"] == 30 and seen["kind"] == "train"
    assert 0 < seen["loss"] < 3.0 and seen["etaSeconds"] > 0
    assert "specops_task_step" in metrics and "specops_task_loss" in metrics
    assert proc.returncode == 0, err
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["outputs"]["checkpoint"]["step"] == 20
    assert result["training"]["step"] == 30 and result["training"]["loss"] == pytest.approx(1.5)
    assert "--opts" in out and 'data.target_cache_path="' in out  # the command went through


def test_sigterm_reaches_the_child_and_exits_143(tmp_path, fake_deepspec):
    port = free_port()
    env = {
        "SPECOPS_DEEPSPEC_DIR": str(fake_deepspec),
        "SPECOPS_PROGRESS_PORT": str(port),
        "FAKE_STEP_SECONDS": "1",
    }
    proc = run_agent(tmp_path, task(tmp_path), env, wait=False)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            if json.loads(_get(port, "/progress")).get("step"):
                break
        except OSError:
            pass
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == 143
    assert json.loads((tmp_path / "termination-log").read_text())["status"] == "terminated"


def test_child_oom_in_log_maps_to_exit_12(tmp_path, fake_deepspec):
    (fake_deepspec / "train.py").write_text(
        "import sys\nprint('torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 8 GiB', flush=True)\nsys.exit(1)\n"
    )
    rc, _, _, term = run_agent(tmp_path, task(tmp_path), {"SPECOPS_DEEPSPEC_DIR": str(fake_deepspec)})
    assert rc == 12 and json.loads(term.read_text())["reason"] == "outOfMemory"


def test_missing_target_cache_is_missing_input(tmp_path, fake_deepspec):
    doc = task(tmp_path)
    doc["params"]["targetCachePath"] = str(tmp_path / "absent")
    rc, _, _, _ = run_agent(tmp_path, doc, {"SPECOPS_DEEPSPEC_DIR": str(fake_deepspec)})
    assert rc == 11


def test_secrets_are_not_printed(tmp_path, fake_deepspec):
    (fake_deepspec / "train.py").write_text(
        "import os\nprint('token is', os.environ['HF_TOKEN'], flush=True)\n"
    )
    rc, out, err, _ = run_agent(
        tmp_path,
        task(tmp_path),
        {"SPECOPS_DEEPSPEC_DIR": str(fake_deepspec), "HF_TOKEN": "hf_supersecretvalue"},
    )
    assert rc == 0
    assert "hf_supersecretvalue" not in out + err and "***" in out + err


def _publishing_eval(tmp_path, **params):
    doc = _ref_task(tmp_path, "eval", **params)
    doc["params"]["tasks"] = [{"name": "gsm8k"}, {"name": "mt-bench"}]
    doc["publish"] = {"uri": "s3://evals/run-1", "endpoint": "http://127.0.0.1:9", "pathStyle": True}
    return doc


def _copies(monkeypatch, failures: list[BaseException]):
    """sync_up as the store answers: the given failures first, then a verified copy."""
    from specops_runtime.agent import staging

    calls = []

    def sync_up(src, loc, report=None, stop=None, **_):
        calls.append((str(src), loc.uri))
        if failures:
            raise failures.pop(0)
        return {"uri": loc.uri, "files": 1, "sizeBytes": src.stat().st_size, "checksum": "sha256:" + "0" * 64}

    monkeypatch.setattr(staging, "sync_up", sync_up)
    monkeypatch.setattr(agent_main, "PUBLISH_RETRY_DELAYS_S", (0.0, 0.0))
    return calls


def test_a_missed_gate_still_publishes_the_result_json(tmp_path, monkeypatch):
    calls = _copies(monkeypatch, [])
    rc, result, term = _run_inprocess(tmp_path, _publishing_eval(tmp_path, gate={"minTau": 2.0}), monkeypatch)
    assert rc == 14 and term["reason"] == "gateFailed"
    assert calls == [(str(tmp_path / "out" / "result.json"), "s3://evals/run-1/result.json")]
    assert term["outputs"]["published"]["uri"] == "s3://evals/run-1/result.json"
    assert result["evaluation"]["gate"]["verdict"] == "Failed"


def test_a_transient_store_error_is_retried_without_evaluating_again(tmp_path, monkeypatch):
    from specops_runtime.agent.errors import RetriableInfrastructure

    calls = _copies(monkeypatch, [RetriableInfrastructure("publish.uri: store unreachable")])
    rc, _, term = _run_inprocess(tmp_path, _publishing_eval(tmp_path), monkeypatch)
    assert rc == 0 and term["reason"] == "success"
    assert len(calls) == 2 and term["outputs"]["published"]["files"] == 1


def test_a_failed_copy_of_an_eval_exits_publish_failed_with_its_figures(tmp_path, monkeypatch):
    from specops_runtime.agent.errors import MissingInput, RetriableInfrastructure

    # A store that stays unreachable is tried three times in all; a missing bucket once.
    calls = _copies(monkeypatch, [RetriableInfrastructure("publish.uri: store unreachable")] * 3)
    rc, result, term = _run_inprocess(tmp_path, _publishing_eval(tmp_path), monkeypatch)
    assert rc == 16 and term["reason"] == "publishFailed" and len(calls) == 3
    assert term["message"] == "publish.uri: store unreachable"
    assert term["evaluation"]["summary"]["macroTau"] == pytest.approx(1.75)
    assert "published" not in term.get("outputs", {})
    assert result["reason"] == "publishFailed"  # the local result file says so too

    calls = _copies(monkeypatch, [MissingInput("publish.uri: not found (bucket evals)")])
    rc, _, term = _run_inprocess(tmp_path, _publishing_eval(tmp_path, gate={"minTau": 2.0}), monkeypatch)
    assert rc == 16 and len(calls) == 1 and term["message"].startswith("publish.uri: not found")
    assert term["evaluation"]["gate"]["verdict"] == "Failed"
