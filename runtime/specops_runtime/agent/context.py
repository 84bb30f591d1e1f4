"""What a backend function receives besides its params: progress reporting, logging, directories,
location resolution and the stop request (SIGTERM)."""

from __future__ import annotations

import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from . import locations
from .progress import ProgressState
from .redact import redact_text


class TaskContext:
    def __init__(self, task: dict, progress: ProgressState, stop_event: threading.Event | None = None):
        self.task = task
        self.kind: str = task["kind"]
        self.backend: str = task["backend"]
        self.output_dir = Path(task["output"]["path"])
        self.work_dir = Path(task.get("workDir") or self.output_dir / ".work")
        self.progress = progress
        self.stop_event = stop_event or threading.Event()
        self.children: list = []  # subprocess.Popen objects to forward SIGTERM to

    def prepare_dirs(self) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)

    def report(self, **fields) -> None:
        self.progress.update(**fields)

    def log(self, msg: str) -> None:
        ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(
            f"{ts} [{self.kind}/{self.backend}] {redact_text(str(msg), dict(os.environ))}",
            file=sys.stderr,
            flush=True,
        )

    def resolve(self, uri: str, field: str = "uri") -> str:
        return locations.resolve(uri, self.task, field)

    def should_stop(self) -> bool:
        return self.stop_event.is_set()

    @property
    def distributed(self) -> dict:
        return self.task.get("distributed") or {"nodes": 1, "gpusPerNode": 1, "masterPort": 29500}

    @property
    def node_rank(self) -> int:
        for name in ("JOB_COMPLETION_INDEX", "RANK"):
            if os.environ.get(name, "").isdigit():
                return int(os.environ[name])
        return 0
