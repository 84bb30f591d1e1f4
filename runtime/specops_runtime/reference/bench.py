"""Benchmark of the reference backend on this machine.

    python -m specops_runtime.reference.bench [--samples 600] [--epochs 8] [--eval-samples 20]
                                              [--target-layers 8] [--methods eagle3,dflash,dspark]

Runs the whole pipeline (tiny target -> regenerate -> target cache -> train each method ->
evaluate at temperature 1.0 with a target-only baseline), checks greedy losslessness, profiles
SPS(B), and prints per method and task set: tau, per-position acceptance and decode tokens/s with
and without speculation. The last line is machine-readable:

    BENCH runtime tau_<method>=<x> ... tau_untrained=<y> lossless=<true|false> speedup_cpu=<z>

(tau_* are macro averages over task sets; speedup_cpu is the best method's macro speedup.)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from . import data, tasks
from .context import RunContext
from .device import configure_threads
from .draft_config import SharedWeights, load_draft
from .sampling import SamplingParams
from .speculative import Generator
from .target import load_target


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return sum(values) / len(values) if values else None


def _ctx(root: Path, name: str) -> RunContext:
    return RunContext(output_dir=root / name, work_dir=root / "work")


def greedy_lossless(target_path: Path, checkpoint: str, prompts: int, max_new_tokens: int) -> bool:
    model, tokenizer = load_target(target_path, torch.device("cpu"))
    draft = load_draft(Path(checkpoint), SharedWeights.from_target(model), torch.device("cpu"))
    spec = Generator(model, draft.drafter(), draft.config.target_layer_ids)
    base = Generator(model)
    rows = [ex for name in data.TASK_NAMES for ex in data.generate(name, prompts, seed=31337)]
    for ex in rows:
        ids = tokenizer.chat_prompt([{"role": "user", "content": ex.prompt}])
        greedy = SamplingParams()
        if (
            spec.generate(ids, max_new_tokens, greedy).tokens
            != base.generate(ids, max_new_tokens, greedy).tokens
        ):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=600, help="training prompts per task set")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--eval-samples", type=int, default=20, help="evaluation prompts per task set")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--block-size", type=int, default=4)
    parser.add_argument("--methods", default="eagle3,dflash,dspark")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--target-layers",
        type=int,
        default=8,
        help="decoder layers of the tiny target (default 8, trained once and cached: a target that "
        "costs several times a draft step, as real ones do; 3 = the tests' target)",
    )
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    root = args.work_dir or Path(tempfile.mkdtemp(prefix="specops-bench-"))
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    started = time.perf_counter()

    os.environ["SPECOPS_TORCH_THREADS"] = str(args.threads)
    os.environ["SPECOPS_PVC_ROOT"] = str(root)  # pvc://bench/<stage> = <root>/bench/<stage>
    out = root / "bench"
    name = "tiny-qwen3" if args.target_layers == 3 else f"tiny-qwen3-l{args.target_layers}"
    target = {"uri": f"builtin://{name}"}
    target_path = tasks.target_path({"target": target}, _ctx(out, "target"))
    prepared = tasks.prepare_data(
        {
            "prompts": {"uri": "builtin://tiny-mix"},
            "maxSamples": 3 * args.samples,
            "heldOutFraction": 0.0,
            "seed": 0,
        },
        _ctx(out, "data"),
    )
    regenerated = tasks.regenerate(
        {
            "target": target,
            "inputPath": prepared["outputs"]["dataPaths"][0],
            "temperature": 1.0,
            "topP": 1.0,
            "topK": -1,
            "maxTokens": args.max_new_tokens,
            "concurrency": 64,
        },
        _ctx(out, "regenerate"),
    )
    cache = tasks.target_cache(
        {
            "target": target,
            "method": "dspark",
            "dataPaths": regenerated["outputs"]["dataPaths"],
            "minLossTokens": 0,
        },
        _ctx(out, "cache"),
    )
    print(f"target {target_path} ({args.target_layers} decoder layers)")
    print(
        f"data: {regenerated['details']['regenerated']} regenerated samples, "
        f"{cache['details']['tokens']} cached "
        f"tokens, layers {cache['details']['targetLayerIds']} ({time.perf_counter() - started:.0f}s)"
    )

    evaluation = {
        "target": target,
        "tasks": [{"name": n, "samples": args.eval_samples} for n in data.TASK_NAMES],
        "decoding": {
            "temperature": 1.0,
            "maxNewTokens": args.max_new_tokens,
            "numSpeculativeTokens": args.block_size,
        },
    }
    taus: dict[str, float] = {}
    speedups: dict[str, float] = {}
    lossless = True
    for method in methods:
        t0 = time.perf_counter()
        trained = tasks.train(
            {
                "target": target,
                "method": method,
                "draft": {"blockSize": args.block_size},
                "training": {"epochs": args.epochs, "globalBatchSize": 32, "learningRate": 3e-3, "seed": 0},
                "targetCachePath": cache["outputs"]["targetCachePath"],
            },
            _ctx(out, f"train-{method}"),
        )
        train_s = time.perf_counter() - t0
        checkpoint = trained["outputs"]["checkpoint"]["path"]
        result = tasks.evaluate(
            {
                **evaluation,
                "method": method,
                "draft": {"uri": f"pvc://bench/train-{method}"},
                "baseline": True,
            },
            _ctx(out, f"eval-{method}"),
        )
        ok = greedy_lossless(target_path, checkpoint, 10, 32)
        lossless = lossless and ok
        rows = result["evaluation"]["results"]
        summary = {
            key: _mean(rows, key)
            for key in ("tau", "verifyRate", "tokensPerSecond", "baselineTokensPerSecond", "speedup")
        }
        taus[method], speedups[method] = summary["tau"], summary["speedup"] or 0.0
        print(
            f"\n[{method}] trained {trained['training']['step']} steps in {train_s:.0f}s, "
            f"final loss {trained['training'].get('loss', float('nan')):.3f}, "
            f"greedy lossless={str(ok).lower()}"
        )
        print(
            f"  {'task':6} {'tau':>6} {'verify':>7} {'tok/s spec':>11} {'tok/s base':>11} "
            f"{'speedup':>8}  accept@i"
        )
        for row in rows:
            accept = " ".join(f"{a:.2f}" for a in row["acceptanceByPosition"])
            print(
                f"  {row['name']:6} {row['tau']:6.3f} {row['verifyRate']:7.3f} "
                f"{row['tokensPerSecond']:11.1f} "
                f"{row['baselineTokensPerSecond']:11.1f} {row['speedup']:8.2f}  {accept}"
            )
        print(
            f"  {'macro':6} {summary['tau']:6.3f} {summary['verifyRate']:7.3f} "
            f"{summary['tokensPerSecond']:11.1f} {summary['baselineTokensPerSecond']:11.1f} "
            f"{summary['speedup']:8.2f}"
        )

    untrained = tasks.evaluate(
        {**evaluation, "method": methods[-1], "draft": {"uri": "builtin://untrained-draft"}},
        _ctx(out, "eval-untrained"),
    )
    tau_untrained = _mean(untrained["evaluation"]["results"], "tau")
    print(f"\n[untrained {methods[-1]}] macro tau {tau_untrained:.3f}")

    profile = tasks.profile(
        {"target": target, "batchSizes": [1, 2, 4, 8, 16, 32, 64, 128], "contextLength": 64, "repeats": 20},
        _ctx(out, "profile"),
    )
    print("\nSPS(B) of the target (context 64 tokens):")
    print(f"  {'B':>4} {'step ms':>8} {'steps/s':>9} {'tokens/s':>10}")
    for row in profile["details"]["table"]:
        print(
            f"  {row['tokens']:4d} {row['stepTimeMs']:8.2f} {row['stepsPerSecond']:9.1f} "
            f"{row['tokensPerSecond']:10.0f}"
        )

    best = max(speedups, key=speedups.get)
    print(
        f"\nbest CPU speedup: {best} {speedups[best]:.2f}x; "
        f"total {time.perf_counter() - started:.0f}s; work dir {root}"
    )
    fields = " ".join(f"tau_{m}={taus[m]:.3f}" for m in methods)
    print(
        f"BENCH runtime {fields} tau_untrained={tau_untrained:.3f} lossless={str(lossless).lower()} "
        f"speedup_cpu={speedups[best]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
