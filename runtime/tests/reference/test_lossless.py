"""Speculative decoding is lossless: greedy outputs are identical, sampled outputs are distributed
exactly as the target's over several rounds, for Eagle3, DFlash and DSpark at two temperatures with
top-p (chi-square test on a small vocabulary, with a negative control)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from specops_runtime.reference import data, speculative
from specops_runtime.reference.draft_config import (
    SharedWeights,
    build_draft,
    draft_config_for_target,
    load_draft,
)
from specops_runtime.reference.sampling import SamplingParams, Verdict, probs_from_logits, sample_token
from specops_runtime.reference.speculative import Generator

GREEDY_PROMPTS = 50
ALPHA = 1e-3  # significance level of the distribution test


def mixed_prompts(tokenizer, count: int) -> list[list[int]]:
    rows = [ex for name in data.TASK_NAMES for ex in data.generate(name, count, seed=424242)]
    rows = rows[::3][:count] if len(rows) >= 3 * count else rows[:count]
    return [tokenizer.chat_prompt([{"role": "user", "content": ex.prompt}]) for ex in rows]


@pytest.fixture(scope="module")
def greedy_references(target):
    model, tokenizer = target
    prompts = mixed_prompts(tokenizer, GREEDY_PROMPTS)
    baseline = Generator(model)
    outputs = [baseline.generate(p, 24, SamplingParams()).tokens for p in prompts]
    return prompts, outputs


@pytest.mark.parametrize("method,threshold", [("eagle3", 0.0), ("dspark", 0.0), ("dspark", 0.5)])
def test_greedy_speculative_equals_target_greedy(pipeline, target, greedy_references, method, threshold):
    model, _ = target
    prompts, expected = greedy_references
    assert len(prompts) >= 50
    draft = load_draft(pipeline.checkpoint(method), SharedWeights.from_target(model), torch.device("cpu"))
    spec = Generator(model, draft.drafter(), draft.config.target_layer_ids)
    accepted = 0
    for prompt, reference in zip(prompts, expected, strict=True):
        result = spec.generate(prompt, 24, SamplingParams(), gamma=4, confidence_threshold=threshold)
        assert result.tokens == reference
        accepted += result.stats.accepted_tokens
    assert accepted > 0, "the trained draft should have had tokens accepted (otherwise nothing was tested)"


def test_greedy_untrained_draft_is_still_lossless(target, greedy_references):
    model, _ = target
    prompts, expected = greedy_references
    torch.manual_seed(3)
    config = draft_config_for_target("dflash", model.config, [0, 2], block_size=4)
    draft = build_draft(config, SharedWeights.from_target(model)).eval()
    spec = Generator(model, draft.drafter(), config.target_layer_ids)
    for prompt, reference in list(zip(prompts, expected, strict=True))[:20]:
        assert spec.generate(prompt, 24, SamplingParams(), gamma=4).tokens == reference


# ---------------------------------------------------------------------------------------------
# Sampling over several rounds: the distribution of the first five generated tokens over a 4-token
# vocabulary, drafting 2 tokens per round (so every sample takes at least two verification rounds and
# the drafter's context update between rounds is exercised), for each method, at temperature 0.7 and
# 1.0 with top-p, against the exact target-only distribution under the same sampling settings.

VOCAB, NEW_TOKENS, GAMMA, SAMPLES = 4, 5, 2, 400
PROMPT = [1, 2, 0]
SETTINGS = {
    "t0.7-p0.9": SamplingParams(temperature=0.7, top_p=0.9),
    "t1.0-p0.9": SamplingParams(1.0, top_p=0.9),
}


@pytest.fixture(scope="module")
def toy_target():
    torch.manual_seed(11)
    config = Qwen3Config(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=8,
        tie_word_embeddings=True,
        initializer_range=0.6,
        max_position_embeddings=64,
    )
    return Qwen3ForCausalLM(config).eval().requires_grad_(False)


def toy_draft(model, method: str):
    torch.manual_seed(5)
    config = draft_config_for_target(method, model.config, [0, 1], block_size=GAMMA, mask_token_id=0)
    return build_draft(config, SharedWeights.from_target(model)).eval()


def exact_distribution(model, params: SamplingParams) -> dict[tuple[int, ...], float]:
    """P(x1..x5 | PROMPT) by enumeration under target-only sampling with the same settings."""
    probs: dict[tuple[int, ...], float] = {(): 1.0}
    for _ in range(NEW_TOKENS):
        prefixes = list(probs)
        ids = torch.tensor([PROMPT + list(p) for p in prefixes])
        with torch.no_grad():
            nxt = probs_from_logits(model(input_ids=ids).logits[:, -1], params)
        probs = {p + (t,): probs[p] * float(nxt[i, t]) for i, p in enumerate(prefixes) for t in range(VOCAB)}
    return {k: v for k, v in probs.items() if v > 0}


def chi_square_p_value(counts: dict, expected_probs: dict, n: int) -> float:
    """Pearson chi-square (bins with expected < 5 pooled); p-value via Wilson-Hilferty."""
    assert set(counts) <= set(expected_probs), "a sequence the target can never produce was sampled"
    bins, pooled_obs, pooled_exp = [], 0.0, 0.0
    for key, p in expected_probs.items():
        e = p * n
        if e < 5:
            pooled_obs, pooled_exp = pooled_obs + counts.get(key, 0), pooled_exp + e
        else:
            bins.append((counts.get(key, 0), e))
    if pooled_exp > 0:
        bins.append((pooled_obs, pooled_exp))
    stat = sum((o - e) ** 2 / e for o, e in bins)
    df = len(bins) - 1
    z = ((stat / df) ** (1 / 3) - (1 - 2 / (9 * df))) / math.sqrt(2 / (9 * df))
    return 0.5 * math.erfc(z / math.sqrt(2))


def sample_counts(model, draft, params: SamplingParams, n: int) -> tuple[dict, speculative.AcceptanceStats]:
    gen = Generator(model, draft.drafter(), draft.config.target_layer_ids, eos_token_id=-1)
    counts: dict[tuple[int, ...], int] = {}
    stats = speculative.AcceptanceStats()
    for seed in range(n):
        result = gen.generate(PROMPT, NEW_TOKENS, params, gamma=GAMMA, seed=seed)
        key = tuple(result.tokens)
        counts[key] = counts.get(key, 0) + 1
        stats = stats.merge(result.stats)
    return counts, stats


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("method", ["eagle3", "dflash", "dspark"])
def test_sampled_outputs_follow_the_target_distribution_over_rounds(toy_target, method, setting):
    params = SETTINGS[setting]
    expected = exact_distribution(toy_target, params)
    assert abs(sum(expected.values()) - 1) < 1e-5
    counts, stats = sample_counts(toy_target, toy_draft(toy_target, method), params, SAMPLES)
    assert stats.proposals >= 2 * SAMPLES  # several rounds per sample
    # The draft disagrees with the target often enough for both branches (accept / resample) to matter.
    rate = stats.accepted_tokens / stats.draft_tokens
    assert 0.05 < rate < 0.95, rate
    assert sum(counts.values()) == SAMPLES and all(len(k) == NEW_TOKENS for k in counts)
    p_value = chi_square_p_value(counts, expected, SAMPLES)
    assert p_value > ALPHA, (
        f"{method} {setting}: samples deviate from the target distribution (p={p_value:.2e})"
    )
    tv = 0.5 * sum(abs(counts.get(k, 0) / SAMPLES - p) for k, p in expected.items())
    assert tv < 0.2, tv  # loose absolute bound on top of the chi-square test


def test_distribution_test_detects_a_lossy_verifier(toy_target, monkeypatch):
    """Negative control: a subtly wrong verifier (on reject it resamples from p instead of
    norm(max(p - q, 0))) must fail the same test, so the test has power."""

    def resample_from_p(draft_tokens, draft_probs, target_probs, generator):
        for i, token in enumerate(draft_tokens):
            u = float(torch.rand((), generator=generator))
            if u * float(draft_probs[i, token]) < float(target_probs[i, token]):
                continue
            return Verdict(i, sample_token(target_probs[i], generator))
        return Verdict(len(draft_tokens), sample_token(target_probs[len(draft_tokens)], generator))

    monkeypatch.setattr(speculative, "verify_chain", resample_from_p)
    params = SETTINGS["t1.0-p0.9"]
    counts, _ = sample_counts(toy_target, toy_draft(toy_target, "dflash"), params, SAMPLES)
    assert chi_square_p_value(counts, exact_distribution(toy_target, params), SAMPLES) < ALPHA


class OracleDrafter:
    """Proposes the target's own greedy continuation (so greedy verification accepts all of it)."""

    def __init__(self, model, prompt: list[int]):
        self.model, self.prompt, self.context = model, prompt, []
        self.last_confidence = None

    def reset(self) -> None:
        self.context = self.prompt[:1]

    def append_context(self, features, next_tokens) -> None:
        self.context += list(next_tokens)

    def propose(self, gamma, params, generator, confidence_threshold=0.0):
        ctx = list(self.context)
        for _ in range(gamma):
            with torch.no_grad():
                ctx.append(int(self.model(input_ids=torch.tensor([ctx])).logits[0, -1].argmax()))
        drafts = ctx[len(self.context) :]
        return drafts, torch.nn.functional.one_hot(torch.tensor(drafts), VOCAB).float()


def test_a_round_cut_at_an_accepted_eos_counts_as_deepspec_does(toy_target):
    """Greedy, gamma 4: the prefill token, then one round whose drafts all match; with EOS the
    second draft, that round counts proposal 2, accepted 2 and no bonus (tau 2, not 5)."""
    for prompt in itertools.product(range(VOCAB), repeat=3):  # one whose greedy run does not repeat early
        prompt = list(prompt)
        plain = Generator(toy_target, OracleDrafter(toy_target, prompt), [0, 1], eos_token_id=-1)
        free = plain.generate(prompt, 6, SamplingParams(), gamma=4).tokens
        eos = free[2]  # the round's second draft (free[0] is the prefill token)
        if eos not in free[:2]:
            break
    else:
        pytest.fail("no prompt found whose greedy continuation reaches a new token at its third step")
    gen = Generator(toy_target, OracleDrafter(toy_target, prompt), [0, 1], eos_token_id=eos)
    result = gen.generate(prompt, 6, SamplingParams(), gamma=4)
    assert result.finish_reason == "stop" and result.tokens == free[:2]
    assert (result.stats.proposals, result.stats.draft_tokens, result.stats.accepted_tokens) == (1, 2, 2)
    assert result.stats.tau() == 2.0 and result.stats.accept_rate_by_position() == [1.0, 1.0]


def test_verify_chain_single_position_matches_p():
    """Kernel level: one draft token from q, then accept/resample, is distributed as p."""
    from specops_runtime.reference.sampling import verify_chain

    p = torch.tensor([0.5, 0.3, 0.15, 0.05])
    q = torch.tensor([0.1, 0.2, 0.3, 0.4])
    gen = torch.Generator().manual_seed(0)
    n, counts = 20000, torch.zeros(4)
    for _ in range(n):
        d = int(torch.multinomial(q, 1, generator=gen))
        verdict = verify_chain([d], q[None], torch.stack([p, p]), gen)
        counts[d if verdict.accepted == 1 else verdict.next_token] += 1
    assert torch.allclose(counts / n, p, atol=0.015)


def test_enumeration_covers_all_outcomes():
    assert len(list(itertools.product(range(VOCAB), repeat=NEW_TOKENS))) == VOCAB**NEW_TOKENS
