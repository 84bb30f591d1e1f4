"""Shared fixtures: one tiny pipeline per test session (target -> regenerate -> cache -> drafts),
called in-process with the contract's Task params.

The tiny target is cached by recipe hash under $SPECOPS_CACHE_DIR (default ~/.cache/specops), so
only the first run on a machine pays for training it (~1 minute on 2 cores).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from specops_runtime.reference import tasks
from specops_runtime.reference.context import RunContext
from specops_runtime.reference.device import configure_threads
from specops_runtime.reference.target import ensure_tiny_target, load_target

TRAIN_SAMPLES = 900  # 300 per synthetic task set
EPOCHS = 4
CLAIM = "ref"
TARGET = {"uri": "builtin://tiny-qwen3"}


@dataclass
class Pipeline:
    root: Path  # the pvc:// claim "ref" (SPECOPS_PVC_ROOT/ref)
    target_path: Path
    data: dict  # contract results of each stage
    regenerated: dict
    cache: dict
    trained: dict[str, dict]  # method -> train result
    train_reports: dict[str, list[dict]]

    def checkpoint(self, method: str) -> str:
        return self.trained[method]["outputs"]["checkpoint"]["path"]

    def draft_uri(self, method: str) -> str:
        """The draft as a Task names it: pvc:// to the train output (its step_latest is found)."""
        return f"pvc://{CLAIM}/train-{method}"


@pytest.fixture(scope="session", autouse=True)
def _single_thread() -> None:
    configure_threads(1)


@pytest.fixture(scope="session")
def pvc_root(tmp_path_factory: pytest.TempPathFactory):
    """pvc://<claim>/x resolves to <root>/<claim>/x, as in a pod (SPECOPS_PVC_ROOT)."""
    root = tmp_path_factory.mktemp("pvc")
    previous = os.environ.get("SPECOPS_PVC_ROOT")
    os.environ["SPECOPS_PVC_ROOT"] = str(root)
    yield root
    if previous is None:
        os.environ.pop("SPECOPS_PVC_ROOT", None)
    else:
        os.environ["SPECOPS_PVC_ROOT"] = previous


@pytest.fixture(scope="session")
def target_path() -> Path:
    return ensure_tiny_target()


@pytest.fixture(scope="session")
def target(target_path: Path):
    return load_target(target_path, torch.device("cpu"))


def context(root: Path, name: str) -> RunContext:
    return RunContext(output_dir=root / name, work_dir=root / "work")


@pytest.fixture(scope="session")
def pipeline(pvc_root: Path, target_path: Path) -> Pipeline:
    root = pvc_root / CLAIM
    data = tasks.prepare_data(
        {
            "prompts": {"uri": "builtin://tiny-mix"},
            "maxSamples": TRAIN_SAMPLES,
            "heldOutFraction": 0.0,
            "seed": 0,
        },
        context(root, "data"),
    )
    regenerated = tasks.regenerate(
        {
            "target": TARGET,
            "inputPath": data["outputs"]["dataPaths"][0],
            "temperature": 1.0,
            "topP": 1.0,
            "topK": -1,
            "maxTokens": 40,
        },
        context(root, "regenerate"),
    )
    cache = tasks.target_cache(
        {
            "target": TARGET,
            "method": "dspark",
            "dataPaths": regenerated["outputs"]["dataPaths"],
            "minLossTokens": 0,
        },
        context(root, "cache"),
    )
    trained, reports = {}, {}
    for method in ("eagle3", "dspark"):
        ctx = context(root, f"train-{method}")
        trained[method] = tasks.train(
            {
                "target": TARGET,
                "method": method,
                "draft": {"blockSize": 4},
                "training": {"epochs": EPOCHS, "globalBatchSize": 32, "learningRate": 3e-3, "seed": 0},
                "targetCachePath": cache["outputs"]["targetCachePath"],
            },
            ctx,
        )
        reports[method] = ctx.reports
    return Pipeline(root, target_path, data, regenerated, cache, trained, reports)
