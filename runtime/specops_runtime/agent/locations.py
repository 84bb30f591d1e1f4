"""Turn the task's URIs into what a backend opens: a local path on mounted storage, a Hub id, or a
builtin:// name. Object stores (s3://, gs://) are not read here: the operator must stage them onto
storage first (this image carries no object-store client)."""

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
        raise Unsupported(
            f"{field}: {uri.split('://')[0]}:// must be staged onto mounted storage by the operator"
        )
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
