"""Which CPU matmul kernel could serve a decoding step of many rows -> benchmarks/results/cpu_kernels.json

    python -m benchmarks.cpu_kernels

A newly arriving request under load waits for the step in progress and then shares a step with the running
rows, so its first token costs what a step of 8 rows costs against 1. This times, on one thread, the 210
decoder matmuls of one SmolLM2-135M step (30 layers: q, k, v, o, gate, up, down) at 1, 8 and 16 rows with
each kernel torch offers on CPU, and, for the one whose time barely grows with rows (fbgemm's dynamic int8,
which rounds activations to 8 bits), what it does to the base model's held-out perplexity on the corpus
authors' last posts. ``--rows 1,8,16,24,32,80,128,1024`` also shows where the product's int4 layer hands a
prefill's many rows from the packed kernel to its bf16 (or fp32) weights. The weights are random for the
timing (the kernels do not look at values; the int4 layer is the product's own,
`serving.quantize.pack_int4_linear`) and the model's own for the perplexity.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
HIDDEN, INTERMEDIATE, KV = 576, 1536, 192
LAYER_SHAPES = [(HIDDEN, HIDDEN), (KV, HIDDEN), (KV, HIDDEN), (HIDDEN, HIDDEN),
                (INTERMEDIATE, HIDDEN), (INTERMEDIATE, HIDDEN), (HIDDEN, INTERMEDIATE)]  # (out, in)
LAYERS = 30


def _int4pack(weight: Any) -> Callable[[Any], Any]:
    """The product's own int4 layer (`serving.quantize.pack_int4_linear`), on int4 weights of ``weight``'s
    shape: random levels, each group spanning 0..15, at a power-of-two step, so they are exactly int4."""
    import torch

    from serving.quantize import INT4_GROUP, pack_int4_linear

    out, cols = weight.shape
    levels = torch.randint(0, 16, (out, cols // INT4_GROUP, INT4_GROUP)).float()
    levels[..., 0], levels[..., 1] = 0, 15
    step = 2.0 ** -8
    layer = torch.nn.Linear(cols, out, bias=False)
    layer.weight.data = ((levels - 8) * step).reshape(out, cols)
    if not pack_int4_linear(layer):
        raise RuntimeError("the generated weights are not exactly int4")
    return layer


def _int4pack_kernel_only(weight: Any) -> Callable[[Any], Any]:
    """The same layer held to torch's packed int4 kernel at every row count (the product's layer switches to
    its bf16 or fp32 weights from `int4_prefill_rows` rows: where the two cross is what this shows)."""
    layer = _int4pack(weight)
    layer.int4_prefill_rows = math.inf
    return layer


def _fbgemm_int8_dynamic(weight: Any) -> Callable[[Any], Any]:
    import torch

    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    layer.weight.data = weight
    return torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(layer), {torch.nn.Linear},
                                                  dtype=torch.qint8)


def _bf16(weight: Any) -> Callable[[Any], Any]:
    import torch

    bf16 = weight.bfloat16()
    return lambda x: torch.nn.functional.linear(x.bfloat16(), bf16)


def _fp32(weight: Any) -> Callable[[Any], Any]:
    import torch

    return lambda x: torch.nn.functional.linear(x, weight)


KERNELS = {"int4pack (the default)": _int4pack, "int4pack_kernel_only": _int4pack_kernel_only,
           "fbgemm_int8_dynamic": _fbgemm_int8_dynamic, "bf16": _bf16, "fp32": _fp32}


def time_kernels(rows: list[int], repeats: int) -> dict[str, dict[int, float]]:
    """Best-of-``repeats`` milliseconds for one step's 210 matmuls, per kernel and row count."""
    import torch

    torch.manual_seed(0)
    shapes = LAYER_SHAPES * LAYERS
    weights = [torch.randn(out, cols) * 0.02 for out, cols in shapes]
    timings: dict[str, dict[int, float]] = {}
    with torch.inference_mode():
        for name, make in KERNELS.items():
            calls = [make(w) for w in weights]
            timings[name] = {}
            for count in rows:
                inputs = {cols: torch.randn(count, cols) for cols in (HIDDEN, INTERMEDIATE)}
                best = math.inf
                for attempt in range(repeats + 2):
                    start = time.perf_counter()
                    for (_, cols), call in zip(shapes, calls, strict=True):
                        call(inputs[cols])
                    if attempt >= 2:  # two warm-ups
                        best = min(best, time.perf_counter() - start)
                timings[name][count] = round(best * 1000, 2)
            print(f"{name}: {timings[name]} ms", flush=True)
    return timings


def perplexities(posts_per_author: int, max_tokens: int) -> dict[str, Any]:
    """The base model's perplexity on the corpus authors' last posts (`benchmarks.serve_model`'s measure):
    fp32, then its decoder's linear layers as fbgemm dynamic int8 with per-tensor and per-channel weight
    scales."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from benchmarks.serve_model import PERPLEXITY_AUTHORS, corpus_perplexity, perplexity_texts
    from twin.models import resolve_base_model
    from twin.settings import Settings

    path = resolve_base_model(Settings())
    tokenizer = AutoTokenizer.from_pretrained(path)
    texts = perplexity_texts(posts_per_author)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    result: dict[str, Any] = {"posts": len(texts), "authors": PERPLEXITY_AUTHORS, "max_tokens": max_tokens,
                              "fp32": round(corpus_perplexity(model, tokenizer, texts, max_tokens), 3)}
    decoder = model.model
    for name, qconfig in [("fbgemm_int8_dynamic_per_tensor", torch.ao.quantization.default_dynamic_qconfig),
                          ("fbgemm_int8_dynamic_per_channel", torch.ao.quantization.per_channel_dynamic_qconfig)]:
        model.model = torch.ao.quantization.quantize_dynamic(copy.deepcopy(decoder), {torch.nn.Linear: qconfig})
        result[name] = round(corpus_perplexity(model, tokenizer, texts, max_tokens), 3)
        print(f"perplexity {name}: {result[name]} (fp32 {result['fp32']})", flush=True)
    model.model = decoder
    return result


def _row_counts(text: str) -> list[int]:
    try:
        rows = [int(part) for part in text.split(",")]
    except ValueError:
        rows = []
    if not rows or min(rows) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of positive row counts")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=_row_counts, default="1,8,16", help="comma-separated row counts")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--posts-per-author", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--out", type=Path, default=RESULTS / "cpu_kernels.json")
    args = parser.parse_args()
    from benchmarks.corpus_site import CORPORA_DIR

    if not CORPORA_DIR.is_dir():
        parser.error(f"no corpora at {CORPORA_DIR}: this benchmark reads ../shared/corpora (or TWIN_CORPORA_DIR)")

    import torch

    torch.set_num_threads(1)
    timings = time_kernels(args.rows, args.repeats)
    report = {
        "command": "python -m benchmarks.cpu_kernels",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, one torch thread, "
                   f"avx512: {'avx512f' in Path('/proc/cpuinfo').read_text()}",
        "step_matmuls_ms": timings,
        "rows_8_to_1": {name: round(t[8] / t[1], 2) for name, t in timings.items() if 1 in t and 8 in t},
        "perplexity": perplexities(args.posts_per_author, args.max_tokens),
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
