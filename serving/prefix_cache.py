"""Prompt prefix caching: the keys and values of recent prompts, reused by later prompts that start the same way.

A chat on the base model sends the same system prompt and the author's example posts every time, with only
the sources and the instruction changing at the end; a revision round sends the very same prompt again. On a
CPU the prefill of those shared tokens is most of a request's cost, so the engine keeps each prompt's cache
after its prefill and, for a new prompt, starts from the longest stored prefix it shares (vLLM calls this
automatic prefix caching). A prefix's keys and values depend only on its own tokens (causal attention) and
the adapter, so a stored prompt serves any later prompt with the same adapter that shares its first tokens.

Entries are kept least recently used first and evicted past a byte budget.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

MIN_PREFIX_TOKENS = 16
"""A shorter shared prefix is not worth a separate forward (every chat-templated prompt shares a few tokens)."""


@dataclasses.dataclass(eq=False)
class PromptEntry:
    adapter: str | None
    token_ids: tuple[int, ...]
    keys: list[torch.Tensor]
    """Per layer, shape (1, heads, len(token_ids), head dim)."""
    values: list[torch.Tensor]

    @property
    def nbytes(self) -> int:
        return tensor_bytes([*self.keys, *self.values])


@dataclasses.dataclass
class PrefixHit:
    entry: PromptEntry
    length: int
    """Tokens of the new prompt whose keys and values the entry holds (always fewer than the whole prompt:
    the last token is run again, for its logits)."""


def tensor_bytes(tensors: list[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def shared_length(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class PromptCache:
    def __init__(self, max_bytes: int, min_tokens: int = MIN_PREFIX_TOKENS) -> None:
        self.max_bytes = max_bytes
        self.min_tokens = min_tokens
        self._entries: OrderedDict[tuple[str | None, tuple[int, ...]], PromptEntry] = OrderedDict()
        self.nbytes = 0
        self.hits = 0
        self.reused_tokens = 0
        """Prompt tokens whose prefill was skipped so far."""

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, adapter: str | None, token_ids: tuple[int, ...]) -> PrefixHit | None:
        """The stored prompt sharing the longest prefix with `token_ids` under this adapter, if long enough."""
        best: PrefixHit | None = None
        for entry in self._entries.values():
            if entry.adapter != adapter:
                continue
            length = min(shared_length(entry.token_ids, token_ids), len(token_ids) - 1)
            if length >= self.min_tokens and (best is None or length > best.length):
                best = PrefixHit(entry, length)
        if best is not None:
            self._entries.move_to_end((adapter, best.entry.token_ids))
            self.hits += 1
            self.reused_tokens += best.length
        return best

    def store(self, adapter: str | None, token_ids: tuple[int, ...], keys: list[torch.Tensor],
              values: list[torch.Tensor]) -> None:
        """Keep a prompt's keys and values (copies: the batch's tensors move on); evict to fit the budget."""
        if len(token_ids) < self.min_tokens or self.max_bytes <= 0:
            return
        key = (adapter, token_ids)
        if key in self._entries:
            self._entries.move_to_end(key)
            return
        if tensor_bytes([*keys, *values]) > self.max_bytes:
            return  # measured before copying: a prompt larger than the budget is not copied on every request
        entry = PromptEntry(adapter, token_ids, [k.clone() for k in keys], [v.clone() for v in values])
        self._entries[key] = entry
        self.nbytes += entry.nbytes
        while self.nbytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.nbytes -= evicted.nbytes

    def drop_adapter(self, adapter: str) -> None:
        """Forget an adapter's prompts (it is unloaded; a new adapter at the same path has other weights)."""
        for key in [key for key in self._entries if key[0] == adapter]:
            self.nbytes -= self._entries.pop(key).nbytes
