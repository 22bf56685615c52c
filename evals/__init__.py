"""Metrics for drafts: style, stylometry, grounding, platform rules, privacy and copying.

``score_draft`` runs them all and returns :class:`DraftScores` with reasons a reviser can act on; the
Opik ``BaseMetric`` classes live in :mod:`evals.opik_metrics` (imported lazily: ``opik`` is slow to
import and most callers do not need it). Held-out perplexity is training's (`training.perplexity`):
the same answer tokens SFT learns. The evaluation harness that runs the agent (`evals.report`,
`evals.variants`) sits above the agent; the metrics here import no stage package.
"""

from __future__ import annotations

from typing import Any

from evals.grounding import GroundingResult, SentenceSupport, check_grounding
from evals.privacy import (
    CopyDetector,
    CopyResult,
    PrivacyResult,
    check_privacy,
    find_emails,
    find_phone_numbers,
)
from evals.rules import (
    PLATFORM_LIMITS,
    RulesResult,
    check_platform_rules,
    looks_truncated,
    repeated_ngram_ratio,
    split_thread,
)
from evals.scoring import DraftScores, Thresholds, score_draft
from evals.style import (
    StyleClassifier,
    StyleProfile,
    StylometryResult,
    generic_texts_from,
    stylometric_distance,
)
from evals.text import split_sentences

_OPIK_METRICS = (
    "StyleMetric",
    "StylometryMetric",
    "GroundingMetric",
    "PlatformRulesMetric",
    "PrivacyMetric",
    "CopyingMetric",
    "build_metrics",
)

__all__ = [
    "PLATFORM_LIMITS",
    "CopyDetector",
    "CopyResult",
    "DraftScores",
    "GroundingResult",
    "PrivacyResult",
    "RulesResult",
    "SentenceSupport",
    "StyleClassifier",
    "StyleProfile",
    "StylometryResult",
    "Thresholds",
    "check_grounding",
    "check_platform_rules",
    "check_privacy",
    "find_emails",
    "find_phone_numbers",
    "generic_texts_from",
    "looks_truncated",
    "repeated_ngram_ratio",
    "score_draft",
    "split_sentences",
    "split_thread",
    "stylometric_distance",
    *_OPIK_METRICS,
]


def __getattr__(name: str) -> Any:
    if name in _OPIK_METRICS:
        from evals import opik_metrics

        return getattr(opik_metrics, name)
    raise AttributeError(f"module 'evals' has no attribute {name!r}")
