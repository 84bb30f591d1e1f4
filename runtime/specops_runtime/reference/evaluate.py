"""Offline evaluation: per-task tau, per-position acceptance, verify rate and decode speed.

Follows DeepSpec's evaluator: batch size 1, chain drafting, temperature 1.0 by default, one
row per task set; optionally the same prompts decoded target-only for tokens/s and speedup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .acceptance import AcceptanceStats, confidence_calibration
from .sampling import SamplingParams
from .speculative import Generator


@dataclass(frozen=True)
class EvalSettings:
    sampling: SamplingParams = SamplingParams(temperature=1.0)
    max_new_tokens: int = 48
    speculative_length: int = 4
    seed: int = 980406
    measure_baseline: bool = True
    confidence_threshold: float = 0.0


@dataclass
class _Tally:
    stats: AcceptanceStats
    # The same rounds as the engine's counters count them (vLLM's convention: a round's accepted
    # drafts before any cut at EOS), so offline figures compare with a live engine's /metrics.
    engine_stats: AcceptanceStats = field(default_factory=AcceptanceStats)
    tokens: int = 0
    seconds: float = 0.0
    confidence_rounds: list = field(default_factory=list)

    def add(self, result) -> None:
        self.stats = self.stats.merge(result.stats)
        self.engine_stats = self.engine_stats.merge(result.engine_stats)
        self.tokens += len(result.tokens)
        self.seconds += result.elapsed
        self.confidence_rounds.extend(result.confidence_rounds)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def _decode_task(
    speculative: Generator, baseline: Generator | None, prompts: list[list[int]], settings: EvalSettings
) -> tuple[_Tally, _Tally | None]:
    """Decode every prompt with speculation and (optionally) target-only, interleaved prompt by
    prompt so that load changes on a shared machine hit both measurements alike."""
    spec, base = _Tally(AcceptanceStats()), _Tally(AcceptanceStats()) if baseline else None
    for i, prompt in enumerate(prompts):
        run = dict(max_new_tokens=settings.max_new_tokens, params=settings.sampling, seed=settings.seed + i)
        spec.add(
            speculative.generate(
                prompt,
                gamma=settings.speculative_length,
                confidence_threshold=settings.confidence_threshold,
                **run,
            )
        )
        if baseline is not None and base is not None:
            base.add(baseline.generate(prompt, **run))
    return spec, base


def evaluate_tasks(
    target_model,
    drafter,
    layer_ids: list[int],
    prompts_by_task: dict[str, list[list[int]]],
    settings: EvalSettings,
    report: Callable[..., None] | None = None,
) -> dict:
    if hasattr(drafter, "record_confidence"):
        drafter.record_confidence = True  # report the confidence head's calibration
    speculative = Generator(target_model, drafter, layer_ids)
    baseline = Generator(target_model) if settings.measure_baseline else None
    per_task: dict[str, dict] = {}
    try:
        for done, (task, prompts) in enumerate(prompts_by_task.items(), start=1):
            spec, base = _decode_task(speculative, baseline, prompts, settings)
            stats = spec.stats
            row = {
                "samples": len(prompts),
                "tau": stats.tau(),
                "acceptanceByPosition": stats.accept_rate_by_position(),
                "verifyRate": stats.verify_rate(),
                "proposals": stats.proposals,
                "meanProposalLength": stats.mean_proposal_len(),
                "generatedTokens": spec.tokens,
                "tokensPerSecond": spec.tokens_per_second,
            }
            row["vllmConvention"] = vllm_convention(spec.engine_stats)
            if spec.confidence_rounds:
                row["confidence"] = confidence_calibration(spec.confidence_rounds)
            if base is not None:
                row["baselineTokensPerSecond"] = base.tokens_per_second
                row["speedup"] = spec.tokens_per_second / base.tokens_per_second if base.tokens else None
            per_task[task] = row
            if report:
                report(
                    stage="evaluate",
                    step=done,
                    total=len(prompts_by_task),
                    tauEstimate=row["tau"],
                    acceptanceByPosition=row["acceptanceByPosition"],
                    message=f"{task}: tau={row['tau']:.3f}",
                )
    finally:
        speculative.close()
        if baseline is not None:
            baseline.close()
    return {"tasks": per_task, "summary": macro_summary(per_task)}


def vllm_convention(stats: AcceptanceStats) -> dict:
    """tau and acceptance by position as vLLM's spec-decode counters give them: 1 + accepted /
    drafts, and per position accepted_per_pos[i] / drafts (every round in the denominator)."""
    drafts = stats.proposals
    return {
        "drafts": drafts,
        "draftTokens": stats.draft_tokens,
        "acceptedTokens": stats.accepted_tokens,
        "tau": 1 + stats.accepted_tokens / drafts if drafts else 0.0,
        "acceptanceByPosition": [a / drafts for a in stats.accepted_per_position] if drafts else [],
    }


def macro_summary(per_task: dict[str, dict]) -> dict:
    """Unweighted mean over task sets (the paper's macro average)."""
    if not per_task:
        return {}
    rows = list(per_task.values())

    def mean(key: str) -> float | None:
        values = [r[key] for r in rows if r.get(key) is not None]
        return sum(values) / len(values) if values else None

    width = max(len(r["acceptanceByPosition"]) for r in rows)
    by_pos = [
        sum((r["acceptanceByPosition"] + [0.0] * width)[i] for r in rows) / len(rows) for i in range(width)
    ]
    return {
        "tasks": len(rows),
        "tau": mean("tau"),
        "verifyRate": mean("verifyRate"),
        "acceptanceByPosition": by_pos,
        "tokensPerSecond": mean("tokensPerSecond"),
        "baselineTokensPerSecond": mean("baselineTokensPerSecond"),
        "speedup": mean("speedup"),
    }
