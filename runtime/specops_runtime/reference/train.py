"""Draft training from the target-hidden-state cache (the target itself stays frozen and unused).

Losses follow the notes on DeepSpec / the DSpark paper:
- eagle3: cross-entropy per unrolled test-time-training step, step j weighted by decay**j;
- dflash: position-weighted cross-entropy over the block, w_k = exp(-(k-1)/gamma);
- dspark: that cross-entropy + total-variation distance to the target distribution + a
  confidence loss (BCE of the confidence head against 1 - TV, the exact acceptance probability).
Each logged step also reports the acceptance the draft would get per position (1 - TV against
the target's distribution, teacher-forced) and the tau that implies.

Checkpoints: ``<out>/step_<N>/`` (config.json + model.safetensors + training_state.pt) with
``<out>/step_latest`` pointing at the newest; a run resumes from ``step_latest`` automatically.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .draft_config import DraftConfig, build_draft, load_draft, save_draft
from .dspark import DSparkDraft, block_attention_mask
from .eagle3 import Eagle3Draft
from .target_cache import CachedSample
from .tokenizer import MASK, PAD


@dataclass
class TrainSettings:
    epochs: int = 3
    max_steps: int | None = None
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_ratio: float = 0.04
    seed: int = 0
    step_loss_decay: float = 0.8  # eagle3
    tv_weight: float = 1.0  # dspark
    confidence_alpha: float = 1.0  # dspark
    logging_steps: int = 0  # 0 = about 100 progress reports per run
    checkpointing_steps: int = 0  # 0 = only the final checkpoint


@dataclass
class Batch:
    tokens: torch.Tensor  # [B, T]
    features: torch.Tensor  # [B, T, k*H]
    final_hidden: torch.Tensor  # [B, T, H]
    lengths: torch.Tensor  # [B]
    answer_starts: torch.Tensor  # [B]


def collate(samples: list[CachedSample], device: torch.device) -> Batch:
    width = max(s.length for s in samples)
    b = len(samples)
    tokens = torch.full((b, width), PAD, dtype=torch.long)
    features = torch.zeros(b, width, samples[0].features.shape[-1])
    final = torch.zeros(b, width, samples[0].final_hidden.shape[-1])
    for i, s in enumerate(samples):
        tokens[i, : s.length] = s.input_ids
        features[i, : s.length] = s.features.float()
        final[i, : s.length] = s.final_hidden.float()
    lengths = torch.tensor([s.length for s in samples])
    starts = torch.tensor([s.answer_start for s in samples])
    return Batch(
        tokens.to(device), features.to(device), final.to(device), lengths.to(device), starts.to(device)
    )


def total_variation(q_logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return 0.5 * (torch.softmax(q_logits.float(), dim=-1) - p).abs().sum(-1)


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (values * weights).sum() / weights.sum().clamp(min=1e-8)


def acceptance_by_position(accept: torch.Tensor, valid: torch.Tensor) -> list[float]:
    """Mean per-position acceptance (dimension -1 = position) over valid entries."""
    dims = tuple(range(accept.dim() - 1))
    num = (accept * valid).sum(dim=dims)
    den = valid.sum(dim=dims).clamp(min=1)
    return (num / den).tolist()


def eagle3_loss(
    model: Eagle3Draft, batch: Batch, settings: TrainSettings
) -> tuple[torch.Tensor, list[float]]:
    steps = model.config.ttt_length
    length = batch.tokens.shape[1] - 2
    logits_per_step = model.ttt_forward(batch.features, batch.tokens, steps)
    labels = batch.tokens[:, 2:]
    t = torch.arange(length, device=labels.device)[None]
    label_idx = t + 2
    base_valid = (label_idx < batch.lengths[:, None]) & (label_idx >= batch.answer_starts[:, None] + 1)
    # The target's distribution for tokens[t+2] comes from its final hidden state at t+1.
    p = torch.softmax(F.linear(batch.final_hidden[:, 1 : length + 1], model.lm_head_weight), dim=-1)
    total, norm = torch.zeros((), device=labels.device), 0.0
    accepts, valids = [], []
    for step, logits in enumerate(logits_per_step):
        valid = base_valid & (t >= step)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
        weight = settings.step_loss_decay**step
        total = total + weight * weighted_mean(ce.view_as(labels), valid.float())
        norm += weight
        with torch.no_grad():
            accepts.append(1.0 - total_variation(logits, p))
            valids.append(valid.float())
    accept = torch.stack(accepts, -1)
    return total / norm, acceptance_by_position(accept, torch.stack(valids, -1))


def sample_anchors(
    batch: Batch, num_anchors: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchors [B, A] drawn from each sample's answer (anchor a predicts a+1..a+bs) and a validity mask."""
    rows, ok = [], []
    for start, length in zip(batch.answer_starts.tolist(), batch.lengths.tolist(), strict=True):
        candidates = torch.arange(start, max(start, length - 1))
        if len(candidates) == 0:
            candidates = torch.tensor([max(0, length - 2)])
        chosen = candidates[torch.randperm(len(candidates), generator=generator)[:num_anchors]]
        valid = torch.ones(num_anchors, dtype=torch.bool)
        if len(chosen) < num_anchors:
            valid[len(chosen) :] = False
            chosen = torch.cat([chosen, chosen[:1].repeat(num_anchors - len(chosen))])
        rows.append(chosen)
        ok.append(valid)
    device = batch.tokens.device
    return torch.stack(rows).to(device), torch.stack(ok).to(device)


def block_loss(
    model: DSparkDraft, batch: Batch, settings: TrainSettings, generator: torch.Generator
) -> tuple[torch.Tensor, list[float]]:
    cfg = model.config
    bs, width = cfg.block_size, batch.tokens.shape[1]
    anchors, anchor_ok = sample_anchors(batch, cfg.num_anchors, generator)  # [B, A]
    b, a = anchors.shape
    offsets = torch.arange(bs, device=anchors.device)
    positions = anchors[:, :, None] + offsets  # [B, A, bs]: block token positions
    label_idx = positions + 1
    valid = (label_idx < batch.lengths[:, None, None]) & anchor_ok[:, :, None]
    gather = label_idx.clamp(max=width - 1).view(b, -1)
    labels = batch.tokens.gather(1, gather).view(b, a, bs)
    previous = batch.tokens.gather(1, positions.clamp(max=width - 1).view(b, -1))  # teacher-forced
    block_tokens = torch.full_like(positions, MASK)
    block_tokens[:, :, 0] = batch.tokens.gather(1, anchors)
    context = model.context(batch.features)
    context_pos = torch.arange(width, device=anchors.device)[None].expand(b, -1)
    mask = block_attention_mask(anchors, width, bs)
    hidden = model.backbone(context, context_pos, block_tokens.view(b, -1), positions.view(b, -1), mask)
    hidden = model.markov(hidden, previous)
    logits = model.logits(hidden)  # [B, A*bs, V]
    weights = torch.exp(-offsets.float() / bs)[None, None] * valid.float()
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
    loss = weighted_mean(ce.view(b, a, bs), weights)
    final = batch.final_hidden.gather(
        1, positions.clamp(max=width - 1).view(b, -1, 1).expand(-1, -1, batch.final_hidden.shape[-1])
    )
    p = torch.softmax(F.linear(final, model.lm_head_weight), dim=-1)
    tv = total_variation(logits, p).view(b, a, bs)
    if cfg.method == "dspark" and settings.tv_weight > 0:
        loss = loss + settings.tv_weight * weighted_mean(tv, weights)
    if cfg.enable_confidence_head and settings.confidence_alpha > 0:
        confidence = model.confidence(hidden, logits).view(b, a, bs)
        bce = F.binary_cross_entropy(confidence, (1.0 - tv).detach().clamp(0, 1), reduction="none")
        loss = loss + settings.confidence_alpha * weighted_mean(bce, valid.float())
    return loss, acceptance_by_position((1.0 - tv).detach(), valid.float())


def survival_tau(acceptance: list[float]) -> float:
    """tau implied by per-position acceptance when a token survives only if its prefix did."""
    survival, tau = 1.0, 1.0
    for rate in acceptance:
        survival *= rate
        tau += survival
    return tau


def lr_factor(step: int, total: int, warmup_ratio: float) -> float:
    warmup = max(1, int(total * warmup_ratio))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def _save_checkpoint(model, optimizer, step: int, output_dir: Path) -> Path:
    directory = output_dir / f"step_{step}"
    save_draft(model, directory)
    torch.save({"optimizer": optimizer.state_dict(), "step": step}, directory / "training_state.pt")
    latest = output_dir / "step_latest"
    tmp = output_dir / "step_latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(directory.resolve(), tmp)  # absolute, as DeepSpec does
    os.replace(tmp, latest)
    return directory


def train_draft(
    config: DraftConfig,
    shared,
    samples: list[CachedSample],
    output_dir: Path,
    settings: TrainSettings,
    device: torch.device,
    report: Callable[..., None] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    if not samples:
        raise ValueError("params.targetCachePath: the cache holds no samples")
    torch.manual_seed(settings.seed)
    output_dir.mkdir(parents=True, exist_ok=True)
    model = build_draft(config, shared).to(device)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate, weight_decay=0.0
    )
    steps_per_epoch = math.ceil(len(samples) / settings.batch_size)
    total = settings.max_steps or settings.epochs * steps_per_epoch
    logging_steps = settings.logging_steps or max(1, total // 100)
    start_step = 0
    latest = output_dir / "step_latest"
    if latest.exists():
        model = load_draft(latest, shared, device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=0.0)
        state = torch.load(latest / "training_state.pt", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        start_step = int(state["step"])
        if log:
            log(f"AUTO-RESUME from {latest.resolve()} at step {start_step}")
    model.train()
    generator = torch.Generator().manual_seed(settings.seed)
    loss_value, acceptance = float("nan"), []
    run_started = window_started = time.perf_counter()
    window_samples = 0
    for step in range(start_step, total):
        epoch = step // steps_per_epoch
        order = torch.randperm(len(samples), generator=torch.Generator().manual_seed(settings.seed + epoch))
        index = step % steps_per_epoch
        picked = order[index * settings.batch_size : (index + 1) * settings.batch_size].tolist()
        batch = collate([samples[i] for i in picked], device)
        for group in optimizer.param_groups:
            group["lr"] = settings.learning_rate * lr_factor(step, total, settings.warmup_ratio)
        if isinstance(model, Eagle3Draft):
            loss, acceptance = eagle3_loss(model, batch, settings)
        else:
            loss, acceptance = block_loss(model, batch, settings, generator)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = float(loss.detach())
        window_samples += len(picked)
        done = step + 1
        if report and (done % logging_steps == 0 or done == total):
            now = time.perf_counter()
            elapsed = now - window_started
            per_step = (now - run_started) / max(1, done - start_step)
            report(
                stage="train",
                step=done,
                total=total,
                epoch=epoch,
                loss=loss_value,
                acceptanceByPosition=[round(a, 4) for a in acceptance],
                tauEstimate=round(survival_tau(acceptance), 4),
                throughput=round(window_samples / elapsed, 2) if elapsed > 0 else None,
                throughputUnit="samples/s",
                etaSeconds=round(per_step * (total - done), 1),
            )
            window_started, window_samples = now, 0
        if settings.checkpointing_steps and done % settings.checkpointing_steps == 0 and done < total:
            _save_checkpoint(model, optimizer, done, output_dir)
    final = _save_checkpoint(model, optimizer, total, output_dir)
    if log:
        log(f"Saved checkpoint to {final}")
    return {
        "method": config.method,
        "checkpoint": str(final),
        "steps": total,
        "stepsPerEpoch": steps_per_epoch,
        "resumedFrom": start_step or None,
        "finalLoss": loss_value,
        "acceptanceByPosition": acceptance,
        "tauEstimate": survival_tau(acceptance) if acceptance else None,
    }
