import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def task(tmp_path: Path, **over) -> dict:
    doc = {
        "apiVersion": "runtime.specops.dev/v1",
        "kind": "train",
        "backend": "deepspec",
        "output": {"path": str(tmp_path / "out")},
        "distributed": {"nodes": 1, "gpusPerNode": 1},
        "params": {
            "target": {"uri": "hf://Qwen/Qwen3-8B"},
            "method": "dspark",
            "targetCachePath": str(tmp_path / "cache"),
            "training": {"maxSteps": 30, "globalBatchSize": 8},
        },
    }
    doc.update(over)
    return doc


def run_agent(tmp_path: Path, doc, env_extra: dict | None = None, wait: bool = True):
    task_file = tmp_path / "task.json"
    task_file.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    env = dict(os.environ)
    env.update(
        SPECOPS_TERMINATION_LOG=str(tmp_path / "termination-log"),
        SPECOPS_PROGRESS_PORT="0",
        PYTHONPATH=str(RUNTIME),
    )
    env.update(env_extra or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "specops_runtime.agent", "--task", str(task_file)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if not wait:
        return proc
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err, tmp_path / "termination-log"


@pytest.fixture
def make_task(tmp_path):
    return lambda **over: task(tmp_path, **over)
