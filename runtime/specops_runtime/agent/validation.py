"""Refuse an invalid task before any work, naming the field (JSON Schema from the zod source), and
fill in the schema's defaults so backends see the same values the operator's zod parse produces."""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema

from . import contract
from .errors import InvalidTask


def format_path(path) -> str:
    out = ""
    for seg in path:
        if isinstance(seg, int):
            out += f"[{seg}]"
        else:
            out += f".{seg}" if out else str(seg)
    return out or "<task>"


def _variant(schema: dict, kind: str) -> dict | None:
    for v in schema["oneOf"]:
        if v["properties"]["kind"].get("const") == kind:
            return v
    return None


def _error_path(err: jsonschema.ValidationError) -> str:
    path = list(err.absolute_path)
    # A missing required property is reported on its parent; name the property itself.
    if err.validator == "required":
        m = re.match(r"'([^']+)' is a required property", err.message)
        if m:
            path.append(m.group(1))
    if err.validator == "additionalProperties":
        m = re.search(r"\('([^']+)'", err.message)
        if m:
            path.append(m.group(1))
    return format_path(path)


# The API's cross-field CEL rules of the two generated shapes (exactlyOne/atMostOne). Other CEL rules
# are enforced by the operator's zod parse and by the backends' own checks.
_HAS_LIST = re.compile(r"^\[((?:has\(self\.[A-Za-z0-9_]+\)(?:, )?)+)\]\.filter\(x, x\)\.size\(\) (==|<=) 1$")


def _cel_errors(node: Any, schema: dict, path: list) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for rule in schema.get("x-kubernetes-validations", []):
            m = _HAS_LIST.match(rule.get("rule", ""))
            if not m:
                continue
            fields = re.findall(r"has\(self\.([A-Za-z0-9_]+)\)", m.group(1))
            count = sum(1 for f in fields if f in node)
            if (m.group(2) == "==" and count != 1) or (m.group(2) == "<=" and count > 1):
                errors.append((format_path(path), rule["message"]))
        for key, sub in schema.get("properties", {}).items():
            if key in node:
                errors += _cel_errors(node[key], sub, [*path, key])
    elif isinstance(node, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(node):
            errors += _cel_errors(item, schema["items"], [*path, i])
    return errors


def apply_defaults(node: Any, schema: dict) -> Any:
    """Sets missing properties that have a default, recursively (a default of {} then gets its own
    defaults, like zod's prefault)."""
    if isinstance(node, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in node and "default" in sub:
                node[key] = copy.deepcopy(sub["default"])
            if key in node:
                node[key] = apply_defaults(node[key], sub)
    elif isinstance(node, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(item, schema["items"]) for item in node]
    return node


def validate_task(doc: Any) -> dict:
    """Returns the task with defaults applied, or raises InvalidTask('<field>: <why>')."""
    consts = contract.constants()
    if not isinstance(doc, dict):
        raise InvalidTask("<task>: must be a JSON object")
    if doc.get("apiVersion") != consts["apiVersion"]:
        raise InvalidTask(f"apiVersion: must be {consts['apiVersion']!r}, got {doc.get('apiVersion')!r}")
    schema = contract.load("task.schema.json")
    variant = _variant(schema, doc.get("kind"))
    if variant is None:
        raise InvalidTask(f"kind: must be one of {', '.join(consts['taskKinds'])}, got {doc.get('kind')!r}")
    validator = jsonschema.Draft202012Validator(variant)
    errors = sorted(validator.iter_errors(doc), key=lambda e: (len(list(e.absolute_path)), e.message))
    problems = [(_error_path(e), e.message) for e in errors]
    if not problems:
        problems = _cel_errors(doc, variant, [])
    if problems:
        first = "; ".join(f"{p}: {m}" for p, m in problems[:5])
        raise InvalidTask(first + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    return apply_defaults(copy.deepcopy(doc), variant)
