"""Style metrics on real authors: the classifier and the stylometric profile must tell two people apart
on posts they were not built from."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from conftest import corpus_texts
from evals import StyleClassifier, StyleProfile, generic_texts_from, stylometric_distance


def split(texts: list[str], n_train: int, n_test: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Split by document, so held-out posts are unseen."""
    shuffled = sorted(texts)
    random.Random(seed).shuffle(shuffled)
    return shuffled[:n_train], shuffled[n_train : n_train + n_test]


@pytest.fixture(scope="module")
def brandur_simon() -> dict[str, tuple[list[str], list[str]]]:
    return {
        "brandur": split(corpus_texts("brandur_leach_atoms"), 120, 40),
        "simon": split(corpus_texts("simon_willison_til"), 120, 40),
    }


def test_classifier_tells_authors_apart_on_held_out_posts(brandur_simon, tmp_path):
    (a_train, a_test), (b_train, b_test) = brandur_simon["brandur"], brandur_simon["simon"]
    classifier = StyleClassifier.fit(a_train, b_train)

    author_scores = classifier.score_many(a_test)
    other_scores = classifier.score_many(b_test)
    labels = [1] * len(author_scores) + [0] * len(other_scores)
    scores = author_scores + other_scores
    accuracy = np.mean([(s > 0.5) == bool(y) for s, y in zip(scores, labels, strict=True)])
    assert roc_auc_score(labels, scores) >= 0.9
    assert accuracy >= 0.85
    assert all(0.0 <= s <= 1.0 for s in scores)

    reloaded = StyleClassifier.load(classifier.save(tmp_path / "brandur.joblib"))
    assert reloaded.info == classifier.info
    assert reloaded.score(a_test[0]) == pytest.approx(classifier.score(a_test[0]))


def test_classifier_in_the_other_direction_and_long_form():
    chris_train, chris_test = split(corpus_texts("chris_wellons"), 30, 20)
    josh_train, josh_test = split(corpus_texts("josh_branchaud_til"), 100, 20)
    classifier = StyleClassifier.fit(josh_train, chris_train)
    labels = [1] * len(josh_test) + [0] * len(chris_test)
    assert roc_auc_score(labels, classifier.score_many(josh_test + chris_test)) >= 0.9


def test_fit_refuses_too_little_text():
    with pytest.raises(ValueError, match="at least 2 passages"):
        StyleClassifier.fit(["One short post."], ["Another text.", "And one more."])


def test_generic_texts_from_balances_sources_and_excludes_the_author():
    simon = corpus_texts("simon_willison_til")[:30]
    josh = corpus_texts("josh_branchaud_til")[:30]
    author = simon[:5]
    chosen = generic_texts_from({"simon": simon, "josh": josh}, exclude=author, limit=20, seed=1)
    assert len(chosen) == 20
    assert not set(chosen) & set(author)
    assert sum(t in josh for t in chosen) == 10  # round-robin over the two sources
    assert chosen == generic_texts_from({"simon": simon, "josh": josh}, exclude=author, limit=20, seed=1)
    with pytest.raises(ValueError, match="no generic texts"):
        generic_texts_from([], exclude=author)


@pytest.mark.parametrize(
    ("author", "other"),
    [
        ("brandur_leach_atoms", "simon_willison_til"),
        ("simon_willison_til", "brandur_leach_atoms"),
        ("chris_wellons", "josh_branchaud_til"),
        ("josh_branchaud_til", "chris_wellons"),
    ],
)
def test_stylometric_distance_is_smaller_for_the_same_author(author, other):
    train, same = split(corpus_texts(author), 100, 40)
    _, different = split(corpus_texts(other), 0, 40)
    profile = StyleProfile.from_texts(train)
    same_distances = [stylometric_distance(profile, t) for t in same]
    other_distances = [stylometric_distance(profile, t) for t in different]
    assert all(0.0 <= d <= 1.0 for d in same_distances + other_distances)
    assert np.mean(same_distances) < np.mean(other_distances)
    labels = [0] * len(same_distances) + [1] * len(other_distances)
    assert roc_auc_score(labels, same_distances + other_distances) >= 0.75


def test_profile_round_trips_and_explains_deviations():
    train, held_out = split(corpus_texts("brandur_leach_atoms"), 100, 20)
    profile = StyleProfile.from_texts(train)
    assert StyleProfile.model_validate_json(profile.model_dump_json()) == profile
    shouting = "Wow!!! Amazing!!! Can you believe it?! 🚀🚀🚀 #growth #hustle #ai #mindset #win!!!"
    result = profile.compare(shouting)
    # Too few words for function-word evidence, so the scalar features carry the difference.
    assert result.scalar_distance > 0.5
    assert result.distance > max(stylometric_distance(profile, t) for t in held_out[:10])
    notes = result.describe()
    assert notes and any("per 100 words" in note for note in notes)
