"""SGLang: `python -m sglang.launch_server` with --speculative-algorithm always explicit and
--enable-metrics on."""

from __future__ import annotations

import os

from ..agent.errors import InvalidTask
from . import engines, serving

HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"
PINNED_VERSION = "0.5.23"
# mtp runs on SGLang's EAGLE path (its NEXTN is an alias of EAGLE; test/fixtures/engines/builtin-drafts.json).
_ALGORITHMS = {"eagle3": "EAGLE3", "dflash": "DFLASH", "dspark": "DSPARK", "mtp": "EAGLE"}
API_KEY_ENV = "SPECOPS_API_KEY"


def speculative_args(
    params: dict, draft_ref: str | None, fmt: str, target_ref: str = "", revision: str | None = None
) -> list[str]:
    spec = params.get("speculative") or {}
    method = engines.engine_method(params["method"], fmt)
    if method == "mtp":
        if draft_ref is not None:
            raise InvalidTask(
                "params.draft: method mtp loads its heads from the target checkpoint; give no draft"
            )
        # SGLang defaults the draft path to the target only for some architectures (DeepseekV3...);
        # naming the target explicitly loads the same MTP layers on every architecture that has them.
        draft_ref = target_ref
    elif draft_ref is None:
        raise InvalidTask(
            f"params.draft: SGLang {PINNED_VERSION} needs --speculative-draft-model-path for {method}; "
            "of the built-in drafts it serves only mtp (a built-in dspark runs on vLLM)"
        )
    args = ["--speculative-algorithm", _ALGORITHMS[method], "--speculative-draft-model-path", draft_ref]
    if method == "mtp" and revision:
        args += ["--speculative-draft-model-revision", revision]
    k = spec.get("numSpeculativeTokens")
    if method in ("eagle3", "mtp"):
        if k is not None:  # chain drafting: steps = k, topk 1, draft tokens = steps + 1 (set all three)
            args += ["--speculative-num-steps", str(k), "--speculative-eagle-topk", "1"]
            args += ["--speculative-num-draft-tokens", str(k + 1)]
        if spec.get("loadAdaptation") == "Engine":
            if k is None:
                raise InvalidTask(
                    "params.speculative.numSpeculativeTokens: SGLang adaptive speculation needs topk 1"
                )
            args.append("--speculative-adaptive")
    elif method == "dflash":
        # SGLang's DFLASH --speculative-num-draft-tokens is the verify window (its block size), which
        # includes the anchor token: k draft tokens (vLLM's num_speculative_tokens) verify k + 1.
        if k is not None:
            args += ["--speculative-num-draft-tokens", str(k + 1)]
    else:  # dspark: block size gamma, one step, topk 1, gamma + 1 tokens verified
        if k is not None:
            args += ["--speculative-dspark-block-size", str(k)]
            args += ["--speculative-num-steps", "1", "--speculative-eagle-topk", "1"]
            args += ["--speculative-num-draft-tokens", str(k + 1)]
    if method not in ("eagle3", "mtp") and spec.get("loadAdaptation") == "Engine":
        raise InvalidTask("params.speculative.loadAdaptation: SGLang adapts only EAGLE drafts with topk 1")
    if spec.get("adaptiveVerification"):
        raise InvalidTask("params.speculative.adaptiveVerification: vLLM only")
    return args


def command(
    params: dict, target_ref: str, draft_ref: str | None, fmt: str, revision: str | None = None
) -> list[str]:
    extra = engines.check_extra_args(params.get("extraEngineArgs"))
    engines.require_method_for_draft(params, draft_ref)
    cmd = [
        "python",
        "-m",
        "sglang.launch_server",
        "--model-path",
        target_ref,
        "--host",
        "0.0.0.0",
        "--port",
        str(params.get("port", 8000)),
        "--served-model-name",
        params.get("servedModelName") or target_ref,
        "--tp-size",
        str(params.get("tensorParallelSize", 1)),
        "--enable-metrics",
        # No method: the target alone (answer regeneration, no-speculation baselines).
        *(speculative_args(params, draft_ref, fmt, target_ref, revision) if params.get("method") else []),
    ]
    if revision:
        cmd += ["--revision", revision]
    # SGLang takes the key as --api-key; process.run masks its value in the command line it logs.
    if api_key := os.environ.get(API_KEY_ENV):
        cmd += ["--api-key", api_key]
    return cmd + extra


def serve(params: dict, ctx) -> dict:
    return serving.serve(params, ctx, command, HEALTH_PATH, METRICS_PATH, "sglang")
