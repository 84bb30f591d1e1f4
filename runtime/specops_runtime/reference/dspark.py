"""DFlash / DSpark style parallel block drafter.

One forward pass drafts a whole block: the block is ``[anchor, <mask> x (block_size-1)]`` at
positions n..n+block_size-1, where the anchor x_n is the newest token; every draft layer attends to
the target's fused hidden states of the context (as extra keys/values, through the layer's own
projections) and bidirectionally within the block.

DSpark adds two light heads on top of that backbone:
- a Markov head: a low-rank correction of each block position's hidden state from the embedding of
  the previously drafted token, applied sequentially (cheap: no attention);
- a confidence head predicting each position's survival probability (trained towards 1 - TV(p, q),
  the exact acceptance probability of a sampled draft token given the prefix survived).
DFlash (as in DeepSpec) is the same model with markov_rank = 0 and no confidence loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .draft_config import DraftConfig, SharedWeights
from .layers import DecoderLayer, RMSNorm
from .sampling import SamplingParams, probs_from_logits, sample_token


class DSparkDraft(nn.Module):
    def __init__(self, config: DraftConfig, shared: SharedWeights) -> None:
        super().__init__()
        h = config.hidden_size
        self.config = config
        self.register_buffer("embed_weight", shared.embed, persistent=False)
        self.register_buffer("lm_head_weight", shared.lm_head, persistent=False)
        self.fc = nn.Linear(config.feature_size, h, bias=False)
        self.context_norm = RMSNorm(h)
        self.layers = nn.ModuleList(
            DecoderLayer(
                h, config.num_attention_heads, config.head_dim, config.intermediate_size, config.rope_theta
            )
            for _ in range(config.num_hidden_layers)
        )
        self.norm = RMSNorm(h)
        if config.markov_rank > 0:
            self.markov_state = nn.Linear(h, config.markov_rank, bias=False)
            self.markov_token = nn.Linear(h, config.markov_rank, bias=False)
            self.markov_out = nn.Linear(config.markov_rank, h, bias=False)
            nn.init.zeros_(self.markov_out.weight)  # starts as plain DFlash
        if config.enable_confidence_head:
            self.confidence_head = nn.Sequential(nn.Linear(h + 2, 32), nn.SiLU(), nn.Linear(32, 1))

    def context(self, features: torch.Tensor) -> torch.Tensor:
        return self.context_norm(self.fc(features))

    def backbone(
        self,
        context: torch.Tensor,
        context_positions: torch.Tensor,
        block_tokens: torch.Tensor,
        block_positions: torch.Tensor,
        mask: torch.Tensor,
        context_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """Hidden states [B, Q, H] of the block tokens (context keys come first in ``mask``)."""
        x = F.embedding(block_tokens, self.embed_weight)
        for index, layer in enumerate(self.layers):
            if context_kv is not None:
                ctx_k, ctx_v = context_kv[index]
            else:
                ctx_k, ctx_v = layer.context_keys_values(context, context_positions)
            x, _, _ = layer(x, block_positions, mask, ctx_k, ctx_v)
        return x

    def markov_state_of(self, hidden: torch.Tensor) -> torch.Tensor:
        """The hidden-state half of the Markov head (computable for all positions at once)."""
        return F.silu(self.markov_state(hidden))

    def markov(
        self, hidden: torch.Tensor, previous_tokens: torch.Tensor, state: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Sequential low-rank correction from the previous token (identity when rank is 0)."""
        if self.config.markov_rank <= 0:
            return hidden
        previous = F.embedding(previous_tokens, self.embed_weight)
        state = self.markov_state_of(hidden) if state is None else state
        return hidden + self.markov_out(state * self.markov_token(previous))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(self.norm(hidden), self.lm_head_weight)

    def confidence(self, hidden: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Predicted survival probability of each drafted position (given its prefix survived)."""
        log_probs = torch.log_softmax(logits.detach().float(), dim=-1)
        top = log_probs.max(-1, keepdim=True).values.exp()
        entropy = -(log_probs.exp() * log_probs).sum(-1, keepdim=True)
        inputs = torch.cat([hidden.detach(), top, entropy], dim=-1)
        return torch.sigmoid(self.confidence_head(inputs)).squeeze(-1)

    def drafter(self) -> BlockDrafter:
        return BlockDrafter(self)


def block_attention_mask(anchors: torch.Tensor, context_len: int, block_size: int) -> torch.Tensor:
    """Mask [B, 1, A*bs, ctx + A*bs]: block k sees context keys s < anchor_k and its own block."""
    batch, num_anchors = anchors.shape
    queries = num_anchors * block_size
    block_of_query = torch.arange(queries, device=anchors.device) // block_size  # [Q]
    query_anchor = anchors[:, block_of_query]  # [B, Q]
    ctx = torch.arange(context_len, device=anchors.device)[None, None, :] < query_anchor[:, :, None]
    same_block = block_of_query[:, None] == block_of_query[None, :]  # [Q, Q]
    own = same_block[None].expand(batch, -1, -1)
    return torch.cat([ctx, own], dim=2)[:, None]


class BlockDrafter:
    """Inference state for one sequence: per-layer context keys/values from target features."""

    def __init__(self, model: DSparkDraft) -> None:
        self.model = model
        self.device = model.embed_weight.device
        # The confidence head only runs when it steers drafting (threshold > 0) or when asked to
        # record its predictions (evaluation reports their calibration).
        self.record_confidence = False
        self.reset()

    def reset(self) -> None:
        self.context_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self.length = 0
        self.anchor: int | None = None
        self.last_confidence: list[float] = []

    @torch.inference_mode()
    def append_context(self, features: torch.Tensor, next_tokens: list[int]) -> None:
        m = len(next_tokens)
        positions = torch.arange(self.length, self.length + m, device=self.device)[None]
        context = self.model.context(features[None].to(self.device).float())
        fresh = [layer.context_keys_values(context, positions) for layer in self.model.layers]
        if self.context_kv is None:
            self.context_kv = fresh
        else:
            self.context_kv = [
                (torch.cat([k0, k1], dim=2), torch.cat([v0, v1], dim=2))
                for (k0, v0), (k1, v1) in zip(self.context_kv, fresh, strict=True)
            ]
        self.length += m
        self.anchor = next_tokens[-1]

    @torch.inference_mode()
    def propose(
        self,
        gamma: int,
        params: SamplingParams,
        generator: torch.Generator | None,
        confidence_threshold: float = 0.0,
    ) -> tuple[list[int], torch.Tensor]:
        """Draft up to ``gamma`` tokens in one backbone pass; stop early when the predicted
        survival of the chain falls below ``confidence_threshold`` (DSpark only; 0 = never)."""
        assert self.anchor is not None and self.context_kv is not None, "append_context first"
        block = self.model.config.block_size
        gamma = min(gamma, block)
        tokens_in = torch.tensor(
            [[self.anchor] + [self.model.config.mask_token_id] * (block - 1)], device=self.device
        )
        positions = torch.arange(self.length, self.length + block, device=self.device)[None]
        # mask=None: the block sees the whole context and itself (bidirectional), as in training.
        hidden = self.model.backbone(None, None, tokens_in, positions, None, self.context_kv)[0][:gamma]
        use_confidence = self.model.config.enable_confidence_head and (
            confidence_threshold > 0 or self.record_confidence
        )
        sequential = self.model.config.markov_rank > 0
        if not sequential:  # DFlash: every position's distribution is known after the one pass
            all_logits = self.model.logits(hidden)
            all_probs = probs_from_logits(all_logits, params)
            all_confidence = self.model.confidence(hidden, all_logits).tolist() if use_confidence else None
        else:  # DSpark: the Markov head corrects each position from the token drafted before it
            markov_state = self.model.markov_state_of(hidden)
        previous, survival = self.anchor, 1.0
        tokens: list[int] = []
        probs: list[torch.Tensor] = []
        self.last_confidence = []
        for i in range(gamma):
            if sequential:
                h = self.model.markov(hidden[i], torch.tensor(previous, device=self.device), markov_state[i])
                logits = self.model.logits(h)
                q = probs_from_logits(logits, params)
                c = float(self.model.confidence(h, logits)) if use_confidence else 1.0
            else:
                q = all_probs[i]
                c = all_confidence[i] if all_confidence is not None else 1.0
            if use_confidence:
                survival *= c
                if i > 0 and survival < confidence_threshold:
                    break
                self.last_confidence.append(c)
            token = sample_token(q, generator)
            tokens.append(token)
            probs.append(q)
            previous = token
        return tokens, torch.stack(probs)
