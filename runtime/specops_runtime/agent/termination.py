"""The termination message: a compact result, valid JSON, at most 4096 bytes (Kubernetes cuts
longer messages, which would break the JSON)."""

from __future__ import annotations

import json
import logging
import os

from . import contract

log = logging.getLogger("specops.agent")

_TOP = (
    "apiVersion",
    "kind",
    "taskKind",
    "backend",
    "status",
    "exitCode",
    "reason",
    "message",
    "startTime",
    "completionTime",
    "durationSeconds",
    "resultPath",
    "outputs",
    "training",
    "evaluation",
    "load",
    "profile",
)


def _dump(doc: dict) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _size(doc: dict) -> int:
    return len(_dump(doc).encode("utf-8"))


def compact(result: dict, max_bytes: int | None = None) -> str:
    """The most informative subset of the result that fits; sets truncated: true when anything
    beyond `details` had to go."""
    limit = max_bytes or contract.constants()["terminationMessage"]["maxBytes"]
    doc = {k: result[k] for k in _TOP if k in result}
    if _size(doc) <= limit:
        return _dump(doc)
    doc["truncated"] = True
    # Drop detail first, the verdict last: per-position rates, file lists, per-task rows, tables.
    steps = [
        lambda d: [
            (r.get("vllmConvention") or {}).pop("acceptanceByPosition", None)
            for r in d.get("evaluation", {}).get("results", [])
        ],
        lambda d: [r.pop("acceptanceByPosition", None) for r in d.get("evaluation", {}).get("results", [])],
        lambda d: d.get("outputs", {}).pop("files", None),
        lambda d: d.get("outputs", {}).pop("dataPaths", None),
        lambda d: d.pop("profile", None),
        lambda d: (
            d.get("evaluation", {}).update(
                results=[
                    {"name": r.get("name"), "tau": r.get("tau")} for r in d["evaluation"].get("results", [])
                ]
            )
            if "evaluation" in d
            else None
        ),
        lambda d: d.get("evaluation", {}).pop("results", None),
        lambda d: d.get("evaluation", {}).get("gate", {}).pop("reasons", None),
    ]
    for step in steps:
        step(doc)
        if _size(doc) <= limit:
            return _dump(doc)
    message = doc.get("message", "")
    if message:
        # Binary search the longest message prefix that fits.
        lo, hi = 0, len(message)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            doc["message"] = message[:mid] + "…"
            if _size(doc) <= limit:
                lo = mid
            else:
                hi = mid - 1
        doc["message"] = message[:lo] + "…"
        if _size(doc) <= limit:
            return _dump(doc)
    keep = ("status", "exitCode", "reason", "taskKind", "backend", "resultPath")
    minimal = {k: doc[k] for k in keep if k in doc}
    minimal["truncated"] = True
    out = _dump(minimal)
    return out if len(out.encode()) <= limit else _dump({"exitCode": doc.get("exitCode"), "truncated": True})


def termination_log_path() -> str:
    consts = contract.constants()
    return os.environ.get(consts["env"]["terminationLog"], consts["terminationMessage"]["defaultPath"])


def write(result: dict) -> str | None:
    path = termination_log_path()
    message = compact(result)
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(message)
    except OSError as e:  # outside Kubernetes the default path may not be writable
        log.warning("could not write termination message to %s: %s", path, e)
        return None
    return path
