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

    recipe = {"numLayers": args.target_layers} if args.target_layers != 3 else {}
    target = tasks.make_target({"tinyTarget": recipe}, _ctx(root, "target"))["targetModel"]
    common = {"targetModel": target, "seed": 0, "threads": args.threads}
    prepared = tasks.prepare_data(
        {
            **common,
            "tasks": [{"name": n, "samples": args.samples} for n in data.TASK_NAMES],
            "evalSamples": args.eval_samples,
        },
        _ctx(root, "data"),
    )
    regenerated = tasks.regenerate(
        {
            **common,
            "trainData": prepared["trainData"],
            "temperature": 1.0,
            "topP": 1.0,
            "topK": 0,
            "maxNewTokens": args.max_new_tokens,
        },
        _ctx(root, "regenerate"),
    )
    cache = tasks.target_cache({**common, "trainData": regenerated["trainData"]}, _ctx(root, "cache"))
    print(f"target {target} ({args.target_layers} decoder layers)")
    print(
        f"data: {regenerated['regenerated']} regenerated samples, {cache['tokens']} cached tokens, "
        f"layers {cache['targetLayerIds']} ({time.perf_counter() - started:.0f}s)"
    )

    evaluation = {
        **common,
        "evalData": prepared["evalDir"],
        "temperature": 1.0,
        "maxNewTokens": args.max_new_tokens,
        "speculativeLength": args.block_size,
    }
    taus: dict[str, float] = {}
    speedups: dict[str, float] = {}
    lossless = True
    for method in methods:
        t0 = time.perf_counter()
        trained = tasks.train(
            {
                **common,
                "method": method,
                "targetCache": cache["targetCache"],
                "epochs": args.epochs,
                "blockSize": args.block_size,
            },
            _ctx(root, f"train-{method}"),
        )
        train_s = time.perf_counter() - t0
        result = tasks.evaluate(
            {**evaluation, "draftModel": trained["checkpoint"]}, _ctx(root, f"eval-{method}")
        )
        ok = greedy_lossless(Path(target), trained["checkpoint"], 10, 32)
        lossless = lossless and ok
        summary = result["summary"]
        taus[method], speedups[method] = summary["tau"], summary["speedup"] or 0.0
        print(
            f"\n[{method}] trained {trained['steps']} steps in {train_s:.0f}s, "
            f"final loss {trained['finalLoss']:.3f}, greedy lossless={str(ok).lower()}"
        )
        print(
            f"  {'task':6} {'tau':>6} {'verify':>7} {'tok/s spec':>11} {'tok/s base':>11} "
            f"{'speedup':>8}  accept@i"
        )
        for task, row in result["tasks"].items():
            accept = " ".join(f"{a:.2f}" for a in row["acceptanceByPosition"])
            print(
                f"  {task:6} {row['tau']:6.3f} {row['verifyRate']:7.3f} {row['tokensPerSecond']:11.1f} "
                f"{row['baselineTokensPerSecond']:11.1f} {row['speedup']:8.2f}  {accept}"
            )
        print(
            f"  {'macro':6} {summary['tau']:6.3f} {summary['verifyRate']:7.3f} "
            f"{summary['tokensPerSecond']:11.1f} {summary['baselineTokensPerSecond']:11.1f} "
            f"{summary['speedup']:8.2f}"
        )

    untrained = tasks.evaluate(
        {
            **evaluation,
            "draftModel": "untrained",
            "method": methods[-1],
            "blockSize": args.block_size,
            "targetLayerIds": cache["targetLayerIds"],
            "measureBaseline": False,
        },
        _ctx(root, "eval-untrained"),
    )
    tau_untrained = untrained["summary"]["tau"]
    print(f"\n[untrained {methods[-1]}] macro tau {tau_untrained:.3f}")

    profile = tasks.profile(
        {**common, "batchSizes": [1, 2, 4, 8, 16, 32, 64, 128], "repeats": 20}, _ctx(root, "profile")
    )
    print("\nSPS(B) of the target (context 64 tokens):")
    print(f"  {'B':>4} {'step ms':>8} {'steps/s':>9} {'tokens/s':>10}")
    for row in profile["table"]:
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
