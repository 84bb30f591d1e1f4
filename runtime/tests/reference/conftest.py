"""Shared fixtures: one tiny pipeline per test session (target -> regenerate -> cache -> drafts).

The tiny target is cached by recipe hash under $SPECOPS_CACHE_DIR (default ~/.cache/specops), so
only the first run on a machine pays for training it (~1 minute on 2 cores).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from specops_runtime.reference import tasks
from specops_runtime.reference.context import RunContext
from specops_runtime.reference.device import configure_threads
from specops_runtime.reference.target import ensure_tiny_target, load_target

TRAIN_SAMPLES_PER_TASK = 300
EPOCHS = 4


@dataclass
class Pipeline:
    root: Path
    target_path: Path
    data: dict
    regenerated: dict
    cache: dict
    trained: dict[str, dict]  # method -> train result
    train_reports: dict[str, list[dict]]


@pytest.fixture(scope="session", autouse=True)
def _single_thread() -> None:
    configure_threads(1)


@pytest.fixture(scope="session")
def target_path() -> Path:
    return ensure_tiny_target()


@pytest.fixture(scope="session")
def target(target_path: Path):
    return load_target(target_path, torch.device("cpu"))


def context(root: Path, name: str) -> RunContext:
    return RunContext(output_dir=root / name, work_dir=root / "work")


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory, target_path: Path) -> Pipeline:
    root = tmp_path_factory.mktemp("pipeline")
    common = {"targetModel": str(target_path), "seed": 0}
    data = tasks.prepare_data(
        {
            **common,
            "tasks": [{"name": n, "samples": TRAIN_SAMPLES_PER_TASK} for n in ("math", "code", "chat")],
            "evalSamples": 12,
        },
        context(root, "data"),
    )
    regenerated = tasks.regenerate(
        {
            **common,
            "trainData": data["trainData"],
            "temperature": 1.0,
            "topP": 1.0,
            "topK": 0,
            "maxNewTokens": 40,
        },
        context(root, "regenerate"),
    )
    cache = tasks.target_cache({**common, "trainData": regenerated["trainData"]}, context(root, "cache"))
    trained, reports = {}, {}
    for method in ("eagle3", "dspark"):
        ctx = context(root, f"train-{method}")
        trained[method] = tasks.train(
            {
                **common,
                "method": method,
                "targetCache": cache["targetCache"],
                "epochs": EPOCHS,
                "blockSize": 4,
                "loggingSteps": 10,
            },
            ctx,
        )
        reports[method] = ctx.reports
    return Pipeline(root, target_path, data, regenerated, cache, trained, reports)
