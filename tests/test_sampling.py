"""Nucleus sampling as both engines do it: the nucleus found among the likeliest tokens, or in a full sort when
they hold too little of the probability; either way exactly the smallest set that reaches ``top_p``."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from serving.generation import NUCLEUS_CANDIDATES, sample_token

VOCAB = 49_152


def _draws(scores, top_p: float, n: int = 3000, temperature: float = 1.0) -> Counter[int]:
    import torch

    generator = torch.Generator().manual_seed(7)
    return Counter(sample_token(scores, temperature, top_p, generator) for _ in range(n))


def test_a_peaked_row_samples_only_its_nucleus_in_proportion() -> None:
    import torch

    probs = torch.full((VOCAB,), 0.05 / (VOCAB - 3))
    probs[[11, 22, 33]] = torch.tensor([0.5, 0.3, 0.15])
    draws = _draws(probs.log(), top_p=0.7)
    assert set(draws) == {11, 22}  # 0.5 < 0.7, so 22 (crossing it) is in; 33 and the tail are out
    assert draws[11] / sum(draws.values()) == pytest.approx(0.5 / 0.8, abs=0.03)


def test_a_flat_row_whose_nucleus_is_larger_than_the_candidates_still_gets_all_of_it() -> None:
    import torch

    scores = torch.zeros(VOCAB)
    draws = _draws(scores, top_p=0.5)
    assert max(draws) > 4 * NUCLEUS_CANDIDATES  # found by the full sort, not cut to the first candidates
    assert len(draws) > 2500  # ~24.6k equally likely tokens: 3000 draws are nearly all distinct


def test_top_p_one_and_temperature_keep_the_whole_distribution() -> None:
    import torch

    scores = torch.tensor([math.log(0.6), math.log(0.3), math.log(0.1)])
    plain = _draws(scores, top_p=1.0)
    assert set(plain) == {0, 1, 2} and plain[2] / 3000 == pytest.approx(0.1, abs=0.02)
    cold = _draws(scores, top_p=1.0, temperature=0.25)  # p ~ 0.6^4 : 0.3^4 : 0.1^4
    assert cold[0] / 3000 == pytest.approx(0.6**4 / (0.6**4 + 0.3**4 + 0.1**4), abs=0.02)


def test_the_same_seed_draws_the_same_tokens() -> None:
    import torch

    scores = torch.randn(VOCAB, generator=torch.Generator().manual_seed(1))
    assert _draws(scores, top_p=0.9, n=50) == _draws(scores, top_p=0.9, n=50)
