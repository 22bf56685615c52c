"""Scoring the variants' outputs: scorers fitted on the TRAIN documents only, summaries, the headline, and
held-out perplexity (base vs adapter)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from evals.report.schemas import METRICS, EvalReport, Headline, MetricSummary, PerplexitySummary, ScoredOutput
from evals.variants import (
    HeldOutData,
    HeldOutItem,
)
from twin.domain import Adapter, TwinError

if TYPE_CHECKING:
    from evals.privacy import CopyDetector
    from evals.scoring import Thresholds
    from evals.style import StyleClassifier, StyleProfile
    from twin.settings import Settings


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
