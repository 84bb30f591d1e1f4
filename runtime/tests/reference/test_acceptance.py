"""tau / verify_rate / accept_rate@i against hand-computed values (DeepSpec conventions)."""

import pytest

from specops_runtime.reference.acceptance import AcceptanceStats, Round, expected_tau, tau_from_vllm_counters


def test_tau_counts_the_bonus_token():
    # gamma = 4; rounds accept 4 (all, + bonus), 2, 0, 3 draft tokens.
    stats = AcceptanceStats().extend([(4, 4), (4, 2), (4, 0), (4, 3)])
    # tau = sum(accepted + 1) / #proposals = (5 + 3 + 1 + 4) / 4
    assert stats.tau() == pytest.approx(13 / 4)
    # verify_rate = sum(accepted + 1) / (sum(proposal_len) + #proposals) = 13 / (16 + 4)
    assert stats.verify_rate() == pytest.approx(13 / 20)
    # accept_rate@i: share of rounds whose i-th draft token survived
    assert stats.accept_rate_by_position() == pytest.approx([3 / 4, 3 / 4, 2 / 4, 1 / 4])
    # vLLM's formula on the same counters gives the same tau
    assert tau_from_vllm_counters(stats.proposals, stats.accepted_tokens) == pytest.approx(stats.tau())
    assert stats.emitted_tokens == 13


def test_variable_proposal_lengths_and_merge():
    a = AcceptanceStats().extend([Round(2, 2), Round(5, 1)])
    b = AcceptanceStats().extend([(3, 0)])
    merged = a.merge(b)
    assert merged.proposals == 3 and merged.draft_tokens == 10 and merged.accepted_tokens == 3
    assert merged.tau() == pytest.approx((3 + 2 + 1) / 3)
    assert merged.verify_rate() == pytest.approx(6 / 13)
    assert merged.accept_rate_by_position() == pytest.approx([2 / 3, 1 / 3, 0, 0, 0])


def test_all_rejected_gives_tau_one_and_empty_stats_are_zero():
    stats = AcceptanceStats().extend([(7, 0)] * 5)
    assert stats.tau() == 1.0
    assert stats.accept_rate_by_position() == [0.0] * 7
    assert AcceptanceStats().tau() == 0.0 and AcceptanceStats().verify_rate() == 0.0


def test_expected_tau_from_survival():
    assert expected_tau([0.9, 0.81, 0.729]) == pytest.approx(1 + 0.9 + 0.81 + 0.729)


def test_invalid_round_rejected():
    with pytest.raises(ValueError, match="accepted"):
        AcceptanceStats().add(3, 4)


def test_confidence_calibration_counts_only_reached_positions():
    from specops_runtime.reference.acceptance import confidence_calibration

    rounds = [([0.9, 0.8, 0.5], 3), ([0.9, 0.6, 0.5], 1), ([0.7, 0.4, 0.2], 0)]
    calibration = confidence_calibration(rounds)
    assert calibration["roundsByPosition"] == [3, 2, 1]
    assert calibration["predictedByPosition"] == pytest.approx([2.5 / 3, 0.7, 0.5])
    assert calibration["observedByPosition"] == pytest.approx([2 / 3, 1 / 2, 1.0])


def test_accept_rate_at_i_divides_by_the_rounds_that_reached_i():
    """DeepSpec's accept_rate@i (base_evaluator: accepted_at_pos / proposals_at_pos): a round whose
    proposal was shorter (DSpark's confidence cut, a round cut at EOS) does not count at i."""
    stats = AcceptanceStats().extend([(7, 7), (3, 3), (7, 2)])
    # @3: one round accepted it, two proposals reached it (the 3-token round did not): 1/2, not 1/3
    assert stats.accept_rate_by_position() == pytest.approx([1, 1, 2 / 3, 1 / 2, 1 / 2, 1 / 2, 1 / 2])
    assert stats.proposals_per_position == [3, 3, 3, 2, 2, 2, 2]
    # the vLLM-style per-position share over all drafts differs here, which is why both exist
    assert [a / stats.proposals for a in stats.accepted_per_position][3] == pytest.approx(1 / 3)


def test_round_cut_at_eos_counts_up_to_eos_and_no_bonus():
    """A round whose accepted drafts hold EOS at index 2 (of 7 drafted, 5 accepted): DeepSpec counts
    proposal 3, accepted 3, acceptance length 3 (no bonus)."""
    stats = AcceptanceStats()
    stats.add(7, 4)  # an ordinary round: 4 accepted + 1
    stats.add(3, 3, bonus=False)  # the EOS round
    assert stats.emitted_tokens == 5 + 3
    assert stats.tau() == pytest.approx(8 / 2)  # counting a bonus would give 9 / 2
    assert stats.verify_rate() == pytest.approx(8 / (10 + 2))
    merged = stats.merge(AcceptanceStats().extend([(2, 0)]))
    assert merged.emitted_tokens == 9 and merged.tau() == pytest.approx(9 / 3)


def test_vllm_convention_counts_every_round_and_the_drafts_past_eos():
    from specops_runtime.reference.evaluate import _Tally, vllm_convention
    from specops_runtime.reference.speculative import GenerationResult

    # One round cut at an accepted EOS (drafts 4, accepted 3, EOS at the 2nd) and one plain round.
    result = GenerationResult(tokens=[1, 2], finish_reason="stop", prompt_tokens=1)
    result.engine_stats.add(4, 3)
    result.engine_stats.add(2, 0)
    result.stats.add(2, 2, bonus=False)
    result.stats.add(2, 0)
    tally = _Tally(AcceptanceStats())
    tally.add(result)
    tally.add(result)
    v = vllm_convention(tally.engine_stats)
    assert v == {
        "drafts": 4,
        "draftTokens": 12,
        "acceptedTokens": 6,
        "tau": 1 + 6 / 4,
        "acceptanceByPosition": [2 / 4, 2 / 4, 2 / 4, 0.0],
    }
    assert tally.stats.tau() == 6 / 4  # DeepSpec's: the EOS round ends at EOS, without bonus
