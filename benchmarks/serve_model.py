"""Model-serving benchmark -> benchmarks/results/serve_model.json

    python -m benchmarks.serve_model [--max-new-tokens 64] [--concurrency 8] [--variants fp32-1t,...]

Measures the real `TwinModel` deployment (SmolLM2-135M on a local Ray Serve, through `ModelClient`), in one
run, for each variant (dtype x torch threads):
- single-request tokens/s (one request at a time, greedy) and its time to first token (streamed);
- aggregate tokens/s with N concurrent requests, batching ON (`max_batch_size=N`) and OFF (`max_batch_size=1`);
- the ratio aggregate/single; target: >= 4x at N=8 with batching on.
Ratios within one variant are what matter on a shared machine: each pair is measured back to back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from serving.model import MODEL_APP_NAME, SamplingParams, deploy_model
from serving.model_client import AdapterRef, ModelClient
from twin.settings import ServeSettings, Settings

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]

TOPICS = [
    "why small language models matter", "how tides work", "learning to bake bread", "the history of the bicycle",
    "remote work habits", "why sleep matters", "how to start running", "the joy of reading novels",
    "writing clean code", "city gardening",
]

VARIANTS = {
    # name: (dtype, torch threads, Ray CPUs for the replica)
    "fp32-1t": ("float32", 1, 1),
    "bf16-1t": ("bfloat16", 1, 1),
    "fp32-2t": ("float32", 2, 2),
    "bf16-2t": ("bfloat16", 2, 2),
}


def _messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Write a long, detailed blog post about {TOPICS[i % len(TOPICS)]}."}]


async def _single(client: ModelClient, params: SamplingParams, repeats: int) -> dict[str, float]:
    rates, first_token_s = [], []
    for i in range(repeats):
        start = time.perf_counter()
        first: float | None = None
        final = None
        async for chunk in client.stream_chunks(None, _messages(i), params):
            if first is None and chunk.text:
                first = time.perf_counter() - start
            final = chunk.final or final
        elapsed = time.perf_counter() - start
        assert final is not None
        rates.append(final.completion_tokens / elapsed)
        first_token_s.append(first or elapsed)
    return {"tokens_per_s": statistics.median(rates), "runs_tokens_per_s": rates,
            "time_to_first_token_s": statistics.median(first_token_s)}


async def _concurrent(client: ModelClient, params: SamplingParams, n: int) -> dict[str, Any]:
    start = time.perf_counter()
    generations = await asyncio.gather(*(client.generate(None, _messages(i), params) for i in range(n)))
    elapsed = time.perf_counter() - start
    tokens = sum(g.completion_tokens for g in generations)
    return {"tokens": tokens, "seconds": elapsed, "tokens_per_s": tokens / elapsed,
            "batch_sizes": sorted(g.batch_size for g in generations)}


async def _measure(client: ModelClient, args: argparse.Namespace, batching: bool,
                   adapters: list[AdapterRef] | None = None) -> dict[str, Any]:
    params = SamplingParams(temperature=0.0, max_new_tokens=args.max_new_tokens)
    warm = SamplingParams(temperature=0.0, max_new_tokens=4)
    await asyncio.gather(*(client.generate(None, _messages(i), warm) for i in range(args.concurrency)))
    result: dict[str, Any] = {}
    if batching:
        result["single"] = await _single(client, params, args.repeats)
    result["concurrent"] = await _concurrent(client, params, args.concurrency)
    if adapters:
        # The same N requests, spread over several LoRA adapters and the base model, in one mixed batch.
        rows: list[AdapterRef | None] = [*adapters, None]
        await asyncio.gather(*(client.generate(a, _messages(0), warm) for a in adapters))  # load them
        start = time.perf_counter()
        generations = await asyncio.gather(*(
            client.generate(rows[i % len(rows)], _messages(i), params) for i in range(args.concurrency)
        ))
        elapsed = time.perf_counter() - start
        tokens = sum(g.completion_tokens for g in generations)
        result["concurrent_mixed_adapters"] = {
            "adapters": len(adapters), "tokens": tokens, "seconds": elapsed, "tokens_per_s": tokens / elapsed,
            "batch_sizes": sorted(g.batch_size for g in generations),
        }
    return result


def _random_adapters(settings: Settings, count: int) -> list[AdapterRef]:
    """LoRA adapters shaped like the training defaults (r=16 on every projection), random B matrices."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from twin.models import resolve_base_model

    model = AutoModelForCausalLM.from_pretrained(resolve_base_model(settings), dtype=torch.float32)
    refs = []
    for version in range(1, count + 1):
        torch.manual_seed(version)
        config = LoraConfig(r=settings.train.lora_r, lora_alpha=settings.train.lora_alpha,
                            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                            "down_proj"])
        peft_model = get_peft_model(model, config)
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0.0, 0.01)
        path = settings.adapters_dir / f"bench-v{version}"
        peft_model.save_pretrained(path)
        model = peft_model.unload()
        refs.append(AdapterRef(author="bench", version=version, path=str(path)))
    return refs


def _deploy(base: Settings, dtype: str, threads: int, cpus: int, batch_size: int) -> ModelClient:
    from ray import serve

    serve_settings = base.serve.model_copy(update=dict(
        model_dtype=dtype, torch_threads=threads, model_num_cpus=cpus, max_batch_size=batch_size,
    ))
    settings = base.model_copy(update={"serve": serve_settings})
    if MODEL_APP_NAME in serve.status().applications:
        serve.delete(MODEL_APP_NAME)
    return ModelClient(deploy_model(settings), settings=settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="single-request runs (median reported)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {list(VARIANTS)}")
    parser.add_argument("--adapters", type=int, default=4,
                        help="also time a batch mixing this many LoRA adapters and the base model (0: skip)")
    parser.add_argument("--out", type=Path, default=RESULTS / "serve_model.json")
    args = parser.parse_args()

    import ray
    import torch
    import transformers
    from ray import serve

    data_dir = Path(tempfile.mkdtemp(prefix="twin-serve-bench-"))
    base = Settings(
        data_dir=data_dir,
        models_path=Path(os.environ.get("TWIN_TEST_MODELS_DIR", REPO / ".cache" / "models")),
        serve=ServeSettings(ray_num_cpus=os.cpu_count(), batch_wait_timeout_s=0.05, model_probe_timeout_s=60,
                            request_timeout_s=1800),
        _env_file=None,
    )
    report: dict[str, Any] = {
        "command": "python -m benchmarks.serve_model " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg(), "python": platform.python_version(),
                    "torch": torch.__version__, "transformers": transformers.__version__, "ray": ray.__version__},
        "model": base.base_model, "max_new_tokens": args.max_new_tokens, "concurrency": args.concurrency,
        "decoding": "greedy", "variants": {},
    }
    base.ensure_dirs()
    adapters = _random_adapters(base, args.adapters) if args.adapters else None
    try:
        for index, name in enumerate(args.variants.split(",")):
            dtype, threads, cpus = VARIANTS[name]
            print(f"== {name}: batching on (max_batch_size={args.concurrency})", flush=True)
            client = _deploy(base, dtype, threads, cpus, args.concurrency)
            # The mixed-adapter batch is timed on the first variant only (it shows LoRA's cost, not dtype's).
            on = asyncio.run(_measure(client, args, batching=True, adapters=adapters if index == 0 else None))
            print(f"== {name}: batching off (max_batch_size=1)", flush=True)
            off = asyncio.run(_measure(_deploy(base, dtype, threads, cpus, 1), args, batching=False))
            single = on["single"]["tokens_per_s"]
            variant = {
                "dtype": dtype, "torch_threads": threads,
                "single": on["single"],
                "batching_on": on["concurrent"], "batching_off": off["concurrent"],
                "batching_on_mixed_adapters": on.get("concurrent_mixed_adapters"),
                "ratio_batched_aggregate_to_single": on["concurrent"]["tokens_per_s"] / single,
                "ratio_unbatched_aggregate_to_single": off["concurrent"]["tokens_per_s"] / single,
                "load_avg_after": os.getloadavg(),
            }
            report["variants"][name] = variant
            print(json.dumps(variant, indent=1), flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
    best = max(report["variants"].values(), key=lambda v: v["batching_on"]["tokens_per_s"])
    report["summary"] = {
        "best_variant": f"{best['dtype']}-{best['torch_threads']}t",
        "single_tokens_per_s": best["single"]["tokens_per_s"],
        "aggregate_batched_tokens_per_s": best["batching_on"]["tokens_per_s"],
        "aggregate_unbatched_tokens_per_s": best["batching_off"]["tokens_per_s"],
        "ratio_batched_aggregate_to_single": best["ratio_batched_aggregate_to_single"],
        "target_ratio": 4.0,
        "target_met": best["ratio_batched_aggregate_to_single"] >= 4.0,
        "llama_cpp_single_stream_tokens_per_s": 98,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=1))


if __name__ == "__main__":
    main()
