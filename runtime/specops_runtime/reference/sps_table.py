"""Measure SPS(B, context, concurrency) for randomly initialised targets of real models' shapes and
write the measured SPS table the fleet simulator loads (format below; runtime/README.md documents it).

One verification step serves R requests (``concurrency``), each holding ``context`` cached tokens,
and verifies B tokens in all (``batch``; B / R per request, so B >= R): the step the DSpark paper's
cost table is indexed by (its SPS(B)), measured at several contexts and concurrencies because the KV
read grows with R x context as much as the weight read with B. The step runs the whole model,
LM head included, in eager PyTorch (Hugging Face transformers, no CUDA graphs, no fused kernels): a
lower bound on what an engine reaches, labelled so.

    python -m specops_runtime.reference.sps_table --out sps.json            # on one CUDA GPU
    python -m specops_runtime.reference.sps_table --tiny --out sps.json     # seconds on a CPU

The JSON is rewritten after every measurement (atomically), so a run cut off keeps what it measured
("complete": false until the end):

    {"format": "specops.sps-table/v1", "label": "eager PyTorch", "gpuProduct": "NVIDIA H200",
     "dtype": "bfloat16", "complete": true, "models": [{"name": "qwen3-8b", "parameters": ..., ...}],
     "rows": [{"model": "qwen3-8b", "batch": 64, "context": 2048, "concurrency": 16,
               "steps_per_second": 41.7, "step_time_ms": 23.98, "tokens_per_second": 2668.8, ...}],
     "skipped": [{"model": ..., "context": ..., "concurrency": ..., "reason": "..."}]}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

FORMAT = "specops.sps-table/v1"
LABEL = "eager PyTorch"

# Published config.json shapes (Qwen/Qwen3-4B, Qwen/Qwen3-8B); weights are random here.
SHAPES: dict[str, dict] = {
    "qwen3-4b": dict(
        hidden_size=2560,
        intermediate_size=9728,
        num_hidden_layers=36,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        vocab_size=151936,
        tie_word_embeddings=True,
        rope_theta=1000000.0,
        max_position_embeddings=40960,
    ),
    "qwen3-8b": dict(
        hidden_size=4096,
        intermediate_size=12288,
        num_hidden_layers=36,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        vocab_size=151936,
        tie_word_embeddings=False,
        rope_theta=1000000.0,
        max_position_embeddings=40960,
    ),
    # For smoke tests on a CPU: the same code path in seconds.
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        vocab_size=512,
        tie_word_embeddings=True,
        rope_theta=1000000.0,
        max_position_embeddings=4096,
    ),
}


def batches(concurrency: int, max_batch: int) -> list[int]:
    """Powers of two from the concurrency up to max_batch that split evenly over the requests."""
    out, b = [], 1
    while b <= max_batch:
        if b >= concurrency and b % concurrency == 0:
            out.append(b)
        b *= 2
    return out


def build_model(shape: str, device: torch.device, dtype: torch.dtype):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(**SHAPES[shape])
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Qwen3ForCausalLM(config)  # random initialisation, directly on the device
    finally:
        torch.set_default_dtype(previous)
    return model.eval().requires_grad_(False)


def kv_bytes_per_token(shape: dict, dtype: torch.dtype) -> int:
    return 2 * shape["num_hidden_layers"] * shape["num_key_value_heads"] * shape["head_dim"] * dtype.itemsize


class Profiler:
    def __init__(self, model, device: torch.device, seed: int = 0):
        self.model = model
        self.device = device
        self.vocab = model.config.vocab_size
        self.rng = torch.Generator(device="cpu").manual_seed(seed)
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def _ids(self, rows: int, cols: int) -> torch.Tensor:
        return torch.randint(8, self.vocab, (rows, cols), generator=self.rng).to(self.device)

    @torch.inference_mode()
    def prefill(self, concurrency: int, context: int, chunk_tokens: int):
        """A cache holding `context` tokens for each of `concurrency` sequences, filled in chunks
        through the decoder only (no LM head over the whole prompt)."""
        from transformers import DynamicCache

        cache = DynamicCache()
        step = max(1, chunk_tokens // concurrency)
        for start in range(0, context, step):
            width = min(step, context - start)
            self.model.model(input_ids=self._ids(concurrency, width), past_key_values=cache, use_cache=True)
        self.sync()
        return cache

    @torch.inference_mode()
    def step_times(
        self, cache, concurrency: int, context: int, batch: int, warmup: int, repeats: int
    ) -> list[float]:
        ids = self._ids(concurrency, batch // concurrency)
        times = []
        for i in range(warmup + repeats):
            self.sync()
            started = time.perf_counter()
            self.model(
                input_ids=ids, past_key_values=cache, use_cache=True
            )  # logits for every verified token
            self.sync()
            if i >= warmup:
                times.append(time.perf_counter() - started)
            cache.crop(context)  # roll back: every step sees the same context
        return times


class TableWriter:
    """Holds the table and rewrites the file after each change (a cut-off run keeps its rows)."""

    def __init__(self, path: Path, header: dict):
        self.path = path
        self.doc = {**header, "complete": False, "models": [], "rows": [], "skipped": []}
        self.write()

    def write(self) -> None:
        self.doc["updatedAt"] = datetime.now(UTC).isoformat(timespec="seconds")
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.doc, indent=1) + "\n")
        os.replace(tmp, self.path)

    def add(self, key: str, item: dict) -> None:
        self.doc[key].append(item)
        self.write()


def _device_product(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = getattr(torch, args.dtype)
    if device.type == "cpu":
        from .device import configure_threads

        configure_threads()  # one intra-op thread unless SPECOPS_TORCH_THREADS says otherwise
    import transformers

    writer = TableWriter(
        Path(args.out),
        {
            "format": FORMAT,
            "label": LABEL,
            "gpuProduct": _device_product(device),
            "device": device.type,
            "dtype": args.dtype,
            "software": {"torch": torch.__version__, "transformers": transformers.__version__},
            "method": (
                "one verification step over `concurrency` requests with `context` cached tokens each, "
                "verifying `batch` tokens in all (batch/concurrency per request), LM head included; "
                f"median of {args.repeats} after {args.warmup} warm-up steps; random weights"
            ),
            "createdAt": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    deadline = time.monotonic() + args.budget_seconds
    for shape in args.shapes:
        if time.monotonic() > deadline:
            writer.add("skipped", {"model": shape, "reason": "time budget spent"})
            continue
        started = time.monotonic()
        model = build_model(shape, device, dtype)
        params = sum(p.numel() for p in model.parameters())
        writer.add(
            "models",
            {
                "name": shape,
                "parameters": params,
                "kvBytesPerToken": kv_bytes_per_token(SHAPES[shape], dtype),
                "config": SHAPES[shape],
                "buildSeconds": round(time.monotonic() - started, 2),
            },
        )
        profiler = Profiler(model, device, args.seed)
        for context in args.contexts:
            for concurrency in args.concurrency:
                where = {"model": shape, "context": context, "concurrency": concurrency}
                if concurrency * context > args.max_kv_tokens:
                    writer.add(
                        "skipped", {**where, "reason": f"more than {args.max_kv_tokens} cached tokens"}
                    )
                    continue
                if time.monotonic() > deadline:
                    writer.add("skipped", {**where, "reason": "time budget spent"})
                    continue
                try:
                    cache = profiler.prefill(concurrency, context, args.prefill_chunk_tokens)
                    for batch in batches(concurrency, args.max_batch):
                        if time.monotonic() > deadline:
                            writer.add("skipped", {**where, "batch": batch, "reason": "time budget spent"})
                            break
                        times = profiler.step_times(
                            cache, concurrency, context, batch, args.warmup, args.repeats
                        )
                        step = statistics.median(times)
                        writer.add(
                            "rows",
                            {
                                **where,
                                "batch": batch,
                                "tokens_per_request": batch // concurrency,
                                "steps_per_second": round(1.0 / step, 3),
                                "step_time_ms": round(step * 1000, 4),
                                "step_time_ms_min": round(min(times) * 1000, 4),
                                "tokens_per_second": round(batch / step, 1),
                                "repeats": len(times),
                            },
                        )
                    del cache
                except torch.OutOfMemoryError as exc:
                    writer.add("skipped", {**where, "reason": f"out of memory: {str(exc).splitlines()[0]}"})
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        del model, profiler
        if device.type == "cuda":
            torch.cuda.empty_cache()
    writer.doc["complete"] = not any(s.get("reason") == "time budget spent" for s in writer.doc["skipped"])
    writer.write()
    return writer.doc


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--shapes", default="qwen3-4b,qwen3-8b", type=lambda s: s.split(","))
    ap.add_argument("--contexts", default="512,2048,8192", type=_ints)
    ap.add_argument("--concurrency", default="1,16,64", type=_ints)
    ap.add_argument("--max-batch", type=int, default=512)
    ap.add_argument("--max-kv-tokens", type=int, default=131072, help="skip context x concurrency above this")
    ap.add_argument("--prefill-chunk-tokens", type=int, default=16384)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--budget-seconds", type=float, default=150.0, help="start no measurement after this")
    ap.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tiny", action="store_true", help="the tiny shape on small sizes, float32 (smoke test)")
    args = ap.parse_args(argv)
    unknown = [s for s in args.shapes if s not in SHAPES]
    if unknown:
        ap.error(f"--shapes: unknown {unknown}; known: {sorted(SHAPES)}")
    if args.tiny:
        args.shapes, args.contexts, args.concurrency = ["tiny"], [16, 32], [1, 2]
        args.max_batch, args.dtype, args.warmup, args.repeats = 4, "float32", 1, 2
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    doc = run(args)
    print(
        f"SPS table: {len(doc['rows'])} rows, {len(doc['skipped'])} skipped, complete={doc['complete']} -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
