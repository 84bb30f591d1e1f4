#!/usr/bin/env python3
"""Record the upstream facts the DeepSpec, vLLM and SGLang adapters depend on into a JSON fixture.

The adapters build command lines and configs for programs that do not run here (GPU-only). Their
tests hold them to what upstream really accepts, recorded here from the pinned sources: DeepSpec at
the commit runtime/Dockerfile pins (a git directory, e.g. one `fetch`ed or cloned), and the vLLM and
SGLang wheels of the versions the Dockerfile's engine images carry (`pip download --no-deps
vllm==X sglang==Y`). Sources are parsed with `ast`, never imported or executed, and only facts are
written (flag names, config keys, metric names, bucket bounds, small format strings): no code.

Re-run on every version bump, then run the adapter tests:

    python runtime/scripts/record_upstream_facts.py \\
        --deepspec-git /path/to/DeepSpec/.git --deepspec-commit afdfa7c \\
        --vllm-wheel vllm-0.33.0-*.whl --sglang-wheel sglang-0.5.23-*.whl \\
        -o runtime/tests/fixtures/upstream_facts.json
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

# ---------------------------------------------------------------------------------------------
# Sources: a git commit or a wheel, read file by file
# ---------------------------------------------------------------------------------------------


class GitSource:
    def __init__(self, git_dir: str, commit: str):
        self.git_dir = git_dir
        self.commit = self._git("rev-parse", commit + "^{commit}").strip()

    def _git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "--git-dir", self.git_dir, *args], check=True, capture_output=True, text=True
        ).stdout

    def read(self, path: str) -> str:
        return self._git("show", f"{self.commit}:{path}")

    def names(self) -> list[str]:
        return self._git("ls-tree", "-r", "--name-only", self.commit).splitlines()

    def remote(self) -> str | None:
        try:
            return self._git("config", "--get", "remote.origin.url").strip() or None
        except subprocess.CalledProcessError:
            return None


class WheelSource:
    def __init__(self, wheel: str):
        self.wheel = wheel
        self.zip = zipfile.ZipFile(wheel)
        self._names = self.zip.namelist()

    def read(self, path: str) -> str:
        return self.zip.read(path).decode("utf-8")

    def names(self) -> list[str]:
        return self._names

    def metadata(self) -> dict:
        meta = next(n for n in self._names if n.endswith(".dist-info/METADATA"))
        out = {}
        for line in self.read(meta).splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(": ")
            if key in ("Name", "Version"):
                out[key.lower()] = value
        return out


# ---------------------------------------------------------------------------------------------
# ast helpers
# ---------------------------------------------------------------------------------------------


def _const(node):
    return node.value if isinstance(node, ast.Constant) else None


def _strings(node) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def argparse_flags(text: str) -> dict:
    """Every add_argument call: its option strings and the keywords that change how it parses."""
    tree = ast.parse(text)
    groups: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
            and node.value.func.attr == "add_mutually_exclusive_group"
        ):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    groups[t.id] = []
    flags: dict[str, dict] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "add_argument":
            continue
        names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        options = [n for n in names if n.startswith("-")]
        if not options:
            continue
        primary = next((n for n in options if n.startswith("--")), options[0])
        info: dict = {}
        if len(options) > 1:
            info["aliases"] = [n for n in options if n != primary]
        for kw in node.keywords:
            if kw.arg in ("action", "nargs", "required") and _const(kw.value) is not None:
                info[kw.arg] = _const(kw.value)
        flags[primary] = info
        owner = node.func.value
        if isinstance(owner, ast.Name) and owner.id in groups:
            groups[owner.id].append(primary)
    out: dict = {"flags": dict(sorted(flags.items()))}
    exclusive = [sorted(v) for v in groups.values() if v]
    if exclusive:
        out["mutuallyExclusive"] = exclusive
    return out


def _literal(node):
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return None


def _dict_call_keys(node: ast.Call, prefix: str, keys: list[str], defaults: dict) -> None:
    for kw in node.keywords:
        if kw.arg is None:
            continue
        key = f"{prefix}.{kw.arg}"
        keys.append(key)
        value = kw.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict":
            _dict_call_keys(value, key, keys, defaults)
            continue
        lit = _literal(value)
        if lit is not None or (isinstance(value, ast.Constant) and value.value is None):
            defaults[key] = lit


def deepspec_config_keys(text: str) -> dict:
    """The keys load_config exposes to --opts: every top-level name that is not a module or dunder
    (dict(...) values contribute their nested keys), with the literal defaults."""
    tree = ast.parse(text)
    keys: list[str] = []
    defaults: dict = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if not isinstance(t, ast.Name) or t.id.startswith("__"):
                    continue
                keys.append(t.id)
                v = node.value
                if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "dict":
                    _dict_call_keys(v, t.id, keys, defaults)
                elif (lit := _literal(v)) is not None:
                    defaults[t.id] = lit
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            keys.append(node.name)
        elif isinstance(node, ast.ImportFrom):  # classes imported by name are kept, modules dropped
            keys += [a.asname or a.name for a in node.names]
    return {"keys": sorted(set(keys)), "defaults": dict(sorted(defaults.items()))}


def _module_assign(tree: ast.Module, name: str):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return node.value
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return node.value
    return None


def _function(tree: ast.AST, name: str):
    return next(
        (
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name
        ),
        None,
    )


def _class(tree: ast.AST, name: str):
    return next((n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == name), None)


def _compare_constant(tree: ast.AST, left_name: str) -> int | None:
    """The constant in the first `<left_name> == <int>` comparison (for asserts)."""
    for n in ast.walk(tree):
        if (
            isinstance(n, ast.Compare)
            and len(n.ops) == 1
            and isinstance(n.ops[0], ast.Eq)
            and isinstance(n.comparators[0], ast.Constant)
        ):
            left = n.left
            if isinstance(left, ast.Call) and isinstance(left.func, ast.Name) and left.func.id == "len":
                left = left.args[0] if left.args else left
            if isinstance(left, ast.Name) and left.id == left_name:
                return n.comparators[0].value
    return None


# ---------------------------------------------------------------------------------------------
# DeepSpec
# ---------------------------------------------------------------------------------------------

DEEPSPEC_SCRIPTS = (
    "train.py",
    "eval.py",
    "scripts/data/download_and_split.py",
    "scripts/data/generate_train_data.py",
    "scripts/data/prepare_target_cache.py",
)


def deepspec_facts(src: GitSource, repository: str) -> dict:
    names = src.names()
    scripts = {path: argparse_flags(src.read(path)) for path in DEEPSPEC_SCRIPTS}
    configs = {
        path: deepspec_config_keys(src.read(path))
        for path in sorted(n for n in names if re.fullmatch(r"config/[^/]+/[^/]+\.py", n))
    }

    eval_tree = ast.parse(src.read("eval.py"))
    tasks = [list(t) for t in _literal(_module_assign(eval_tree, "TASKS"))]
    evaluators = sorted(_literal(k) for k in _module_assign(eval_tree, "EVALUATORS").keys)
    parse_args = _function(eval_tree, "parse_args")
    tasks_fixed = any(
        isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Attribute) and t.attr == "tasks" for t in n.targets)
        and "TASKS" in {x.id for x in ast.walk(n.value) if isinstance(x, ast.Name)}
        for n in ast.walk(parse_args)
    )

    base = ast.parse(src.read("deepspec/eval/base_evaluator.py"))
    table = _function(base, "build_results_table")
    columns = next(
        _literal(n.value)
        for n in ast.walk(table)
        if isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "field_names" for t in n.targets)
    )
    position_column = next(
        "".join(v.value if isinstance(v, ast.Constant) else "{i}" for v in n.values)
        for n in ast.walk(table)
        if isinstance(n, ast.JoinedStr)
        and any(isinstance(v, ast.Constant) and "accept_rate@" in v.value for v in n.values)
    )

    eagle3_eval = ast.parse(src.read("deepspec/eval/eagle3/evaluator.py"))
    eagle3_common = ast.parse(src.read("deepspec/modeling/eagle3/common.py"))

    logger = ast.parse(src.read("deepspec/utils/training_logger.py"))
    summary = _function(logger, "_print_summary")
    fstrings = [ast.unparse(n) for n in ast.walk(summary) if isinstance(n, ast.JoinedStr)]
    train_line = next(s for s in fstrings if "epoch=" in s)
    loss_text = next(s for s in fstrings if "loss=" in s)
    ckpt = ast.parse(src.read("deepspec/trainer/ckpt_manager.py"))
    saved = next(
        s for s in (ast.unparse(n) for n in ast.walk(ckpt) if isinstance(n, ast.JoinedStr)) if "Saved" in s
    )

    gen = ast.parse(src.read("scripts/data/generate_train_data.py"))
    thinking_keys = sorted(
        {s for s in _strings(gen) if s in ("enable_thinking", "chat_template_kwargs", "reasoning_content")}
    )

    requirements = [
        line.strip()
        for line in src.read("requirements.txt").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return {
        "source": {"repository": repository, "commit": src.commit},
        "scripts": scripts,
        "configs": configs,
        "eval": {
            "tasks": tasks,
            "tasksFixedInParseArgs": tasks_fixed,
            "datasetRoot": _literal(_module_assign(base, "DEFAULT_DATASET_ROOT")),
            "evaluatorArchitectures": evaluators,
            "tableColumns": columns,
            "positionColumn": position_column,
            "shippedDatasets": sorted(
                Path(n).stem for n in names if re.fullmatch(r"eval_datasets/[^/]+\.jsonl", n)
            ),
            "eagle3DraftNumHiddenLayers": _compare_constant(eagle3_eval, "draft_num_hidden_layers"),
        },
        "eagle3": {"targetLayerCount": _compare_constant(eagle3_common, "layer_ids")},
        "trainLog": {"line": train_line, "lossText": loss_text, "saved": saved},
        "generateTrainData": {"chatTemplateKeys": thinking_keys},
        "requirements": requirements,
    }


# ---------------------------------------------------------------------------------------------
# vLLM
# ---------------------------------------------------------------------------------------------


def _literal_alias_values(tree: ast.Module, name: str, seen: set[str] | None = None) -> list[str]:
    """Flatten `X = Literal["a", Y, ...]` where Y is another such alias in the module."""
    seen = seen or set()
    if name in seen:
        return []
    seen.add(name)
    node = _module_assign(tree, name)
    if not (
        isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "Literal"
    ):
        return []
    items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    out: list[str] = []
    for item in items:
        if isinstance(item, ast.Constant):
            out.append(item.value)
        elif isinstance(item, ast.Name):
            out += _literal_alias_values(tree, item.id, seen)
    return out


def _class_fields(cls: ast.ClassDef) -> list[tuple[str, ast.AST]]:
    return [
        (n.target.id, n.annotation)
        for n in cls.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    ]


def _metric_names(text: str, prefix: str) -> dict[str, str]:
    """name="<prefix>..." metric constructors, typed by the constructor's name when it says."""
    out: dict[str, str] = {}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                v = _const(kw.value)
                if kw.arg == "name" and isinstance(v, str) and v.startswith(prefix):
                    func = ast.unparse(node.func).lower()
                    kind = next((k for k in ("counter", "gauge", "histogram") if k in func), "unknown")
                    out[v] = kind
        if isinstance(node, ast.Tuple) and len(node.elts) == 2:  # ("vllm:x", "doc") counter specs
            v = _const(node.elts[0])
            if isinstance(v, str) and v.startswith(prefix) and isinstance(_const(node.elts[1]), str):
                out.setdefault(v, "counter")
    return out


def _function(tree: ast.AST, name: str):
    return next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name), None)


def _vllm_dynamic_speculation(src: WheelSource) -> dict:
    """What vLLM's batch-size-dependent draft length ("Dynamic SD") takes and when it turns it off:
    the schedule's checks (vllm/v1/spec_decode/dynamic/utils.py) and the config's fallbacks
    (vllm/config/vllm.py), as the strings and literals the source states."""
    utils = ast.parse(src.read("vllm/v1/spec_decode/dynamic/utils.py"))
    validate = _function(utils, "validate_and_normalize_dynamic_sd_schedule")
    lookup = ast.unparse(_function(utils, "build_dynamic_sd_schedule_lookup"))
    checks = ast.unparse(validate)
    config = ast.parse(src.read("vllm/config/vllm.py"))
    v1 = _function(config, "_maybe_disable_dynamic_sd_for_v1")
    v1_methods = next(
        (sorted(_literal(n)) for n in ast.walk(v1) if isinstance(n, ast.Tuple) and _literal(n)), []
    )
    dp = ast.unparse(_function(config, "_maybe_disable_dynamic_sd_for_data_parallel"))
    return {
        "key": "num_speculative_tokens_per_batch_size",
        "entry": "(range_start, range_end, num_speculative_tokens)"
        if "(range_start, range_end, num_speculative_tokens)" in checks
        else None,
        "firstRangeStartsAt1": "range must start at 1" in checks,
        "rangesSortedNonOverlapping": "must be non-overlapping" in checks and ".sort(" in checks,
        "tokensAtLeast0": "values must be >= 0" in checks,
        "tokensClampedToNumSpeculativeTokens": "min(vllm_num_speculative_tokens" in lookup,
        "lastRangeCarriedToMaxBatch": "range(next_batch_size, vllm_max_batch_size + 1)" in lookup
        and "last_num_speculative_tokens)" in lookup,
        "disabledUnderDataParallel": "data_parallel_size <= 1" in dp
        and "num_speculative_tokens_per_batch_size = None" in dp,
        "modelRunnerV1Methods": v1_methods,
    }


def _observations(tree: ast.AST, attribute: str) -> list[dict]:
    """Each `self.<attribute>[...].observe(x)` in the tree: what it observes, and the loop it sits in."""
    out: list[dict] = []

    def visit(node: ast.AST, loop: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            here = loop
            if isinstance(child, ast.For):
                here = f"for {ast.unparse(child.target)} in {ast.unparse(child.iter)}"
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Attribute)
                and child.func.attr == "observe"
                and attribute in ast.unparse(child.func.value)
                and child.args
            ):
                out.append({"observes": ast.unparse(child.args[0]), "perItemOf": here})
            visit(child, here)

    visit(tree, None)
    return out


def _vllm_step_figures(src: WheelSource, loggers: ast.Module) -> dict:
    """What the engine-step histograms count (the autoscaler's online SPS(B) estimate reads them)."""
    docs: dict[str, str] = {}
    for node in ast.walk(loggers):
        if isinstance(node, ast.Call):
            kw = {k.arg: _const(k.value) for k in node.keywords}
            if kw.get("name") in ("vllm:iteration_tokens_total", "vllm:inter_token_latency_seconds"):
                docs[kw["name"]] = kw.get("documentation")
    stats = ast.parse(src.read("vllm/v1/metrics/stats.py"))
    update = _function(_class(stats, "IterationStats"), "update_from_output")
    itl_appends = [
        ast.unparse(n)
        for n in ast.walk(update)
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "itl" for t in n.targets)
    ]
    spec_stats = _class(ast.parse(src.read("vllm/v1/spec_decode/metrics.py")), "SpecDecodingStats")
    observe_draft = ast.unparse(_function(spec_stats, "observe_draft"))
    async_llm = src.read("vllm/v1/engine/async_llm.py")
    return {
        "iterationTokens": {
            "name": "vllm:iteration_tokens_total",
            "documentation": docs.get("vllm:iteration_tokens_total"),
            # Observed once per record() call (no loop): once per engine step's outputs.
            "observations": _observations(loggers, "histogram_iteration_tokens"),
            "oneIterationStatsPerEngineOutputs": "IterationStats() if (log_stats and num_outputs) else None"
            in async_llm,
        },
        "interTokenLatency": {
            "name": "vllm:inter_token_latency_seconds",
            "documentation": docs.get("vllm:inter_token_latency_seconds"),
            "observations": _observations(loggers, "histogram_inter_token_latency"),
            # Per request output of a step that is not its prefill: the time since its last tokens.
            "interval": itl_appends,
        },
        "numDraftsPerRequestStep": "self.num_drafts += 1" in observe_draft,
    }


def vllm_facts(src: WheelSource) -> dict:
    meta = src.metadata()
    spec_tree = ast.parse(src.read("vllm/config/speculative.py"))
    fields = _class_fields(_class(spec_tree, "SpeculativeConfig"))
    user = sorted(n for n, ann in fields if "SkipValidation" not in ast.unparse(ann))
    internal = sorted(n for n, ann in fields if "SkipValidation" in ast.unparse(ann))
    utils_text = src.read("vllm/config/utils.py")
    extra = "forbid" if 'extra="forbid"' in utils_text else "unknown"

    flags: set[str] = set()
    for path in ("vllm/engine/arg_utils.py", "vllm/entrypoints/common/cli_args.py"):
        text = src.read(path)
        flags |= set(argparse_flags(text)["flags"])
        tree = ast.parse(text)
        for cls_name in ("BaseFrontendArgs", "FrontendArgs"):
            cls = _class(tree, cls_name)
            if cls is not None:
                flags |= {"--" + n.replace("_", "-") for n, _ in _class_fields(cls) if not n.startswith("_")}

    metrics: dict[str, str] = {}
    for path in ("vllm/v1/metrics/loggers.py", "vllm/v1/spec_decode/metrics.py"):
        metrics.update(_metric_names(src.read(path), "vllm:"))
    loggers = ast.parse(src.read("vllm/v1/metrics/loggers.py"))
    labelnames = next(
        _literal(n.value)
        for n in ast.walk(loggers)
        if isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "labelnames" for t in n.targets)
    )
    buckets_tree = ast.parse(src.read("vllm/v1/metrics/buckets.py"))
    buckets = {
        t.id: list(_literal(n.value))
        for n in buckets_tree.body
        if isinstance(n, ast.AnnAssign | ast.Assign)
        for t in ([n.target] if isinstance(n, ast.AnnAssign) else n.targets)
        if isinstance(t, ast.Name) and t.id.endswith("_BUCKETS") and _literal(n.value) is not None
    }
    spec_metrics = ast.parse(src.read("vllm/v1/spec_decode/metrics.py"))
    prom = _class(spec_metrics, "SpecDecodingProm")
    prom_src = ast.unparse(prom)

    step_figures = _vllm_step_figures(src, loggers)

    registry = ast.parse(src.read("vllm/model_executor/models/registry.py"))
    eagle3_archs: dict[str, list[str]] = {}
    for node in ast.walk(registry):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                key, val = _const(k) if k else None, _literal(v)
                if isinstance(key, str) and "Eagle3" in key and isinstance(val, tuple) and len(val) == 2:
                    eagle3_archs[key] = list(val)

    qwen2 = ast.parse(src.read("vllm/model_executor/models/qwen2.py"))
    offset = None
    for n in ast.walk(qwen2):
        if (
            isinstance(n, ast.Call)
            and ast.unparse(n.func).endswith("_maybe_add_hidden_state")
            and len(n.args) > 1
        ):
            arg = n.args[1]
            if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Add) and _const(arg.right) is not None:
                offset = _const(arg.right)  # recorded after layer idx under id idx + offset
    qwen3_eagle3 = src.read("vllm/model_executor/models/qwen3_eagle3.py")
    q3 = ast.parse(qwen3_eagle3)
    layer = _class(q3, "Qwen3Eagle3DecoderLayer")
    return {
        "source": {"package": meta["name"], "version": meta["version"], "wheel": Path(src.wheel).name},
        "serveFlags": sorted(flags),
        "speculativeConfig": {
            "keys": user,
            "internalKeys": internal,
            "extraKeys": extra,
            "methods": sorted(set(_literal_alias_values(spec_tree, "SpeculativeMethod"))),
            "rejectionSampleMethods": _literal_alias_values(spec_tree, "RejectionSampleMethod"),
            "draftSampleMethods": _literal_alias_values(spec_tree, "DraftSampleMethod"),
        },
        "metrics": {
            "names": dict(sorted(metrics.items())),
            "labelnames": labelnames,
            "buckets": buckets,
            "specCountersOnlyWithSpeculativeConfig": "speculative_config is not None" in prom_src,
            "perPositionSeriesPrecreated": "range(num_spec_tokens)" in prom_src,
            "stepFigures": step_figures,
        },
        "dynamicSpeculation": _vllm_dynamic_speculation(src),
        "eagle3": {
            "architectures": dict(sorted(eagle3_archs.items())),
            "auxLayerIdOfOutputOfLayer": offset,  # id = HF layer index whose output is captured + this
            "qwen3DecoderLayerBase": [ast.unparse(b) for b in layer.bases],
            "fcAuxFromLayerIds": "len(aux_ids) if aux_ids else 3" in qwen3_eagle3,
        },
    }


# ---------------------------------------------------------------------------------------------
# SGLang
# ---------------------------------------------------------------------------------------------


def _sglang_field_flags(text: str) -> dict[str, str]:
    """Fields declared `name: A[type, "help"]` or `A[type, Arg(...)]` become --name-with-dashes
    (or Arg's cli_name, plus aliases) unless Arg(no_cli=True)."""
    out: dict[str, str] = {}
    for cls in (n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ClassDef)):
        for name, ann in _class_fields(cls):
            if not (isinstance(ann, ast.Subscript) and ast.unparse(ann.value) in ("A", "Annotated")):
                continue
            elts = ann.slice.elts[1:] if isinstance(ann.slice, ast.Tuple) else []
            meta = next((e for e in elts if isinstance(e, ast.Call) and ast.unparse(e.func) == "Arg"), None)
            helps = [e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if meta is None and not helps:
                continue
            kws = {kw.arg: kw.value for kw in (meta.keywords if meta else [])}
            if _const(kws.get("no_cli")) is True:
                continue
            flag = _const(kws["cli_name"]) if "cli_name" in kws else "--" + name.replace("_", "-")
            help_text = helps[0] if helps else (_literal(kws["help"]) if "help" in kws else "") or ""
            out[flag] = help_text
            for alias in _literal(kws["aliases"]) if "aliases" in kws else []:
                out[alias] = help_text
    return out


def _assigned_list(tree: ast.AST, name: str) -> list | None:
    """The first `name = [literal, ...]` in the tree (a default bucket list)."""
    for n in ast.walk(tree):
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in n.targets):
            value = _literal(n.value)
            if isinstance(value, list | tuple):
                return list(value)
    return None


def _dict_keys(node: ast.AST | None) -> list[str]:
    """The string keys of the first dict literal in the node."""
    d = next((n for n in ast.walk(node) if isinstance(n, ast.Dict)), None) if node else None
    return [k for k in (_const(k) for k in d.keys) if isinstance(k, str)] if d else []


def _sglang_step_figures(src: WheelSource) -> dict:
    """What SGLang's token timing and acceptance figures count (the autoscaler's online SPS(B) estimate
    derives step figures from them): the per-token inter-token latency, the acceptance-length gauge
    and the verify width gauge, the counters' update points, labels and the multiprocess registry."""
    collector = ast.parse(src.read("sglang/srt/observability/metrics_collector.py"))
    docs: dict[str, dict] = {}
    for node in ast.walk(collector):
        if isinstance(node, ast.Call):
            kw = {k.arg: _const(k.value) for k in node.keywords}
            if isinstance(kw.get("name"), str) and kw["name"].startswith("sglang:"):
                docs.setdefault(kw["name"], {"documentation": kw.get("documentation")})
                if kw.get("multiprocess_mode"):
                    docs[kw["name"]]["multiprocessMode"] = kw["multiprocess_mode"]
    observe_itl = ast.unparse(_function(collector, "observe_inter_token_latency"))
    finished = ast.unparse(_function(collector, "observe_one_finished_request"))
    tokenizer = ast.parse(src.read("sglang/srt/managers/tokenizer_manager.py"))
    collect = ast.unparse(_function(tokenizer, "collect_metrics"))
    reporter = ast.parse(src.read("sglang/srt/managers/scheduler_components/metrics_reporter.py"))
    update_spec = ast.unparse(_function(reporter, "update_spec_metrics"))
    accept_length = [
        ast.unparse(n)
        for n in ast.walk(reporter)
        if isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "spec_accept_length" for t in n.targets)
        and not isinstance(n.value, ast.Constant)
    ]
    init_new = _function(collector, "init_new")
    labels_assign = next(
        (
            n
            for n in ast.walk(init_new)
            if isinstance(n, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "labels" for t in n.targets)
        ),
        None,
    )
    scheduler_labels = _dict_keys(labels_assign)
    if "labels['dp_rank'] = parallel.dp_rank" in ast.unparse(init_new):
        scheduler_labels.append("dp_rank (when data parallel)")
    common = src.read("sglang/srt/utils/common.py")

    def named(name: str) -> dict:
        return {"name": name, **docs.get(name, {})}

    return {
        "interTokenLatency": {
            **named("sglang:inter_token_latency_seconds"),
            # The interval since a request's last output, spread over the tokens it brought.
            "newTokensSinceLastOutput": "num_new_tokens = completion_tokens - state.last_completion_tokens"
            in collect,
            "perTokenObservation": "adjusted_interval = internval / num_new_tokens" in observe_itl,
            # _sum gets the whole interval once; each bucket (so _count) the number of tokens.
            "sumIncrementedByInterval": "his._sum.inc(internval)" in observe_itl,
            "countIncrementedByTokens": "his._buckets[i].inc(num_new_tokens)" in observe_itl,
            "observedTokensTimes": "for _ in range(num_new_tokens):" in observe_itl
            and "his.observe(adjusted_interval)" in observe_itl,
            "buckets": _assigned_list(
                _class(collector, "TokenizerMetricsCollector"), "bucket_inter_token_latency"
            ),
        },
        "acceptLength": {
            **named("sglang:spec_accept_length"),
            "computed": accept_length,
            # One forward count per request of the batch: tokens per request per verify step.
            "forwardCountPerRequest": "self.spec_num_forward_ct += bs" in update_spec,
        },
        "numDraftTokens": {
            **named("sglang:spec_num_draft_tokens"),
            # The verify window holds the bonus slot: drafts per round are one fewer.
            "draftsPerRound": [
                ast.unparse(n)
                for n in ast.walk(reporter)
                if isinstance(n, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "draft_per_round" for t in n.targets)
            ],
        },
        "running": named("sglang:num_running_reqs"),
        # generation_tokens_total and prompt_tokens_total move when a request finishes.
        "tokenCountersAtFinish": "self.generation_tokens_total.labels(**stream_labels).inc(generation_tokens)"
        in finished
        and "self.prompt_tokens_total.labels(**stream_labels).inc(prompt_tokens)" in finished,
        "tokenizerLabels": _dict_keys(_function(collector, "tokenizer_metric_labels")),
        "schedulerLabels": scheduler_labels,
        # One registry over the processes: no _created samples are exposed.
        "multiprocessRegistry": "multiprocess.MultiProcessCollector(registry)" in common,
    }


def sglang_facts(src: WheelSource) -> dict:
    meta = src.metadata()
    names = src.names()
    flags: dict[str, str] = {}
    for path in sorted(
        n for n in names if n.startswith("sglang/srt/arg_groups/fields/") and n.endswith(".py")
    ):
        flags.update(_sglang_field_flags(src.read(path)))
    for flag in argparse_flags(src.read("sglang/srt/server_args.py"))["flags"]:
        flags.setdefault(flag, "")
    spec_info = ast.parse(src.read("sglang/srt/speculative/spec_info.py"))
    algorithms = [
        t.id
        for n in _class(spec_info, "SpeculativeAlgorithm").body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name) and t.id != "NONE"
    ]
    metrics: dict[str, str] = {}
    for path in sorted(n for n in names if n.startswith("sglang/srt/observability/") and n.endswith(".py")):
        metrics.update(_metric_names(src.read(path), "sglang:"))

    eagle3_loaders = {}
    for path in sorted(n for n in names if re.fullmatch(r"sglang/srt/models/[a-z0-9_]*eagle3\.py", n)):
        text = src.read(path)
        entry = _module_assign(ast.parse(text), "EntryClass")
        classes = (
            [ast.unparse(e) for e in (entry.elts if isinstance(entry, ast.List) else [entry])]
            if entry
            else []
        )
        for cls in classes:
            eagle3_loaders[cls] = {
                "module": path,
                "hasQkNorm": "q_norm" in text,
                "fcAuxFromLayerIds": "len(layer_ids) if layer_ids else 3" in text,
            }
    qwen3 = src.read("sglang/srt/models/qwen3.py")
    fn = _function(ast.parse(qwen3), "set_eagle3_layers_to_capture")
    add = None
    for n in ast.walk(fn):
        if isinstance(n, ast.ListComp) and isinstance(n.elt, ast.BinOp) and isinstance(n.elt.op, ast.Add):
            add = _const(n.elt.right)
    captures_before = 'captures "before layer i"' in qwen3
    return {
        "source": {"package": meta["name"], "version": meta["version"], "wheel": Path(src.wheel).name},
        "launchModule": "sglang.launch_server" if "sglang/launch_server.py" in names else None,
        "serverFlags": sorted(flags),
        "speculativeFlagHelp": {k: v for k, v in sorted(flags.items()) if k.startswith("--speculative-")},
        "speculativeAlgorithms": algorithms,
        "metrics": {"names": dict(sorted(metrics.items())), "stepFigures": _sglang_step_figures(src)},
        "eagle3": {
            "loaders": eagle3_loaders,
            # The captured layer is id + add, and SGLang captures the input of that layer.
            "auxLayerIdOfOutputOfLayer": (add - 1) if (add is not None and captures_before) else None,
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--only",
        choices=["vllm", "sglang"],
        help="re-record this source only, keeping the output file's other sections",
    )
    ap.add_argument("--deepspec-git", help="git directory of a DeepSpec clone")
    ap.add_argument("--deepspec-commit")
    ap.add_argument("--deepspec-repository", default="deepseek-ai/DeepSpec")
    ap.add_argument("--vllm-wheel")
    ap.add_argument("--sglang-wheel")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    if args.only:
        wheel = args.vllm_wheel if args.only == "vllm" else args.sglang_wheel
        if not wheel:
            ap.error(f"--only {args.only} needs --{args.only}-wheel")
        facts = json.loads(Path(args.output).read_text())
        section = (vllm_facts if args.only == "vllm" else sglang_facts)(WheelSource(wheel))
        facts[args.only] = section
        facts["sources"][args.only] = (
            f"{section['source']['package']}=={section['source']['version']} ({section['source']['wheel']})"
        )
        Path(args.output).write_text(json.dumps(facts, indent=1, sort_keys=False) + "\n")
        return 0
    if not (args.deepspec_git and args.deepspec_commit and args.vllm_wheel and args.sglang_wheel):
        ap.error(
            "--deepspec-git, --deepspec-commit, --vllm-wheel and --sglang-wheel are needed unless --only is given"
        )
    deepspec = deepspec_facts(GitSource(args.deepspec_git, args.deepspec_commit), args.deepspec_repository)
    vllm = vllm_facts(WheelSource(args.vllm_wheel))
    sglang = sglang_facts(WheelSource(args.sglang_wheel))
    facts = {
        "$comment": (
            "Facts recorded from upstream by runtime/scripts/record_upstream_facts.py; do not edit by hand. "
            "Regenerate on version bumps (see the script's docstring)."
        ),
        "sources": {
            "deepspec": f"{deepspec['source']['repository']}@{deepspec['source']['commit']}",
            "vllm": f"{vllm['source']['package']}=={vllm['source']['version']} ({vllm['source']['wheel']})",
            "sglang": f"{sglang['source']['package']}=={sglang['source']['version']} ({sglang['source']['wheel']})",
        },
        "deepspec": deepspec,
        "vllm": vllm,
        "sglang": sglang,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(facts, indent=1, sort_keys=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
