"""The task contract as the Python side sees it: the generated JSON Schema, defaults, field paths."""

import copy
import json

import pytest

from specops_runtime.agent import contract
from specops_runtime.agent.errors import InvalidTask
from specops_runtime.agent.validation import validate_task

from .conftest import run_agent, task


def test_valid_train_task_gets_schema_defaults(tmp_path):
    t = validate_task(task(tmp_path))
    assert t["params"]["training"]["learningRate"] == 0.0006
    assert t["params"]["draft"] == {"blockSize": 7}
    assert t["distributed"]["masterPort"] == 29500


@pytest.mark.parametrize(
    ("kind", "backend", "params"),
    [
        ("prepare-data", "deepspec", {"prompts": {"uri": "hf://mlabonne/open-perfectblend"}}),
        ("regenerate", "reference", {"target": {"uri": "builtin://tiny"}, "inputPath": "/d/train.jsonl"}),
        (
            "target-cache",
            "deepspec",
            {"target": {"uri": "hf://Qwen/Qwen3-4B"}, "method": "eagle3", "dataPaths": ["/d/a.jsonl"]},
        ),
        (
            "eval",
            "deepspec",
            {"target": {"uri": "hf://Qwen/Qwen3-8B"}, "draft": {"uri": "pvc://c/d"}, "method": "dspark"},
        ),
        (
            "serve",
            "sglang",
            {"target": {"uri": "hf://Qwen/Qwen3-8B"}, "draft": {"uri": "pvc://c/d"}, "method": "eagle3"},
        ),
        ("profile", "reference", {"target": {"uri": "builtin://tiny"}}),
    ],
)
def test_each_kind_accepts_a_minimal_task(tmp_path, kind, backend, params):
    doc = {
        "apiVersion": "runtime.specops.dev/v1",
        "kind": kind,
        "backend": backend,
        "output": {"path": "/o"},
        "params": params,
    }
    assert validate_task(doc)["kind"] == kind


def test_eval_defaults_to_the_nine_benchmarks(tmp_path):
    doc = {
        "apiVersion": "runtime.specops.dev/v1",
        "kind": "eval",
        "backend": "deepspec",
        "output": {"path": "/o"},
        "params": {
            "target": {"uri": "hf://Qwen/Qwen3-8B"},
            "draft": {"uri": "pvc://c/d"},
            "method": "dspark",
        },
    }
    t = validate_task(doc)
    assert [x["name"] for x in t["params"]["tasks"]][:2] == ["gsm8k", "math500"]
    assert len(t["params"]["tasks"]) == 9
    assert t["params"]["decoding"]["temperature"] == 1


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda t: t["params"]["training"].update(learningRate=5), "params.training.learningRate"),
        (lambda t: t["params"]["training"].update(epochs=2), "params.training"),  # CEL: epochs xor maxSteps
        (lambda t: t["params"].pop("targetCachePath"), "params.targetCachePath"),  # deepspec needs it
        (lambda t: t["params"].update(trainng={}), "params.trainng"),  # typo: unknown field
        (lambda t: t.update(backend="vllm"), "backend"),
        (lambda t: t.update(kind="fly"), "kind"),
        (lambda t: t.update(apiVersion="runtime.specops.dev/v0"), "apiVersion"),
        (lambda t: t["output"].update(path="relative/dir"), "output.path"),
        (lambda t: t["params"]["target"].update(uri="ftp://x/y"), "params.target.uri"),
        (lambda t: t["distributed"].update(nodes=0), "distributed.nodes"),
        (lambda t: t["params"]["draft"].__class__, None),
    ],
)
def test_invalid_tasks_name_the_field(tmp_path, mutate, field):
    doc = task(tmp_path)
    doc["params"]["draft"] = {}
    mutate(doc)
    if field is None:
        validate_task(doc)  # the control: the base task is valid
        return
    with pytest.raises(InvalidTask) as e:
        validate_task(doc)
    assert str(e.value).startswith(f"{field}:"), str(e.value)


def test_agent_refuses_invalid_task_before_work_with_exit_code_and_field(tmp_path):
    doc = task(tmp_path)
    doc["params"]["training"]["learningRate"] = 5
    rc, _, err, term = run_agent(tmp_path, doc)
    assert rc == contract.exit_code("invalidTask") == 10
    assert "params.training.learningRate" in err
    msg = json.loads(term.read_text())
    assert msg["reason"] == "invalidTask" and msg["exitCode"] == 10
    assert "params.training.learningRate" in msg["message"]
    assert not (tmp_path / "out").exists()  # nothing was started


@pytest.mark.parametrize("content", ["{not json", json.dumps([1, 2])])
def test_agent_refuses_malformed_documents(tmp_path, content):
    rc, _, _, term = run_agent(tmp_path, content)
    assert rc == 10
    assert json.loads(term.read_text())["status"] == "failed"


def test_agent_refuses_missing_task_file(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(
        os.environ, SPECOPS_TERMINATION_LOG=str(tmp_path / "t"), SPECOPS_TASK=str(tmp_path / "nope.json")
    )
    rc = subprocess.run(
        [sys.executable, "-m", "specops_runtime.agent"], env=env, capture_output=True
    ).returncode
    assert rc == 10


def test_exit_codes_come_from_the_generated_contract():
    codes = contract.exit_codes()
    assert codes["success"] == 0
    assert len(set(codes.values())) == len(codes)
    assert {
        "invalidTask",
        "missingInput",
        "outOfMemory",
        "retriableInfrastructure",
        "gateFailed",
    } <= codes.keys()


def test_constants_mirror_the_operator():
    c = contract.constants()
    assert c["progress"]["defaultPort"] == 9090
    assert "speculative-.*" in c["managedEngineFlags"]
    assert c["terminationMessage"]["maxBytes"] == 4096


def test_validation_does_not_mutate_input(tmp_path):
    doc = task(tmp_path)
    before = copy.deepcopy(doc)
    validate_task(doc)
    assert doc == before
