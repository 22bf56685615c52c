"""Serving benchmark -> benchmarks/results/serve.json

    python -m benchmarks.serve [--max-new-tokens 64] [--concurrency 8] [--skip-chat] [--deployments ...]

One run measures, in order:
1. the model deployment (SmolLM2 on a local Ray Serve, through `ModelClient`, one CPU for the replica), for
   each deployment in ``--deployments`` (``static-fp32``: the ``@serve.batch`` engine; ``continuous-fp32``:
   iteration-level batching; ``continuous-int4``: the same with int4 weights, the default):
   - single-stream tokens/s and aggregate tokens/s with ``--concurrency`` requests at once (greedy);
   - time to first token (TTFT) of a request on an idle replica, and of a newly arriving request while
     ``--concurrency - 1`` clients keep the replica busy with long streams (so N requests in all), for the
     benchmark's repeated prompts (all but their last token in the prompt cache) and for prompts never asked
     before (a reply to the opening of a ``--ttft-corpus`` post); target: p95 under load <= 2x idle;
   - on the continuous deployments, the replica's RSS with the base model alone and with 8 LoRA adapters loaded
     (r=16 on every projection, as training makes them); target <= 1.2x;
2. the product end to end (unless ``--skip-chat``): a real uvicorn server of `create_app` (its own model
   deployment, embedded Qdrant and SQLite) answering `/api/chat` for an author whose posts are stored, one
   draft and one critique round per request (`agent.max_revisions=0`), sequential requests: p50/p95 latency,
   and the same as configured on 2026-11-23 (static fp32 engine, one candidate: 10.4 s p50 then), so that the
   target (at most half of that) is a ratio within one run, whatever the machine.

3. llama.cpp on the same model (the GGUF the built-in SmolLM2 is converted from), when scripts/llamacpp.sh has
   installed it: node-llama-cpp's prebuilt CPU binary runs benchmarks/llamacpp_bench.mjs with the same
   prompts' length of output (greedy), one stream and ``--concurrency`` sequences, with as many threads as
   our replica gets (1) and with every core.

The machine is shared: the load average is recorded, and only ratios within one run mean much.
benchmarks/serve_model.py compares the engines without Ray (and their greedy agreement with ``generate``).
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.corpus_site import load_corpus
from benchmarks.serve_model import messages

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]

DEPLOYMENTS = {
    # name: (engine, quantize)
    "static-fp32": ("static", "none"),
    "continuous-fp32": ("continuous", "none"),
    "continuous-int4": ("continuous", "int4"),
}
DEFAULT_DEPLOYMENT = "continuous-int4"
"""What `twin serve` runs on the built-in model (TWIN_SERVE__MODEL_ENGINE / MODEL_QUANTIZE defaults)."""

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
                            request_timeout_s=1800, model_num_cpus=1, torch_threads=1),
        allowed_hosts=["127.0.0.1"],
        _env_file=None,
    )


def _random_adapters(settings: Any, count: int) -> list[Any]:
    """LoRA adapters shaped like the training defaults (r=16 on every projection), random B matrices."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from serving.model_client import AdapterRef
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


def _deploy(base: Any, name: str, max_batch_size: int) -> Any:
    from ray import serve

    from serving.generation import MODEL_APP_NAME
    from serving.model import deploy_model
    from serving.model_client import ModelClient

    engine, quantize = DEPLOYMENTS[name]
    serve_settings = base.serve.model_copy(update=dict(model_engine=engine, model_quantize=quantize,
                                                       max_batch_size=max_batch_size))
    settings = base.model_copy(update={"serve": serve_settings})
    if MODEL_APP_NAME in serve.status().applications:
        serve.delete(MODEL_APP_NAME)
    return ModelClient(deploy_model(settings), settings=settings)


async def _stream(client: Any, adapter: Any, prompt: list[dict[str, str]],
                  params: Any) -> tuple[float, int, float]:
    """(time to first token, tokens, seconds) of one streamed request."""
    start = time.perf_counter()
    first: float | None = None
    final = None
    async for chunk in client.stream_chunks(adapter, prompt, params):
        if first is None and chunk.text:
            first = time.perf_counter() - start
        final = chunk.final or final
    elapsed = time.perf_counter() - start
    return (first if first is not None else elapsed), final.completion_tokens, elapsed


FRESH_PROMPT_WORDS = 60


def fresh_messages(corpus: str, count: int) -> list[list[dict[str, str]]]:
    """`count` chat prompts no earlier request began like: a reply to one of `corpus`'s posts (its opening)."""
    try:
        items = load_corpus(corpus)
    except FileNotFoundError as exc:
        raise SystemExit(f"--ttft-corpus {corpus}: no such corpus ({exc.filename})") from None
    posts = [item["text"] for item in items if len(item["text"].split()) >= FRESH_PROMPT_WORDS]
    if len(posts) < count:
        raise SystemExit(f"--ttft-corpus {corpus} has {len(posts)} posts of {FRESH_PROMPT_WORDS}+ words, "
                         f"{count} needed")
    return [[{"role": "user", "content": "Write a short post in reply to this one:\n\n"
              + " ".join(post.split()[:FRESH_PROMPT_WORDS])}] for post in posts[:count]]


def _ttft_summary(idle: list[float], loaded: list[float]) -> dict[str, Any]:
    return {"idle_p50_s": statistics.median(idle), "idle_p95_s": _percentile(idle, 0.95),
            "under_load_p50_s": statistics.median(loaded), "under_load_p95_s": _percentile(loaded, 0.95),
            "ratio_p95_under_load_to_idle_p50": _percentile(loaded, 0.95) / statistics.median(idle),
            "idle_s": idle, "under_load_s": loaded}


async def _deployment(client: Any, args: argparse.Namespace, adapters: list[Any] | None,
                      new_prompts: list[list[dict[str, str]]]) -> dict[str, Any]:
    from serving.generation import SamplingParams

    params = SamplingParams(temperature=0.0, max_new_tokens=args.max_new_tokens)
    short = SamplingParams(temperature=0.0, max_new_tokens=4)
    await asyncio.gather(*(client.generate(None, messages(i), short) for i in range(args.concurrency)))
    result: dict[str, Any] = {}

    runs = [await _stream(client, None, messages(i), params) for i in range(args.repeats)]
    rates = [tokens / seconds for _, tokens, seconds in runs]
    result["single"] = {"tokens_per_s": statistics.median(rates), "runs_tokens_per_s": rates}

    start = time.perf_counter()
    generations = await asyncio.gather(*(client.generate(None, messages(i), params) for i in range(args.concurrency)))
    elapsed = time.perf_counter() - start
    tokens = sum(g.completion_tokens for g in generations)
    result["aggregate"] = {"requests": args.concurrency, "tokens": tokens, "seconds": elapsed,
                           "tokens_per_s": tokens / elapsed, "batch_sizes": sorted(g.batch_size for g in generations)}

    idle = [(await _stream(client, None, messages(i), short))[0] for i in range(args.ttft_requests)]
    idle_new = [(await _stream(client, None, new_prompts[i], short))[0] for i in range(args.ttft_requests)]
    busy_params = SamplingParams(temperature=0.0, max_new_tokens=args.load_tokens)
    stop = asyncio.Event()
    started = [asyncio.Event() for _ in range(args.concurrency - 1)]

    async def keep_busy(k: int) -> int:
        done = 0
        while not stop.is_set():
            async for _ in client.stream(None, messages(k + done), busy_params):
                started[k].set()
                if stop.is_set():
                    break
            done += 1
        return done

    background = [asyncio.create_task(keep_busy(k)) for k in range(args.concurrency - 1)]
    await asyncio.gather(*(event.wait() for event in started))
    loaded, loaded_new = [], []
    for i in range(args.ttft_requests):
        await asyncio.sleep(0.3 * (i % 3))  # arrive at different points of the running rows' progress
        loaded.append((await _stream(client, None, messages(i), short))[0])
        await asyncio.sleep(0.1)
        loaded_new.append((await _stream(client, None, new_prompts[args.ttft_requests + i], short))[0])
    stop.set()
    await asyncio.gather(*background)
    result["ttft"] = {
        "prompts": "repeated: the benchmark's own prompts, asked before, so all but their last token is in the "
                   "prompt cache and a first token costs one 1-row step",
        **_ttft_summary(idle, loaded),
        "load_clients": args.concurrency - 1, "load_tokens_per_request": args.load_tokens,
        "new_prompts": {"prompts": f"never asked before: a reply to one of {args.ttft_corpus}'s posts, its first "
                                   f"{FRESH_PROMPT_WORDS} words (only the chat template's prefix is cached)",
                        **_ttft_summary(idle_new, loaded_new)},
    }
    if adapters:
        base_rss = (await client.info()).rss_bytes
        for adapter in adapters:
            await client.generate(adapter, messages(0), short)
        info = await client.info()
        result["memory"] = {
            "rss_base_mb": base_rss / 2**20, "rss_with_adapters_mb": info.rss_bytes / 2**20,
            "adapters_loaded": len(info.loaded_adapters), "ratio": info.rss_bytes / base_rss, "target_ratio": 1.2,
        }
        start = time.perf_counter()
        rows = [*adapters, None]
        mixed = await asyncio.gather(*(client.generate(rows[i % len(rows)], messages(i), params)
                                       for i in range(args.concurrency)))
        elapsed = time.perf_counter() - start
        result["aggregate_mixed_adapters"] = {
            "tokens": sum(g.completion_tokens for g in mixed), "seconds": elapsed,
            "tokens_per_s": sum(g.completion_tokens for g in mixed) / elapsed,
            "adapters": len({g.adapter for g in mixed}), "batch_sizes": sorted(g.batch_size for g in mixed),
        }
    return result


def model_part(args: argparse.Namespace, new_prompts: list[list[dict[str, str]]]) -> dict[str, Any]:
    import ray
    from ray import serve

    base = _settings(Path(tempfile.mkdtemp(prefix="twin-serve-bench-")))
    base.ensure_dirs()
    adapters = _random_adapters(base, args.adapters) if args.adapters else None
    out: dict[str, Any] = {}
    from serving.model import start_ray_and_serve

    start_ray_and_serve(base)  # before any serve.* call, which would start a Ray with default (chatty) logging
    try:
        for name in args.deployments.split(","):
            print(f"== deployment {name}", flush=True)
            client = _deploy(base, name, args.concurrency)
            with_adapters = adapters if name.startswith("continuous") else None
            out[name] = asyncio.run(_deployment(client, args, with_adapters, new_prompts))
            out[name]["load_avg_after"] = os.getloadavg()
            print(json.dumps(out[name], indent=1), flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
    return out


CHAT_BASELINE = ("static-fp32", 1)
"""The /api/chat configuration of 2026-11-23 (10.4 s p50 on that machine): the ``@serve.batch`` fp32 engine and
one candidate per draft. The target (at most half of it) is checked against this measured in the same run."""


def chat_part(args: argparse.Namespace, deployment: str, candidates: int) -> dict[str, Any]:
    """/api/chat p50/p95 on `deployment` with `candidates` best-of-N candidates per draft (0: the product's)."""
    import httpx
    import uvicorn

    from serving.app import create_app
    from serving.model import stop_local_ray
    from twin.domain import Kind, Platform, RawDocument
    from twin.store import DocumentStore

    settings = _settings(Path(tempfile.mkdtemp(prefix="twin-chat-bench-")))
    settings.serve.model_engine, settings.serve.model_quantize = DEPLOYMENTS[deployment]
    settings.serve.max_new_tokens = args.chat_max_new_tokens
    settings.serve.torch_threads = args.chat_torch_threads
    settings.agent.max_revisions = 0  # one draft, one critique round
    if candidates:
        settings.agent.candidates = candidates
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
        nodes: dict[str, list[float]] = {}
        for i in range(args.chat_requests):
            body = {"author": "bench", "prompt": CHAT_PROMPTS[i % len(CHAT_PROMPTS)], "platform": "linkedin",
                    "drafts": 1}
            start, start_at = time.perf_counter(), datetime.now(UTC)
            response = httpx.post(url + "/api/chat", json=body, timeout=1800)
            latencies.append(time.perf_counter() - start)
            response.raise_for_status()
            [draft] = response.json()["drafts"]
            tokens.append(len(draft["text"].split()))
            revisions.append(draft.get("revisions", 0))
            run = httpx.get(f"{url}/api/runs/{response.json()['run_id']}", timeout=60).json()
            for node, seconds in node_seconds(run["steps"], start_at).items():
                nodes.setdefault(node, []).append(seconds)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        stop_local_ray()  # the service stops the Ray it started; this is for a server that died early
    return {
        "deployment": deployment, "torch_threads": settings.serve.torch_threads, "requests": len(latencies),
        "drafts_per_request": 1, "candidates": settings.agent.candidates, "critique_rounds": 1,
        "max_new_tokens": args.chat_max_new_tokens, "author_posts": args.chat_posts,
        "p50_s": statistics.median(latencies), "p95_s": _percentile(latencies, 0.95),
        "latencies_s": latencies, "draft_words_median": statistics.median(tokens),
        "node_p50_s": {node: statistics.median(seconds) for node, seconds in nodes.items()},
    }


def node_seconds(steps: list[dict[str, Any]], start_at: datetime) -> dict[str, float]:
    """Seconds each node of a run took, from its stored steps: the graph runs one node at a time, so a
    node took from the previous step's end (the request's start for the first) to its own."""
    seconds: dict[str, float] = {}
    previous = start_at
    for step in steps:
        if step.get("kind") != "step" or "at" not in step:
            continue
        at = datetime.fromisoformat(step["at"])
        seconds[step["node"]] = seconds.get(step["node"], 0.0) + (at - previous).total_seconds()
        previous = at
    return seconds


def llamacpp_part(args: argparse.Namespace) -> dict[str, Any]:
    """llama.cpp's tokens/s on the built-in model's GGUF, or why it was not measured."""
    import shutil
    import subprocess

    from twin.models import builtin_gguf_path

    runner_dir = args.llamacpp_dir
    node = shutil.which("node")
    if node is None or not (runner_dir / "node_modules" / "node-llama-cpp").is_dir():
        return {"measured_here": None, "why_not": f"not installed: run scripts/llamacpp.sh (node: {node})"}
    gguf = builtin_gguf_path()
    script = runner_dir / "llamacpp_bench.mjs"  # ESM resolves node-llama-cpp next to the script
    shutil.copyfile(Path(__file__).with_name("llamacpp_bench.mjs"), script)
    out: dict[str, Any] = {"engine": "llama.cpp via node-llama-cpp (prebuilt CPU binary)", "model": gguf.name}
    for threads in sorted({1, os.cpu_count() or 1}):
        done = subprocess.run([node, str(script), str(gguf), str(args.max_new_tokens), str(args.concurrency),
                               str(threads)], capture_output=True, text=True, timeout=900, check=True)
        out[f"threads_{threads}"] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def cpu_name() -> str:
    """The CPU's model name (the same torch code runs 1.6x apart on two AVX-512 CPUs), as Linux reports it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", default=",".join(DEPLOYMENTS), help=f"comma-separated, of {list(DEPLOYMENTS)}")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="single-request runs (median reported)")
    parser.add_argument("--ttft-requests", type=int, default=30,
                        help="TTFT samples, idle and under load each (the p95 of 10 would be their slowest)")
    parser.add_argument("--ttft-corpus", default="chris_wellons",
                        help="corpus whose posts open the never-asked-before TTFT prompts")
    parser.add_argument("--load-tokens", type=int, default=128, help="length of each background request")
    parser.add_argument("--adapters", type=int, default=8, help="LoRA adapters for the memory check (0: skip)")
    parser.add_argument("--chat-deployment", default=DEFAULT_DEPLOYMENT, choices=list(DEPLOYMENTS))
    parser.add_argument("--chat-requests", type=int, default=8)
    parser.add_argument("--chat-max-new-tokens", type=int, default=96)
    parser.add_argument("--chat-candidates", type=int, default=0,
                        help="best-of-N candidates per draft (0: the product's default, agent.candidates)")
    parser.add_argument("--chat-torch-threads", type=int, default=1,
                        help="the chat service's model replica's torch threads (the API process shares the cores)")
    parser.add_argument("--chat-corpus", default="brandur_leach_atoms")
    parser.add_argument("--chat-posts", type=int, default=60)
    parser.add_argument("--skip-chat", action="store_true")
    parser.add_argument("--skip-chat-baseline", action="store_true",
                        help=f"do not measure /api/chat as of 2026-11-23 ({CHAT_BASELINE}) for the ratio")
    parser.add_argument("--skip-model", action="store_true", help="only the /api/chat part (and llama.cpp)")
    parser.add_argument("--llamacpp-dir", type=Path, default=REPO / ".cache" / "llamacpp",
                        help="where scripts/llamacpp.sh installed node-llama-cpp")
    parser.add_argument("--out", type=Path, default=RESULTS / "serve.json")
    args = parser.parse_args()
    # The first-token prompts are read before any model runs, so a wrong --ttft-corpus fails at once.
    new_prompts = [] if args.skip_model else fresh_messages(args.ttft_corpus, 2 * args.ttft_requests)

    import ray
    import torch
    import transformers

    from serving.quantize import prefill_dtype

    report: dict[str, Any] = {
        "command": "python -m benchmarks.serve " + " ".join(sys.argv[1:]),
        "machine": {"cpu": cpu_name(), "cpus": os.cpu_count(),
                    "native_bf16": prefill_dtype() == torch.bfloat16,
                    "load_avg_at_start": os.getloadavg(), "python": platform.python_version(),
                    "torch": torch.__version__, "transformers": transformers.__version__, "ray": ray.__version__},
        "note": "a shared machine: compare ratios within this run, not absolute numbers across runs",
        "base_model": "smollm2-135m-instruct (the default)", "decoding": "greedy", "replica": "1 CPU, 1 torch thread",
        "max_new_tokens": args.max_new_tokens, "concurrency": args.concurrency,
    }
    print("== llama.cpp", flush=True)
    report["llama_cpp"] = llamacpp_part(args)
    print(json.dumps(report["llama_cpp"], indent=1), flush=True)
    report["model"] = {} if args.skip_model else model_part(args, new_prompts)
    models = report["model"]
    if DEFAULT_DEPLOYMENT in models:
        default = models[DEFAULT_DEPLOYMENT]
        new_prompt_ratio = default["ttft"]["new_prompts"]["ratio_p95_under_load_to_idle_p50"]
        report["targets"] = {
            "default_deployment": DEFAULT_DEPLOYMENT,
            "single_stream_tokens_per_s": default["single"]["tokens_per_s"],
            "aggregate_tokens_per_s_at_concurrency": default["aggregate"]["tokens_per_s"],
            "ttft_p95_under_load_to_idle": default["ttft"]["ratio_p95_under_load_to_idle_p50"],
            "ttft_target_met": default["ttft"]["ratio_p95_under_load_to_idle_p50"] <= 2.0,
            "ttft_new_prompt_p95_under_load_to_idle": new_prompt_ratio,
            "ttft_new_prompt_target_met": new_prompt_ratio <= 2.0,
            "rss_with_8_adapters_to_base": default.get("memory", {}).get("ratio"),
        }
        for name in DEPLOYMENTS:
            if name in models and name != DEFAULT_DEPLOYMENT:
                report["targets"][name] = {
                    "single_stream_tokens_per_s": models[name]["single"]["tokens_per_s"],
                    "aggregate_tokens_per_s_at_concurrency": models[name]["aggregate"]["tokens_per_s"],
                    "ttft_p95_under_load_to_idle": models[name]["ttft"]["ratio_p95_under_load_to_idle_p50"],
                }
        reference = report["llama_cpp"].get("threads_1")
        if reference:
            single = reference["single_stream_tok_s"]
            for name, row in models.items():
                row["vs_llama_cpp_1_thread"] = {
                    "single_stream": row["single"]["tokens_per_s"] / single,
                    "aggregate_to_llama_single": row["aggregate"]["tokens_per_s"] / single,
                    "targets": "single >= 0.5, aggregate >= 1.5"}
            report["targets"]["llama_cpp_single_stream_tokens_per_s_1_thread"] = single
        print(json.dumps(report["targets"], indent=1), flush=True)
    if not args.skip_chat:
        print("== /api/chat end to end", flush=True)
        report["chat"] = chat_part(args, args.chat_deployment, args.chat_candidates)
        print(json.dumps(report["chat"], indent=1), flush=True)
        if not args.skip_chat_baseline:
            print(f"== /api/chat as configured on 2026-11-23: {CHAT_BASELINE}", flush=True)
            report["chat_baseline"] = chat_part(args, *CHAT_BASELINE)
            print(json.dumps(report["chat_baseline"], indent=1), flush=True)
            ratio = report["chat"]["p50_s"] / report["chat_baseline"]["p50_s"]
            report["chat_p50_to_baseline"] = {"ratio": ratio, "target": "<= 0.5", "met": ratio <= 0.5}
            print(json.dumps(report["chat_p50_to_baseline"]), flush=True)
    report["load_avg_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
