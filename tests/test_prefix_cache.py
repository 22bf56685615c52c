"""`PromptCache` on its own: longest shared prefix per adapter, least recently used eviction within a byte budget."""

from __future__ import annotations

import torch

from serving.prefix_cache import PromptCache

LAYERS = 2


def _kv(tokens: int) -> list[torch.Tensor]:
    """Per layer (1, heads=2, tokens, dim=4) float32: 32 bytes a token a layer."""
    return [torch.randn(1, 2, tokens, 4) for _ in range(LAYERS)]


def _store(cache: PromptCache, adapter: str | None, ids: tuple[int, ...]) -> None:
    cache.store(adapter, ids, _kv(len(ids)), _kv(len(ids)))


def test_lookup_takes_the_longest_shared_prefix_of_the_same_adapter_and_keeps_one_token_to_run() -> None:
    cache = PromptCache(max_bytes=10**6, min_tokens=4)
    _store(cache, None, tuple(range(10)))
    _store(cache, None, (*range(6), 99, 98))
    _store(cache, "adapter", tuple(range(20)))
    hit = cache.lookup(None, (*range(8), 7, 7))
    assert hit is not None and hit.length == 8 and hit.entry.token_ids == tuple(range(10))
    same = cache.lookup(None, tuple(range(10)))
    assert same is not None and same.length == 9  # the last token runs again for its logits
    assert cache.lookup(None, (0, 1, 2, 50, 51, 52)) is None  # 3 shared tokens: under min_tokens
    assert cache.lookup("other", tuple(range(20))) is None
    assert (cache.hits, cache.reused_tokens) == (2, 17)


def test_the_byte_budget_evicts_the_least_recently_used_and_stores_copies() -> None:
    per_token = 2 * LAYERS * 2 * 4 * 4  # keys and values, layers, heads, dim, float32 bytes
    cache = PromptCache(max_bytes=25 * per_token, min_tokens=4)
    keys, values = _kv(10), _kv(10)
    cache.store(None, tuple(range(10)), keys, values)
    keys[0].zero_()  # the caller's batch tensors move on; the entry keeps its own copy
    assert cache._entries[(None, tuple(range(10)))].keys[0].abs().sum() > 0
    _store(cache, None, tuple(range(100, 110)))
    assert cache.lookup(None, tuple(range(12))) is not None  # the first entry is now the most recent
    _store(cache, None, tuple(range(200, 210)))  # 30 tokens > 25: the least recently used goes
    assert len(cache) == 2 and cache.nbytes == 20 * per_token
    assert cache.lookup(None, tuple(range(100, 112))) is None
    assert cache.lookup(None, tuple(range(12))) is not None
    _store(cache, None, tuple(range(300, 330)))  # larger than the whole budget: not kept, nothing evicted
    assert len(cache) == 2


def test_dropping_an_adapter_frees_its_entries_and_a_zero_budget_keeps_nothing() -> None:
    cache = PromptCache(max_bytes=10**6, min_tokens=4)
    _store(cache, "a", tuple(range(10)))
    _store(cache, None, tuple(range(10)))
    cache.drop_adapter("a")
    assert len(cache) == 1 and cache.lookup("a", tuple(range(10))) is None
    assert cache.nbytes == cache._entries[(None, tuple(range(10)))].nbytes
    off = PromptCache(max_bytes=0)
    _store(off, None, tuple(range(40)))
    assert len(off) == 0
