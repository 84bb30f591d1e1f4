"""A minimal run context for calling the reference tasks in-process (the agent passes its own
TaskContext, which has the same methods)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunContext:
    """What a task may use: directories, a progress sink and a log line sink."""

    output_dir: Path
    work_dir: Path
    reports: list[dict[str, Any]] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    echo: bool = False

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)
        self.work_dir = Path(self.work_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)

    def report(self, **fields: Any) -> None:
        self.reports.append(fields)
        if self.echo:
            print("progress", fields, file=sys.stderr, flush=True)

    def resolve(self, uri: str, field: str = "uri") -> str:
        """Same mapping as the agent's context (pvc:// via $SPECOPS_PVC_ROOT, builtin:// kept)."""
        from ..agent import locations

        return locations.resolve(uri, {}, field)

    def should_stop(self) -> bool:
        return False

    def log(self, message: str) -> None:
        self.logs.append(message)
        if self.echo:
            print(message, file=sys.stderr, flush=True)
