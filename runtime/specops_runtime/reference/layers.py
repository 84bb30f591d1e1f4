"""Qwen3-style building blocks for the drafts (RMSNorm, RoPE, QK-norm attention, SwiGLU MLP).

The drafts need attention patterns the stock decoder layer does not offer (extra context keys
from target features, block-bidirectional masks, EAGLE-3's test-time-training diagonal), so the
attention takes explicit extra keys/values and a boolean mask (True = may attend).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.float().pow(2).mean(-1, keepdim=True)
        return (x.float() * torch.rsqrt(variance + self.eps)).to(x.dtype) * self.weight


def rope_inv_freq(dim: int, theta: float) -> torch.Tensor:
    return 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))


def apply_rope(x: torch.Tensor, positions: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """Rotary embedding (half-split layout as in Qwen3) for x [B, heads, T, D], positions [B, T]."""
    dim = x.shape[-1]
    angles = positions.to(torch.float32)[:, None, :, None] * inv_freq  # [B, 1, T, D/2]
    angles = torch.cat([angles, angles], -1)
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[..., : dim // 2], x[..., dim // 2 :]
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, head_dim: int, rope_theta: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.register_buffer("inv_freq", rope_inv_freq(head_dim, rope_theta), persistent=False)
        self.q_proj = nn.Linear(hidden, heads * head_dim, bias=False)
        self.k_proj = nn.Linear(hidden, heads * head_dim, bias=False)
        self.v_proj = nn.Linear(hidden, heads * head_dim, bias=False)
        self.o_proj = nn.Linear(heads * head_dim, hidden, bias=False)
        self.q_norm = RMSNorm(head_dim)
        self.k_norm = RMSNorm(head_dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).transpose(1, 2)

    def keys_values(self, x: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotated keys and values [B, heads, T, D] for already-normalised inputs x [B, T, H]."""
        k = apply_rope(self.k_norm(self._split(self.k_proj(x))), positions, self.inv_freq)
        return k, self._split(self.v_proj(x))

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor,
        past_k: torch.Tensor | None = None,
        past_v: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attend from x to [past keys ; x's own keys]; returns output and x's own keys/values."""
        q = apply_rope(self.q_norm(self._split(self.q_proj(x))), positions, self.inv_freq)
        k, v = self.keys_values(x, positions)
        all_k = k if past_k is None else torch.cat([past_k, k], dim=2)
        all_v = v if past_v is None else torch.cat([past_v, v], dim=2)
        out = F.scaled_dot_product_attention(q, all_k, all_v, attn_mask=mask)
        b, _, t, _ = out.shape
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1)), k, v


class MLP(nn.Module):
    def __init__(self, hidden: int, intermediate: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, head_dim: int, intermediate: int, rope_theta: float) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(hidden)
        self.self_attn = Attention(hidden, heads, head_dim, rope_theta)
        self.post_attention_layernorm = RMSNorm(hidden)
        self.mlp = MLP(hidden, intermediate)

    def context_keys_values(self, ctx: torch.Tensor, positions: torch.Tensor):
        """Keys/values for extra context vectors, through this layer's own norm and projections."""
        return self.self_attn.keys_values(self.input_layernorm(ctx), positions)

    def forward(self, x, positions, mask, past_k=None, past_v=None):
        attn, k, v = self.self_attn(self.input_layernorm(x), positions, mask, past_k, past_v)
        x = x + attn
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, k, v
