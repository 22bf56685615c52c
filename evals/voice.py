"""The voice scorer: P(the author wrote this) against the base model's voice and other people's.

One per author and adapter version. Positives are the author's own texts; negatives are the base model's
answers to the same instructions (the DPO rejected side: exactly the generic voice a twin drifts into)
and other authors' texts from the store. Features are character n-grams (``char_wb`` 1-4, sublinear
TF-IDF) and word unigrams/bigrams; the classifier is a logistic regression calibrated with Platt scaling
(scikit-learn's ``CalibratedClassifierCV``), so a score of 0.7 means about 7 in 10.

``fit`` holds out a quarter of the texts on each side (by text, never by passage), measures ROC AUC
and accuracy there, then refits on everything; the numbers travel with the saved scorer, so the page can
say how far to trust it. It is the critique's style signal and the best-of-N selector's main key.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel

from evals.style import split_passages
from evals.text import strip_code
from twin.domain import PRIVATE_KINDS, own_writing

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

VOICE_FORMAT_VERSION = 1
PASSAGE_WORDS = 120
FILE_NAME = "voice_scorer.joblib"
MIN_BASE_TEXTS = 8
"""Base-model answers needed before a scorer is fitted (fewer: style goes unmeasured rather than guessed)."""
MAX_OTHER_AUTHOR_TEXTS = 200


def other_authors_texts(store: Any, author: Any, limit: int = MAX_OTHER_AUTHOR_TEXTS) -> list[str]:
    """Other people's public writing in the store (a `twin.store.DocumentStore`): the scorer's second negative
    class. Never their private chats: the fitted vocabulary is saved in this author's adapter folder."""
    texts: list[str] = []
    for other in store.list_authors():
        if other.id != author.id:
            texts.extend(d.clean_text for d in own_writing(store.list_documents(other))
                         if d.clean_text.strip() and d.kind not in PRIVATE_KINDS)
    return texts[:limit]


class VoiceScorerInfo(BaseModel):
    format_version: int = VOICE_FORMAT_VERSION
    author_texts: int
    base_texts: int
    other_texts: int
    passages: dict[str, int]
    held_out_auc: float | None
    """ROC AUC on held-out author texts vs held-out base-model answers (None: too few texts to hold out)."""
    held_out_auc_others: float | None = None
    """The same against held-out texts of other authors."""
    sklearn_version: str


def _passages(texts: Sequence[str]) -> list[str]:
    return [p for t in texts for p in split_passages(t, PASSAGE_WORDS)]


def _pipeline(n_samples: int, seed: int) -> Pipeline:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    min_df = 2 if n_samples >= 30 else 1
    features = FeatureUnion([
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True, min_df=min_df,
                                  max_features=150_000, dtype=np.float32)),
        ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=min_df,
                                  lowercase=True, token_pattern=r"(?u)\b\w+\b|[^\w\s]", max_features=50_000,
                                  dtype=np.float32)),
    ])
    logreg = LogisticRegression(C=10.0, class_weight="balanced", max_iter=3000, random_state=seed)
    return Pipeline([("features", features), ("clf", CalibratedClassifierCV(logreg, method="sigmoid", cv=3))])


def _split(texts: Sequence[str], fraction: float, rng: random.Random) -> tuple[list[str], list[str]]:
    shuffled = list(texts)
    rng.shuffle(shuffled)
    n = int(len(shuffled) * fraction)
    return shuffled[n:], shuffled[:n]


def _auc(positives: list[float], negatives: list[float]) -> float | None:
    if not positives or not negatives:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score([1] * len(positives) + [0] * len(negatives), positives + negatives))


class VoiceScorer:
    """P(author | text); fit with :meth:`fit`, persist with :meth:`save` / :meth:`load`."""

    def __init__(self, pipeline: Pipeline, info: VoiceScorerInfo) -> None:
        self.pipeline = pipeline
        self.info = info

    @classmethod
    def _fit_pipeline(cls, author: list[str], negatives: list[str], seed: int) -> Pipeline:
        pos, neg = _passages(author), _passages(negatives)
        if len(pos) < 6 or len(neg) < 6:
            raise ValueError(
                f"a voice scorer needs at least 6 passages of prose on each side; got {len(pos)} from the author "
                f"and {len(neg)} from the base model and other authors"
            )
        pipeline = _pipeline(len(pos) + len(neg), seed)
        pipeline.fit(pos + neg, [1] * len(pos) + [0] * len(neg))
        return pipeline

    @classmethod
    def fit(
        cls,
        author_texts: Sequence[str],
        base_texts: Sequence[str],
        other_texts: Sequence[str] = (),
        *,
        seed: int = 0,
        hold_out: float = 0.25,
    ) -> VoiceScorer:
        import sklearn

        author = [t for t in author_texts if strip_code(t).strip()]
        base = [t for t in base_texts if strip_code(t).strip()]
        others = [t for t in other_texts if strip_code(t).strip()]
        rng = random.Random(seed)
        auc = auc_others = None
        if len(author) >= 8 and len(base) >= 8:
            a_train, a_test = _split(author, hold_out, rng)
            b_train, b_test = _split(base, hold_out, rng)
            o_train, o_test = _split(others, hold_out, rng)
            probe = cls._fit_pipeline(a_train, b_train + o_train, seed)
            scores = cls._score(probe, a_test + b_test + o_test)
            pos = scores[: len(a_test)]
            auc = _auc(pos, scores[len(a_test) : len(a_test) + len(b_test)])
            auc_others = _auc(pos, scores[len(a_test) + len(b_test) :])
        pipeline = cls._fit_pipeline(author, base + others, seed)
        info = VoiceScorerInfo(
            author_texts=len(author), base_texts=len(base), other_texts=len(others),
            passages={"author": len(_passages(author)), "negative": len(_passages(base + others))},
            held_out_auc=auc, held_out_auc_others=auc_others, sklearn_version=sklearn.__version__,
        )
        return cls(pipeline, info)

    @staticmethod
    def _score(pipeline: Pipeline, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        column = list(pipeline.classes_).index(1)
        return [float(p) for p in pipeline.predict_proba([strip_code(t) or t for t in texts])[:, column]]

    def score_many(self, texts: Sequence[str]) -> list[float]:
        return self._score(self.pipeline, texts)

    def score(self, text: str) -> float:
        return self.score_many([text])[0]

    def save(self, path: str | Path) -> Path:
        import joblib

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".partial")
        joblib.dump({"info": self.info.model_dump(), "pipeline": self.pipeline}, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> VoiceScorer:
        """Read a scorer this project wrote (a pickle: load only your own files)."""
        import joblib

        payload: dict[str, Any] = joblib.load(Path(path))
        info = VoiceScorerInfo.model_validate(payload["info"])
        if info.format_version != VOICE_FORMAT_VERSION:
            raise ValueError(f"{path}: voice scorer format {info.format_version}, expected {VOICE_FORMAT_VERSION}")
        return cls(payload["pipeline"], info)
