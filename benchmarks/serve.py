"""Serving benchmark -> benchmarks/results/serve.json

    python -m benchmarks.serve [--variant fp32-1t] [--max-new-tokens 64] [--concurrency 8] [--chat-requests 8]

One run measures, in order:
1. the model deployment (SmolLM2 on a local Ray Serve, through `ModelClient`): single-request tokens/s, and
   aggregate tokens/s with N concurrent requests with batching on (`max_batch_size=N`) and off (`=1`);
   target: the batched aggregate at N=8 is at least 4x the single-request rate;
2. the product end to end: a real uvicorn server of `create_app` (its own model deployment, embedded
   Qdrant and SQLite) answering `/api/chat` for an author whose posts are stored, one draft and one
   critique round per request (`agent.max_revisions=0`), sequential requests: p50/p95 latency.

The variant's meaning (dtype x torch threads) and the model part are shared with benchmarks/serve_model.py,
which sweeps every variant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.corpus_site import load_corpus
from benchmarks.serve_model import VARIANTS, _deploy, _measure

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]

CHAT_PROMPTS = [
    "Write about what a year of writing every day taught me.",
    "A post on why small teams ship faster.",
    "Share a lesson from debugging a production outage.",
    "Write about choosing boring technology.",
    "A post about learning in public.",
    "Write about the best code review I ever got.",
    "A post on why I keep a work journal.",
    "Share what I learned from rewriting a service.",
]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _settings(data_dir: Path) -> Any:
    from twin.settings import ServeSettings, Settings

    return Settings(
        data_dir=data_dir,
        models_path=Path(os.environ.get("TWIN_TEST_MODELS_DIR", REPO / ".cache" / "models")),
        serve=ServeSettings(ray_num_cpus=os.cpu_count(), batch_wait_timeout_s=0.05, model_probe_timeout_s=120,
                            request_timeout_s=1800),
        allowed_hosts=["127.0.0.1"],
        _env_file=None,
    )


def model_part(args: argparse.Namespace) -> dict[str, Any]:
    import ray
    from ray import serve

    dtype, threads, cpus = VARIANTS[args.variant]
    base = _settings(Path(tempfile.mkdtemp(prefix="twin-serve-bench-")))
    base.ensure_dirs()
    try:
        on = asyncio.run(_measure(_deploy(base, dtype, threads, cpus, args.concurrency), args, batching=True))
        off = asyncio.run(_measure(_deploy(base, dtype, threads, cpus, 1), args, batching=False))
    finally:
        serve.shutdown()
        ray.shutdown()
    single = on["single"]["tokens_per_s"]
    ratio = on["concurrent"]["tokens_per_s"] / single
    return {
        "variant": args.variant, "dtype": dtype, "torch_threads": threads,
        "single": on["single"], "batching_on": on["concurrent"], "batching_off": off["concurrent"],
        "ratio_batched_aggregate_to_single": ratio,
        "ratio_unbatched_aggregate_to_single": off["concurrent"]["tokens_per_s"] / single,
        "target_ratio": 4.0, "target_met": ratio >= 4.0,
        "llama_cpp_single_stream_tokens_per_s": 98,
    }


def chat_part(args: argparse.Namespace) -> dict[str, Any]:
    import httpx
    import uvicorn

    from serving.app import create_app
    from serving.model import stop_local_ray
    from twin.domain import Kind, Platform, RawDocument
    from twin.store import DocumentStore

    dtype, threads, cpus = VARIANTS[args.variant]
    settings = _settings(Path(tempfile.mkdtemp(prefix="twin-chat-bench-")))
    settings.serve.model_dtype, settings.serve.torch_threads, settings.serve.model_num_cpus = dtype, threads, cpus
    settings.serve.max_new_tokens = args.chat_max_new_tokens
    settings.agent.max_revisions = 0  # one draft, one critique round
    settings.schedule.enabled = False
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        settings.serve.port = sock.getsockname()[1]
    settings.ensure_dirs()
    store = DocumentStore.from_url(settings.resolved_database_url)
    author = store.add_author("bench")
    for number, item in enumerate(load_corpus(args.chat_corpus, args.chat_posts)):
        raw = RawDocument(url=f"https://bench.example/posts/{number}", platform=Platform.linkedin,
                          kind=Kind.post, text=item["text"], title=item.get("title"))
        store.upsert_document(author, None, raw, item["text"])
    store.close()

    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.serve.port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    url = f"http://127.0.0.1:{settings.serve.port}"
    thread.start()
    try:
        deadline = time.monotonic() + 900
        while True:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise SystemExit("the service did not start (see the log above)")
            try:
                if httpx.get(url + "/api/health", timeout=2).json().get("model") == "ready":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        body = {"author": "bench", "prompt": "Warm-up.", "platform": "linkedin", "drafts": 1}
        httpx.post(url + "/api/chat", json=body, timeout=1800).raise_for_status()
        latencies, tokens, revisions = [], [], []
        for i in range(args.chat_requests):
            body = {"author": "bench", "prompt": CHAT_PROMPTS[i % len(CHAT_PROMPTS)], "platform": "linkedin",
                    "drafts": 1}
            start = time.perf_counter()
            response = httpx.post(url + "/api/chat", json=body, timeout=1800)
            latencies.append(time.perf_counter() - start)
            response.raise_for_status()
            [draft] = response.json()["drafts"]
            tokens.append(len(draft["text"].split()))
            revisions.append(draft.get("revisions", 0))
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        stop_local_ray()  # the service stops the Ray it started; this is for a server that died early
    return {
        "requests": len(latencies), "drafts_per_request": 1, "critique_rounds": 1,
        "max_new_tokens": args.chat_max_new_tokens, "author_posts": args.chat_posts,
        "p50_s": statistics.median(latencies), "p95_s": _percentile(latencies, 0.95),
        "latencies_s": latencies, "draft_words_median": statistics.median(tokens),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="fp32-1t", choices=list(VARIANTS))
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="single-request runs (median reported)")
    parser.add_argument("--chat-requests", type=int, default=8)
    parser.add_argument("--chat-max-new-tokens", type=int, default=96)
    parser.add_argument("--chat-corpus", default="brandur_leach_atoms")
    parser.add_argument("--chat-posts", type=int, default=60)
    parser.add_argument("--skip-chat", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "serve.json")
    args = parser.parse_args()

    import ray
    import torch
    import transformers

    report: dict[str, Any] = {
        "command": "python -m benchmarks.serve " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg(), "python": platform.python_version(),
                    "torch": torch.__version__, "transformers": transformers.__version__, "ray": ray.__version__},
        "base_model": "smollm2-135m-instruct (the default)", "decoding": "greedy",
        "max_new_tokens": args.max_new_tokens, "concurrency": args.concurrency,
    }
    print("== model deployment: single, then batching on and off", flush=True)
    report["model"] = model_part(args)
    print(json.dumps(report["model"], indent=1), flush=True)
    if not args.skip_chat:
        print("== /api/chat end to end", flush=True)
        report["chat"] = chat_part(args)
        print(json.dumps(report["chat"], indent=1), flush=True)
    report["load_avg_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
