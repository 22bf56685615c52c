"""The engine's KV cache layers, growing in place vs transformers' append-by-copy -> results/kv_cache.json

    python -m benchmarks.kv_cache [--steps 60] [--repeats 3]

One process, one torch thread, the int4 engine (the default) on SmolLM2-135M: for each shape (rows in the
batch, context length), decoding steps are timed with `serving.kv_cache.GrowingLayer`s and with plain
`DynamicLayer`s, alternating, ``--repeats`` times. The prompts are the openings of a corpus author's posts
(``../shared/corpora``), one per row, each made distinct so that no prefix is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SHAPES = [(8, 60), (1, 900), (4, 500)]
"""(rows, words of each prompt): short contexts of a full batch (~200 tokens by the timed steps), one long
prompt (~1,750 tokens), and four chat-sized ones (~1,000)."""


def timed_decoding(runtime: Any, contents: list[str], steps: int, siblings: int = 1) -> tuple[float, Any]:
    """Milliseconds per decoding step of one greedy row per user message in `contents` (timed after the
    prefill and four steps), and the engine with its rows still running: the caller reads it, then closes it.
    ``siblings``: the rows announce each other (a draft's best-of-N candidates sharing one prompt)."""
    from serving.engine import ContinuousEngine
    from serving.generation import GenerationRequest, SamplingParams

    engine = ContinuousEngine(runtime, max_batch_size=max(8, len(contents)))
    engine.prompt_cache = None
    params = SamplingParams(temperature=0.0, max_new_tokens=steps + 20, stop=[], siblings=siblings)
    for content in contents:
        request = GenerationRequest.model_validate({"messages": [{"role": "user", "content": content}],
                                                    "params": params})
        engine.submit(runtime.make_job(request, None), lambda item: None)
    for _ in range(5):  # the prefill, then a few steps
        engine.step()
    start = time.perf_counter()
    for _ in range(steps):
        engine.step()
    return (time.perf_counter() - start) / steps * 1000, engine


def time_steps(runtime: Any, text: str, rows: int, steps: int) -> tuple[float, int]:
    """Milliseconds per decoding step of `rows` rows, and the cache's width at the end."""
    elapsed, engine = timed_decoding(runtime, [f"Reply {row} to this post:\n{text}" for row in range(rows)], steps)
    assert engine._mask is not None
    width = engine._mask.shape[1]
    engine.close()
    return elapsed, width


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corpus", default="chris_wellons")
    parser.add_argument("--out", type=Path, default=RESULTS / "kv_cache.json")
    args = parser.parse_args()

    import torch
    from transformers import DynamicCache

    import serving.kv_cache
    from benchmarks.corpus_site import load_corpus
    from serving.generation import ModelConfig
    from serving.static_engine import BatchEngine
    from twin.models import resolve_base_model
    from twin.settings import Settings

    torch.set_num_threads(1)
    runtime = BatchEngine(ModelConfig(base_model=resolve_base_model(Settings()), quantize="int4"))
    words = " ".join(item["text"] for item in load_corpus(args.corpus, 40)).split()
    growing = serving.kv_cache.growing_cache
    layers = {"growing": growing, "plain": lambda config: DynamicCache(config=config)}
    report: dict[str, Any] = {
        "command": "python -m benchmarks.kv_cache", "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"one torch thread, avx512_bf16: {torch.cpu.get_capabilities().get('avx512_bf16', False)}",
        "engine": "continuous, int4 (the default)", "steps_timed": args.steps, "shapes": {}}
    try:
        for rows, count in SHAPES:
            times: dict[str, list[float]] = {name: [] for name in layers}
            width = 0
            for _ in range(args.repeats):
                for name, make in layers.items():
                    serving.kv_cache.growing_cache = make
                    elapsed, width = time_steps(runtime, " ".join(words[:count]), rows, args.steps)
                    times[name].append(round(elapsed, 2))
            medians = {name: statistics.median(values) for name, values in times.items()}
            report["shapes"][f"{rows} rows x {width} tokens"] = {
                "ms_per_step": times, "median_ms": medians, "growing_to_plain": medians["growing"] / medians["plain"]}
            print(f"{rows} rows, {width} tokens: {times}", flush=True)
    finally:
        serving.kv_cache.growing_cache = growing
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
