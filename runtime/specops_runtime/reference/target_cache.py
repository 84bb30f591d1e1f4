"""Target-hidden-state cache: per-token features of the chosen target layers, stored once.

Layout (in the spirit of DeepSpec's prepare_target_cache.py):
  <dir>/manifest.json        version, target_layer_ids, hidden_size, dtypes, shards, target model, ...
  <dir>/shard_00000.safetensors
      input_ids     int32   [N]            all samples' tokens, concatenated
      features      float16 [N, k*H]       selected layers' outputs, concatenated per token
      final_hidden  float16 [N, H]         final-norm output (gives the target's distribution)
      offsets       int64   [S+1]          sample s spans tokens offsets[s]:offsets[s+1]
      answer_starts int64   [S]            index (within the sample) of the first answer token
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .regenerate import prompt_messages, read_jsonl
from .target import HiddenCapture, pad_batch
from .tokenizer import EOS

MANIFEST = "manifest.json"
CACHE_VERSION = 2


@dataclass
class CachedSample:
    input_ids: torch.Tensor  # [T] long
    features: torch.Tensor  # [T, k*H]
    final_hidden: torch.Tensor  # [T, H]
    answer_start: int

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[0])


def encode_row(
    row: dict, tokenizer, max_length: int, min_loss_tokens: int = 0
) -> tuple[list[int], int] | None:
    """Prompt + answer ids (+ eos) and the answer's start; None when nothing of the answer fits or
    fewer than ``min_loss_tokens`` supervised tokens (answer + eos) remain."""
    prompt = tokenizer.chat_prompt(prompt_messages(row))
    answer = row.get("answer_ids")
    if answer is None:
        answer = tokenizer.encode(row["conversations"][-1]["content"])
    ids = (prompt + list(answer) + [EOS])[:max_length]
    supervised = len(ids) - len(prompt)
    return (ids, len(prompt)) if supervised > 1 and supervised >= min_loss_tokens else None


@torch.no_grad()
def build_cache(
    model,
    tokenizer,
    sources: list[Path],
    output_dir: Path,
    layer_ids: list[int],
    target_name: str,
    max_length: int = 256,
    batch_size: int = 32,
    max_shard_samples: int = 4096,
    report: Callable[..., None] | None = None,
    min_loss_tokens: int = 0,
) -> dict:
    rows = [r for src in sources for r in read_jsonl(src) if r.get("status", "success") == "success"]
    encoded = [
        e for e in (encode_row(r, tokenizer, max_length, min_loss_tokens) for r in rows) if e is not None
    ]
    if not encoded:
        raise ValueError(
            f"params.dataPaths: no usable samples (of {len(rows)}) with >= {min_loss_tokens} answer tokens"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    device = next(model.parameters()).device
    capture = HiddenCapture(model, layer_ids)
    shards: list[dict] = []
    pending: list[tuple[list[int], int, torch.Tensor, torch.Tensor]] = []
    total_tokens = 0

    def flush() -> None:
        nonlocal pending
        if not pending:
            return
        from safetensors.torch import save_file

        name = f"shard_{len(shards):05d}.safetensors"
        lengths = torch.tensor([len(ids) for ids, *_ in pending])
        save_file(
            {
                "input_ids": torch.tensor([t for ids, *_ in pending for t in ids], dtype=torch.int32),
                "features": torch.cat([f for _, _, f, _ in pending]).to(torch.float16).contiguous(),
                "final_hidden": torch.cat([h for *_, h in pending]).to(torch.float16).contiguous(),
                "offsets": torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)]),
                "answer_starts": torch.tensor([start for _, start, *_ in pending], dtype=torch.long),
            },
            str(output_dir / name),
        )
        shards.append({"file": name, "samples": len(pending), "tokens": int(lengths.sum())})
        pending = []

    try:
        for start in range(0, len(encoded), batch_size):
            batch = encoded[start : start + batch_size]
            ids, mask = pad_batch([seq for seq, _ in batch])
            model(input_ids=ids.to(device), attention_mask=mask.to(device))
            features, final = capture.features().cpu(), capture.final_hidden().cpu()
            for row, (seq, answer_start) in enumerate(batch):
                n = len(seq)
                pending.append((seq, answer_start, features[row, :n], final[row, :n]))
                total_tokens += n
                if len(pending) >= max_shard_samples:
                    flush()
            if report:
                report(stage="target-cache", step=min(start + batch_size, len(encoded)), total=len(encoded))
        flush()
    finally:
        capture.close()
    manifest = {
        "version": CACHE_VERSION,
        "format": "specops-reference",
        "target_model_name_or_path": target_name,
        "target_layer_ids": list(layer_ids),
        "hidden_size": int(model.config.hidden_size),
        "feature_dtype": "float16",
        "chat_template": type(tokenizer).__name__,
        "max_length": max_length,
        "num_samples": len(encoded),
        "dropped_samples": len(rows) - len(encoded),
        "num_tokens": total_tokens,
        "shards": shards,
    }
    (output_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def read_manifest(cache_dir: Path) -> dict:
    path = Path(cache_dir) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"params.targetCachePath: no {MANIFEST} in {cache_dir}")
    return json.loads(path.read_text())


def load_cache(cache_dir: Path) -> tuple[dict, list[CachedSample]]:
    from safetensors.torch import load_file

    manifest = read_manifest(cache_dir)
    samples: list[CachedSample] = []
    for shard in manifest["shards"]:
        tensors = load_file(str(Path(cache_dir) / shard["file"]))
        offsets = tensors["offsets"].tolist()
        for s in range(len(offsets) - 1):
            lo, hi = offsets[s], offsets[s + 1]
            samples.append(
                CachedSample(
                    input_ids=tensors["input_ids"][lo:hi].long(),
                    features=tensors["features"][lo:hi],
                    final_hidden=tensors["final_hidden"][lo:hi],
                    answer_start=int(tensors["answer_starts"][s]),
                )
            )
    return manifest, samples
