"""What vLLM and SGLang share: refusing managed flags, reading the draft's format, resolving models."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..agent.contract import constants
from ..agent.errors import InvalidTask

DEEPSPEC_BLOCK_ARCHS = {"Qwen3DSparkModel", "Gemma4DSparkModel", "DSparkDraftModel"}


def check_extra_args(args: list[str] | None) -> list[str]:
    pattern = re.compile(constants()["managedEngineFlagPattern"])
    for i, a in enumerate(args or []):
        if pattern.match(a):
            raise InvalidTask(f"params.extraEngineArgs[{i}]: {a.split('=')[0]} is managed by SpecOps")
    return list(args or [])


def read_config(path: str) -> dict | None:
    f = Path(path) / "config.json"
    if not path.startswith("/") or not f.exists():
        return None
    return json.loads(f.read_text())


def draft_format(params: dict, draft_ref: str | None) -> str:
    """deepspec or native. auto reads config.json when the draft is local; a Hub draft is taken as
    native (z-lab DFlash, SpecForge Eagle3) unless the task says deepspec."""
    declared = params.get("draftFormat", "auto")
    if declared != "auto" or draft_ref is None:
        return "native" if declared == "auto" else declared
    cfg = read_config(draft_ref) or {}
    archs = set(cfg.get("architectures") or [])
    if archs & (DEEPSPEC_BLOCK_ARCHS | {"Qwen3Eagle3Model", "Gemma4Eagle3Model"}):
        return "deepspec"
    return "native"


def engine_method(method: str, fmt: str) -> str:
    """The method name the engine must be told. DeepSpec's DFlash is its DSpark model with the Markov
    head off (Qwen3DSparkModel), not z-lab's DFlashDraftModel: the engines load it on the dspark path."""
    if method == "dflash" and fmt == "deepspec":
        return "dspark"
    return method


def require_method_for_draft(params: dict, draft_ref: str | None) -> None:
    """A draft with no method would be served as a plain target: refuse instead of ignoring it."""
    if draft_ref is not None and not params.get("method"):
        raise InvalidTask("params.method: a draft needs a method")
