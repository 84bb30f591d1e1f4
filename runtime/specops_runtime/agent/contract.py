"""Read the generated contract files (runtime/contract/*.json): one source with the operator's zod."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

_DEFAULT_DIR = Path(__file__).resolve().parents[2] / "contract"


def contract_dir() -> Path:
    return Path(os.environ.get("SPECOPS_CONTRACT_DIR", _DEFAULT_DIR))


@cache
def load(name: str) -> dict:
    with open(contract_dir() / name, encoding="utf-8") as f:
        return json.load(f)


def constants() -> dict:
    return load("constants.json")


def stage_outputs() -> dict:
    """File names each pipeline stage leaves in its output directory (operator and runtime agree)."""
    return constants()["stageOutputs"]


def exit_codes() -> dict[str, int]:
    """Exit reason name -> numeric code."""
    return {name: d["code"] for name, d in load("exit-codes.json")["exitCodes"].items()}


def exit_code(reason: str) -> int:
    return exit_codes()[reason]


def reason_of(code: int) -> str:
    for name, c in exit_codes().items():
        if c == code:
            return name
    return "internalError"
