"""Does a text sound like the author? Two views: a trained authorship classifier and a stylometric profile.

- :class:`StyleClassifier` is the classic strong baseline for authorship attribution: character n-gram
  TF-IDF (``char_wb``, 2-5) with logistic regression, trained per author on the author's own passages
  against text in a generic voice (in production, the base model's answers to the same instructions).
  ``score(text)`` is P(author | text).
- :class:`StyleProfile` summarises how the author writes (function-word frequencies, sentence and
  paragraph length, punctuation, emoji, hashtag, link, question and first-person rates), and
  :meth:`StyleProfile.compare` / :func:`stylometric_distance` measure how far a text is from it.

Both look at prose: fenced code blocks, inline code and HTML tags are removed first (code is not voice).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from evals.text import (
    EMOJI_RE,
    FUNCTION_WORD_SET,
    FUNCTION_WORDS,
    HASHTAG_RE,
    MARKDOWN_LINK_RE,
    URL_RE,
    count_links,
    lower_words,
    paragraphs,
    split_sentences,
    strip_code,
    words,
)

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

CLASSIFIER_FORMAT_VERSION = 1
AUTHOR_LABEL = 1
GENERIC_LABEL = 0


# --------------------------------------------------------------------------- authorship classifier


class StyleClassifierInfo(BaseModel):
    """What a classifier was trained on; saved with it."""

    format_version: int = CLASSIFIER_FORMAT_VERSION
    author_passages: int
    generic_passages: int
    passage_words: int | None
    ngram_range: tuple[int, int]
    sklearn_version: str


def split_passages(text: str, passage_words: int | None) -> list[str]:
    """Code-free prose of ``text`` cut at paragraph boundaries into pieces of about ``passage_words``.

    Training on passages of draft-like length (rather than whole posts of any length) gives the
    classifier more, comparable samples; ``None`` keeps each text whole.
    """
    prose = strip_code(text).strip()
    if not prose:
        return []
    if passage_words is None:
        return [prose]
    pieces: list[str] = []
    current: list[str] = []
    count = 0
    for block in paragraphs(prose):
        current.append(block)
        count += len(words(block))
        if count >= passage_words:
            pieces.append("\n\n".join(current))
            current, count = [], 0
    if current:
        # A short tail joins the previous piece rather than becoming a tiny sample.
        if pieces and count < passage_words // 3:
            pieces[-1] = pieces[-1] + "\n\n" + "\n\n".join(current)
        else:
            pieces.append("\n\n".join(current))
    return pieces


def generic_texts_from(
    others: Mapping[str, Sequence[str]] | Sequence[str],
    *,
    exclude: Sequence[str] = (),
    limit: int | None = None,
    seed: int = 0,
) -> list[str]:
    """A default generic-voice set built from other texts the caller has (other authors, base-model output).

    ``others`` is either a flat list or a mapping ``source -> texts``; with a mapping, texts are drawn
    round-robin so that no single source dominates. Texts equal to one in ``exclude`` (the author's
    own) and duplicates are dropped; the order is a seeded shuffle; at most ``limit`` are returned.
    Nothing is fetched: without texts from the caller there is no generic voice to learn from.
    """
    if isinstance(others, Mapping):
        sources = {name: list(texts) for name, texts in others.items()}
    else:
        sources = {"texts": list(others)}
    excluded = {t.strip() for t in exclude}
    rng = random.Random(seed)
    queues: list[list[str]] = []
    for name in sorted(sources):
        texts = [t for t in sources[name] if t.strip() and t.strip() not in excluded]
        rng.shuffle(texts)
        queues.append(texts)
    chosen: list[str] = []
    seen: set[str] = set()
    while any(queues) and (limit is None or len(chosen) < limit):
        for queue in queues:
            if not queue or (limit is not None and len(chosen) >= limit):
                continue
            text = queue.pop()
            if text.strip() not in seen:
                seen.add(text.strip())
                chosen.append(text)
    if not chosen:
        raise ValueError(
            "no generic texts: pass the base model's answers to the author's instructions, or other "
            "authors' texts, as the generic voice"
        )
    return chosen


class StyleClassifier:
    """P(author | text) from character n-grams; one per author."""

    def __init__(self, pipeline: Pipeline, info: StyleClassifierInfo) -> None:
        self.pipeline = pipeline
        self.info = info

    @classmethod
    def fit(
        cls,
        author_texts: Sequence[str],
        generic_texts: Sequence[str],
        *,
        passage_words: int | None = 150,
        ngram_range: tuple[int, int] = (2, 5),
        max_features: int = 200_000,
        c: float = 10.0,
        seed: int = 0,
    ) -> StyleClassifier:
        """Train on the author's texts (label 1) against generic-voice texts (label 0).

        Both sides are cut into passages of about ``passage_words`` words; classes are weighted to
        balance, so an author with few posts is not drowned by a large generic set.
        """
        import sklearn
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        author_passages = [p for t in author_texts for p in split_passages(t, passage_words)]
        generic_passages = [p for t in generic_texts for p in split_passages(t, passage_words)]
        if len(author_passages) < 2 or len(generic_passages) < 2:
            raise ValueError(
                f"need at least 2 passages of prose on each side to train a style classifier; got "
                f"{len(author_passages)} from the author and {len(generic_passages)} generic"
            )
        pipeline = Pipeline(
            [
                (
                    "tfidf",
                    TfidfVectorizer(
                        analyzer="char_wb",
                        ngram_range=ngram_range,
                        sublinear_tf=True,
                        min_df=2 if len(author_passages) + len(generic_passages) >= 20 else 1,
                        max_features=max_features,
                        dtype=np.float32,
                    ),
                ),
                (
                    "logreg",
                    LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed),
                ),
            ]
        )
        labels = [AUTHOR_LABEL] * len(author_passages) + [GENERIC_LABEL] * len(generic_passages)
        pipeline.fit(author_passages + generic_passages, labels)
        info = StyleClassifierInfo(
            author_passages=len(author_passages),
            generic_passages=len(generic_passages),
            passage_words=passage_words,
            ngram_range=ngram_range,
            sklearn_version=sklearn.__version__,
        )
        return cls(pipeline, info)

    def score_many(self, texts: Sequence[str]) -> list[float]:
        """P(author | text) for each text."""
        if not texts:
            return []
        author_column = list(self.pipeline.classes_).index(AUTHOR_LABEL)
        probabilities = self.pipeline.predict_proba([strip_code(t) for t in texts])
        return [float(p) for p in probabilities[:, author_column]]

    def score(self, text: str) -> float:
        """P(author | text), in [0, 1]."""
        return self.score_many([text])[0]

    def save(self, path: str | Path) -> Path:
        """Write the fitted pipeline with its info (joblib, the scikit-learn convention)."""
        import joblib

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump({"info": self.info.model_dump(), "pipeline": self.pipeline}, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> StyleClassifier:
        """Read a classifier written by :meth:`save`. Like any pickle, load only files this project wrote."""
        import joblib

        payload: dict[str, Any] = joblib.load(Path(path))
        info = StyleClassifierInfo.model_validate(payload["info"])
        if info.format_version != CLASSIFIER_FORMAT_VERSION:
            raise ValueError(
                f"{path}: classifier format {info.format_version}, expected {CLASSIFIER_FORMAT_VERSION}"
            )
        return cls(payload["pipeline"], info)


# --------------------------------------------------------------------------- stylometry

FIRST_PERSON = frozenset({"i", "me", "my", "mine", "myself", "we", "us", "our", "ours", "ourselves",
                          "i'm", "i've", "i'd", "i'll", "we're", "we've", "we'd", "we'll"})

PUNCTUATION_MARKS: dict[str, tuple[str, ...]] = {
    "comma": (",",),
    "semicolon": (";",),
    "colon": (":",),
    "exclamation": ("!",),
    "question_mark": ("?",),
    "dash": ("—", "–", "--"),
    "parenthesis": ("(",),
    "quote": ('"', "“", "”"),
}

# Smallest spread used for a z-score, per feature: an author who never uses emoji has std 0, and one
# emoji should then count as a clear deviation, not an infinite one.
MIN_SCALE: dict[str, float] = {
    "sentence_words_mean": 2.0,
    "sentence_words_std": 2.0,
    "paragraph_words_mean": 8.0,
    "question_sentence_fraction": 0.05,
    **{f"{name}_per_100_words": 0.5 for name in PUNCTUATION_MARKS},
    "emoji_per_100_words": 0.3,
    "hashtag_per_100_words": 0.3,
    "link_per_100_words": 0.3,
    "first_person_per_100_words": 0.5,
}
FEATURE_DESCRIPTIONS: dict[str, str] = {
    "sentence_words_mean": "words per sentence",
    "sentence_words_std": "spread of sentence length (words)",
    "paragraph_words_mean": "words per paragraph",
    "question_sentence_fraction": "share of sentences that are questions",
    **{f"{name}_per_100_words": f"{name.replace('_', ' ')}s per 100 words" for name in PUNCTUATION_MARKS},
    "emoji_per_100_words": "emoji per 100 words",
    "hashtag_per_100_words": "hashtags per 100 words",
    "link_per_100_words": "links per 100 words",
    "first_person_per_100_words": "first-person words (I, me, my, we...) per 100 words",
}
FUNCTION_WORD_PRIOR_WORDS = 150.0
"""Pseudo-words of the author's own function-word mix added to a text before comparing (see compare)."""
Z_CAP = 5.0
"""Largest z-score one feature contributes, so one wild feature cannot decide the distance alone."""


def _prose_without_links(text: str) -> str:
    return URL_RE.sub(" ", MARKDOWN_LINK_RE.sub(r"\1", text))


def style_features(text: str) -> dict[str, float]:
    """The scalar stylometric features of one text (see :data:`FEATURE_DESCRIPTIONS`)."""
    code_free = strip_code(text)
    prose = _prose_without_links(code_free)
    tokens = words(prose)
    n_words = max(len(tokens), 1)
    per_100 = 100.0 / n_words
    sentences = split_sentences(prose)
    sentence_lengths = [len(words(s)) for s in sentences if words(s)] or [0]
    paragraph_lengths = [len(words(p)) for p in paragraphs(prose) if words(p)] or [0]
    lowered = [w.lower().replace("’", "'") for w in tokens]
    features = {
        "sentence_words_mean": float(np.mean(sentence_lengths)),
        "sentence_words_std": float(np.std(sentence_lengths)),
        "paragraph_words_mean": float(np.mean(paragraph_lengths)),
        "question_sentence_fraction": (
            sum(1 for s in sentences if s.rstrip(" \"')*_").endswith("?")) / max(len(sentences), 1)
        ),
        "emoji_per_100_words": len(EMOJI_RE.findall(prose)) * per_100,
        "hashtag_per_100_words": len(HASHTAG_RE.findall(prose)) * per_100,
        "link_per_100_words": count_links(code_free) * per_100,
        "first_person_per_100_words": sum(1 for w in lowered if w in FIRST_PERSON) * per_100,
    }
    for name, marks in PUNCTUATION_MARKS.items():
        features[f"{name}_per_100_words"] = sum(prose.count(m) for m in marks) * per_100
    return features


def function_word_counts(text: str) -> tuple[np.ndarray, int]:
    """Counts of each of :data:`FUNCTION_WORDS` in the text's prose, and the total number of words."""
    tokens = lower_words(_prose_without_links(strip_code(text)))
    index = {w: i for i, w in enumerate(FUNCTION_WORDS)}
    counts = np.zeros(len(FUNCTION_WORDS), dtype=np.float64)
    for token in tokens:
        if token in FUNCTION_WORD_SET:
            counts[index[token]] += 1
    return counts, len(tokens)


class FeatureStats(BaseModel):
    """Robust summary of one feature over the author's texts (short posts make outliers common)."""

    center: float
    """Median."""
    spread: float
    """Interquartile range / 1.349 (equals the standard deviation for normal data)."""


class FeatureDeviation(BaseModel):
    """How one feature of a text compares with the author's profile."""

    name: str
    description: str
    value: float
    center: float
    spread: float
    z: float
    """|value - center| / max(spread, 0.25 * |center|, floor), capped at :data:`Z_CAP`."""


class StylometryResult(BaseModel):
    distance: float
    """In [0, 1]; 0 = matches the profile. ``0.5 * scalar_distance + 0.5 * function_word_distance``."""
    scalar_distance: float
    """``1 - exp(-mean_z / 2)`` over the scalar features."""
    function_word_distance: float
    """Cosine distance between the text's function-word frequencies and the profile's."""
    mean_z: float
    deviations: list[FeatureDeviation]
    """All scalar features, largest z first."""

    def describe(self, top: int = 3, min_z: float = 2.0) -> list[str]:
        """Plain sentences about the features that stray furthest, for a reviser to act on."""
        notes = []
        for d in self.deviations[:top]:
            if d.z < min_z:
                break
            direction = "higher" if d.value > d.center else "lower"
            notes.append(
                f"{d.description}: {d.value:.1f} in the draft vs typically {d.center:.1f} (± {d.spread:.1f}) "
                f"for the author ({direction} than usual)"
            )
        return notes


class StyleProfile(BaseModel):
    """How an author writes, summarised from their texts."""

    n_texts: int
    features: dict[str, FeatureStats]
    function_word_frequencies: list[float] = Field(
        description="Pooled relative frequency of each FUNCTION_WORDS entry over all the author's words"
    )

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> StyleProfile:
        texts = [t for t in texts if words(strip_code(t))]
        if not texts:
            raise ValueError("a style profile needs at least one text with prose")
        per_text = [style_features(t) for t in texts]
        stats = {}
        for name in per_text[0]:
            values = np.array([f[name] for f in per_text])
            q1, median, q3 = np.percentile(values, [25, 50, 75])
            stats[name] = FeatureStats(center=float(median), spread=float((q3 - q1) / 1.349))
        total_counts = np.zeros(len(FUNCTION_WORDS))
        total_words = 0
        for text in texts:
            counts, n = function_word_counts(text)
            total_counts += counts
            total_words += n
        return cls(
            n_texts=len(texts),
            features=stats,
            function_word_frequencies=(total_counts / max(total_words, 1)).tolist(),
        )

    def compare(self, text: str) -> StylometryResult:
        """Distance of ``text`` from this profile, with the per-feature deviations behind it.

        Scalar part: each feature's robust z-score ``|x - median| / max(spread, 0.25 * |median|, floor)``,
        capped at :data:`Z_CAP`, averaged, and mapped to ``1 - exp(-mean_z / 2)``. Function-word part:
        cosine distance between the profile's function-word frequencies and the text's, the text's
        smoothed with :data:`FUNCTION_WORD_PRIOR_WORDS` pseudo-words of the profile's mix. The distance
        is the mean of the two; both lie in [0, 1]. On held-out posts of the four development corpora
        the same-author distance is lower than the other-author one with AUC 0.86-0.93.
        """
        values = style_features(text)
        deviations = []
        for name, stats in self.features.items():
            scale = max(stats.spread, 0.25 * abs(stats.center), MIN_SCALE.get(name, 1e-6))
            z = min(abs(values[name] - stats.center) / scale, Z_CAP)
            deviations.append(
                FeatureDeviation(
                    name=name,
                    description=FEATURE_DESCRIPTIONS.get(name, name),
                    value=values[name],
                    center=stats.center,
                    spread=stats.spread,
                    z=z,
                )
            )
        deviations.sort(key=lambda d: d.z, reverse=True)
        mean_z = float(np.mean([d.z for d in deviations]))
        scalar_distance = 1.0 - math.exp(-mean_z / 2.0)

        counts, n_words = function_word_counts(text)
        profile_vector = np.asarray(self.function_word_frequencies)
        if not profile_vector.any():
            function_word_distance = 1.0
        else:
            # Pseudo-counts toward the profile: a short text is weak evidence, and the raw frequencies
            # of a 40-word post are mostly zeros, which would look far from anyone's profile (long texts
            # would then always look closer than short ones, whoever wrote them).
            prior = FUNCTION_WORD_PRIOR_WORDS
            text_vector = (counts + prior * profile_vector) / (n_words + prior)
            cosine = float(
                text_vector @ profile_vector / (np.linalg.norm(text_vector) * np.linalg.norm(profile_vector))
            )
            function_word_distance = min(max(1.0 - cosine, 0.0), 1.0)
        return StylometryResult(
            distance=0.5 * scalar_distance + 0.5 * function_word_distance,
            scalar_distance=scalar_distance,
            function_word_distance=function_word_distance,
            mean_z=mean_z,
            deviations=deviations,
        )


def stylometric_distance(profile: StyleProfile, text: str) -> float:
    """Distance in [0, 1] of ``text`` from the author's profile (0 = same style).

    ``0.5 * (1 - exp(-mean_z / 2)) + 0.5 * cosine_distance(function words)``; see
    :meth:`StyleProfile.compare` for the details.
    """
    return profile.compare(text).distance
