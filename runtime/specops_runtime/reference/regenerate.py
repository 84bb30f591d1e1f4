"""Answer regeneration: the target rewrites the assistant turns of the training prompts.

Drafts must imitate the target, not the original data, so (as in DeepSpec's
generate_train_data.py) every prompt is answered again by the target with the target's sampling
settings. Output rows keep DeepSpec's layout plus ``status`` and, for exact re-use by the target
cache, the answer's token ids. Resumable: ids already present in the output are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from .tokenizer import PAD


@dataclass(frozen=True)
class RegenerateSettings:
    temperature: float = 0.7
    top_p: float = 0.8
    top_k: int = 20
    min_p: float = 0.0
    max_new_tokens: int = 48
    batch_size: int = 64
    seed: int = 0


def read_jsonl(path: Path) -> list[dict]:
    with Path(path).open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def append_jsonl(path: Path, rows: Iterable[dict]) -> None:
    with Path(path).open("a") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def prompt_messages(row: dict) -> list[dict[str, str]]:
    """The conversation up to (not including) the last assistant turn."""
    turns = row.get("conversations") or [{"role": "user", "content": t} for t in row.get("turns", [])]
    while turns and turns[-1].get("role") == "assistant":
        turns = turns[:-1]
    if not turns:
        raise ValueError(f"conversations: row {row.get('id')!r} has no user turn")
    return turns


@torch.no_grad()
def sample_answers(
    model, prompts: list[list[int]], settings: RegenerateSettings, eos: int, generator_seed: int
) -> list[list[int]]:
    """Batched sampling with the target (left padding, KV cache) via transformers' generate."""
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), PAD, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt)
        mask[row, width - len(prompt) :] = 1
    torch.manual_seed(generator_seed)
    sampling = settings.temperature > 0
    # Never run past the target's positions (a long maxTokens on a tiny target stops at its size).
    room = max(1, int(getattr(model.config, "max_position_embeddings", 1 << 30)) - width)
    out = model.generate(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        max_new_tokens=min(settings.max_new_tokens, room),
        do_sample=sampling,
        temperature=settings.temperature if sampling else None,
        top_p=settings.top_p if sampling else None,
        top_k=settings.top_k if sampling else None,
        min_p=settings.min_p if sampling and settings.min_p > 0 else None,
        eos_token_id=eos,
        pad_token_id=PAD,
    )
    answers = []
    for row in out[:, width:].tolist():
        answers.append(row[: row.index(eos)] if eos in row else row)
    return answers


def regenerate_file(
    model,
    tokenizer,
    source: Path,
    output: Path,
    settings: RegenerateSettings,
    report: Callable[..., None] | None = None,
) -> dict:
    """Regenerate every row of ``source`` into ``output`` (append-only, resumable)."""
    rows = read_jsonl(source)
    done = {r["id"] for r in read_jsonl(output)} if output.exists() else set()
    pending = [r for r in rows if r["id"] not in done]
    errors_path = output.with_name(output.stem + "_error.jsonl")
    written = failed = 0
    for start in range(0, len(pending), settings.batch_size):
        batch = pending[start : start + settings.batch_size]
        messages = [prompt_messages(r) for r in batch]
        prompts = [tokenizer.chat_prompt(m) for m in messages]
        answers = sample_answers(
            model, prompts, settings, tokenizer.eos_token_id, settings.seed * 1_000_003 + len(done) + start
        )
        good, bad = [], []
        for row, msgs, answer in zip(batch, messages, answers, strict=True):
            if not answer:
                bad.append({"id": row["id"], "error": "empty answer"})
                continue
            good.append(
                {
                    "id": row["id"],
                    "task": row.get("task"),
                    "conversations": [*msgs, {"role": "assistant", "content": tokenizer.decode(answer)}],
                    "answer_ids": answer,
                    "status": "success",
                }
            )
        append_jsonl(output, good)
        if bad:
            append_jsonl(errors_path, bad)
        written, failed = written + len(good), failed + len(bad)
        if report:
            report(
                stage="regenerate",
                step=min(start + len(batch), len(pending)),
                total=len(pending),
                message=f"{written} regenerated, {failed} failed",
            )
    return {
        "samples": len(rows),
        "regenerated": written,
        "skipped": len(done),
        "failed": failed,
        "output": str(output),
    }
