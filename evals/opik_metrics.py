"""The metrics as Opik ``BaseMetric`` classes, for ``opik.evaluate``/``evaluate_on_dict_items`` and traces.

Each ``score(output=..., ...)`` returns an ``opik.evaluation.metrics.score_result.ScoreResult`` whose
value is in [0, 1], higher is better, with the reason a reviser would read and details in ``metadata``.

``track`` defaults to False: a tracked metric logs a span for every call, which is only wanted when an
Opik server is configured (``Settings.opik_enabled``); pass ``track=True`` then. Scoring itself never
needs a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

from opik.evaluation.metrics.base_metric import BaseMetric
from opik.evaluation.metrics.score_result import ScoreResult

from evals.grounding import Embed, check_grounding
from evals.privacy import CopyDetector, check_privacy
from evals.rules import check_platform_rules
from evals.style import StyleClassifier, StyleProfile


class StyleMetric(BaseMetric):
    """P(author | output) from the author's :class:`StyleClassifier`."""

    def __init__(
        self,
        classifier: StyleClassifier,
        name: str = "style",
        track: bool = False,
        project_name: str | None = None,
    ) -> None:
        super().__init__(name=name, track=track, project_name=project_name)
        self.classifier = classifier

    def score(self, output: str, **ignored_kwargs: Any) -> ScoreResult:
        value = self.classifier.score(output)
        return ScoreResult(name=self.name, value=value, reason=f"P(author | text) = {value:.2f}")


class StylometryMetric(BaseMetric):
    """Closeness to the author's :class:`StyleProfile`: 1 - stylometric distance."""

    def __init__(
        self,
        profile: StyleProfile,
        name: str = "stylometry",
        track: bool = False,
        project_name: str | None = None,
    ) -> None:
        super().__init__(name=name, track=track, project_name=project_name)
        self.profile = profile

    def score(self, output: str, **ignored_kwargs: Any) -> ScoreResult:
        result = self.profile.compare(output)
        notes = result.describe()
        return ScoreResult(
            name=self.name,
            value=1.0 - result.distance,
            reason="; ".join(notes) if notes else "close to the author's profile",
            metadata={
                "distance": result.distance,
                "scalar_distance": result.scalar_distance,
                "function_word_distance": result.function_word_distance,
            },
        )


class GroundingMetric(BaseMetric):
    """Supported fraction of the output's sentences, given the ``context`` passages."""

    def __init__(
        self,
        embed: Embed | None = None,
        name: str = "grounding",
        track: bool = False,
        project_name: str | None = None,
    ) -> None:
        super().__init__(name=name, track=track, project_name=project_name)
        self.embed = embed

    def score(self, output: str, context: Sequence[str] | str = (), **ignored_kwargs: Any) -> ScoreResult:
        passages = [context] if isinstance(context, str) else list(context)
        result = check_grounding(output, passages, self.embed)
        notes = result.describe()
        return ScoreResult(
            name=self.name,
            value=result.score,
            reason=" | ".join(notes) if notes else "every sentence is supported by the context",
            metadata={"unsupported": result.unsupported},
        )


class PlatformRulesMetric(BaseMetric):
    """Fraction of the platform's rules kept; ``platform`` per item or fixed at construction."""

    def __init__(
        self,
        platform: str | Enum | None = None,
        name: str = "platform_rules",
        track: bool = False,
        project_name: str | None = None,
    ) -> None:
        super().__init__(name=name, track=track, project_name=project_name)
        self.platform = platform

    def score(self, output: str, platform: str | Enum | None = None, **ignored_kwargs: Any) -> ScoreResult:
        chosen = platform or self.platform
        if chosen is None:
            raise ValueError("PlatformRulesMetric needs a platform (constructor or dataset item)")
        result = check_platform_rules(output, chosen)
        return ScoreResult(
            name=self.name,
            value=result.score,
            reason="; ".join(result.violations) if result.violations else "all rules kept",
            metadata={"violations": result.violations},
        )


class PrivacyMetric(BaseMetric):
    """1.0 when the output holds no email address or phone number, else 0.0."""

    def __init__(self, name: str = "privacy", track: bool = False, project_name: str | None = None) -> None:
        super().__init__(name=name, track=track, project_name=project_name)

    def score(self, output: str, **ignored_kwargs: Any) -> ScoreResult:
        result = check_privacy(output)
        notes = result.describe()
        return ScoreResult(
            name=self.name,
            value=result.score,
            reason=notes[0] if notes else "no contact details",
            metadata={"emails": result.emails, "phones": result.phones},
        )


class CopyingMetric(BaseMetric):
    """1 - the share of the output's word n-grams found in old posts (0 when a long run is copied)."""

    def __init__(
        self,
        detector: CopyDetector,
        name: str = "copying",
        track: bool = False,
        project_name: str | None = None,
    ) -> None:
        super().__init__(name=name, track=track, project_name=project_name)
        self.detector = detector

    def score(self, output: str, **ignored_kwargs: Any) -> ScoreResult:
        result = self.detector.score(output)
        notes = result.describe()
        return ScoreResult(
            name=self.name,
            value=result.score,
            reason=notes[0] if notes else f"{result.copied_fraction:.0%} of word n-grams seen before",
            metadata={
                "longest_copied_run": result.longest_copied_run,
                "copied_fraction": result.copied_fraction,
                "flagged": result.flagged,
            },
        )


def build_metrics(
    *,
    style: StyleClassifier | None = None,
    profile: StyleProfile | None = None,
    copy_detector: CopyDetector | None = None,
    embed: Embed | None = None,
    platform: str | Enum | None = None,
    track: bool = False,
) -> list[BaseMetric]:
    """Every metric whose inputs are available: grounding, rules and privacy always; the others when given."""
    metrics: list[BaseMetric] = []
    if style is not None:
        metrics.append(StyleMetric(style, track=track))
    if profile is not None:
        metrics.append(StylometryMetric(profile, track=track))
    metrics.append(GroundingMetric(embed, track=track))
    metrics.append(PlatformRulesMetric(platform, track=track))
    metrics.append(PrivacyMetric(track=track))
    if copy_detector is not None:
        metrics.append(CopyingMetric(copy_detector, track=track))
    return metrics
