"""Training benchmark: SFT throughput with 1 and 2 Ray Train workers, and whether the twin learned the author.

    .venv/bin/python benchmarks/train.py                       # writes benchmarks/results/train.json
    .venv/bin/python benchmarks/train.py --author simon_willison_til --limit 200 --steps 40

1. Throughput: the same SFT run (``--throughput-steps`` steps, batch 4 x 256 tokens per worker) with 1 and
   then 2 workers: tokens/s (TRL's count of tokens trained on), seconds per step, peak RSS per worker.
2. Quality: a full ``train()`` job (SFT ``--steps`` steps, then DPO) on a ``../shared/corpora`` author; the
   held-out perplexity of that author's unseen test documents under the base model and the adapter, and
   their ratio (adapter / base, below 1 is better).
The corpus is read from ``TWIN_CORPORA_DIR`` (default ``../shared/corpora``) and never copied.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPORA_DIR = Path(os.environ.get("TWIN_CORPORA_DIR", REPO_ROOT.parent / "shared" / "corpora"))
MODELS_DIR = Path(os.environ.get("TWIN_TEST_MODELS_DIR", REPO_ROOT / ".cache" / "models"))
RESULTS = REPO_ROOT / "benchmarks" / "results" / "train.json"


def load_author(store: Any, corpus: str, limit: int) -> str:
    from twin.domain import Kind, Platform, RawDocument

    author = store.add_author(corpus)
    with (CORPORA_DIR / f"{corpus}.jsonl").open() as fh:
        for i, line in enumerate(fh):
            if i >= limit:
                break
            item = json.loads(line)
            short = item.get("word_count", 0) < 400
            raw = RawDocument(
                url=f"corpus://{corpus}/{i}",
                platform=Platform.x if corpus.endswith("atoms") else Platform.blog,
                kind=Kind.post if short else Kind.article,
                title=item.get("title"),
                text=item["text"],
            )
            store.upsert_document(author, None, raw, item["text"])
    return author.name


def throughput(settings: Any, store: Any, author: str, workers: int, steps: int) -> dict[str, Any]:
    from training.config import TrainConfig
    from training.dataset import build_datasets
    from training.job import _rows, run_stage
    from twin.models import resolve_base_model

    config = TrainConfig.from_settings(
        settings, workers=workers, max_steps=steps, batch_size=4, max_length=256, save_steps=10_000, dpo=False
    )
    base = resolve_base_model(settings)
    bundle = build_datasets(store, author, settings, settings.datasets_dir / f"throughput-{workers}", with_dpo=False)
    started = time.perf_counter()
    result = run_stage("sft", settings, config, f"throughput-{workers}w-{int(time.time())}", base,
                       _rows(bundle.splits["train"]), [], lambda _event: None)
    wall = time.perf_counter() - started
    m = result.metrics
    return {
        "workers": workers,
        "steps": int(m["step"]),
        "global_batch": 4 * workers,
        "tokens": m.get("num_tokens"),
        "train_runtime_s": m["train_runtime"],
        "tokens_per_s": m["num_tokens"] / m["train_runtime"],
        "s_per_step": m["train_runtime"] / m["step"],
        "wall_s_including_worker_start": wall,
        "peak_rss_mb_rank0": m["peak_rss_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--author", default="brandur_leach_atoms", help="corpus file name without .jsonl")
    parser.add_argument("--limit", type=int, default=337, help="documents read from the corpus")
    parser.add_argument("--throughput-steps", type=int, default=4)
    parser.add_argument("--steps", type=int, default=30, help="SFT steps of the quality run")
    parser.add_argument("--dpo-steps", type=int, default=4)
    parser.add_argument("--dpo-pairs", type=int, default=16)
    parser.add_argument("--eval-examples", type=int, default=32)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    import ray

    from training.config import TrainConfig
    from training.job import WORKER_ENV, train
    from twin.settings import Settings
    from twin.store import DocumentStore

    data_dir = Path(tempfile.mkdtemp(prefix="twin-bench-train-"))
    settings = Settings(data_dir=data_dir, models_path=MODELS_DIR, _env_file=None)
    settings.train.dpo_max_pairs = args.dpo_pairs
    settings.train.dpo_max_new_tokens = 64
    settings.train.max_eval_examples = args.eval_examples
    settings.train.max_length = 256
    settings.ensure_dirs()
    store = DocumentStore.from_url(settings.resolved_database_url)
    author = load_author(store, args.author, args.limit)
    ray.init(address="local", num_cpus=2, runtime_env={"env_vars": WORKER_ENV}, configure_logging=False)

    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), torch CPU fp32",
        "base_model": settings.base_model,
        "author": args.author,
        "documents": len(store.list_documents(store.get_author(author))),
    }
    if not args.skip_throughput:
        report["throughput"] = [
            throughput(settings, store, author, workers, args.throughput_steps) for workers in (1, 2)
        ]
        one, two = report["throughput"]
        report["speedup_2_vs_1_workers_tokens_per_s"] = two["tokens_per_s"] / one["tokens_per_s"]

    config = TrainConfig.from_settings(
        settings, workers=2, max_steps=args.steps, batch_size=4, max_length=256, save_steps=10,
        dpo_max_steps=args.dpo_steps,
    )
    started = time.perf_counter()
    adapter = train(store, author, settings, config, progress=lambda e: print(
        f"[{time.perf_counter() - started:7.1f}s] {e.stage} {e.event} {e.step}/{e.total} "
        f"{'' if e.loss is None else f'loss={e.loss:.3f}'} {e.message}", flush=True))
    m = adapter.metrics
    report["quality"] = {
        "sft_steps": args.steps,
        "dpo_steps": args.dpo_steps,
        "dpo_pairs": m["dpo_pairs"],
        "train_examples": m["dataset"]["train"]["examples"],
        "test_documents": m["dataset"]["test"]["documents"],
        "test_examples_scored": m["perplexity_examples"],
        "test_tokens_scored": m["perplexity_tokens"],
        "perplexity_base": m["perplexity_base"],
        "perplexity_adapter": m["perplexity_adapter"],
        "perplexity_ratio_adapter_over_base": m["perplexity_ratio"],
        "sft_train_loss": m["train_loss"],
        "sft_validation_loss": m["validation_loss"],
        "sft_first_loss": m.get("sft_first_loss"),
        "sft_last_loss": m.get("sft_last_loss"),
        "dpo_train_loss": m.get("dpo_train_loss"),
        "dpo_rewards_margins": m.get("dpo_rewards_margins"),
        "job_wall_s": time.perf_counter() - started,
    }
    ray.shutdown()
    store.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
