"""Speculative decoding (chain drafting) and target-only decoding for one sequence at a time.

A round: the drafter proposes gamma tokens from its context; the target runs once over
``[last token] + drafts`` (gamma + 1 positions, with its KV cache); ``verify_chain`` accepts a
prefix and yields one more target token; the target cache is rolled back past the rejected
drafts and the drafter receives the target features of the newly verified positions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from .acceptance import AcceptanceStats
from .sampling import SamplingParams, probs_from_logits, sample_token, verify_chain
from .target import TargetRunner


class Drafter(Protocol):
    def reset(self) -> None: ...

    def append_context(self, features: torch.Tensor, next_tokens: list[int]) -> None: ...

    def propose(
        self,
        gamma: int,
        params: SamplingParams,
        generator: torch.Generator | None,
        confidence_threshold: float = 0.0,
    ) -> tuple[list[int], torch.Tensor]: ...


@dataclass
class RoundEvent:
    proposal_len: int
    accepted: int
    tokens: list[int]  # tokens emitted by this round (after stop/length truncation)
    speculative: bool  # False for the prefill token and target-only steps


@dataclass
class GenerationResult:
    tokens: list[int]
    finish_reason: str  # "stop" (eos) or "length"
    prompt_tokens: int
    stats: AcceptanceStats = field(default_factory=AcceptanceStats)  # DeepSpec's evaluator conventions
    # The engine's raw round counts (vLLM counts a round's accepted drafts before cutting at EOS).
    engine_stats: AcceptanceStats = field(default_factory=AcceptanceStats)
    time_to_first_token: float = 0.0
    elapsed: float = 0.0
    target_steps: int = 0  # target forward passes after prefill
    # DSpark only: (predicted per-position survival given the prefix survived, accepted count).
    confidence_rounds: list[tuple[list[float], int]] = field(default_factory=list)


class Generator:
    """Decodes with a target and, optionally, a drafter (``drafter=None`` = speculation off)."""

    def __init__(
        self,
        target_model,
        drafter: Drafter | None = None,
        layer_ids: list[int] | None = None,
        eos_token_id: int | None = None,
    ) -> None:
        self.runner = TargetRunner(target_model, layer_ids if drafter is not None else None)
        self.drafter = drafter
        self.eos = eos_token_id if eos_token_id is not None else target_model.config.eos_token_id

    def generate(
        self,
        prompt: list[int],
        max_new_tokens: int,
        params: SamplingParams,
        gamma: int = 4,
        seed: int | None = None,
        on_round: Callable[[RoundEvent], None] | None = None,
        confidence_threshold: float = 0.0,
    ) -> GenerationResult:
        if not prompt:
            raise ValueError("prompt: must contain at least one token")
        if max_new_tokens < 1:
            raise ValueError("maxNewTokens: must be >= 1")
        generator = torch.Generator().manual_seed(seed if seed is not None else 0)
        result = GenerationResult(tokens=[], finish_reason="length", prompt_tokens=len(prompt))
        started = time.perf_counter()
        self.runner.reset()

        def emit(tokens: list[int], proposal_len: int, accepted: int, speculative: bool) -> bool:
            """Append tokens up to eos / the length limit; returns True when generation is done."""
            kept: list[int] = []
            done = False
            for token in tokens:
                if token == self.eos:
                    result.finish_reason, done = "stop", True
                    break
                kept.append(token)
                if len(result.tokens) + len(kept) >= max_new_tokens:
                    done = True
                    break
            result.tokens.extend(kept)
            if speculative:
                result.engine_stats.add(proposal_len, accepted)
                # DeepSpec's convention: an EOS among the accepted drafts ends the round there
                # (proposal and accepted counted up to the EOS, no bonus token).
                eos_at = next((i for i, t in enumerate(tokens[:accepted]) if t == self.eos), None)
                if eos_at is None:
                    result.stats.add(proposal_len, accepted)
                else:
                    result.stats.add(eos_at + 1, eos_at + 1, bonus=False)
            if on_round:
                on_round(RoundEvent(proposal_len, accepted, kept, speculative))
            return done

        logits, features = self.runner.forward(prompt)
        token = sample_token(probs_from_logits(logits[-1], params), generator)
        result.time_to_first_token = time.perf_counter() - started
        done = emit([token], 0, 0, speculative=False)
        if self.drafter is not None and not done:
            self.drafter.reset()
            self.drafter.append_context(features, prompt[1:] + [token])
        while not done:
            if self.drafter is None:
                logits, _ = self.runner.forward([token])
                token = sample_token(probs_from_logits(logits[-1], params), generator)
                result.target_steps += 1
                done = emit([token], 0, 0, speculative=False)
                continue
            drafts, draft_probs = self.drafter.propose(gamma, params, generator, confidence_threshold)
            base = self.runner.length
            logits, features = self.runner.forward([token] + drafts)
            result.target_steps += 1
            verdict = verify_chain(drafts, draft_probs, probs_from_logits(logits, params), generator)
            confidence = getattr(self.drafter, "last_confidence", None)
            if confidence:
                result.confidence_rounds.append((list(confidence), verdict.accepted))
            new_tokens = drafts[: verdict.accepted] + [verdict.next_token]
            self.runner.rollback(base + verdict.accepted + 1)
            done = emit(new_tokens, len(drafts), verdict.accepted, speculative=True)
            if not done:
                self.drafter.append_context(features[: verdict.accepted + 1], new_tokens)
                token = new_tokens[-1]
        result.elapsed = time.perf_counter() - started
        return result

    def close(self) -> None:
        self.runner.close()
