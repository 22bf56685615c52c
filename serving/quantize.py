"""Exactly-int4 weights packed for torch's 4-bit CPU kernels (``TWIN_SERVE__MODEL_QUANTIZE=int4``), the output
head rounded to int8."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

INT4_GROUP = 32
"""Weights per scale and zero point (as in GGUF's Q4 formats)."""
PREFILL_ROWS = 128
"""From this many rows in one matmul (a prompt's prefill), the layer's int4 levels are unpacked to its exact
fp32 weights for that call: torch's packed int4 kernel is built for decoding's few rows. One thread on an
AVX2 EPYC, a decoder layer's seven matmuls at 1,000 rows: int4 kernel 298 ms, unpacking + fp32 GEMM 150 ms;
at 128 rows 40 vs 36 ms, at 64 rows 25 vs 44 ms (`python -m benchmarks.serve_model` measures the engine)."""
BF16_PREFILL_ROWS = 24
"""The same where the CPU multiplies bf16 natively (AVX512-BF16, AMX), with the layer's weights rounded to
bf16 (as the decoding kernel's scales are) and kept, so nothing is unpacked per call and the bf16 GEMM wins
from far fewer rows. The 210 matmuls of a SmolLM2-135M forward on one thread of an AVX-512 EPYC with
AVX512-BF16 (`python -m benchmarks.cpu_kernels --rows 1,8,16,24,32,80,128,1024`), packed int4 kernel / bf16
weights: 8 rows 12.6 / 17.2 ms, 16 rows 22.4 / 20.6, 24 rows 32.0 / 24.5, 32 rows 42.1 / 28.0, 80 rows
101.9 / 47.8, 1,024 rows 1,287 / 472. At 16 rows another run had the kernel ahead (24 vs 29 ms), so 24.
Unpacking to bf16 for each call, as before, cost about 100 ms a forward. The bf16 copy takes 2 bytes a
weight (212 MB for SmolLM2-135M) where the unpacking path kept 53 MB of levels and scales. The base model's
held-out perplexity (the corpus authors' last posts, 384 tokens) moves from 21.437 (fp32 prefill) to
21.439."""


def prefill_dtype() -> torch.dtype:
    """bf16 where this CPU has bf16 dot products (AVX512-BF16 or AMX: its prefill takes half the time), else
    fp32. (torch's own mkldnn check also says yes on plain AVX-512, where oneDNN converts each operand to
    fp32 for the arithmetic: not measured here, so not taken.)"""
    import torch

    capabilities = torch.cpu.get_capabilities()
    native = capabilities.get("avx512_bf16", False) or capabilities.get("amx_bf16", False)
    return torch.bfloat16 if native else torch.float32


def quantize_for_cpu(model: Any) -> bool:
    """Int4 weights for every linear layer of the decoder whose weights are exactly int4 in groups of 32 (as
    in a Q4 GGUF: SmolLM2's built-in weights are), an int8 output head, activations rounded to bf16 for the
    matmuls; nothing changes when some layer is not exactly int4 (False).

    Torch's packed int4 and int8 CPU kernels read a quarter (an eighth) of fp32's bytes per token, and
    decoding one row is bound by those bytes: about 3x the fp32 tokens/s on this CPU. The decoder's
    weights stay bit-identical; the bf16 activations and the int8 head move greedy outputs off the fp32
    engine's after a few dozen tokens (equally plausible text, as llama.cpp's 8-bit activations do).
    LoRA adapters still wrap these layers (PEFT calls the layer, then adds its own fp32 update).
    """
    import types

    import torch

    layers = [module for name, module in model.named_modules()
              if isinstance(module, torch.nn.Linear) and not name.endswith("lm_head") and module.bias is None]
    # Check every layer before changing any (nothing changes unless all are int4), then pack one layer at a
    # time: holding every layer's levels at once took 1 GB that the replica's allocator kept afterwards.
    if not layers or any(_int4_levels(module.weight.data) is None for module in layers):
        return False
    for module in layers:
        pack_int4_linear(module)
    head = model.get_output_embeddings()
    if isinstance(head, torch.nn.Linear) and head.bias is None:
        weight = head.weight.data.float()  # tied to the input embeddings: that copy stays as it is
        scales = weight.abs().amax(-1).clamp(min=1e-12) / 127
        head.int8_weight = torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8)
        head.int8_scales = scales.bfloat16()
        head.forward = types.MethodType(_int8_forward, head)
    return True


def pack_int4_linear(module: torch.nn.Linear) -> bool:
    """Serve one linear layer (no bias) from packed int4 when its weights are exactly int4 in groups of 32
    (False, unchanged, when they are not): the decoding kernel for few rows, its exact weights in
    `prefill_dtype` for a prefill's many (kept in bf16; unpacked per call in fp32)."""
    import types

    import torch

    found = _int4_levels(module.weight.data)
    if found is None:
        return False
    levels, step, low = found
    module.int4_weight = torch._convert_weight_to_int4pack_for_cpu(levels.to(torch.int32), 1)
    # The kernel computes (q - 8) * scale + zero.
    module.int4_scales = torch.stack([step, low + 8 * step], -1).transpose(0, 1).contiguous().bfloat16()
    if prefill_dtype() == torch.bfloat16:
        module.int4_prefill_weight = module.weight.data.to(torch.bfloat16)  # exact weights, rounded once
        module.int4_prefill_rows = BF16_PREFILL_ROWS
    else:
        # fp32 copies would take 4 bytes a weight: keep the levels, two to a byte, with each group's exact step
        # and minimum, and unpack a layer's fp32 weights for each prefill.
        module.int4_prefill_weight = None
        module.int4_nibbles = (levels[:, 0::2] | (levels[:, 1::2] << 4)).contiguous()
        module.int4_step, module.int4_low = step.contiguous(), low.contiguous()
        module.int4_prefill_rows = PREFILL_ROWS
    module.weight = torch.nn.Parameter(torch.empty(0, dtype=module.weight.dtype), requires_grad=False)
    module.forward = types.MethodType(_int4_forward, module)
    return True


def _int4_levels(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The weight as int4 levels (0..15, uint8) with each group of 32's step and minimum, or None when it is
    not exactly that."""
    import torch

    weight = weight.float()
    rows, cols = weight.shape
    if cols % INT4_GROUP:
        return None
    grouped = weight.reshape(rows, cols // INT4_GROUP, INT4_GROUP)
    low = grouped.amin(-1)
    step = (grouped.amax(-1) - low) / 15
    step = torch.where(step == 0, torch.ones_like(step), step)
    levels = torch.round((grouped - low[..., None]) / step[..., None]).clamp(0, 15)
    if not torch.equal(levels * step[..., None] + low[..., None], grouped):
        return None
    return levels.reshape(rows, cols).to(torch.uint8), step, low


def _int4_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    import torch

    flat = x.reshape(-1, x.shape[-1])
    if flat.shape[0] >= self.int4_prefill_rows:
        weight = self.int4_prefill_weight if self.int4_prefill_weight is not None else _unpacked_weight(self)
        out = torch.nn.functional.linear(flat.to(weight.dtype), weight)
    else:
        out = torch._weight_int4pack_mm_for_cpu(flat.bfloat16(), self.int4_weight, INT4_GROUP, self.int4_scales)
    return out.reshape(*x.shape[:-1], -1).to(x.dtype)


def _unpacked_weight(self: Any) -> torch.Tensor:
    """The layer's fp32 weights, bit for bit the original ones (levels * step + minimum, as `_int4_levels`
    checked them; not a fused multiply-add, which could round differently)."""
    import torch

    rows = self.int4_nibbles.shape[0]
    levels = torch.stack([self.int4_nibbles & 15, self.int4_nibbles >> 4], -1).reshape(rows, -1, INT4_GROUP)
    return (levels.float() * self.int4_step[..., None] + self.int4_low[..., None]).reshape(rows, -1)


def _int8_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    import torch

    flat = x.reshape(-1, x.shape[-1]).bfloat16()
    out = torch._weight_int8pack_mm(flat, self.int8_weight, self.int8_scales)
    return out.reshape(*x.shape[:-1], -1).to(x.dtype)
