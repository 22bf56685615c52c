"""CPU engines side by side, without Ray -> benchmarks/results/serve_model.json

    python -m benchmarks.serve_model [--max-new-tokens 64] [--concurrency 8] [--engines static-fp32,...]

The same model (SmolLM2-135M, the default) in one process, one engine after the other, measured back to back
so their ratios hold on a shared machine:
- single-stream tokens/s (one request, greedy, ``--max-new-tokens``) and aggregate tokens/s of
  ``--concurrency`` requests submitted at once: the same prompts and length budget for every engine, tokens/s
  of what each produced (long-post prompts: the exact engines all run to the budget);
- greedy agreement with the reference (plain ``model.generate`` in fp32, one prompt at a time) on a fixed
  prompt set: identical completions, and the mean number of leading tokens that agree;
- the base model's perplexity on the corpus authors' last posts with fp32 and with int4 weights;
- a draft's best-of-N (``--best-of``): N sampled candidates of one long prompt, the prompt cached once for the
  group (`serving.cascade`) vs once per candidate, alternating in the same run.

Engines: ``static-fp32`` (one ``generate`` per batch, today's `BatchEngine`), ``continuous-fp32`` (the step
loop, `serving.engine.ContinuousEngine`), ``continuous-bf16`` (bf16 weights and activations),
``continuous-int4`` (packed int4 decoder weights, int8 head, bf16 activations). torch.compile is not among
them: the continuous batch changes shape every step (rows join and leave, the cache grows), which recompiles
or needs a static cache the splicing would have to rewrite; see the report's notes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]

TOPICS = [
    "why small language models matter", "how tides work", "learning to bake bread", "the history of the bicycle",
    "remote work habits", "why sleep matters", "how to start running", "the joy of reading novels",
    "writing clean code", "city gardening",
]
MATCH_PROMPTS = [
    "What is the capital of France?", "Write one sentence about the sea.",
    "Write a long blog post about how tides work and why the moon matters.", "List three fruits.",
    "Explain recursion to a child.", "Write a haiku about autumn.", "Give me three tips for learning Python.",
    "Why do cats purr?",
]
ENGINES = {
    # name: (batching, dtype, quantize)
    "static-fp32": ("static", "float32", "none"),
    "continuous-fp32": ("continuous", "float32", "none"),
    "continuous-bf16": ("continuous", "bfloat16", "none"),
    "continuous-int4": ("continuous", "float32", "int4"),
}


def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Write a long, detailed blog post about {TOPICS[i % len(TOPICS)]}."}]


def _jobs(runtime: Any, prompts: list[list[dict[str, str]]], max_new_tokens: int) -> list[Any]:
    from serving.generation import GenerationRequest, SamplingParams

    params = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
    return [runtime.make_job(GenerationRequest.model_validate({"messages": m, "params": params}), None)
            for m in prompts]


def _run(runtime: Any, batching: str, jobs: list[Any]) -> list[Any]:
    """Run jobs submitted together to completion; their `Generation`s in order."""
    finals: dict[int, Any] = {}
    if batching == "static":
        def sink(step: list[list[Any]]) -> None:
            for i, chunks in enumerate(step):
                for chunk in chunks:
                    if chunk.final is not None:
                        finals[i] = chunk.final

        runtime.generate(jobs, sink)
    else:
        from serving.engine import ContinuousEngine

        engine = ContinuousEngine(runtime, max_batch_size=max(8, len(jobs)))
        for i, job in enumerate(jobs):
            engine.submit(job, lambda item, i=i: finals.__setitem__(i, item[-1].final)
                          if not isinstance(item, BaseException) and item and item[-1].final else None)
        while engine.has_work():
            engine.step()
    return [finals[i] for i in range(len(jobs))]


def _reference(runtime: Any, jobs: list[Any]) -> list[list[int]]:
    import torch

    out = []
    for job in jobs:
        ids = torch.tensor([job.prompt_ids])
        with torch.inference_mode():
            generated = runtime.base.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=job.max_new_tokens,
                do_sample=False, eos_token_id=sorted(runtime.eos_ids), pad_token_id=runtime.tokenizer.pad_token_id)
        out.append(generated[0, ids.shape[1]:].tolist())
    return out


def measure(name: str, base_model: str, args: argparse.Namespace, reference: list[str] | None) -> dict[str, Any]:
    import torch

    from serving.generation import ModelConfig
    from serving.static_engine import BatchEngine

    batching, dtype, quantize = ENGINES[name]
    torch.set_num_threads(args.threads)
    runtime = BatchEngine(ModelConfig(base_model=base_model, dtype=dtype, quantize=quantize,
                                      max_new_tokens=args.max_new_tokens))
    _run(runtime, batching, _jobs(runtime, [messages(0)], 4))  # warm-up
    rates = []
    for i in range(args.repeats):
        start = time.perf_counter()
        [final] = _run(runtime, batching, _jobs(runtime, [messages(i)], args.max_new_tokens))
        rates.append(final.completion_tokens / (time.perf_counter() - start))
    start = time.perf_counter()
    finals = _run(runtime, batching, _jobs(runtime, [messages(i) for i in range(args.concurrency)],
                                             args.max_new_tokens))
    elapsed = time.perf_counter() - start
    tokens = sum(f.completion_tokens for f in finals)
    match_jobs = _jobs(runtime, [[{"role": "user", "content": p}] for p in MATCH_PROMPTS], args.match_tokens)
    texts = [f.text for f in _run(runtime, batching, match_jobs)]  # all together, as a server batches them
    result: dict[str, Any] = {
        "batching": batching, "dtype": dtype, "quantize": quantize, "quantized": runtime.quantized,
        "single_tokens_per_s": statistics.median(rates), "single_runs_tokens_per_s": rates,
        "aggregate_tokens_per_s": tokens / elapsed, "aggregate_tokens": tokens, "aggregate_seconds": elapsed,
        "match_texts": texts,
    }
    if reference is not None:
        ref_words = [r.split() for r in reference]
        result["greedy_identical_to_reference"] = sum(t == r for t, r in zip(texts, reference))
        result["greedy_prompts"] = len(reference)
        result["greedy_common_prefix_words"] = [
            next((k for k, (a, b) in enumerate(zip(t.split(), r)) if a != b), min(len(t.split()), len(r)))
            for t, r in zip(texts, ref_words)
        ]
    del runtime
    return result


def best_of_n_part(base_model: str, args: argparse.Namespace) -> dict[str, Any]:
    """A draft's best-of-N: N sampled candidates of one long prompt (a post's worth of examples in it), with
    the prompt cached once for the group (cascade attention) and, alternating in the same run, N copies."""
    import torch

    from serving.engine import ContinuousEngine
    from serving.generation import GenerationRequest, ModelConfig, SamplingParams
    from serving.static_engine import BatchEngine

    torch.set_num_threads(args.threads)
    runtime = BatchEngine(ModelConfig(base_model=base_model, quantize="int4"))
    corpus = REPO.parent / "shared" / "corpora" / "chris_wellons.jsonl"
    if not corpus.exists():
        raise SystemExit(f"--best-of needs a real post: {corpus} is missing (or pass --best-of 0)")
    posts = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    example = " ".join(max(posts[:50], key=lambda p: len(p["text"]))["text"].split()[:700])
    prompt = [{"role": "system", "content": "You write blog posts in the voice of the examples."},
              {"role": "user", "content": f"Example post:\n{example}\n\nWrite a new post about how tides work."}]
    jobs = [runtime.make_job(GenerationRequest.model_validate({"messages": prompt, "params": SamplingParams(
        temperature=0.8, top_p=0.95, seed=seed, max_new_tokens=args.best_of_tokens)}), None)
        for seed in range(args.best_of)]

    def draft(cascade: bool) -> tuple[float, list[str]]:
        engine = ContinuousEngine(runtime, max_batch_size=8)
        engine.cascade = cascade
        finals: dict[int, Any] = {}
        start = time.perf_counter()
        for i, job in enumerate(jobs):
            engine.submit(job, lambda item, i=i: finals.__setitem__(i, item[-1].final)
                          if not isinstance(item, BaseException) and item and item[-1].final else None)
        while engine.has_work():
            engine.step()
        return time.perf_counter() - start, [finals[i].text for i in range(len(jobs))]

    draft(True)  # warm-up
    times: dict[str, list[float]] = {"shared_prompt": [], "prompt_per_row": []}
    texts: dict[str, list[str]] = {}
    for _ in range(args.repeats):
        for name, cascade in (("shared_prompt", True), ("prompt_per_row", False)):
            seconds, texts[name] = draft(cascade)
            times[name].append(seconds)
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "candidates": args.best_of, "prompt_tokens": len(jobs[0].prompt_ids), "max_new_tokens": args.best_of_tokens,
        "engine": "continuous-int4", "seconds": times, "median_seconds": medians,
        "shared_over_per_row": round(medians["shared_prompt"] / medians["prompt_per_row"], 3),
        # The two split the softmax differently, so float rounding differs in the last bits. In fp32 the
        # sampled candidates still come out identical; the int4 engine rounds each matmul's input to bf16,
        # which turns such bits into visible logit changes, so sampled paths part after a few words (greedy
        # ones match).
        "identical_candidates": sum(a == b for a, b in zip(texts["shared_prompt"], texts["prompt_per_row"])),
        "common_prefix_words": [
            next((k for k, (x, y) in enumerate(zip(a.split(), b.split())) if x != y),
                 min(len(a.split()), len(b.split())))
            for a, b in zip(texts["shared_prompt"], texts["prompt_per_row"])
        ],
    }


PERPLEXITY_AUTHORS = ["chris_wellons", "simon_willison_til", "brandur_leach_atoms", "josh_branchaud_til"]


def perplexity_part(base_model: str, posts_per_author: int, max_tokens: int) -> dict[str, Any]:
    """Perplexity of the corpus authors' last posts (first ``max_tokens`` tokens each) under the base model as
    each weight format serves it: what int4 costs in quality, without sampling noise."""
    from benchmarks.corpus_site import CORPORA_DIR
    from serving.generation import ModelConfig
    from serving.static_engine import BatchEngine

    if not CORPORA_DIR.exists():
        return {"measured_here": None, "why_not": f"no corpora at {CORPORA_DIR}"}
    texts = perplexity_texts(posts_per_author)
    out: dict[str, Any] = {"posts": len(texts), "authors": PERPLEXITY_AUTHORS, "max_tokens": max_tokens}
    for quantize in ("none", "int4"):
        runtime = BatchEngine(ModelConfig(base_model=base_model, quantize=quantize))
        out[quantize] = corpus_perplexity(runtime.base, runtime.tokenizer, texts, max_tokens)
        del runtime
    out["int4_to_fp32"] = out["int4"] / out["none"]
    return out


def perplexity_texts(posts_per_author: int) -> list[str]:
    """The last ``posts_per_author`` posts of each of `PERPLEXITY_AUTHORS` (``../shared/corpora``)."""
    from benchmarks.corpus_site import load_corpus

    return [item["text"] for name in PERPLEXITY_AUTHORS for item in load_corpus(name)[-posts_per_author:]]


def corpus_perplexity(model: Any, tokenizer: Any, texts: list[str], max_tokens: int) -> float:
    """Perplexity of ``texts`` (first ``max_tokens`` tokens each) under ``model``, every token predicted."""
    import math

    import torch

    total, count = 0.0, 0
    with torch.inference_mode():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_tokens).input_ids
            loss = model(input_ids=ids, labels=ids).loss.item()
            total, count = total + loss * (ids.shape[1] - 1), count + ids.shape[1] - 1
    return math.exp(total / count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--match-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="single-request runs (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a replica gets 1 CPU by default)")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help=f"comma-separated, of {list(ENGINES)} (empty: none)")
    parser.add_argument("--perplexity-posts", type=int, default=8, help="per corpus author (0: skip)")
    parser.add_argument("--best-of", type=int, default=4, help="candidates of one long prompt (0: skip)")
    parser.add_argument("--best-of-tokens", type=int, default=96)
    parser.add_argument("--out", type=Path, default=RESULTS / "serve_model.json")
    args = parser.parse_args()

    import torch
    import transformers

    from serving.generation import ModelConfig
    from serving.static_engine import BatchEngine
    from twin.models import resolve_base_model
    from twin.settings import Settings

    settings = Settings(models_path=Path(os.environ.get("TWIN_TEST_MODELS_DIR", REPO / ".cache" / "models")),
                        _env_file=None)
    base_model = resolve_base_model(settings)
    report: dict[str, Any] = {
        "command": "python -m benchmarks.serve_model " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg(), "python": platform.python_version(),
                    "torch": torch.__version__, "transformers": transformers.__version__},
        "note": "a shared machine: compare ratios within this run, not absolute numbers across runs",
        "model": settings.base_model, "max_new_tokens": args.max_new_tokens, "concurrency": args.concurrency,
        "torch_threads": args.threads, "decoding": "greedy", "engines": {},
    }
    torch.set_num_threads(args.threads)
    runtime = BatchEngine(ModelConfig(base_model=base_model, max_new_tokens=args.match_tokens))
    match_jobs = _jobs(runtime, [[{"role": "user", "content": p}] for p in MATCH_PROMPTS], args.match_tokens)
    reference = [runtime.tokenizer.decode(ids, skip_special_tokens=True) for ids in _reference(runtime, match_jobs)]
    del runtime
    report["reference"] = {"engine": "model.generate, fp32, one prompt at a time", "texts": reference}
    for name in filter(None, args.engines.split(",")):
        print(f"== {name}", flush=True)
        report["engines"][name] = measure(name, base_model, args, reference)
        report["engines"][name]["load_avg_after"] = os.getloadavg()
        print(json.dumps({k: v for k, v in report["engines"][name].items() if k != "match_texts"}, indent=1),
              flush=True)
    engines = report["engines"]
    exact = [n for n, e in engines.items() if e["greedy_identical_to_reference"] == e["greedy_prompts"]]
    report["summary"] = {
        "fastest_single_stream": max(engines, key=lambda n: engines[n]["single_tokens_per_s"], default=None),
        "exact_engines": exact,
        "fastest_exact": max(exact, key=lambda n: engines[n]["aggregate_tokens_per_s"]) if exact else None,
        "tokens_per_s": {n: {"single": round(e["single_tokens_per_s"], 1),
                             "aggregate": round(e["aggregate_tokens_per_s"], 1)} for n, e in engines.items()},
        "llama_cpp_single_stream_tokens_per_s_reported_in_issue_14": 98,
    }
    if args.best_of:
        print(f"== best-of-{args.best_of} of one long prompt: shared prompt vs a copy per candidate", flush=True)
        report["best_of_n"] = best_of_n_part(base_model, args)
        print(json.dumps(report["best_of_n"], indent=1), flush=True)
    if args.perplexity_posts:
        print("== perplexity, fp32 and int4 weights", flush=True)
        report["perplexity"] = perplexity_part(base_model, args.perplexity_posts, 384)
        print(json.dumps(report["perplexity"], indent=1), flush=True)
    report["load_avg_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=1))


if __name__ == "__main__":
    main()
