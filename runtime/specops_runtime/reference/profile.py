"""SPS(B): the target's verification steps per second as a function of tokens verified per step.

One step appends B tokens to a context of ``context_length`` cached tokens and is then rolled
back, so every measurement sees the same context (the paper's "lightweight cost table").
"""

from __future__ import annotations

import statistics
import time

import torch

from .target import TargetRunner


def profile_sps(
    model, batch_sizes: list[int], context_length: int = 64, repeats: int = 20, warmup: int = 3, seed: int = 0
) -> list[dict]:
    if not batch_sizes or any(b < 1 for b in batch_sizes):
        raise ValueError("batchSizes: must be a non-empty list of positive integers")
    if context_length < 1:
        raise ValueError("contextLength: must be >= 1")
    vocab = model.config.vocab_size
    rng = torch.Generator().manual_seed(seed)
    runner = TargetRunner(model, None)
    sync = torch.cuda.synchronize if runner.device.type == "cuda" else (lambda: None)
    context = torch.randint(8, vocab, (context_length,), generator=rng).tolist()
    runner.forward(context)
    for b in sorted(set(batch_sizes)):  # warm every shape first: the first calls pay one-off costs
        for _ in range(warmup):
            runner.forward(torch.randint(8, vocab, (b,), generator=rng).tolist())
            runner.rollback(context_length)
    table = []
    for b in sorted(set(batch_sizes)):
        tokens = torch.randint(8, vocab, (b,), generator=rng).tolist()
        times = []
        for i in range(warmup + repeats):
            sync()
            started = time.perf_counter()
            runner.forward(tokens)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - started)
            runner.rollback(context_length)
        step = statistics.median(times)
        table.append(
            {
                "tokens": b,
                "stepTimeMs": step * 1000,
                "stepsPerSecond": 1.0 / step,
                "tokensPerSecond": b / step,
            }
        )
    runner.close()
    return table
