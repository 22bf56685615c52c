"""`twin eval AUTHOR`: write with five variants on the author's held-out documents, score, report.

    report = evaluate(ingestion, "brandur", EvalOptions(limit=10), out_dir)    # what the CLI runs
    report = evaluate_author(settings, "brandur", EvalOptions(limit=10))      # opens the stores itself

Modules: `schemas` (options and report), `run` (the steps below), `scoring`, `render` (markdown, JSON),
`plots` (PNG), `opik` (experiments).

Steps: check the author has an active adapter -> load the adapter's train/test split (`evals.variants`) ->
start (or reuse) the Ray Serve model -> generate with every variant (`VariantRunner`) -> fit the scorers on
the TRAIN documents only (style classifier: author vs generic voice = the base model's answers, DPO rejected
ones when the adapter has them; stylometric profile; copy detector) -> score every output with
`evals.score_draft` -> held-out perplexity base vs adapter -> ``report.md``, ``report.json`` and PNG plots ->
an Opik experiment per variant when Opik is configured.

Grounding is measured for every variant against the passages it saw; the variants that saw none (base,
adapter) are checked against the passages retrieved for the same instruction, the evidence a grounded
answer could have used, so that all five numbers are comparable.
"""

from __future__ import annotations

from evals.report.run import evaluate, evaluate_author, model_client, require_adapter, run_eval
from evals.report.schemas import (
    METRIC_LABELS,
    METRICS,
    REFERENCE,
    VARIANT_LABELS,
    EvalOptions,
    EvalReport,
    Headline,
    ScoredOutput,
)
from evals.report.scoring import headline

__all__ = [
    "METRICS",
    "METRIC_LABELS",
    "REFERENCE",
    "VARIANT_LABELS",
    "EvalOptions",
    "EvalReport",
    "Headline",
    "ScoredOutput",
    "evaluate",
    "evaluate_author",
    "headline",
    "model_client",
    "require_adapter",
    "run_eval",
]
