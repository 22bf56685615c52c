"""score_draft end to end on real authors, and the same metrics through Opik without a server."""

from __future__ import annotations

import random

import pytest

from conftest import corpus_texts
from evals import CopyDetector, DraftScores, StyleClassifier, StyleProfile, Thresholds, score_draft
from evals.rules import looks_truncated


def split(texts: list[str], n_train: int, seed: int = 0) -> tuple[list[str], list[str]]:
    shuffled = sorted(texts)
    random.Random(seed).shuffle(shuffled)
    return shuffled[:n_train], shuffled[n_train:]


@pytest.fixture(scope="module")
def brandur() -> dict:
    """Brandur Leach's twin kit: classifier (vs Simon Willison as the generic voice), profile, copy detector."""
    train, held_out = split(corpus_texts("brandur_leach_atoms"), 100)
    generic, _ = split(corpus_texts("simon_willison_til"), 100)
    plain = [t for t in held_out if "http" not in t and "](" not in t and "```" not in t]
    return {
        "style": StyleClassifier.fit(train, generic),
        "profile": StyleProfile.from_texts(train),
        "copy_detector": CopyDetector(train),
        "held_out": [t for t in plain if 120 < len(t) <= 280 and not looks_truncated(t)],
        "train": train,
        "generic_held_out": split(corpus_texts("simon_willison_til"), 100)[1][:5],
    }


def kit(brandur: dict) -> dict:
    return {k: brandur[k] for k in ("style", "profile", "copy_detector")}


def test_a_held_out_post_by_the_author_passes(brandur):
    post = brandur["held_out"][0]
    scores = score_draft(post, "x", passages=post.split("\n\n"), **kit(brandur))
    assert isinstance(scores, DraftScores)
    assert scores.passed, scores.reasons
    assert scores.reasons == []
    assert scores.style > 0.5 and scores.grounding == 1.0 and scores.rules == 1.0
    assert scores.privacy == 1.0 and scores.copying > 0.8
    assert 0.0 <= scores.overall <= 1.0


def test_failures_come_back_as_feedback(brandur):
    post = brandur["held_out"][1]
    other_voice = brandur["generic_held_out"][0]
    pasted = " ".join(max(brandur["train"], key=len).split()[:30])
    draft = (
        f"{other_voice}\n\nThis cut our costs by 87% last quarter. Email me at someone.real@fastmail.com.\n\n{pasted}"
    )
    scores = score_draft(draft, "x", passages=[post], **kit(brandur))
    assert not scores.passed
    text = "\n".join(scores.reasons)
    assert scores.style < 0.5 and "Style: P(author)" in text
    assert "87" in text and "Grounding:" in text
    assert any("87%" in s for s in scores.unsupported_sentences)
    assert "Platform rules (x): " in text and "shorten it or split it into a thread" in text
    assert "Privacy: remove personal contact details: someone.real@fastmail.com" in text
    assert "Copying:" in text and scores.copying == 0.0
    assert any(v.startswith("length:") for v in scores.violations)
    good = score_draft(post, "x", passages=[post], **kit(brandur))
    assert good.overall > scores.overall


def test_missing_inputs_are_left_out():
    scores = score_draft("A plain sentence that ends well.", "linkedin")
    assert scores.style is None and scores.stylometry is None and scores.grounding is None
    assert scores.copying is None
    assert scores.passed and scores.overall == 1.0
    strict = score_draft("A plain sentence that ends", "linkedin", thresholds=Thresholds())
    assert not strict.passed and strict.rules < 1.0


def test_thresholds_from_agent_settings():
    from twin.settings import AgentSettings

    thresholds = Thresholds.from_agent_settings(AgentSettings(style_threshold=0.7, grounding_threshold=0.9))
    assert (thresholds.style, thresholds.grounding) == (0.7, 0.9)
    with pytest.raises(ValueError):
        Thresholds(stlye=0.3)


@pytest.fixture
def offline_opik(monkeypatch):
    """Opik with tracking off, no usage analytics, and any client pointed at a closed loopback port."""
    monkeypatch.setenv("OPIK_TRACK_DISABLE", "true")
    monkeypatch.setenv("OPIK_ANALYTICS_ENABLE", "false")
    monkeypatch.setenv("OPIK_URL_OVERRIDE", "http://127.0.0.1:9/api")
    monkeypatch.setenv("OPIK_DEFAULT_FLUSH_TIMEOUT", "1")


def test_opik_metrics_score_offline(brandur, offline_opik):
    import opik
    from opik.evaluation.metrics.base_metric import BaseMetric
    from opik.evaluation.metrics.score_result import ScoreResult

    from evals import GroundingMetric, PlatformRulesMetric, PrivacyMetric, build_metrics

    metrics = build_metrics(**kit(brandur), platform="x")
    assert [m.name for m in metrics] == [
        "style", "stylometry", "grounding", "platform_rules", "privacy", "copying",
    ]
    assert all(isinstance(m, BaseMetric) for m in metrics)
    post = brandur["held_out"][0]
    results = {m.name: m.score(output=post, context=[post]) for m in metrics}
    assert all(isinstance(r, ScoreResult) and 0.0 <= r.value <= 1.0 for r in results.values())
    assert results["style"].value > 0.5 and results["grounding"].value == 1.0

    invented = post + " It now runs 412 times faster."
    grounding = GroundingMetric().score(output=invented, context=post)
    assert grounding.value < 1.0 and "412" in grounding.reason
    assert PrivacyMetric().score(output="call +1 415 555 0132").value == 0.0
    with pytest.raises(ValueError):
        PlatformRulesMetric().score(output=post)

    items = [
        {"input": "write a post", "draft": brandur["held_out"][0], "context": [brandur["held_out"][0]]},
        {"input": "write a post", "draft": brandur["generic_held_out"][1], "context": [brandur["held_out"][0]]},
    ]
    evaluation = opik.evaluate_on_dict_items(
        items=items,
        task=lambda item: {"output": item["draft"]},
        scoring_metrics=metrics,
        scoring_threads=1,
    )
    by_item = [{r.name: r.value for r in t.score_results} for t in evaluation.test_results]
    assert len(by_item) == 2 and all(set(d) == {m.name for m in metrics} for d in by_item)
    author, other = sorted(by_item, key=lambda d: -d["grounding"])
    assert author["style"] > other["style"]
    assert evaluation.aggregate_evaluation_scores()["style"].mean == pytest.approx(
        (author["style"] + other["style"]) / 2
    )
