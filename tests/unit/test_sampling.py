"""The sampler: greedy, filters with llama.cpp's semantics, seeded reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from engine.base import GenerationOptions
from engine.sampling import Sampler

VOCAB = 1000


def logits(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 3.0, VOCAB).astype(np.float32)


def options(**changes) -> GenerationOptions:
    base = {"temperature": 0.8, "top_k": 0, "top_p": 1.0, "min_p": 0.0, "repeat_penalty": 1.0}
    base.update(changes)
    return GenerationOptions(**base)


def draws(sampler: Sampler, row: np.ndarray, n: int) -> list[int]:
    return [sampler.sample(row, []) for _ in range(n)]


def test_temperature_zero_is_argmax() -> None:
    row = logits()
    sampler = Sampler(options(temperature=0.0, top_k=40), VOCAB)
    assert draws(sampler, row, 5) == [int(np.argmax(row))] * 5


def test_same_seed_same_tokens_other_seed_other_tokens() -> None:
    row = logits()
    first = draws(Sampler(options(seed=42, temperature=1.5), VOCAB), row, 50)
    again = draws(Sampler(options(seed=42, temperature=1.5), VOCAB), row, 50)
    other = draws(Sampler(options(seed=43, temperature=1.5), VOCAB), row, 50)
    assert first == again
    assert first != other


def test_no_seed_draws_a_fresh_one() -> None:
    assert Sampler(options(seed=None), VOCAB).seed != Sampler(options(seed=None), VOCAB).seed


def test_top_k_keeps_only_the_k_best() -> None:
    row = logits()
    best5 = set(np.argsort(-row)[:5].tolist())
    got = set(draws(Sampler(options(top_k=5, temperature=5.0, seed=1), VOCAB), row, 300))
    assert got <= best5
    assert len(got) > 1
    assert draws(Sampler(options(top_k=1, seed=1), VOCAB), row, 3) == [int(np.argmax(row))] * 3


def test_top_p_keeps_the_smallest_prefix_reaching_p() -> None:
    row = np.full(VOCAB, -50.0, dtype=np.float32)
    row[[10, 20, 30]] = np.log([0.5, 0.3, 0.2])
    # 0.5 < 0.6 <= 0.5 + 0.3: tokens 10 and 20 stay, 30 goes.
    got = set(draws(Sampler(options(top_p=0.6, temperature=1.0, seed=3), VOCAB), row, 300))
    assert got == {10, 20}


def test_min_p_drops_tokens_far_less_likely_than_the_best() -> None:
    row = np.full(VOCAB, -50.0, dtype=np.float32)
    row[[1, 2, 3]] = np.log([0.6, 0.35, 0.05])
    # min_p 0.1 keeps p >= 0.06: tokens 1 and 2.
    got = set(draws(Sampler(options(min_p=0.1, temperature=1.0, seed=4), VOCAB), row, 300))
    assert got == {1, 2}


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits() -> None:
    row = np.zeros(VOCAB, dtype=np.float32)
    row[5], row[6], row[7] = 2.0, 1.9, -0.1
    greedy = Sampler(options(temperature=0.0, repeat_penalty=1.5, repeat_last_n=64), VOCAB)
    assert greedy.sample(row, []) == 5
    assert greedy.sample(row, [5]) == 6  # 2.0 / 1.5 < 1.9
    penalized = greedy._penalize(row, [5, 7, 5])
    assert penalized[5] == pytest.approx(2.0 / 1.5)
    assert penalized[7] == pytest.approx(-0.15)
    assert row[5] == 2.0  # the caller's logits are not modified


def test_repetition_penalty_only_looks_at_the_last_n_tokens() -> None:
    row = np.zeros(VOCAB, dtype=np.float32)
    row[5], row[6] = 2.0, 1.9
    greedy = Sampler(options(temperature=0.0, repeat_penalty=1.5, repeat_last_n=2), VOCAB)
    assert greedy.sample(row, [5, 1, 2]) == 5  # 5 fell out of the window
    assert greedy.sample(row, [1, 5]) == 6


def test_samples_follow_the_tempered_softmax() -> None:
    row = np.full(VOCAB, -50.0, dtype=np.float32)
    row[[0, 1, 2]] = [1.0, 0.0, -1.0]
    temperature = 0.7
    sampler = Sampler(options(temperature=temperature, seed=7), VOCAB)
    counts = np.bincount(draws(sampler, row, 4000), minlength=3)[:3]
    expected = np.exp(np.array([1.0, 0.0, -1.0]) / temperature)
    expected /= expected.sum()
    assert np.allclose(counts / 4000, expected, atol=0.03)


def test_logits_longer_than_the_vocabulary_are_cut() -> None:
    row = np.zeros(VOCAB + 10, dtype=np.float32)
    row[VOCAB + 3] = 100.0  # padding rows of the output matrix must never win
    assert Sampler(options(temperature=0.0), VOCAB).sample(row, []) < VOCAB


def test_invalid_vocab_size_is_refused() -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        Sampler(options(), 0)
