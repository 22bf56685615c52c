"""The run: check the adapter, load the held-out split, start the model, generate with every variant,
score, report."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.report.opik import log_opik_experiments
from evals.report.render import write_report
from evals.report.schemas import (
    METRICS,
    REFERENCE,
    EvalOptions,
    EvalReport,
    Headline,
    ProgressFn,
    ScoredOutput,
    no_progress,
)
from evals.report.scoring import Scorers, headline, held_out_perplexity, summarize
from evals.variants import (
    VARIANT_LABELS,
    HeldOutData,
    HeldOutItem,
    VariantOutput,
    VariantRunner,
    load_held_out,
)
from twin.domain import Adapter, Author, NotFound, TwinError, author_folder

if TYPE_CHECKING:
    from ingestion.pipeline import IngestionDeps
    from twin.settings import Settings
    from twin.store import DocumentStore


def require_adapter(store: DocumentStore, author_name: str) -> tuple[Author, Adapter]:
    """The author and their active adapter, or a TwinError that says what to do."""
    author = store.get_author(author_name)
    adapter = store.active_adapter(author)
    if adapter is None:
        trained = store.list_adapters(author)
        hint = (
            f"activate one with `twin adapters activate {author.name} VERSION`"
            if trained
            else f"train one first with `twin train {author.name}`"
        )
        raise NotFound(f"{author.name} has no active adapter to evaluate; {hint}.")
    if not (Path(adapter.path) / "adapter_config.json").exists():
        raise TwinError(
            f"{author.name}'s adapter v{adapter.version} is missing from {adapter.path}; retrain with "
            f"`twin train {author.name}` or activate another version."
        )
    return author, adapter


@contextmanager
def model_client(settings: Settings) -> Iterator[Any]:
    """A `ModelClient` for the product's Ray Serve model deployment: reuses a running one in this Ray,
    else deploys it (`deploy_model`) and shuts down what it started when done."""
    import ray
    from ray import serve

    from serving.model import deploy_model
    from serving.model_client import ModelClient

    started_ray = not ray.is_initialized()
    try:
        handle = deploy_model(settings)
        # Generous: on a small CPU a request may wait behind a few full batches of other variants.
        yield ModelClient(handle, request_timeout_s=max(settings.serve.request_timeout_s, 1800.0))
    finally:
        if started_ray and ray.is_initialized():
            serve.shutdown()
            ray.shutdown()


async def run_eval(
    ingestion: IngestionDeps,
    author: Author,
    adapter: Adapter,
    model: Any,
    data: HeldOutData,
    options: EvalOptions,
    progress: ProgressFn = no_progress,
) -> tuple[EvalReport, Scorers, dict[tuple[str, int], list[str]]]:
    """Generate with each variant, fit the scorers on the train split, score; no files written."""
    import time

    settings = ingestion.settings
    timings: dict[str, float] = {}
    items = data.items[: options.limit] if options.limit else list(data.items)
    runner = VariantRunner(
        settings=settings,
        ingestion=ingestion,
        author=author,
        adapter=adapter,
        model=model,
        data=data,
        retrieve_k=options.retrieve_k or settings.agent.retrieve_k,
        max_new_tokens=options.max_new_tokens or settings.serve.max_new_tokens,
        temperature=options.temperature,
        top_p=options.top_p,
        seed=options.seed,
        agent_concurrency=options.agent_concurrency,
    )

    start = time.perf_counter()
    progress("retrieve", 0, len(items))
    for done, item in enumerate(items, 1):  # every variant is checked against these (see module doc)
        await runner.passages_for(item)
        progress("retrieve", done, len(items))
    timings["retrieve"] = time.perf_counter() - start

    generic_texts = list(data.rejected_texts)
    generic_source = "dpo_rejected"
    start = time.perf_counter()
    counts = {v: 0 for v in options.variants}

    def on_done(output: VariantOutput) -> None:
        counts[output.variant] += 1
        progress(output.variant, counts[output.variant], len(items))

    for variant in options.variants:
        progress(variant, 0, len(items))
    jobs: list[Any] = [runner.run(options.variants, items, on_done)]
    if len(generic_texts) < 4:
        generic_source = "base_model_answers"
        progress("generic voice", 0, 1)
        jobs.append(runner.generic_answers(options.generic_samples))
    results = await asyncio.gather(*jobs)
    outputs: list[VariantOutput] = results[0]
    if len(results) > 1:
        generic_texts = [*generic_texts, *results[1]]
        progress("generic voice", 1, 1)
    timings["generate"] = time.perf_counter() - start

    start = time.perf_counter()
    embed = ingestion.vectors.embedder.embed_documents
    scorers = await asyncio.to_thread(Scorers.fit, data, generic_texts, settings, embed, options.seed)
    timings["fit_scorers"] = time.perf_counter() - start

    start = time.perf_counter()
    by_doc = {item.document_id: item for item in items}
    scored: list[ScoredOutput] = []
    grounding_passages: dict[tuple[str, int], list[str]] = {}
    to_score: list[tuple[str, HeldOutItem, str, list[str], VariantOutput | None]] = []
    for output in outputs:
        item = by_doc[output.document_id]
        passages = output.passages or runner.retrieved(item.document_id)
        to_score.append((output.variant, item, output.text, passages, output))
    for item in items:
        to_score.append((REFERENCE, item, item.reference, runner.retrieved(item.document_id), None))
    for done, (variant, item, text, passages, output) in enumerate(to_score, 1):
        scores, reasons = await asyncio.to_thread(scorers.score, text, item, passages)
        grounding_passages[(variant, item.document_id)] = passages
        scored.append(
            ScoredOutput(
                variant=variant,
                document_id=item.document_id,
                instruction=item.instruction,
                text=text,
                words=len(text.split()),
                passages=list(passages),
                scores=scores,
                reasons=reasons,
                seconds=output.seconds if output else None,
                revisions=output.revisions if output else None,
                error=output.error if output else None,
            )
        )
        progress("scoring", done, len(to_score))
    timings["score"] = time.perf_counter() - start

    groups = [*options.variants, REFERENCE]
    summary = summarize(scored, groups)
    report = EvalReport(
        author=author.name,
        created_at=datetime.now(UTC),
        adapter_version=adapter.version,
        adapter_path=adapter.path,
        adapter_params=adapter.params or {},
        base_model=settings.base_model,
        data_source=data.source,
        variants=list(options.variants),
        items=items,
        outputs=scored,
        means={g: {m: s.mean for m, s in summary[g].items()} for g in groups},
        summary=summary,
        perplexity=None,
        classifier={
            **scorers.classifier.info.model_dump(),
            "generic_source": generic_source,
            "author_train_texts": len(data.train_texts),
            "generic_texts": len(generic_texts),
        },
        generic_source=generic_source,
        settings={
            "max_new_tokens": runner.max_new_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
            "retrieve_k": runner.retrieve_k,
            "max_revisions": settings.agent.max_revisions,
            "style_threshold": settings.agent.style_threshold,
            "grounding_threshold": settings.agent.grounding_threshold,
        },
        timings_s=timings,
    )
    return report, scorers, grounding_passages


def evaluate(
    ingestion: IngestionDeps,
    author_name: str,
    options: EvalOptions | None = None,
    out_dir: Path | None = None,
    progress: ProgressFn = no_progress,
) -> EvalReport:
    """The whole `twin eval`: checks, generation on the Ray Serve model, scoring, perplexity, files, Opik."""
    import time

    options = options or EvalOptions()
    settings = ingestion.settings
    author, adapter = require_adapter(ingestion.store, author_name)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = out_dir or settings.data_dir / "reports" / author_folder(author) / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load_held_out(ingestion.store, settings, author, adapter, out_dir)

    with model_client(settings) as model:
        report, scorers, passages = asyncio.run(run_eval(ingestion, author, adapter, model, data, options, progress))

    start = time.perf_counter()
    progress("perplexity", 0, 1)
    report.perplexity = held_out_perplexity(settings, adapter, data)
    progress("perplexity", 1, 1)
    report.timings_s["perplexity"] = time.perf_counter() - start

    if options.opik if options.opik is not None else settings.opik_enabled:
        progress("opik", 0, 1)
        try:
            report.opik = log_opik_experiments(settings, report, scorers, passages)
        except Exception as exc:  # noqa: BLE001 - the report stands without the experiment
            report.opik = {"error": f"{type(exc).__name__}: {exc}"}
        progress("opik", 1, 1)

    report.out_dir = out_dir
    write_report(report, out_dir)
    return report


def evaluate_author(
    settings: Settings,
    author_name: str,
    options: EvalOptions | None = None,
    out_dir: Path | None = None,
    progress: ProgressFn = no_progress,
) -> EvalReport:
    """`evaluate` with the stores opened here (for scripts; the CLI opens them through its context)."""
    from ingestion.pipeline import IngestionDeps
    from twin.store import DocumentStore
    from twin.vectors import Embedder, VectorStore

    settings.ensure_dirs()
    store = DocumentStore.from_url(settings.resolved_database_url)
    try:
        vectors = VectorStore(settings, Embedder(settings))
        try:
            ingestion = IngestionDeps(settings=settings, store=store, vectors=vectors)
            return evaluate(ingestion, author_name, options, out_dir, progress)
        finally:
            vectors.close()
    finally:
        store.close()


__all__ = [
    "METRICS",
    "REFERENCE",
    "VARIANT_LABELS",
    "EvalOptions",
    "EvalReport",
    "Headline",
    "evaluate",
    "evaluate_author",
    "headline",
    "require_adapter",
    "run_eval",
]
