"""Run the task agent as a pod would: a Task file, a termination log, a progress port, pvc:// URIs
resolved under SPECOPS_PVC_ROOT. Task documents are built the way the operator builds them
(operator/src/controllers/drafttraining/tasks.ts `stageTask()`)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

RUNTIME = Path(__file__).resolve().parents[2]
API_VERSION = "runtime.specops.dev/v1"
AGENT_TIMEOUT_S = 300


@pytest.fixture(scope="session")
def tiny_target() -> Path:
    """Trains the tiny target once (if this machine has not cached it yet) before any agent runs,
    so the agents started side by side find it in the cache instead of training it each."""
    from specops_runtime.reference.target import ensure_tiny_target

    return ensure_tiny_target()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AgentRun:
    name: str
    proc: subprocess.Popen
    termination_log: Path
    progress_port: int
    log_file: Path

    def wait(self, timeout: float = AGENT_TIMEOUT_S) -> Finished:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"{self.name}: agent still running after {timeout}s\n{self.log_tail()}"
            ) from None
        text = self.termination_log.read_text() if self.termination_log.exists() else ""
        return Finished(self.name, self.proc.returncode, text, self.log_tail())

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Finished:
    name: str
    exit_code: int
    termination_text: str
    log: str

    @property
    def result(self) -> dict:
        return json.loads(self.termination_text)


def start_agent(task: dict, scratch: Path, name: str, pvc_root: Path) -> AgentRun:
    """Starts ``python -m specops_runtime.agent --task <file>`` (does not wait)."""
    base = scratch / "agent" / name
    base.mkdir(parents=True, exist_ok=True)
    task_file = base / "task.json"
    task_file.write_text(json.dumps(task, indent=2))
    port = free_port()
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(RUNTIME),
        SPECOPS_TERMINATION_LOG=str(base / "termination-log"),
        SPECOPS_PROGRESS_PORT=str(port),
        SPECOPS_PVC_ROOT=str(pvc_root),
        SPECOPS_TORCH_THREADS="1",
        SPECOPS_TERMINATION_GRACE_SECONDS="10",
    )
    log_file = base / "agent.log"
    with open(log_file, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "specops_runtime.agent", "--task", str(task_file)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(base),
        )
    return AgentRun(name, proc, base / "termination-log", port, log_file)


def run_all(runs: list[AgentRun]) -> dict[str, Finished]:
    return {r.name: r.wait() for r in runs}


def result_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((RUNTIME / "contract" / "result.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def http_get(url: str, timeout: float = 30) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


def http_post(url: str, body: dict, timeout: float = 60) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def wait_http(url: str, run: AgentRun, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.proc.poll() is not None:
            raise AssertionError(f"{run.name} exited {run.proc.returncode}\n{run.log_tail()}")
        try:
            if http_get(url, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"{url} did not answer within {timeout}s\n{run.log_tail()}")


def metric(text: str, name: str) -> float:
    """Sum of a Prometheus metric's samples over all label sets."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total
