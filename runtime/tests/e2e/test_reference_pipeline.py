"""The reference backend through the task agent, end to end, as pods run it.

Two DraftTrainings (eagle3, dflash) go through prepare-data -> regenerate -> target-cache -> train
with Task documents built like the operator's ``stageTask()``; their drafts are then evaluated
(AcceptanceEval-style tasks) against untrained drafts of the same shape, served over HTTP, and
invalid or unknown inputs are refused with the contract's exit codes. The tiny target is cached
on disk (SPECOPS_CACHE_DIR / ~/.cache/specops), so only a machine's first run trains it.
"""

from __future__ import annotations

import copy
import json
import signal
from pathlib import Path

import pytest

from .conftest import (
    API_VERSION,
    Finished,
    http_get,
    http_post,
    metric,
    result_validator,
    run_all,
    start_agent,
    wait_http,
)

CLAIM = "specops-e2e"
METHODS = ("eagle3", "dflash")
BLOCK_SIZE = 4

# examples/tiny-drafttraining.yaml after the operator's zod parse (defaults filled in), except that
# the draft keeps the reference's default layer count so untrained-draft has the same shape.
SPEC = {
    "target": {"uri": "builtin://tiny-qwen3"},
    "backend": "reference",
    "draft": {"blockSize": BLOCK_SIZE},
    "data": {
        "prompts": {"uri": "builtin://tiny-mix"},
        "heldOutFraction": 0.05,
        "maxSamples": 256,
        "regenerate": {
            "enabled": True,
            "engine": "reference",
            "replicas": 1,
            "gpusPerReplica": 0,
            "concurrency": 32,
            "temperature": 0.7,
            "topP": 0.8,
            "topK": 20,
            "minP": 0,
            "maxTokens": 4096,
            "thinking": False,
        },
        "targetCache": {"minLossTokens": 14, "batchSize": 16},
    },
    "training": {
        "maxSteps": 200,
        "learningRate": 0.0006,
        "warmupRatio": 0.04,
        "globalBatchSize": 16,
        "perGpuBatchSize": 16,
        "maxLength": 4096,
        "precision": "fp32",
        "checkpointInterval": 100,
        "seed": 42,
    },
    "resources": {"nodes": 1, "gpusPerNode": 0},
}


class Layout:
    """plan.ts storageLayout(): <pvc root>/<claim>/specops/drafttrainings/<name>, and its pvc:// URI."""

    def __init__(self, pvc_root: Path, name: str):
        relative = f"specops/drafttrainings/{name}"
        self.name = name
        self.root = pvc_root / CLAIM / relative
        self.root_uri = f"pvc://{CLAIM}/{relative}"

    def stage_dir(self, slug: str) -> str:
        return str(self.root / slug)

    def latest_checkpoint_uri(self) -> str:
        return f"{self.root_uri}/train/checkpoints/specops/draft/step_latest"


def stage_task(spec: dict, method: str, stage: str, layout: Layout) -> dict:
    """tasks.ts stageTask() for the reference backend."""
    slug = {"PrepareData": "data", "Regenerate": "regen", "TargetCache": "cache", "Train": "train"}[stage]
    common = {
        "apiVersion": API_VERSION,
        "metadata": {
            "name": f"{layout.name}-{slug}",
            "namespace": "default",
            "owner": {"kind": "DraftTraining", "name": layout.name, "uid": "0000-e2e"},
        },
        "output": {"path": layout.stage_dir(slug)},
        "backend": spec["backend"],
    }
    distributed = {
        "nodes": spec["resources"]["nodes"] if stage == "Train" else 1,
        "gpusPerNode": spec["resources"]["gpusPerNode"],
    }
    data = spec["data"]
    train_data = f"{layout.stage_dir('regen')}/train_regen.jsonl"
    if stage == "PrepareData":
        params = {
            "prompts": data["prompts"],
            "heldOutFraction": data["heldOutFraction"],
            "maxSamples": data["maxSamples"],
            "seed": spec["training"]["seed"],
        }
        return {**common, "kind": "prepare-data", "params": params}
    if stage == "Regenerate":
        sampling = {
            k: v
            for k, v in data["regenerate"].items()
            if k not in ("enabled", "engine", "replicas", "gpusPerReplica")
        }
        params = {
            **sampling,
            "target": spec["target"],
            "inputPath": f"{layout.stage_dir('data')}/train.jsonl",
        }
        return {**common, "kind": "regenerate", "params": params}
    if stage == "TargetCache":
        params = {
            **data["targetCache"],
            "target": spec["target"],
            "method": method,
            "draft": spec["draft"],
            "dataPaths": [train_data],
            "maxLength": spec["training"]["maxLength"],
        }
        return {**common, "kind": "target-cache", "distributed": distributed, "params": params}
    params = {
        "target": spec["target"],
        "method": method,
        "draft": spec["draft"],
        "training": spec["training"],
        "targetCachePath": f"{layout.stage_dir('cache')}/target_cache",
        "dataPaths": [train_data],
        "experiment": "draft",
    }
    return {**common, "kind": "train", "distributed": distributed, "params": params}


def eval_task(
    layout: Layout, method: str, draft_uri: str, out: str, gate: dict | None, baseline: bool
) -> dict:
    """An AcceptanceEval-style eval task: a custom builtin source, a held-out set from prepare-data's
    eval_datasets (no source) and the reference's own task name."""
    params = {
        "target": {"uri": "builtin://tiny-qwen3"},
        "draft": {"uri": draft_uri},
        "method": method,
        "tasks": [
            {"name": "tiny-math", "samples": 8, "source": {"uri": "builtin://tiny-math"}},
            {"name": "tiny-chat", "samples": 8},
            {"name": "code", "samples": 8},
        ],
        "decoding": {
            "temperature": 1,
            "maxNewTokens": 48,
            "numSpeculativeTokens": BLOCK_SIZE,
            "seed": 980406,
            "thinking": False,
        },
        "baseline": baseline,
        "evalDataDir": f"{layout.stage_dir('data')}/eval_datasets",
    }
    if gate:
        params["gate"] = gate
    return {
        "apiVersion": API_VERSION,
        "kind": "eval",
        "backend": "reference",
        "metadata": {"name": out.rsplit("/", 1)[-1]},
        "output": {"path": out},
        "distributed": {"nodes": 1, "gpusPerNode": 0},
        "params": params,
    }


def check_finished(run: Finished, exit_code: int = 0) -> dict:
    assert run.exit_code == exit_code, f"{run.name}: exit {run.exit_code}\n{run.log}"
    assert len(run.termination_text.encode()) <= 4096, run.name
    result = run.result  # valid JSON
    errors = [e.message for e in result_validator().iter_errors(result)]
    assert not errors, f"{run.name}: termination message does not match result.schema.json: {errors}"
    assert result["exitCode"] == exit_code
    return result


@pytest.fixture(scope="module")
def pvc_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pvc")


@pytest.fixture(scope="module")
def pipeline(pvc_root: Path, tmp_path_factory, tiny_target: Path) -> dict:
    """Every stage of both DraftTrainings (stages of the two run side by side), then the evals."""
    scratch = tmp_path_factory.mktemp("agents")
    layouts = {m: Layout(pvc_root, f"tiny-{m}") for m in METHODS}
    finished: dict[str, Finished] = {}
    for stage in ("PrepareData", "Regenerate", "TargetCache", "Train"):
        runs = [
            start_agent(stage_task(SPEC, m, stage, layouts[m]), scratch, f"{m}-{stage}", pvc_root)
            for m in METHODS
        ]
        finished.update(run_all(runs))
        for run in (finished[f"{m}-{stage}"] for m in METHODS):
            check_finished(run)
    evals = []
    for m in METHODS:
        layout = layouts[m]
        trained = eval_task(
            layout, m, layout.latest_checkpoint_uri(), str(layout.root / "eval"), {"minTau": 1.5}, True
        )
        untrained = eval_task(
            layout,
            m,
            "builtin://untrained-draft",
            str(layout.root / "eval-untrained"),
            {"minTau": 1.5},
            False,
        )
        evals += [(f"{m}-eval", trained), (f"{m}-eval-untrained", untrained)]
    finished.update(run_all([start_agent(task, scratch, name, pvc_root) for name, task in evals]))
    return {"layouts": layouts, "finished": finished, "scratch": scratch}


@pytest.mark.parametrize("method", METHODS)
def test_stages_leave_the_contract_outputs(pipeline, method):
    layout = pipeline["layouts"][method]
    done = pipeline["finished"]
    data = check_finished(done[f"{method}-PrepareData"])
    assert data["taskKind"] == "prepare-data" and data["status"] == "succeeded"
    assert data["outputs"]["dataPaths"] == [f"{layout.stage_dir('data')}/train.jsonl"]
    eval_dir = Path(data["outputs"]["evalDataDir"])
    assert eval_dir == layout.root / "data" / "eval_datasets"
    held_out = {p.name for p in eval_dir.glob("*.jsonl")}
    assert held_out and held_out <= {"tiny-math.jsonl", "tiny-code.jsonl", "tiny-chat.jsonl"}
    train_rows = Path(data["outputs"]["dataPaths"][0]).read_text().splitlines()
    assert len(train_rows) == data["outputs"]["samples"] == 256 - round(256 * 0.05)

    regen = check_finished(done[f"{method}-Regenerate"])
    regen_file = Path(regen["outputs"]["dataPaths"][0])
    assert regen_file == layout.root / "regen" / "train_regen.jsonl"
    rows = [json.loads(line) for line in regen_file.read_text().splitlines()]
    assert len(rows) == regen["outputs"]["samples"] >= 0.9 * len(train_rows)
    assert all(r["conversations"][-1]["role"] == "assistant" for r in rows)

    cache = check_finished(done[f"{method}-TargetCache"])
    assert cache["outputs"]["targetCachePath"] == f"{layout.stage_dir('cache')}/target_cache"
    assert (layout.root / "cache" / "target_cache" / "manifest.json").exists()
    assert 0 < cache["outputs"]["samples"] <= len(rows)

    train = check_finished(done[f"{method}-Train"])
    checkpoint = train["outputs"]["checkpoint"]
    root = layout.root / "train" / "checkpoints" / "specops" / "draft"
    assert checkpoint == {"path": str(root / "step_200"), "step": 200, "format": "reference"}
    assert (root / "step_latest").resolve() == root / "step_200"
    assert (root / "step_100" / "config.json").exists()  # checkpointInterval
    training = train["training"]
    assert training["step"] == training["totalSteps"] == 200
    assert training["loss"] > 0 and training["tauEstimate"] > 1.0
    full = json.loads((layout.root / "train" / "result.json").read_text())
    assert full["details"]["method"] == method


@pytest.mark.parametrize("method", METHODS)
def test_trained_draft_beats_untrained_draft_of_the_same_shape(pipeline, method):
    done = pipeline["finished"]
    trained = check_finished(done[f"{method}-eval"])["evaluation"]
    untrained = check_finished(done[f"{method}-eval-untrained"], exit_code=14)  # below its gate
    assert untrained["reason"] == "gateFailed" and untrained["evaluation"]["gate"]["verdict"] == "Failed"
    untrained = untrained["evaluation"]
    for evaluation in (trained, untrained):
        assert [r["name"] for r in evaluation["results"]] == ["tiny-math", "tiny-chat", "code"]
        for row in evaluation["results"]:
            assert row["samples"] >= 1 and 1.0 <= row["tau"] <= BLOCK_SIZE + 1
            assert len(row["acceptanceByPosition"]) == BLOCK_SIZE
            assert 0 < row["verifyRate"] <= 1 and row["tokensPerSecond"] > 0
    assert trained["gate"] == {"verdict": "Passed"}
    for row in trained["results"]:  # baseline: true
        assert row["baselineTokensPerSecond"] > 0
        assert row["speedup"] == pytest.approx(row["tokensPerSecond"] / row["baselineTokensPerSecond"])
    assert "macroSpeedup" in trained["summary"] and "macroSpeedup" not in untrained["summary"]
    assert trained["summary"]["samples"] == sum(r["samples"] for r in trained["results"])
    assert untrained["summary"]["macroTau"] < 1.3
    assert trained["summary"]["macroTau"] > untrained["summary"]["macroTau"] + 0.4
    by_name = {r["name"]: r for r in untrained["results"]}
    for row in trained["results"]:
        assert row["tau"] > by_name[row["name"]]["tau"] + 0.2, row["name"]
        assert row["acceptanceByPosition"][0] > by_name[row["name"]]["acceptanceByPosition"][0]


def test_serve_answers_completions_and_exposes_vllm_metrics(pipeline, pvc_root):
    from .conftest import free_port

    layout = pipeline["layouts"]["dflash"]
    port = free_port()
    task = {
        "apiVersion": API_VERSION,
        "kind": "serve",
        "backend": "reference",
        "metadata": {"name": "tiny-serve"},
        "output": {"path": str(layout.root / "serve")},
        "params": {
            "target": {"uri": "builtin://tiny-qwen3"},
            "method": "dflash",
            "draft": {"uri": layout.latest_checkpoint_uri()},
            "speculative": {"numSpeculativeTokens": BLOCK_SIZE},
            "port": port,
            "servedModelName": "tiny-serve",
        },
    }
    run = start_agent(task, pipeline["scratch"], "serve", pvc_root)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/health", run)
        answer = http_post(
            base + "/v1/completions",
            {"model": "tiny-serve", "prompt": "count by 3 from 4 :", "max_tokens": 24, "temperature": 0},
        )
        assert answer["choices"][0]["text"] and answer["usage"]["completion_tokens"] > 0
        _, metrics = http_get(base + "/metrics")
        assert metric(metrics, "vllm:spec_decode_num_drafts_total") > 0
        assert metric(metrics, "vllm:spec_decode_num_accepted_tokens_total") >= 0
        assert metric(metrics, "vllm:request_success_total") == 1
        _, progress = http_get(f"http://127.0.0.1:{run.progress_port}/progress")
        assert json.loads(progress)["stage"] == "serve" and json.loads(progress)["state"] == "running"
    finally:
        run.proc.send_signal(signal.SIGTERM)
    stopped = run.wait(timeout=60)
    result = check_finished(stopped, exit_code=143)
    assert result["status"] == "terminated"


def test_invalid_and_missing_inputs_are_refused_naming_the_field(pipeline, pvc_root):
    layout = pipeline["layouts"]["eagle3"]
    invalid = copy.deepcopy(stage_task(SPEC, "eagle3", "Train", layout))
    invalid["params"]["training"]["learningRate"] = 5
    invalid["output"]["path"] = str(layout.root / "train-invalid")
    unknown = eval_task(
        layout, "eagle3", layout.latest_checkpoint_uri(), str(layout.root / "eval-unknown"), None, False
    )
    unknown["params"]["tasks"] = [{"name": "poems", "source": {"uri": "builtin://tiny-poems"}}]
    done = run_all(
        [
            start_agent(invalid, pipeline["scratch"], "invalid", pvc_root),
            start_agent(unknown, pipeline["scratch"], "unknown", pvc_root),
        ]
    )
    refused = check_finished(done["invalid"], exit_code=10)
    assert refused["reason"] == "invalidTask"
    assert refused["message"].startswith("params.training.learningRate:")
    missing = check_finished(done["unknown"], exit_code=11)
    assert missing["reason"] == "missingInput"
    assert missing["message"].startswith("params.tasks[0].source.uri: unknown builtin 'tiny-poems'")
