"""Is each sentence of a draft supported by the passages it was written from?

A sentence is *supported* when

1. every number in it and every name (a capitalised token that is not the sentence's first word, an
   acronym, or a CamelCase identifier) also occurs somewhere in the passages, and
2. it is close to the passages: cosine similarity to the most similar passage sentence at least
   ``min_similarity`` (when an embedding function is given), or at least ``min_overlap`` of its content
   words found in one passage.

Sentences with nothing to check (fewer than ``min_content_words`` content words and no number or name,
e.g. "Thoughts?") count as supported. The score is the supported fraction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation

import numpy as np
from pydantic import BaseModel

from evals.text import (
    FENCED_CODE_RE,
    FUNCTION_WORD_SET,
    HEADING_RE,
    LIST_MARKER_RE,
    MARKDOWN_LINK_RE,
    URL_RE,
    WORD_RE,
    lower_words,
    split_sentences,
    words,
)

Embed = Callable[[list[str]], Sequence[Sequence[float]]]
"""Any embedding function: a list of texts in, one vector per text out (e.g. fastembed's ``embed``)."""

NUMBER_RE = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")
NAME_RE = re.compile(r"\b(?:[A-Z][A-Za-z0-9]*(?:['’][a-z]+)?|[a-z]+[A-Z][A-Za-z0-9]*)\b")
POSSESSIVE_RE = re.compile(r"['’]s$")
COMMON_CAPITALISED = frozenset({"i", "i'm", "i've", "i'd", "i'll", "ok", "okay"})


class SentenceSupport(BaseModel):
    sentence: str
    supported: bool
    reason: str
    similarity: float | None
    """Cosine similarity to the closest passage sentence; None without an embedding function."""
    closest_passage_sentence: str | None
    lexical_overlap: float
    """Fraction of the sentence's content words found in its best passage."""
    missing_numbers: list[str]
    missing_names: list[str]


class GroundingResult(BaseModel):
    score: float
    """Supported fraction of sentences, in [0, 1]; 1.0 for a draft with no sentences."""
    unsupported: list[str]
    sentences: list[SentenceSupport]

    def describe(self, top: int = 3) -> list[str]:
        """Plain feedback about unsupported sentences, for a reviser."""
        unsupported = [s for s in self.sentences if not s.supported]
        # Invented numbers first, then names, then the rest; the sort is stable, so draft order within each.
        unsupported.sort(key=lambda s: (not s.missing_numbers, not s.missing_names))
        notes = []
        for detail in unsupported[:top]:
            notes.append(f'"{_clip(detail.sentence)}": {detail.reason}')
        return notes


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def normalise_number(token: str) -> str:
    """``1,000`` -> ``1000``; ``3.50`` -> ``3.5``; anything unparsable stays as written."""
    plain = token.replace(",", "")
    try:
        value = Decimal(plain)
    except InvalidOperation:
        return token
    return format(value.normalize(), "f")


def numbers_in(text: str) -> set[str]:
    return {normalise_number(n) for n in NUMBER_RE.findall(text)}


def names_in(sentence: str) -> list[str]:
    """Capitalised tokens that are probably names: not the first word, not a function word, not "I"."""
    body = LIST_MARKER_RE.sub("", sentence.lstrip("#> ").strip())
    first_word = WORD_RE.search(body)
    first_start = first_word.start() if first_word else -1
    names = []
    for match in NAME_RE.finditer(body):
        token = POSSESSIVE_RE.sub("", match.group(0))
        lowered = token.lower().replace("’", "'")
        # A capitalised first word is usually just the start of a sentence.
        if match.start() == first_start and not _is_acronym_or_camel(token):
            continue
        if lowered in FUNCTION_WORD_SET or lowered in COMMON_CAPITALISED:
            continue
        names.append(token)
    return names


def _is_acronym_or_camel(token: str) -> bool:
    return sum(1 for c in token if c.isupper()) >= 2


def _prose(sentence: str) -> str:
    return URL_RE.sub(" ", MARKDOWN_LINK_RE.sub(r"\1", sentence))


def content_words(text: str) -> set[str]:
    return {w for w in lower_words(text) if w not in FUNCTION_WORD_SET and len(w) > 2 and not w.isdigit()}


def _cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def check_grounding(
    draft: str,
    passages: Sequence[str],
    embed: Embed | None = None,
    *,
    min_similarity: float = 0.55,
    min_overlap: float = 0.5,
    min_content_words: int = 3,
) -> GroundingResult:
    """Check each sentence of ``draft`` against ``passages`` (retrieved chunks and the user's links).

    ``embed`` adds semantic similarity (the default thresholds suit all-MiniLM-L6-v2); without it the
    check is lexical only.
    """
    draft_sentences = [
        s for s in split_sentences(FENCED_CODE_RE.sub("\n", draft)) if words(s) and not HEADING_RE.match(s)
    ]
    passages = [p for p in passages if p.strip()]
    passage_text = "\n".join(passages)
    passage_words = set(lower_words(passage_text))
    passage_numbers = numbers_in(passage_text)
    passage_content = [content_words(p) for p in passages]
    passage_sentences = [s for p in passages for s in split_sentences(p) if words(s)]

    similarities: np.ndarray | None = None
    if embed is not None and draft_sentences and passage_sentences:
        texts = [_prose(s) for s in draft_sentences] + passage_sentences
        vectors = np.asarray(embed(texts), dtype=np.float64)
        similarities = _cosine_matrix(vectors[: len(draft_sentences)], vectors[len(draft_sentences):])

    details: list[SentenceSupport] = []
    for i, sentence in enumerate(draft_sentences):
        prose = _prose(sentence)
        missing_numbers = sorted(n for n in numbers_in(prose) if n not in passage_numbers)
        names = names_in(prose)
        missing_names = sorted({n for n in names if n.lower().replace("’", "'") not in passage_words})
        content = content_words(prose)
        overlap = (
            max((len(content & pc) / len(content) for pc in passage_content), default=0.0) if content else 1.0
        )
        similarity = closest = None
        if similarities is not None:
            j = int(np.argmax(similarities[i]))
            similarity, closest = float(similarities[i, j]), passage_sentences[j]

        if missing_numbers or missing_names:
            missing = [*missing_numbers, *missing_names]
            supported, reason = False, f"not in the sources: {', '.join(missing)}"
        elif len(content) < min_content_words and not names and not numbers_in(prose):
            supported, reason = True, "nothing factual to check"
        elif similarity is not None and similarity >= min_similarity:
            supported, reason = True, f"close to a source sentence (cosine {similarity:.2f})"
        elif overlap >= min_overlap:
            supported, reason = True, f"{overlap:.0%} of its content words are in one source"
        else:
            closeness = f"cosine {similarity:.2f}, " if similarity is not None else ""
            supported, reason = False, f"no source says this ({closeness}{overlap:.0%} word overlap)"
        details.append(
            SentenceSupport(
                sentence=sentence,
                supported=supported,
                reason=reason,
                similarity=similarity,
                closest_passage_sentence=closest,
                lexical_overlap=overlap,
                missing_numbers=missing_numbers,
                missing_names=missing_names,
            )
        )
    unsupported = [d.sentence for d in details if not d.supported]
    score = 1.0 if not details else (len(details) - len(unsupported)) / len(details)
    return GroundingResult(score=score, unsupported=unsupported, sentences=details)
