"""Acceptance arithmetic with DeepSpec's conventions (pure; no torch), as its evaluator computes
them (deepspec/eval/base_evaluator.py at afdfa7c).

One *round* (a "proposal") drafts ``proposal_len`` tokens; the target accepts the first
``accepted`` of them and then emits one more token (the correction on a reject, the bonus token
when all were accepted). A round whose accepted drafts contain EOS ends there: its proposal counts
up to and including the EOS, the EOS counts as accepted, and no bonus token follows. Hence:

- tau ("accept_len")      = sum(emitted) / #proposals, emitted = accepted + 1 (accepted at EOS)
- verify_rate              = sum(emitted) / (sum(proposal_len) + #proposals)
- accept_rate@i            = of the rounds whose proposal reached position i (proposal_len > i),
                             the share whose i-th draft token (0-based) survived
- vLLM counters            : drafts = #proposals, draft_tokens = sum(proposal_len),
                             accepted = sum(accepted), per_pos[i] = #rounds with accepted > i;
                             tau = 1 + accepted / drafts, per-position = per_pos[i] / drafts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Round:
    proposal_len: int
    accepted: int

    def __post_init__(self) -> None:
        if not 0 <= self.accepted <= self.proposal_len:
            raise ValueError(f"accepted: {self.accepted} outside [0, {self.proposal_len}]")


@dataclass
class AcceptanceStats:
    """Accumulates rounds; merge-able so per-task stats can roll up into a macro view."""

    proposals: int = 0
    draft_tokens: int = 0
    accepted_tokens: int = 0
    accepted_per_position: list[int] = field(default_factory=list)
    proposals_per_position: list[int] = field(default_factory=list)
    emitted: int = 0  # tokens the rounds produced: accepted + 1 each, without the +1 at EOS

    def add(self, proposal_len: int, accepted: int, bonus: bool = True) -> None:
        """One round; ``bonus=False`` for a round cut at an accepted EOS (proposal_len and accepted
        then both count up to and including the EOS)."""
        Round(proposal_len, accepted)  # validates
        self.proposals += 1
        self.draft_tokens += proposal_len
        self.accepted_tokens += accepted
        self.emitted += accepted + (1 if bonus else 0)
        for counts in (self.accepted_per_position, self.proposals_per_position):
            if len(counts) < proposal_len:
                counts.extend([0] * (proposal_len - len(counts)))
        for i in range(proposal_len):
            self.proposals_per_position[i] += 1
        for i in range(accepted):
            self.accepted_per_position[i] += 1

    def extend(self, rounds: Iterable[Round | tuple[int, int]]) -> AcceptanceStats:
        for r in rounds:
            proposal_len, accepted = (r.proposal_len, r.accepted) if isinstance(r, Round) else r
            self.add(proposal_len, accepted)
        return self

    def merge(self, other: AcceptanceStats) -> AcceptanceStats:
        def add_lists(a: list[int], b: list[int]) -> list[int]:
            n = max(len(a), len(b))
            return [x + y for x, y in zip(a + [0] * (n - len(a)), b + [0] * (n - len(b)), strict=True)]

        return AcceptanceStats(
            self.proposals + other.proposals,
            self.draft_tokens + other.draft_tokens,
            self.accepted_tokens + other.accepted_tokens,
            add_lists(self.accepted_per_position, other.accepted_per_position),
            add_lists(self.proposals_per_position, other.proposals_per_position),
            self.emitted + other.emitted,
        )

    @property
    def emitted_tokens(self) -> int:
        """Tokens produced by the rounds: accepted drafts plus one target token per round not cut at EOS."""
        return self.emitted

    def tau(self) -> float:
        return self.emitted_tokens / self.proposals if self.proposals else 0.0

    def verify_rate(self) -> float:
        denominator = self.draft_tokens + self.proposals
        return self.emitted_tokens / denominator if denominator else 0.0

    def accept_rate_by_position(self) -> list[float]:
        """DeepSpec's accept_rate@i; positions no proposal reached are left out (it prints '-')."""
        return [
            accepted / reached
            for accepted, reached in zip(self.accepted_per_position, self.proposals_per_position, strict=True)
            if reached
        ]

    def mean_proposal_len(self) -> float:
        return self.draft_tokens / self.proposals if self.proposals else 0.0

    def summary(self) -> dict:
        return {
            "proposals": self.proposals,
            "draftTokens": self.draft_tokens,
            "acceptedTokens": self.accepted_tokens,
            "tau": self.tau(),
            "verifyRate": self.verify_rate(),
            "acceptanceByPosition": self.accept_rate_by_position(),
            "meanProposalLength": self.mean_proposal_len(),
        }


def tau_from_vllm_counters(num_drafts: float, num_accepted: float) -> float:
    """vLLM's mean acceptance length: 1 + accepted / drafts (equal to DeepSpec's tau)."""
    return 1.0 + num_accepted / num_drafts if num_drafts else 0.0


def expected_tau(survival_by_position: list[float]) -> float:
    """Expected tokens per round given per-position acceptance (cumulative survival) probabilities."""
    return 1.0 + sum(survival_by_position)


def confidence_calibration(rounds: Iterable[tuple[list[float], int]]) -> dict:
    """Predicted vs observed conditional acceptance per draft position (DSpark's confidence head).

    Position i counts in rounds that reached it (the first i drafts were accepted); observed is
    the share of those rounds that also accepted draft i, predicted the head's mean output there.
    """
    predicted: list[float] = []
    observed: list[int] = []
    reached: list[int] = []
    for confidences, accepted in rounds:
        for i, c in enumerate(confidences):
            if i > accepted:
                break
            if len(reached) <= i:
                predicted.append(0.0)
                observed.append(0)
                reached.append(0)
            reached[i] += 1
            predicted[i] += c
            observed[i] += int(accepted > i)
    return {
        "predictedByPosition": [p / n for p, n in zip(predicted, reached, strict=True)],
        "observedByPosition": [o / n for o, n in zip(observed, reached, strict=True)],
        "roundsByPosition": reached,
    }
