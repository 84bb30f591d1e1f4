"""Run an engine in the pod: resolve models (converting a DeepSpec Eagle3 draft), start the engine,
and mirror its health and acceptance into the agent's progress while it serves."""

from __future__ import annotations

import os
import threading
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from ..agent.errors import Unsupported
from . import engines, process
from .deepspec import eagle3


def acceptance_from_metrics(text: str) -> dict:
    """tau and per-position acceptance since engine start, bonus token counted (engines.md):
    vLLM tau = 1 + accepted/drafts, per-position = per_pos/drafts; SGLang's last-interval gauge."""
    sums: dict[str, float] = {}
    per_pos: dict[int, float] = {}
    sglang_tau = None
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "vllm:spec_decode_num_accepted_tokens_per_pos_total":
                pos = int(s.labels.get("position", 0))
                per_pos[pos] = per_pos.get(pos, 0.0) + s.value
            elif s.name in (
                "vllm:spec_decode_num_drafts_total",
                "vllm:spec_decode_num_accepted_tokens_total",
            ):
                sums[s.name] = sums.get(s.name, 0.0) + s.value
            elif s.name == "sglang:spec_accept_length":
                sglang_tau = s.value
    drafts = sums.get("vllm:spec_decode_num_drafts_total", 0.0)
    if drafts > 0:
        out = {"tauEstimate": 1 + sums.get("vllm:spec_decode_num_accepted_tokens_total", 0.0) / drafts}
        if per_pos:
            out["acceptanceByPosition"] = [per_pos[i] / drafts for i in sorted(per_pos)]
        return out
    return {"tauEstimate": sglang_tau} if sglang_tau else {}


def _watch(ctx, port: int, health: str, metrics: str, interval: float) -> None:
    base = f"http://127.0.0.1:{port}"
    ready = False
    while not ctx.stop_event.wait(interval):
        try:
            with urllib.request.urlopen(base + health, timeout=5) as r:
                ok = r.status == 200
        except OSError:
            ok = False
        if ok and not ready:
            ctx.report(stage="serving", message=f"engine ready on :{port}")
        ready = ok
        if not ok:
            continue
        try:
            with urllib.request.urlopen(base + metrics, timeout=5) as r:
                fields = acceptance_from_metrics(r.read().decode())
            if fields:
                ctx.report(**fields)
        except (OSError, ValueError):
            pass


def resolve_draft(params: dict, ctx, engine: str) -> tuple[str | None, str, dict]:
    if not params.get("draft"):
        # A method with no draft: the engine loads the draft from the target (mtp, DeepSeek-V4 dspark).
        return None, "native", ({"builtInDraft": True} if params.get("method") else {})
    ref = ctx.resolve(params["draft"]["uri"], "params.draft.uri")
    fmt = engines.draft_format(params, ref)
    extra: dict = {}
    cfg = engines.read_config(ref)
    if params.get("method") == "eagle3" and cfg and eagle3.is_deepspec_eagle3(cfg):
        ctx.report(stage="convert", message=f"converting DeepSpec Eagle3 draft to {engine}'s Eagle3 layout")
        converted = eagle3.convert(ref, ctx.work_dir / f"draft-eagle3-{engine}", engine)
        extra["convertedDraft"] = converted["path"]
        ref, fmt = converted["path"], "native"
    elif params.get("method") == "eagle3" and fmt == "deepspec":
        raise Unsupported(
            "params.draft.uri: a DeepSpec Eagle3 draft must be converted for the engine; give a local path "
            "(pvc://) to its checkpoint with config.json"
        )
    return ref, fmt, extra


def serve(params: dict, ctx, build_command, health: str, metrics: str, engine: str) -> dict:
    target = ctx.resolve(params["target"]["uri"], "params.target.uri")
    draft, fmt, extra = resolve_draft(params, ctx, engine)
    cmd = build_command(params, target, draft, fmt, params["target"].get("revision"))
    ctx.report(stage="starting", message=f"starting {engine}")
    interval = float(os.environ.get("SPECOPS_ENGINE_POLL_SECONDS", "10"))
    watcher = threading.Thread(
        target=_watch, args=(ctx, params.get("port", 8000), health, metrics, interval), daemon=True
    )
    watcher.start()
    process.run(cmd, env=dict(os.environ), ctx=ctx, name=engine, tail_lines=500)
    return {"details": {"engine": engine, "command": cmd[:3], "draftFormat": fmt, **extra}}
