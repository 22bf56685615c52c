"""One call that scores a draft with every metric and says, in words a reviser can act on, what to fix.

Every score is in [0, 1] and higher is better. A metric whose inputs are missing (no classifier, no
profile, no passages, no copy detector) is ``None`` and left out of ``overall`` and ``passed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from evals.grounding import Embed, check_grounding
from evals.hygiene import HygieneResult, allowed_urls_text, check_hygiene
from evals.privacy import CopyDetector, check_privacy
from evals.rules import check_platform_rules
from evals.style import StyleClassifier, StyleProfile
from evals.voice import VoiceScorer

if TYPE_CHECKING:
    from twin.settings import AgentSettings


class Thresholds(BaseModel):
    """The least each score must reach for a draft to pass (all scores: higher is better)."""

    model_config = ConfigDict(extra="forbid")

    style: float = 0.5
    """P(author | draft) from the style classifier."""
    stylometry: float = 0.75
    """1 - stylometric distance; held-out posts of the development authors average about 0.87."""
    grounding: float = 0.5
    """Supported fraction of sentences."""
    rules: float = 1.0
    """Fraction of platform rules kept (1.0: all of them)."""
    copying: float = 0.8
    """1 - fraction of the draft's 8-grams found in old posts; a copied run of 12+ words fails anyway."""
    topic: float = 0.25
    """Least on-topic score (draft-brief embedding similarity, rescaled; see `score_draft`)."""
    weights: dict[str, float] = {
        "style": 3.0,
        "stylometry": 1.0,
        "grounding": 1.0,
        "topic": 1.0,
        "rules": 1.0,
        "privacy": 1.0,
        "copying": 1.0,
    }
    """Weights of the weighted mean that is ``overall`` (used to pick the best of several drafts)."""

    @classmethod
    def from_agent_settings(cls, agent: AgentSettings) -> Thresholds:
        return cls(style=agent.style_threshold, grounding=agent.grounding_threshold)


class DraftScores(BaseModel):
    style: float | None
    stylometry: float | None
    """Closeness to the author's stylometric profile: 1 - stylometric distance."""
    grounding: float | None
    rules: float
    privacy: float
    """1.0 without email addresses or phone numbers, else 0.0."""
    copying: float | None
    topic: float | None = None
    """How close the draft is to its brief: (cosine(embed(draft), embed(brief)) - 0.1) / 0.4, clipped."""
    hygiene: float
    """1 - (echo + loop rates, + 0.5 for a template placeholder); 0 when the draft is rejected as not a post
    (see `evals.hygiene`)."""
    overall: float
    """Weighted mean of the available scores (see :attr:`Thresholds.weights`)."""
    passed: bool
    rejected: bool = False
    """Not a post (echo, restated title, loop, assistant reply, invented links) or copied: never select it."""
    reasons: list[str]
    """One line per failed check, phrased as feedback for a revision."""
    unsupported_sentences: list[str]
    violations: list[str]


def score_draft(
    text: str,
    platform: str | Enum,
    *,
    style: StyleClassifier | VoiceScorer | None = None,
    profile: StyleProfile | None = None,
    passages: Sequence[str] = (),
    copy_detector: CopyDetector | None = None,
    embed: Embed | None = None,
    thresholds: Thresholds | None = None,
    brief: str = "",
    prompt: str = "",
    max_words: int | None = None,
) -> DraftScores:
    """Score ``text`` written for ``platform``.

    ``passages`` are what the draft may draw facts from (retrieved chunks, the user's links); with
    none, grounding is not measured. ``embed`` adds semantic similarity to the grounding check.
    ``brief`` and ``prompt`` (what the model was shown) let the hygiene check tell a post from an echo;
    ``max_words`` is what the generation budget allows (length rules never ask for more).
    """
    thresholds = thresholds or Thresholds()
    reasons: list[str] = []
    scores: dict[str, float | None] = {}

    if style is not None:
        scores["style"] = style.score(text)
        if scores["style"] < thresholds.style:
            reasons.append(
                f"Style: P(author) = {scores['style']:.2f}, below {thresholds.style:.2f}: the draft does not "
                "sound like the author yet; use their vocabulary, rhythm and punctuation."
            )
    else:
        scores["style"] = None

    if profile is not None:
        comparison = profile.compare(text)
        scores["stylometry"] = 1.0 - comparison.distance
        if scores["stylometry"] < thresholds.stylometry:
            notes = comparison.describe() or ["function-word use differs from the author's"]
            reasons.append(
                f"Stylometry: closeness {scores['stylometry']:.2f}, below {thresholds.stylometry:.2f}: "
                + "; ".join(notes)
                + "."
            )
    else:
        scores["stylometry"] = None

    unsupported: list[str] = []
    if passages:
        grounding = check_grounding(text, passages, embed)
        scores["grounding"] = grounding.score
        unsupported = grounding.unsupported
        if grounding.score < thresholds.grounding:
            reasons.append(
                f"Grounding: {len(unsupported)} of {len(grounding.sentences)} sentences are not supported by "
                "the sources; remove them or say only what the sources say: "
                + " | ".join(grounding.describe())
            )
    else:
        scores["grounding"] = None

    hygiene: HygieneResult = check_hygiene(
        text, brief=brief, prompt_texts=[prompt] if prompt else [], allowed_text=allowed_urls_text(brief, passages)
    )
    reasons.extend(f"Not a post: {problem}." for problem in hygiene.problems)
    if hygiene.placeholders:
        reasons.append("Placeholders: the draft leaves " + ", ".join(dict.fromkeys(hygiene.placeholders))
                       + " to fill in; say the real thing or leave it out.")

    scores["topic"] = None
    if embed is not None and brief.strip() and text.strip():
        import numpy as np

        draft_vector, brief_vector = (np.asarray(v, dtype=np.float64) for v in embed([text, brief]))
        cosine = float(draft_vector @ brief_vector / (np.linalg.norm(draft_vector) * np.linalg.norm(brief_vector)))
        scores["topic"] = min(1.0, max(0.0, (cosine - 0.1) / 0.4))
        if scores["topic"] < thresholds.topic:
            reasons.append(f"Topic: the draft drifts off the brief (similarity {cosine:.2f}).")

    rules = check_platform_rules(text, platform, max_words=max_words)
    scores["rules"] = rules.score
    if rules.score < thresholds.rules:
        name = platform.value if isinstance(platform, Enum) else platform
        reasons.append(f"Platform rules ({name}): " + "; ".join(rules.violations) + ".")

    privacy = check_privacy(text)
    scores["privacy"] = privacy.score
    reasons.extend(f"Privacy: {note}." for note in privacy.describe())

    copy_flagged = False
    if copy_detector is not None:
        copying = copy_detector.score(text)
        scores["copying"] = copying.score
        copy_flagged = copying.flagged
        if copying.flagged:
            reasons.extend(f"Copying: {note}." for note in copying.describe())
        elif copying.score < thresholds.copying:
            reasons.append(
                f"Copying: {copying.copied_fraction:.0%} of the draft's word 8-grams appear in old posts; "
                "write new sentences."
            )
    else:
        scores["copying"] = None

    available = {name: value for name, value in scores.items() if value is not None}
    total_weight = sum(thresholds.weights.get(name, 1.0) for name in available)
    weighted = sum(thresholds.weights.get(name, 1.0) * value for name, value in available.items())
    overall = weighted / total_weight
    minimums = {
        "style": thresholds.style,
        "stylometry": thresholds.stylometry,
        "grounding": thresholds.grounding,
        "rules": thresholds.rules,
        "privacy": 1.0,
        "copying": thresholds.copying,
        "topic": thresholds.topic,
    }
    rejected = hygiene.reject or copy_flagged
    passed = (not rejected and not hygiene.placeholders
              and all(value >= minimums[name] for name, value in available.items()))
    return DraftScores(
        style=scores["style"],
        stylometry=scores["stylometry"],
        grounding=scores["grounding"],
        rules=scores["rules"],
        privacy=scores["privacy"],
        copying=scores["copying"],
        topic=scores["topic"],
        hygiene=hygiene.score,
        overall=overall,
        passed=passed,
        rejected=rejected,
        reasons=reasons,
        unsupported_sentences=unsupported,
        violations=rules.violations,
    )
