"""Shared-prefix ("cascade") attention: best-of-N candidates read their common prompt's keys and values once.

The candidates of one draft share a prompt of ~1,000 tokens and decode ~200 tokens each. Stored as N copies in
the batch's cache, every decoding step reads the prompt's keys and values N times, and growing the cache copies
them all again; on a CPU that was over half of a best-of-4 draft. Here a group's prompt is kept once (in
`SharedPrefixes`) and a row's own cache holds only what it generated. Attention splits in two, both with
PyTorch's fused CPU kernel, which also returns each query's log-sum-exp:

- the prompt part: the group's queries (all its rows, all heads of one key/value head) as one query block over
  the prompt's keys, so the prompt is read once per group;
- the row's own part: each row over its own generated tokens (and, for a row without a group, its prompt);

and the two softmaxes merge exactly: ``out = out_own + sigmoid(lse_prompt - lse_own) * (out_prompt - out_own)``.

The function is registered as the attention implementation ``twin_cascade``; called without a
``shared_prefixes`` argument (prefill, or no groups running) it is transformers' own SDPA attention.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

ATTENTION_NAME = "twin_cascade"


@dataclasses.dataclass(eq=False)
class SharedPrefixes:
    """The prompts that groups of running rows share, one left-padded block per layer."""

    keys: list[torch.Tensor]
    """Per layer: (groups, key/value heads, prompt width, head dim)."""
    values: list[torch.Tensor]
    mask: torch.Tensor
    """(groups, prompt width): True where a group's prompt has a real token (prompts are left-padded)."""
    groups: list[object]
    """Whose prompt each block is (the engine's group tokens), in block order."""
    bias: torch.Tensor = dataclasses.field(init=False)
    """(groups, 1, 1, prompt width): `mask` as the attention kernel takes it, 0 on real tokens, -inf on padding."""

    def __post_init__(self) -> None:
        self.bias = _bias(self.mask, self.keys[0].dtype)

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    def add(self, keys: list[torch.Tensor], values: list[torch.Tensor], mask: torch.Tensor,
            groups: list[object]) -> None:
        """Append groups (their blocks padded on the left to a common width)."""
        import torch
        import torch.nn.functional as F

        width = max(self.width, int(mask.shape[1]))
        grow_old, grow_new = width - self.width, width - int(mask.shape[1])
        for layer, (k, v) in enumerate(zip(keys, values)):
            self.keys[layer] = torch.cat([F.pad(self.keys[layer], (0, 0, grow_old, 0)), F.pad(k, (0, 0, grow_new, 0))])
            self.values[layer] = torch.cat([F.pad(self.values[layer], (0, 0, grow_old, 0)),
                                            F.pad(v, (0, 0, grow_new, 0))])
        self.mask = torch.cat([F.pad(self.mask, (grow_old, 0)), F.pad(mask, (grow_new, 0))])
        self.groups.extend(groups)
        self.bias = _bias(self.mask, self.keys[0].dtype)

    def keep(self, blocks: list[int]) -> None:
        """Keep only these blocks (in this order), trimming columns that are padding in all of them."""
        import torch

        index = torch.tensor(blocks, dtype=torch.long)
        mask = self.mask.index_select(0, index)
        first = int(mask.any(dim=0).nonzero()[0])
        self.keys = [k.index_select(0, index)[:, :, first:] for k in self.keys]
        self.values = [v.index_select(0, index)[:, :, first:] for v in self.values]
        self.mask = mask[:, first:]
        self.groups = [self.groups[i] for i in blocks]
        self.bias = _bias(self.mask, self.keys[0].dtype)


@dataclasses.dataclass(eq=False)
class CascadeStep:
    """What one decoding step's attention needs beyond the model's own arguments."""

    prefixes: SharedPrefixes
    own_bias: torch.Tensor
    """(rows, 1, 1, own width): each row's own cache mask, as `SharedPrefixes.bias` is the prompts'."""
    gather: torch.Tensor
    """(groups x slots,): the row whose query fills each group's slot (rows: an all-zero padding query)."""
    scatter: torch.Tensor
    """(rows,): each row's slot in ``gather`` order (groups x slots: none, the row has no shared prompt)."""
    slots: int
    """The most rows one group has."""


def cascade_step(prefixes: SharedPrefixes, row_groups: list[object | None], own_mask: torch.Tensor) -> CascadeStep:
    """Index the running rows by their block in `prefixes`: ``row_groups[i]`` is row i's group (None: its own
    cache holds its prompt)."""
    import torch

    block_of = {id(group): block for block, group in enumerate(prefixes.groups)}
    members: list[list[int]] = [[] for _ in prefixes.groups]
    for row, group in enumerate(row_groups):
        if group is not None:
            members[block_of[id(group)]].append(row)
    slots = max(len(rows) for rows in members)
    rows = len(row_groups)
    gather, scatter = [], [len(members) * slots] * rows
    for group, group_rows in enumerate(members):
        for slot in range(slots):
            if slot < len(group_rows):
                gather.append(group_rows[slot])
                scatter[group_rows[slot]] = group * slots + slot
            else:
                gather.append(rows)
    return CascadeStep(
        prefixes=prefixes, own_bias=_bias(own_mask.bool(), prefixes.bias.dtype),
        gather=torch.tensor(gather, dtype=torch.long), scatter=torch.tensor(scatter, dtype=torch.long), slots=slots,
    )


def _bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    import torch

    bias = torch.zeros(mask.shape, dtype=dtype).masked_fill_(~mask, float("-inf"))
    return bias[:, None, None, :]


def cascade_attention_forward(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                              attention_mask: torch.Tensor | None, dropout: float = 0.0,
                              scaling: float | None = None, shared_prefixes: CascadeStep | None = None,
                              **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature: query (rows, heads, 1, dim); key and value (rows, kv heads,
    own width, dim), the row's own cache after this step's token was appended."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if shared_prefixes is None or query.shape[2] != 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    import torch

    step = shared_prefixes
    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    rows, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    per_kv = heads // kv_heads
    queries = query.reshape(rows, kv_heads, per_kv, dim)  # the query heads that read each key/value head

    own_out, own_lse = flash(queries, key, value, 0.0, False, attn_mask=step.own_bias, scale=scaling)

    groups, slots = len(step.prefixes.groups), step.slots
    padded = torch.cat([queries, queries.new_zeros(1, kv_heads, per_kv, dim)])
    block = (padded.index_select(0, step.gather).view(groups, slots, kv_heads, per_kv, dim)
             .transpose(1, 2).reshape(groups, kv_heads, slots * per_kv, dim))
    layer = module.layer_idx
    prefix_out, prefix_lse = flash(block, step.prefixes.keys[layer], step.prefixes.values[layer], 0.0, False,
                                   attn_mask=step.prefixes.bias, scale=scaling)
    prefix_out = (prefix_out.view(groups, kv_heads, slots, per_kv, dim).transpose(1, 2)
                  .reshape(-1, kv_heads, per_kv, dim))
    prefix_lse = prefix_lse.view(groups, kv_heads, slots, per_kv).transpose(1, 2).reshape(-1, kv_heads, per_kv)
    # One more slot for rows without a shared prompt: weight 0 in the merge.
    prefix_out = torch.cat([prefix_out, prefix_out.new_zeros(1, kv_heads, per_kv, dim)]).index_select(0, step.scatter)
    prefix_lse = torch.cat([prefix_lse, prefix_lse.new_full((1, kv_heads, per_kv), float("-inf"))])
    prefix_lse = prefix_lse.index_select(0, step.scatter)

    weight = torch.sigmoid(prefix_lse - own_lse).unsqueeze(-1).to(own_out.dtype)
    out = own_out + weight * (prefix_out - own_out)
    return out.reshape(rows, heads, 1, dim).transpose(1, 2).contiguous(), None


def register() -> None:
    """Make ``twin_cascade`` an attention implementation transformers models accept (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register(ATTENTION_NAME, cascade_attention_forward)
    AttentionMaskInterface.register(ATTENTION_NAME, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])
