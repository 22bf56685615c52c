"""The number that matters for evals -> benchmarks/results/evals.json

    python -m benchmarks.evals --data-dir /tmp/twin-evals-bench              # store, train, evaluate
    python -m benchmarks.evals --data-dir /tmp/twin-evals-bench --limit 20   # again: reuses the adapter

On a real author from ``../shared/corpora`` (brandur_leach_atoms by default): store and embed their posts,
train an SFT + DPO LoRA adapter with `training.job.train` (skipped when the data dir already holds one, so a
second run only evaluates), then run the `twin eval` suite (`evals.report.run_eval`) on held-out documents.
The JSON holds numbers only (no corpus text): the full agent's mean style score P(author | text) against the
base model's, the mean grounding of each, every variant's means, and held-out perplexity base vs adapter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

from benchmarks.corpus_site import store_corpus_posts
from twin.domain import Platform
from twin.settings import Settings
from twin.store import DocumentStore

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results"
MODELS_CACHE = Path(os.environ.get("TWIN_TEST_MODELS_DIR", REPO_ROOT / ".cache" / "models"))


def store_corpus(settings: Settings, store: DocumentStore, corpus: str, author_name: str, limit: int | None) -> int:
    """Store the corpus as the author's posts and embed them; returns the number of documents."""
    from ingestion.pipeline import IngestionDeps, resume_embedding
    from twin.vectors import Embedder, VectorStore

    author = store.add_author(author_name)
    store_corpus_posts(store, author, corpus, limit, Platform.x if "atoms" in corpus else Platform.blog)
    vectors = VectorStore(settings, Embedder(settings))
    try:
        asyncio.run(resume_embedding(IngestionDeps(settings=settings, store=store, vectors=vectors), author))
    finally:
        vectors.close()
    return len(store.list_documents(author))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/twin-evals-bench"))
    parser.add_argument("--corpus", default="brandur_leach_atoms")
    parser.add_argument("--author", default="brandur")
    parser.add_argument("--docs", type=int, default=0, help="documents to store (0: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sft-steps", type=int, default=60)
    parser.add_argument("--dpo-steps", type=int, default=8)
    parser.add_argument("--dpo-pairs", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--limit", type=int, default=20, help="held-out documents to evaluate")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "evals.json")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("OPIK_TRACK_DISABLE", "true")
    settings = Settings(
        _env_file=None,
        data_dir=args.data_dir,
        models_path=MODELS_CACHE,
        train={"dpo_max_pairs": args.dpo_pairs, "dpo_max_new_tokens": 96, "max_length": args.max_length},
        serve={"max_new_tokens": args.max_new_tokens},
    )
    settings.ensure_dirs()
    store = DocumentStore.from_url(settings.resolved_database_url)
    timings: dict[str, float] = {}
    try:
        if not any(a.name == args.author for a in store.list_authors()):
            start = time.perf_counter()
            count = store_corpus(settings, store, args.corpus, args.author, args.docs or None)
            timings["store_and_embed_s"] = time.perf_counter() - start
            print(f"stored and embedded {count} documents in {timings['store_and_embed_s']:.0f} s", flush=True)
        author = store.get_author(args.author)
        adapter = store.active_adapter(author)
        if adapter is None:
            from training.config import TrainConfig
            from training.job import train

            config = TrainConfig.from_settings(
                settings, workers=args.workers, max_steps=args.sft_steps, dpo_max_steps=args.dpo_steps,
                max_length=args.max_length,
            )
            start = time.perf_counter()
            adapter = train(
                store, args.author, settings, config,
                progress=lambda e: print(f"[{time.perf_counter() - start:6.0f}s] {e.stage} {e.event} "
                                         f"{e.step}/{e.total} {e.loss or ''} {e.message}", flush=True),
            )
            timings["train_s"] = time.perf_counter() - start
            print(f"trained v{adapter.version} in {timings['train_s']:.0f} s: {adapter.metrics.get('perplexity_ratio')}")
        if args.train_only:
            return
    finally:
        store.close()

    from evals.report import EvalOptions, evaluate_author, headline

    start = time.perf_counter()
    report = evaluate_author(
        settings, args.author, EvalOptions(limit=args.limit), out_dir=args.data_dir / "reports" / args.author,
        progress=lambda stage, done, total: print(f"  {stage}: {done}/{total}", flush=True),
    )
    timings["eval_s"] = time.perf_counter() - start
    result = {
        "benchmark": "evals",
        "command": "python -m benchmarks.evals " + " ".join(sys.argv[1:]),
        "corpus": args.corpus,
        "headline": headline(report).model_dump(),
        "means": report.means,
        "perplexity": report.perplexity.model_dump() if report.perplexity else None,
        "items": len(report.items),
        "adapter": {"version": report.adapter_version, "params": report.adapter_params},
        "style_classifier": report.classifier,
        "settings": {"max_new_tokens": args.max_new_tokens, "max_revisions": settings.agent.max_revisions,
                     "style_threshold": settings.agent.style_threshold,
                     "grounding_threshold": settings.agent.grounding_threshold},
        "timings_s": timings,
        "report_dir": str(report.out_dir) if report.out_dir else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result["headline"], indent=2))


if __name__ == "__main__":
    main()
