"""Device and threading choices shared by every reference task."""

from __future__ import annotations

import os

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA when present (or when asked for), else CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def configure_threads(threads: int | None = None) -> int:
    """Pin torch's intra-op threads.

    Tiny models are dominated by per-op overhead; on a small shared CPU, several spinning worker
    threads are far slower than one (measured ~50x on a busy 2-core box), so the default is 1.
    """
    count = threads or int(os.environ.get("SPECOPS_TORCH_THREADS", "1"))
    if count < 1:
        raise ValueError("threads: must be >= 1")
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count
