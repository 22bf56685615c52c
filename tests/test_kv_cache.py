"""The engine's growing cache layer holds what transformers' append-by-copy layer holds, step after step."""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

from serving.kv_cache import MIN_SPARE_TOKENS, GrowingLayer


def _states(generator: torch.Generator, rows: int, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.randn(rows, 3, tokens, 8, generator=generator),
            torch.randn(rows, 3, tokens, 8, generator=generator))


def test_growing_layer_matches_the_dynamic_layer_across_regrowth() -> None:
    generator = torch.Generator().manual_seed(0)
    growing, plain = GrowingLayer(), DynamicLayer()
    assert growing.get_seq_length() == 0
    # A prefill, then single tokens well past the first allocation's spare room.
    for tokens in [37] + [1] * (MIN_SPARE_TOKENS * 2):
        keys, values = _states(generator, 2, tokens)
        got, want = growing.update(keys, values), plain.update(keys, values)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert growing.get_seq_length() == plain.get_seq_length() == 37 + MIN_SPARE_TOKENS * 2
    assert torch.equal(growing.keys, plain.keys) and torch.equal(growing.values, plain.values)


def test_assigning_the_tensors_replaces_the_storage_and_updates_go_on_from_there() -> None:
    """The engine assigns `keys` and `values` when rows join or leave; the next token appends to those."""
    generator = torch.Generator().manual_seed(1)
    growing, plain = GrowingLayer(), DynamicLayer()
    keys, values = _states(generator, 3, 20)
    growing.update(keys, values)
    plain.update(keys, values)
    for layer in (growing, plain):  # drop the middle row and the first 5 columns, as `_remove` does
        index = torch.tensor([0, 2])
        layer.keys = layer.keys.index_select(0, index)[:, :, 5:]
        layer.values = layer.values.index_select(0, index)[:, :, 5:]  # read after `keys` was replaced
    assert torch.equal(growing.values, plain.values)
    assert growing.get_seq_length() == 15
    keys, values = _states(generator, 2, 1)
    got, want = growing.update(keys, values), plain.update(keys, values)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    growing.keys = growing.values = None
    assert growing.keys is None and growing.get_seq_length() == 0
