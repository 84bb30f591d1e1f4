"""Turn the task's URIs into what a backend opens: a local path on mounted storage, a Hub id, or a
builtin:// name. Object stores (s3://, gs://) resolve to their copy on mounted storage, made before
the task runs (staging.stage_inputs)."""

from __future__ import annotations

import os
from pathlib import Path

from . import contract
from .errors import MissingInput, Unsupported


def pvc_mount(task: dict, claim: str) -> str:
    mounts = (task.get("storage") or {}).get("pvcMounts") or {}
    if claim in mounts:
        return mounts[claim]
    consts = contract.constants()
    return str(Path(os.environ.get(consts["env"]["pvcRoot"], consts["defaultPvcRoot"])) / claim)


def resolve(uri: str, task: dict, field: str = "uri") -> str:
    if uri.startswith("pvc://"):
        claim, _, sub = uri[len("pvc://") :].partition("/")
        return str(Path(pvc_mount(task, claim)) / sub) if sub else pvc_mount(task, claim)
    if uri.startswith("hf://"):
        return uri[len("hf://") :]
    if uri.startswith("builtin://"):
        return uri
    if uri.startswith(("s3://", "gs://")):
        staged = (task.get("_staged") or {}).get(uri) or (task.get("_staged") or {}).get(uri.rstrip("/"))
        if staged is None:
            raise MissingInput(f"{field}: {uri} was not staged onto mounted storage before the task ran")
        return staged
    if uri.startswith("/"):
        return uri
    raise Unsupported(f"{field}: unsupported location {uri!r}")


def require_local(path: str, field: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise MissingInput(f"{field}: {path} does not exist")
    return p


def is_local(ref: str) -> bool:
    return ref.startswith("/")
