"""EAGLE-3 style draft: an autoregressive head on fused low/mid/high target hidden states.

Step 0 at position t reads fc([F_t]) (the target's selected layers) and the embedding of the
next token x_{t+1}, and predicts x_{t+2}. Later draft steps cannot see target features, so they
read the draft's own previous hidden state instead. Training unrolls that ("test-time training",
``ttt_length`` steps): step j at position t reads the step-(j-1) hidden state at t-1 and attends to
step-0 keys up to t-j plus its own chain of earlier-step keys, exactly what inference sees.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .draft_config import DraftConfig, SharedWeights
from .layers import DecoderLayer, RMSNorm
from .sampling import SamplingParams, probs_from_logits, sample_token


def ttt_mask(length: int, step: int, device: torch.device) -> torch.Tensor:
    """Boolean mask [T, (step+1)*T] for draft step ``step`` over keys [step0 ; step1 ; ... ; step].

    Query (step j, position t) may see step-0 keys s <= t - j, and the step-i key (1 <= i <= j)
    at position t - j + i: the draft's own chain from the last real target feature up to t.
    """
    t = torch.arange(length, device=device)[:, None]
    s = torch.arange(length, device=device)[None, :]
    blocks = [s <= t - step]
    blocks += [s == t - step + i for i in range(1, step + 1)]
    return torch.cat(blocks, dim=1)


class Eagle3Draft(nn.Module):
    def __init__(self, config: DraftConfig, shared: SharedWeights) -> None:
        super().__init__()
        h = config.hidden_size
        self.config = config
        self.register_buffer("embed_weight", shared.embed, persistent=False)
        self.register_buffer("lm_head_weight", shared.lm_head, persistent=False)
        self.fc = nn.Linear(config.feature_size, h, bias=False)
        self.embed_norm = RMSNorm(h)
        self.feature_norm = RMSNorm(h)
        self.input_proj = nn.Linear(2 * h, h, bias=False)
        self.layer = DecoderLayer(
            h, config.num_attention_heads, config.head_dim, config.intermediate_size, config.rope_theta
        )
        self.norm = RMSNorm(h)

    def step_input(self, feature: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        embedded = F.embedding(tokens, self.embed_weight)
        return self.input_proj(torch.cat([self.embed_norm(embedded), self.feature_norm(feature)], dim=-1))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(self.norm(hidden), self.lm_head_weight)

    def ttt_forward(self, features: torch.Tensor, tokens: torch.Tensor, steps: int) -> list[torch.Tensor]:
        """Logits per unrolled step, each [B, T-2, V]; step j at position t predicts tokens[t+2]."""
        length = tokens.shape[1] - 2
        positions = torch.arange(length, device=tokens.device)[None].expand(tokens.shape[0], -1)
        next_tokens = tokens[:, 1 : length + 1]
        feature = self.fc(features[:, :length])
        past_k: torch.Tensor | None = None
        past_v: torch.Tensor | None = None
        outputs = []
        for step in range(steps):
            x = self.step_input(feature, next_tokens)
            hidden, k, v = self.layer(x, positions, ttt_mask(length, step, tokens.device), past_k, past_v)
            past_k = k if past_k is None else torch.cat([past_k, k], dim=2)
            past_v = v if past_v is None else torch.cat([past_v, v], dim=2)
            outputs.append(self.logits(hidden))
            feature = F.pad(hidden[:, :-1], (0, 0, 1, 0))  # step j+1 at t reads step-j hidden at t-1
        return outputs

    def drafter(self) -> Eagle3Drafter:
        return Eagle3Drafter(self)


class Eagle3Drafter:
    """Inference state for one sequence: a KV cache of step-0 entries (real target features)."""

    def __init__(self, model: Eagle3Draft) -> None:
        self.model = model
        self.device = model.embed_weight.device
        self.reset()

    def reset(self) -> None:
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.length = 0
        self.last_hidden: torch.Tensor | None = None

    @torch.inference_mode()
    def append_context(self, features: torch.Tensor, next_tokens: list[int]) -> None:
        """Add entries (F_t, x_{t+1}) for the newly verified positions t."""
        m = len(next_tokens)
        positions = torch.arange(self.length, self.length + m, device=self.device)[None]
        tokens = torch.tensor([next_tokens], device=self.device)
        x = self.model.step_input(self.model.fc(features[None].to(self.device).float()), tokens)
        q_idx = torch.arange(m, device=self.device)[:, None] + self.length
        mask = torch.arange(self.length + m, device=self.device)[None, :] <= q_idx
        hidden, k, v = self.model.layer(x, positions, mask, self.k, self.v)
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        self.length += m
        self.last_hidden = hidden[0, -1]

    @torch.inference_mode()
    def propose(
        self,
        gamma: int,
        params: SamplingParams,
        generator: torch.Generator | None,
        confidence_threshold: float = 0.0,
    ) -> tuple[list[int], torch.Tensor]:
        assert self.last_hidden is not None, "append_context must run before propose"
        hidden, position = self.last_hidden, self.length - 1
        past_k, past_v = self.k, self.v
        tokens: list[int] = []
        probs: list[torch.Tensor] = []
        for step in range(gamma):
            q = probs_from_logits(self.model.logits(hidden), params)
            token = sample_token(q, generator)
            tokens.append(token)
            probs.append(q)
            if step == gamma - 1:
                break
            position += 1
            x = self.model.step_input(hidden[None, None], torch.tensor([[token]], device=self.device))
            pos = torch.tensor([[position]], device=self.device)
            out, k, v = self.model.layer(x, pos, None, past_k, past_v)  # sees the whole chain
            past_k, past_v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
            hidden = out[0, -1]
        return tokens, torch.stack(probs)
