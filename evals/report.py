"""`twin eval AUTHOR`: write with five variants on the author's held-out documents, score, report.

    report = evaluate(ingestion, "brandur", EvalOptions(limit=10), out_dir)    # what the CLI runs
    report = evaluate_author(settings, "brandur", EvalOptions(limit=10))      # opens the stores itself

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

import asyncio
import math
import statistics
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from evals.variants import (
    VARIANT_LABELS,
    VARIANTS,
    HeldOutData,
    HeldOutItem,
    Variant,
    VariantOutput,
    VariantRunner,
    load_held_out,
)
from twin.domain import Adapter, Author, NotFound, TwinError, author_folder

if TYPE_CHECKING:
    from evals.privacy import CopyDetector
    from evals.scoring import Thresholds
    from evals.style import StyleClassifier, StyleProfile
    from ingestion.pipeline import IngestionDeps
    from twin.settings import Settings
    from twin.store import DocumentStore

METRICS: tuple[str, ...] = ("style", "stylometry", "grounding", "rules", "privacy", "copying", "overall", "passed")
METRIC_LABELS: dict[str, str] = {
    "style": "style P(author)",
    "stylometry": "stylometry (1 - distance)",
    "grounding": "grounding",
    "rules": "platform rules",
    "privacy": "privacy",
    "copying": "copying (1 - copied)",
    "overall": "overall",
    "passed": "passed",
}
REFERENCE = "reference"
"""The author's own held-out text, scored like a variant: the ceiling the twin aims at."""

ProgressFn = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


class EvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int | None = Field(default=None, ge=1)
    """Held-out documents to evaluate (default: all of the test split)."""
    variants: list[Variant] = Field(default_factory=lambda: list(VARIANTS))
    retrieve_k: int | None = None
    """Passages in the retrieval variants' prompts; default ``settings.agent.retrieve_k``."""
    max_new_tokens: int | None = None
    """Default ``settings.serve.max_new_tokens`` (what the agent uses too)."""
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0
    generic_samples: int = 32
    """Base-model answers generated as the generic voice when the adapter has no DPO data."""
    agent_concurrency: int = 2
    opik: bool | None = None
    """Log an Opik experiment; default: when Opik is configured."""


class ScoredOutput(BaseModel):
    variant: str
    document_id: int
    instruction: str
    text: str
    words: int
    passages: list[str] = Field(default_factory=list)
    """What grounding was checked against (what the variant saw, or the instruction's retrieved passages)."""
    scores: dict[str, float | None]
    reasons: list[str]
    seconds: float | None = None
    revisions: int | None = None
    error: str | None = None


class MetricSummary(BaseModel):
    mean: float | None
    std: float | None
    n: int


class PerplexitySummary(BaseModel):
    base: float
    adapter: float
    ratio: float
    source: str
    """``adapter_metrics`` (from training) or ``computed`` (here, on the test split)."""
    examples: int | None = None


class Headline(BaseModel):
    """The number that matters: the full agent against the base model."""

    agent_style: float | None
    base_style: float | None
    agent_grounding: float | None
    base_grounding: float | None
    style_beats_base: bool
    grounding_not_worse: bool
    verdict: str


class EvalReport(BaseModel):
    author: str
    created_at: datetime
    adapter_version: int
    adapter_path: str
    adapter_params: dict[str, Any]
    base_model: str
    data_source: str
    variants: list[str]
    items: list[HeldOutItem]
    outputs: list[ScoredOutput]
    means: dict[str, dict[str, float | None]]
    """variant -> metric -> mean (the report's table); ``reference`` is the author's own held-out text."""
    summary: dict[str, dict[str, MetricSummary]]
    perplexity: PerplexitySummary | None
    classifier: dict[str, Any]
    generic_source: str
    settings: dict[str, Any]
    timings_s: dict[str, float]
    opik: dict[str, Any] = Field(default_factory=dict)
    out_dir: Path | None = None
    files: dict[str, str] = Field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- checks
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


# ------------------------------------------------------------------------------------------------ model
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


# ---------------------------------------------------------------------------------------------- scoring
class Scorers:
    """Everything the metrics need, fitted on the author's TRAIN split only."""

    def __init__(
        self,
        classifier: StyleClassifier,
        profile: StyleProfile,
        copy_detector: CopyDetector,
        embed: Callable[[Sequence[str]], list[list[float]]] | None,
        thresholds: Thresholds,
    ) -> None:
        self.classifier = classifier
        self.profile = profile
        self.copy_detector = copy_detector
        self.embed = embed
        self.thresholds = thresholds

    @classmethod
    def fit(
        cls, data: HeldOutData, generic_texts: Sequence[str], settings: Settings, embed: Any, seed: int
    ) -> Scorers:
        from evals.privacy import CopyDetector
        from evals.scoring import Thresholds
        from evals.style import StyleClassifier, StyleProfile

        try:
            classifier = StyleClassifier.fit(data.train_texts, generic_texts, seed=seed)
        except ValueError as exc:
            raise TwinError(f"Cannot train the style classifier: {exc}") from exc
        return cls(
            classifier=classifier,
            profile=StyleProfile.from_texts(data.train_texts),
            copy_detector=CopyDetector(data.train_texts),
            embed=embed,
            thresholds=Thresholds.from_agent_settings(settings.agent),
        )

    def score(self, text: str, item: HeldOutItem, passages: Sequence[str]) -> tuple[dict[str, float | None], list[str]]:
        from evals.scoring import score_draft

        result = score_draft(
            text,
            item.platform,
            style=self.classifier,
            profile=self.profile,
            passages=passages,
            copy_detector=self.copy_detector,
            embed=self.embed,
            thresholds=self.thresholds,
        )
        scores: dict[str, float | None] = {name: getattr(result, name) for name in METRICS if name != "passed"}
        scores["passed"] = 1.0 if result.passed else 0.0
        return scores, result.reasons


def summarize(outputs: Sequence[ScoredOutput], groups: Sequence[str]) -> dict[str, dict[str, MetricSummary]]:
    summary: dict[str, dict[str, MetricSummary]] = {}
    for group in groups:
        rows = [o for o in outputs if o.variant == group]
        summary[group] = {}
        for metric in (*METRICS, "words"):
            values = [
                float(o.words) if metric == "words" else o.scores.get(metric)
                for o in rows
            ]
            present = [v for v in values if v is not None and not math.isnan(v)]
            summary[group][metric] = MetricSummary(
                mean=statistics.fmean(present) if present else None,
                std=statistics.pstdev(present) if len(present) > 1 else (0.0 if present else None),
                n=len(present),
            )
    return summary


def headline(report: EvalReport) -> Headline:
    agent = report.means.get("agent", {})
    base = report.means.get("base", {})
    agent_style, base_style = agent.get("style"), base.get("style")
    agent_grounding, base_grounding = agent.get("grounding"), base.get("grounding")
    style_beats = agent_style is not None and base_style is not None and agent_style > base_style
    grounding_ok = (
        agent_grounding is not None and base_grounding is not None and agent_grounding >= base_grounding - 1e-9
    )
    if agent_style is None or base_style is None:
        verdict = "not measured: run with both the base and agent variants"
    elif style_beats and grounding_ok:
        verdict = "the full agent sounds more like the author than the base model, and is at least as grounded"
    elif style_beats:
        verdict = "the full agent sounds more like the author than the base model, but is less grounded"
    else:
        verdict = "the full agent does NOT sound more like the author than the base model"
    return Headline(
        agent_style=agent_style,
        base_style=base_style,
        agent_grounding=agent_grounding,
        base_grounding=base_grounding,
        style_beats_base=style_beats,
        grounding_not_worse=grounding_ok,
        verdict=verdict,
    )


# ------------------------------------------------------------------------------------------- perplexity
def held_out_perplexity(
    settings: Settings, adapter: Adapter, data: HeldOutData
) -> PerplexitySummary | None:
    """From the adapter's registry metrics (computed by training on the same test split), else computed here."""
    metrics = adapter.metrics or {}
    base, tuned = metrics.get("perplexity_base"), metrics.get("perplexity_adapter")
    if isinstance(base, int | float) and isinstance(tuned, int | float) and base > 0:
        return PerplexitySummary(
            base=float(base), adapter=float(tuned), ratio=float(tuned) / float(base), source="adapter_metrics",
            examples=metrics.get("perplexity_examples"),
        )
    if not data.test_examples:
        return None
    from training.perplexity import base_and_adapter_perplexity
    from twin.models import resolve_base_model

    examples = data.test_examples[: settings.train.max_eval_examples]
    max_length = int((adapter.params or {}).get("max_length", settings.train.max_length))
    result = base_and_adapter_perplexity(resolve_base_model(settings), adapter.path, examples, max_length)
    return PerplexitySummary(
        base=result.base, adapter=result.adapter, ratio=result.ratio, source="computed", examples=result.examples
    )


# ------------------------------------------------------------------------------------------------- opik
def log_opik_experiments(
    settings: Settings, report: EvalReport, scorers: Scorers, passages: dict[tuple[str, int], list[str]]
) -> dict[str, Any]:
    """One Opik experiment per variant over a dataset of the held-out instructions (needs an Opik server)."""
    import opik

    from evals.opik_metrics import build_metrics

    client = opik.Opik(project_name=settings.opik_project, host=settings.opik_url, api_key=settings.opik_api_key)
    dataset = client.get_or_create_dataset(name=f"twin-eval-{report.author}")
    dataset.insert(
        [
            {"input": item.instruction, "document_id": item.document_id, "platform": item.platform.value}
            for item in report.items
        ]
    )
    by_key = {(o.variant, o.document_id): o for o in report.outputs}
    stamp = report.created_at.strftime("%Y%m%d-%H%M%S")
    experiments: list[str] = []
    for variant in report.variants:

        def task(item: dict[str, Any], variant: str = variant) -> dict[str, Any]:
            key = (variant, int(item["document_id"]))
            output = by_key.get(key)
            return {
                "output": output.text if output else "",
                "context": passages.get(key, []),
                "platform": item.get("platform"),
            }

        name = f"{report.author}-{variant}-{stamp}"
        opik.evaluate(
            dataset=dataset,
            task=task,
            scoring_metrics=build_metrics(
                style=scorers.classifier, profile=scorers.profile, copy_detector=scorers.copy_detector,
                embed=scorers.embed,
            ),
            experiment_name=name,
            project_name=settings.opik_project,
            experiment_config={
                "author": report.author, "variant": variant, "adapter_version": report.adapter_version,
                "base_model": report.base_model,
            },
            verbose=0,
            task_threads=1,
        )
        experiments.append(name)
    client.flush()
    return {"dataset": f"twin-eval-{report.author}", "experiments": experiments}


# ------------------------------------------------------------------------------------------------ files
def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _label(group: str) -> str:
    return VARIANT_LABELS.get(group, "author's own held-out text" if group == REFERENCE else group)


def render_markdown(report: EvalReport, plots: dict[str, str]) -> str:
    top = headline(report)
    groups = [*report.variants, REFERENCE]
    lines = [
        f"# Twin evaluation: {report.author}",
        "",
        f"- created: {report.created_at:%Y-%m-%d %H:%M} UTC",
        f"- adapter: v{report.adapter_version} ({report.adapter_path}) on base model `{report.base_model}`",
        f"- held-out documents: {len(report.items)} (test split, {report.data_source.replace('_', ' ')})",
        f"- style classifier: char n-gram TF-IDF + logistic regression, trained on "
        f"{report.classifier.get('author_passages')} passages of the author's TRAIN documents vs "
        f"{report.classifier.get('generic_passages')} generic ones ({report.generic_source.replace('_', ' ')})",
        f"- generation: max {report.settings['max_new_tokens']} new tokens, temperature {report.settings['temperature']}, "
        f"top-p {report.settings['top_p']}, {report.settings['retrieve_k']} retrieved passages; agent: at most "
        f"{report.settings['max_revisions']} revisions",
        "",
        "## The number that matters",
        "",
        f"Full agent vs base model: style P(author) **{_fmt(top.agent_style)}** vs {_fmt(top.base_style)}; "
        f"grounding **{_fmt(top.agent_grounding)}** vs {_fmt(top.base_grounding)}. Verdict: {top.verdict}.",
        "",
        "## Mean score per variant",
        "",
        "All scores are in [0, 1], higher is better; `passed` is the share of outputs that pass every threshold. "
        "The last row scores the author's own held-out text with the same metrics.",
        "",
        "| variant | " + " | ".join(METRIC_LABELS[m] for m in METRICS) + " | words | n |",
        "|---|" + "---:|" * (len(METRICS) + 2),
    ]
    for group in groups:
        summary = report.summary[group]
        lines.append(
            f"| {_label(group)} | "
            + " | ".join(_fmt(summary[m].mean) for m in METRICS)
            + f" | {_fmt(summary['words'].mean, 0)} | {summary['style'].n} |"
        )
    lines += ["", "## Held-out perplexity", ""]
    if report.perplexity:
        p = report.perplexity
        lines += [
            "| model | perplexity |",
            "|---|---:|",
            f"| base model | {p.base:.2f} |",
            f"| adapter | {p.adapter:.2f} |",
            "",
            f"Ratio adapter / base: **{p.ratio:.3f}** (below 1: the adapter predicts the author's unseen text "
            f"better; {'from the adapter registry' if p.source == 'adapter_metrics' else 'computed here on the test split'}).",
        ]
    else:
        lines.append("Not available.")
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{name}]({path})" for name, path in plots.items()]
    errors = [o for o in report.outputs if o.error]
    if errors:
        lines += ["", "## Errors", ""]
        lines += [f"- {_label(o.variant)}, document {o.document_id}: {o.error}" for o in errors]
    if report.opik:
        lines += ["", "## Opik", ""]
        if "error" in report.opik:
            lines.append(f"Logging the experiment failed: {report.opik['error']}")
        else:
            lines.append(
                f"Dataset `{report.opik['dataset']}`, experiments: "
                + ", ".join(f"`{name}`" for name in report.opik["experiments"])
            )
    lines += ["", "## Per document", ""]
    for item in report.items:
        lines += [f"### Document {item.document_id}", "", f"Instruction: {item.instruction}", ""]
        lines += ["| variant | style | grounding | words | first words |", "|---|---:|---:|---:|---|"]
        for output in (o for o in report.outputs if o.document_id == item.document_id):
            snippet = " ".join(output.text.split()[:14]).replace("|", "\\|")
            lines.append(
                f"| {_label(output.variant)} | {_fmt(output.scores.get('style'), 2)} | "
                f"{_fmt(output.scores.get('grounding'), 2)} | {output.words} | {snippet} |"
            )
        lines.append("")
    lines += [
        "## How to read this",
        "",
        "- *style*: P(author | text) from the classifier trained on the author's training documents against the "
        "base model's generic voice; the held-out reference row shows what the author's own unseen text gets.",
        "- *grounding*: share of sentences supported by the passages the variant saw (the base and adapter "
        "variants saw none and are checked against the passages retrieved for the same instruction).",
        "- *copying*: 1 - share of word 8-grams found in the training documents (0 when a 12-word run is copied).",
        "- Held-out documents are hidden from every variant (retrieval, the agent's style card and examples).",
        "",
    ]
    return "\n".join(lines)


def plot_report(report: EvalReport, out_dir: Path) -> dict[str, str]:
    """PNG plots (matplotlib's object API with the Agg canvas: no pyplot, no global backend state)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = [*report.variants, REFERENCE]
    files: dict[str, str] = {}

    metrics = [m for m in METRICS if m != "passed"]
    fig = Figure(figsize=(11, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / len(groups)
    x = np.arange(len(metrics))
    for i, group in enumerate(groups):
        means = [report.summary[group][m].mean for m in metrics]
        stds = [report.summary[group][m].std for m in metrics]
        ax.bar(
            x + (i - (len(groups) - 1) / 2) * width,
            [v if v is not None else 0.0 for v in means],
            width,
            yerr=[s if s is not None else 0.0 for s in stds],
            capsize=2,
            label=_label(group),
            hatch="//" if group == REFERENCE else None,
            alpha=0.9,
        )
    ax.set_xticks(x, [METRIC_LABELS[m] for m in metrics], rotation=15)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean score (higher is better)")
    ax.set_title(f"{report.author}: mean score per metric and variant ({len(report.items)} held-out documents)")
    fig.legend(loc="outside lower center", ncols=len(groups), fontsize=8)
    fig.savefig(out_dir / "scores_by_variant.png", dpi=110)
    files["scores by variant"] = "scores_by_variant.png"

    fig = Figure(figsize=(9, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    data = [
        [o.scores["style"] for o in report.outputs if o.variant == group and o.scores.get("style") is not None]
        for group in groups
    ]
    ax.boxplot([d or [0.0] for d in data], tick_labels=[_label(g) for g in groups], showmeans=True)
    for i, values in enumerate(data, 1):
        ax.scatter(np.full(len(values), i) + np.linspace(-0.12, 0.12, len(values)), values, s=10, alpha=0.6)
    ax.axhline(report.settings["style_threshold"], linestyle="--", linewidth=1, color="grey")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("P(author | text)")
    ax.set_title("Style score per output")
    ax.tick_params(axis="x", labelrotation=15)
    fig.savefig(out_dir / "style_distribution.png", dpi=110)
    files["style distribution"] = "style_distribution.png"

    if report.perplexity:
        fig = Figure(figsize=(5, 4), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        values = [report.perplexity.base, report.perplexity.adapter]
        bars = ax.bar(["base model", f"adapter v{report.adapter_version}"], values, color=["#999999", "#3b7dd8"])
        ax.bar_label(bars, fmt="%.2f")
        ax.set_ylabel("perplexity of held-out text (lower is better)")
        ax.set_title(f"Held-out perplexity (ratio {report.perplexity.ratio:.3f})")
        fig.savefig(out_dir / "perplexity.png", dpi=110)
        files["held-out perplexity"] = "perplexity.png"
    return files


def write_report(report: EvalReport, out_dir: Path) -> dict[str, Path]:
    """``report.md``, ``report.json`` and the PNG plots in ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = plot_report(report, out_dir)
    report.out_dir = out_dir
    report.files = {"report.md": "report.md", "report.json": "report.json", **{v: v for v in plots.values()}}
    (out_dir / "report.md").write_text(render_markdown(report, plots), encoding="utf-8")
    (out_dir / "report.json").write_text(
        report.model_dump_json(indent=2) + "\n", encoding="utf-8"
    )
    return {name: out_dir / name for name in report.files}


# ---------------------------------------------------------------------------------------------- the run
async def run_eval(
    ingestion: IngestionDeps,
    author: Author,
    adapter: Adapter,
    model: Any,
    data: HeldOutData,
    options: EvalOptions,
    progress: ProgressFn = _no_progress,
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
    progress: ProgressFn = _no_progress,
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
    progress: ProgressFn = _no_progress,
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
