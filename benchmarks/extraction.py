"""Main-text extraction benchmark: precision/recall/F1 of word-3-gram shingles against recorded bodies.

    python -m benchmarks.extraction [--pages 32]     # writes benchmarks/results/extraction.json

Pages come from :mod:`benchmarks.extraction_pages` (8 layouts around real corpus texts). Methods:

- ``trafilatura``: :func:`ingestion.extract.extract_article` as ingestion uses it (``favor_precision``);
- ``trafilatura_balanced`` / ``trafilatura_recall``: the same in trafilatura's default and recall modes;
- ``crawl4ai_pruning``: crawl4ai's ``PruningContentFilter`` markdown (``fit_markdown``);
- ``crawl4ai_raw``: crawl4ai's markdown of the whole page, a no-filter floor.

Each extraction (markdown) is rendered to its visible text, as the true text was taken from the rendered
body, so markdown syntax (list numbers, ``#``, fences) neither helps nor hurts; scores are computed on
lowercased word tokens; shingles are counted as a multiset, so duplicated boilerplate costs precision.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "extraction.json"
SHINGLE = 3
_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("_", " "))


def shingles(text: str, n: int = SHINGLE) -> Counter[tuple[str, ...]]:
    tokens = words(text)
    if len(tokens) < n:
        return Counter([tuple(tokens)]) if tokens else Counter()
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def markdown_to_text(markdown: str) -> str:
    """Visible text of markdown once rendered, the same way the true text was taken from the page."""
    from markdown_it import MarkdownIt

    from benchmarks.extraction_pages import visible_text

    return visible_text(MarkdownIt("commonmark").enable("table").render(markdown)) if markdown.strip() else ""


def score(extracted_markdown: str, truth: str) -> dict[str, float]:
    """Shingle precision, recall and F1 of an extraction (markdown) against the true text."""
    got, want = shingles(markdown_to_text(extracted_markdown)), shingles(truth)
    overlap = sum((got & want).values())
    precision = overlap / sum(got.values()) if got else 0.0
    recall = overlap / sum(want.values()) if want else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _methods() -> dict[str, Callable[[str, str], str]]:
    from ingestion.extract import crawl4ai_markdown, extract_article

    return {
        "trafilatura": lambda html, url: extract_article(html, url).text_markdown,
        "trafilatura_balanced": lambda html, url: extract_article(html, url, favor="balanced").text_markdown,
        "trafilatura_recall": lambda html, url: extract_article(html, url, favor="recall").text_markdown,
        "crawl4ai_pruning": lambda html, url: crawl4ai_markdown(html, url, pruned=True),
        "crawl4ai_raw": lambda html, url: crawl4ai_markdown(html, url, pruned=False),
    }


def _mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 4) if values else 0.0


def run_extraction_benchmark(n_pages: int = 32) -> dict:
    """Score every method on ``n_pages`` generated pages; returns the summary (and per-page scores)."""
    from benchmarks.extraction_pages import generate_pages

    pages = generate_pages(n_pages)
    methods = _methods()
    per_page: list[dict] = []
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for page in pages:
        row: dict = {"name": page.name, "layout": page.layout, "corpus": page.corpus, "true_words": len(words(page.true_text))}
        for name, method in methods.items():
            started = time.perf_counter()
            text = method(page.html, page.url)
            seconds[name].append(time.perf_counter() - started)
            row[name] = {k: round(v, 4) for k, v in score(text, page.true_text).items()}
        per_page.append(row)

    summary: dict[str, dict] = {}
    for name in methods:
        scores = [row[name] for row in per_page]
        by_layout: dict[str, float] = {}
        for layout in dict.fromkeys(row["layout"] for row in per_page):
            by_layout[layout] = _mean([row[name]["f1"] for row in per_page if row["layout"] == layout])
        summary[name] = {
            "precision": _mean([s["precision"] for s in scores]),
            "recall": _mean([s["recall"] for s in scores]),
            "f1": _mean([s["f1"] for s in scores]),
            "min_f1": round(min(s["f1"] for s in scores), 4),
            "f1_by_layout": by_layout,
            "ms_per_page": round(1000 * statistics.fmean(seconds[name]), 1),
        }
    return {
        "pages": len(pages),
        "layouts": sorted({p.layout for p in pages}),
        "metric": f"word {SHINGLE}-gram shingles (multiset), macro-averaged over pages",
        "target_f1": 0.95,
        "methods": summary,
        "per_page": per_page,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=32)
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    args = parser.parse_args()
    result = run_extraction_benchmark(args.pages)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    for name, stats in result["methods"].items():
        print(f"{name:24s} P={stats['precision']:.3f} R={stats['recall']:.3f} F1={stats['f1']:.3f} "
              f"min={stats['min_f1']:.3f} {stats['ms_per_page']:.0f} ms/page")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
