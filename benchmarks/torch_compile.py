"""torch.compile on the serving engine's decoding step, against eager -> results/torch_compile.json

    python -m benchmarks.torch_compile [--steps 60] [--modes mlp model]

One process, one torch thread, the continuous int4 engine (the default) on SmolLM2-135M. For each mode a
fresh model is timed eager, then compiled (``torch.compile(dynamic=True)``, inductor's C++ backend) and timed
again on the same shapes: one row at a short and a ~1,000-token context, four best-of-N rows sharing a
~1,000-token prompt (cascade attention), eight rows at short contexts. Greedy tokens of both are compared.

- ``mlp``: each decoder layer's MLP compiled (three int4 matmuls, SiLU, product);
- ``model``: the whole ``LlamaModel.forward`` compiled.

A 1-row decoding step spends about half its time outside the big kernels (norms, rotary, reshapes, dtype
casts, module calls): what a compiler fuses. This measures whether it pays on this engine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SHAPES = [(1, 20), (1, 600), (4, 600), (8, 60)]
"""(rows, words of the post each prompt quotes); four rows share one prompt, as a draft's candidates do."""


def time_steps(runtime: Any, text: str, rows: int, steps: int) -> tuple[float, list[list[int]]]:
    """Milliseconds per decoding step of `rows` rows, and each row's greedy tokens."""
    from benchmarks.kv_cache import timed_decoding

    if rows == 4:  # one prompt, as a draft's best-of-N candidates share theirs
        elapsed, engine = timed_decoding(runtime, [f"Reply to this post:\n{text}"] * rows, steps, siblings=rows)
    else:
        elapsed, engine = timed_decoding(runtime, [f"Reply {row} to this post:\n{text}" for row in range(rows)], steps)
    tokens = [list(row.token_ids) for row in engine._rows]
    engine.close()
    return elapsed, tokens


def compile_model(model: Any, mode: str) -> None:
    import torch

    if mode == "mlp":
        for layer in model.model.layers:
            layer.mlp.forward = torch.compile(layer.mlp.forward, dynamic=True)
    elif mode == "model":
        model.model.forward = torch.compile(model.model.forward, dynamic=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--modes", nargs="+", default=["mlp", "model"])
    parser.add_argument("--corpus", default="chris_wellons")
    parser.add_argument("--out", type=Path, default=RESULTS / "torch_compile.json")
    args = parser.parse_args()

    import torch

    from benchmarks.corpus_site import load_corpus
    from serving.generation import ModelConfig
    from serving.static_engine import BatchEngine
    from twin.models import resolve_base_model
    from twin.settings import Settings

    torch.set_num_threads(1)
    words = " ".join(item["text"] for item in load_corpus(args.corpus, 40)).split()
    report: dict[str, Any] = {
        "command": "python -m benchmarks.torch_compile",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, one torch thread, "
                   f"avx512_bf16: {torch.cpu.get_capabilities().get('avx512_bf16', False)}",
        "torch": torch.__version__, "engine": "continuous, int4 (the default)", "steps_timed": args.steps,
        "modes": {},
    }
    for mode in args.modes:
        runtime = BatchEngine(ModelConfig(base_model=resolve_base_model(Settings()), quantize="int4"))
        eager = {shape: time_steps(runtime, " ".join(words[: shape[1]]), shape[0], args.steps) for shape in SHAPES}
        start = time.perf_counter()
        compile_model(runtime.base, mode)
        for rows, count in SHAPES:  # compile and warm every shape before timing
            time_steps(runtime, " ".join(words[:count]), rows, 3)
        compile_s = time.perf_counter() - start
        compiled = {shape: time_steps(runtime, " ".join(words[: shape[1]]), shape[0], args.steps) for shape in SHAPES}
        report["modes"][mode] = {
            "compile_and_warm_s": compile_s,
            "shapes": {f"{rows} rows, {count}-word post": {
                "eager_ms_per_step": eager[(rows, count)][0], "compiled_ms_per_step": compiled[(rows, count)][0],
                "compiled_to_eager": compiled[(rows, count)][0] / eager[(rows, count)][0],
                "same_greedy_tokens": compiled[(rows, count)][1] == eager[(rows, count)][1],
            } for rows, count in SHAPES},
        }
        print(mode, json.dumps(report["modes"][mode], indent=1), flush=True)
        del runtime
        torch._dynamo.reset()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
