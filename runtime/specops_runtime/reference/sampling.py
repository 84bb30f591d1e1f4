"""Sampling and exact chain verification (speculative rejection sampling).

Lossless by construction: a draft token d drawn from q is accepted with probability
min(1, p(d) / q(d)); on rejection the replacement is drawn from norm(max(p - q, 0)); when every
draft token survives, a bonus token is drawn from the target's next distribution. The emitted
sequence is then distributed exactly as target-only sampling. Greedy decoding is the special case
of one-hot p and q (accept while the draft equals the target's argmax).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0  # <= 0 means greedy
    top_k: int = 0  # 0 = off
    top_p: float = 1.0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def validate(self) -> SamplingParams:
        if self.temperature < 0:
            raise ValueError("temperature: must be >= 0")
        if self.top_k < 0:
            raise ValueError("topK: must be >= 0")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError("topP: must be in (0, 1]")
        return self


def probs_from_logits(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """Next-token distributions for logits [..., V] after temperature / top-k / top-p."""
    logits = logits.float()
    if params.greedy:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    logits = logits / params.temperature
    if params.top_k and params.top_k < logits.shape[-1]:
        kth = torch.topk(logits, params.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
        # Keep the smallest prefix whose mass reaches top_p (the first token is always kept).
        drop_sorted = (sorted_probs.cumsum(-1) - sorted_probs) >= params.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def sample_token(probs: torch.Tensor, generator: torch.Generator | None) -> int:
    """One token from a 1-D distribution (argmax when it is one-hot, without touching the RNG)."""
    if probs.max() >= 1.0:
        return int(probs.argmax())
    return int(torch.multinomial(probs.cpu(), 1, generator=generator))


@dataclass(frozen=True)
class Verdict:
    accepted: int  # number of draft tokens that survived
    next_token: int  # correction (on reject) or bonus (all accepted) token from the target


def verify_chain(
    draft_tokens: list[int],
    draft_probs: torch.Tensor,
    target_probs: torch.Tensor,
    generator: torch.Generator | None,
) -> Verdict:
    """Verify a chain of draft tokens.

    draft_probs[i] is q for draft token i; target_probs[i] is p at the same position and
    target_probs[len(draft_tokens)] is the target's distribution after the whole chain (bonus).
    """
    gamma = len(draft_tokens)
    if target_probs.shape[0] != gamma + 1 or draft_probs.shape[0] < gamma:
        raise ValueError("verify_chain: need gamma draft rows and gamma + 1 target rows")
    p_all, q_all = target_probs.cpu(), draft_probs.cpu()
    for i, token in enumerate(draft_tokens):
        p, q = p_all[i], q_all[i]
        p_tok, q_tok = float(p[token]), float(q[token])
        if p_tok >= q_tok:
            continue  # min(1, p/q) = 1: always accepted, no random draw needed
        if p_tok > 0.0 and float(torch.rand((), generator=generator)) * q_tok < p_tok:
            continue
        residual = torch.clamp(p - q, min=0.0)
        mass = float(residual.sum())
        next_token = sample_token(residual / mass if mass > 0 else p, generator)
        return Verdict(i, next_token)
    return Verdict(gamma, sample_token(p_all[gamma], generator))
