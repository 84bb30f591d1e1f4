"""vLLM: `vllm serve` with the speculative method always explicit (auto-detection guesses from the
path: a DeepSpec DFlash draft in a folder named *dflash* would load on the wrong path)."""

from __future__ import annotations

import json

from ..agent.errors import InvalidTask
from . import engines, serving

HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"
PINNED_VERSION = "0.33.0"
# Methods SpecOps passes that vLLM 0.33.0's SpeculativeConfig accepts (tests/fixtures/upstream_facts.json).
METHODS = {"eagle3", "dflash", "dspark", "mtp"}
# A draft inside the target checkpoint (SpecServe draft.builtIn): no "model" key, vLLM loads it from the
# target (test/fixtures/engines/builtin-drafts.json): DeepSeek-style MTP heads, DeepSeek-V4's DSpark drafter.
BUILT_IN = {"mtp", "dspark"}


def batch_size_schedule(ranges: list[dict]) -> list[list[int]]:
    """`num_speculative_tokens_per_batch_size` as vLLM 0.33.0 validates it
    (vllm/v1/spec_decode/dynamic/utils.py): inclusive [start, end, K] ranges, sorted, not
    overlapping, the first starting at batch 1, K >= 0 (K above num_speculative_tokens is clamped)."""
    schedule = sorted(([r["minBatch"], r["maxBatch"], r["tokens"]] for r in ranges), key=lambda e: e[0])
    if schedule[0][0] != 1:
        raise InvalidTask("params.speculative.lengthByBatchSize: the first range must start at minBatch 1")
    for prev, cur in zip(schedule, schedule[1:], strict=False):
        if cur[0] <= prev[1]:
            raise InvalidTask(
                f"params.speculative.lengthByBatchSize: ranges {prev[0]}-{prev[1]} and {cur[0]}-{cur[1]} overlap"
            )
    return schedule


def speculative_config(params: dict, draft_ref: str | None, fmt: str) -> dict:
    spec = params.get("speculative") or {}
    method = engines.engine_method(params["method"], fmt)
    if method not in METHODS:
        raise InvalidTask(f"params.method: vLLM {PINNED_VERSION} has no speculative method {method!r}")
    cfg: dict = {"method": method}
    if method == "mtp" and draft_ref is not None:
        raise InvalidTask(
            "params.draft: method mtp loads its heads from the target checkpoint; give no draft"
        )
    if draft_ref is not None:
        cfg["model"] = draft_ref
    elif method not in BUILT_IN:
        raise InvalidTask(
            f"params.draft: vLLM needs a draft model for {method}; only mtp and dspark can be built into the target"
        )
    if spec.get("numSpeculativeTokens") is not None:
        cfg["num_speculative_tokens"] = spec["numSpeculativeTokens"]
    if spec.get("loadAdaptation") == "Engine":
        ranges = spec.get("lengthByBatchSize")
        if ranges:
            cfg["num_speculative_tokens_per_batch_size"] = batch_size_schedule(ranges)
        elif spec.get("lengthTuning") != "Apply":
            raise InvalidTask(
                "params.speculative.lengthByBatchSize: vLLM load adaptation needs batch-size ranges"
            )
        # lengthTuning Apply before a schedule was promoted: the static length serves meanwhile.
    if spec.get("adaptiveVerification"):
        if method != "dspark":
            raise InvalidTask("params.speculative.adaptiveVerification: needs a dspark draft")
        cfg["enable_adaptive_verification"] = True
    return cfg


def command(
    params: dict, target_ref: str, draft_ref: str | None, fmt: str, revision: str | None = None
) -> list[str]:
    extra = engines.check_extra_args(params.get("extraEngineArgs"))
    engines.require_method_for_draft(params, draft_ref)
    cmd = [
        "vllm",
        "serve",
        target_ref,
        "--host",
        "0.0.0.0",
        "--port",
        str(params.get("port", 8000)),
        "--served-model-name",
        params.get("servedModelName") or target_ref,
        "--tensor-parallel-size",
        str(params.get("tensorParallelSize", 1)),
    ]
    # No method: the target alone (answer regeneration, no-speculation baselines).
    if params.get("method"):
        cmd += [
            "--speculative-config",
            json.dumps(speculative_config(params, draft_ref, fmt), separators=(",", ":")),
        ]
    if revision:
        cmd += ["--revision", revision]
    return cmd + extra


def serve(params: dict, ctx) -> dict:
    return serving.serve(params, ctx, command, HEALTH_PATH, METRICS_PATH, "vllm")
