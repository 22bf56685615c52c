"""The twin-quality benchmark's judge and draft metrics (nothing here is used by the product).

The judge is an authorship classifier the product never sees or optimises against: character n-gram TF-IDF
(``char_wb``) and a multinomial logistic regression over every real author of ``../shared/corpora`` PLUS a
"base model" class made of the bare base model's own answers. A draft "sounds like" its author only if the
judge picks that author out of five, so sounding merely less like the base model, or like a different
technical blogger, does not count.

Every text (training passage, validation post, draft) goes through the same `normalize` (markdown, code
blocks, URLs, HTML and template markup removed) and is cut to the judge's passage length (``passage_words``,
300 words unless the benchmark asks otherwise), so the judge compares prose with prose at comparable lengths.

The draft metrics (`repeated_ngram_rate`, `invented_urls`, `has_preamble`, `echoes_prompt`, ...) are plain
functions over strings, unit-tested in ``tests/test_twin_quality_judge.py``.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from evals.text import FENCED_CODE_RE, HTML_TAG_RE, MARKDOWN_LINK_RE, URL_RE, WORD_RE

BASE_CLASS = "base model"
PASSAGE_WORDS = 300
MIN_PASSAGE_WORDS = 60

TEMPLATE_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
IMAGE_RE = re.compile(r"!\[[^\]\n]*\]\([^)\s]+[^)]*\)")
REFERENCE_LINK_DEF_RE = re.compile(r"^\s*\[[^\]\n]+\]:\s*\S+.*$", re.MULTILINE)
REFERENCE_LINK_RE = re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]")
MARKUP_CHARS_RE = re.compile(r"[#*_`>|~]+")
SPACE_RE = re.compile(r"\s+")
PREAMBLE_RE = re.compile(
    r"^\W*(?:"
    r"(?:sure|certainly|absolutely|of course|okay|ok|great|alright)\b"
    r"|i(?:'|’)?d (?:be )?(?:happy|glad|delighted) to\b"
    r"|i (?:would|will|can|'ll|’ll) (?:be happy to|gladly|help|write|draft|create)\b"
    r"|here(?:'|’)?s\b|here is\b|here are\b|below is\b"
    r"|yes\b\W|great question\b|thank(?:s| you) for\b|welcome to\b"
    r"|i(?:'|’)?m (?:glad|happy|delighted|here to help)\b"
    r"|as an ai\b|as a (?:large )?language model\b"
    r"|(?:title|blog post|post)\s*:"
    r")",
    re.IGNORECASE,
)
"""An assistant's opening ("Sure! Here's a blog post...", "Title: ..."), not how an author starts a post."""


# ----------------------------------------------------------------------------------------------- text prep
def normalize(text: str) -> str:
    """Prose only: fenced code, images, HTML, template shortcodes and URLs out; markdown links -> their text;
    markdown punctuation (``#*_`>|~``) out; whitespace collapsed. Used for the judge and the on-topic check."""
    text = FENCED_CODE_RE.sub(" ", text)
    text = TEMPLATE_RE.sub(" ", text)
    text = IMAGE_RE.sub(" ", text)
    text = REFERENCE_LINK_DEF_RE.sub(" ", text)
    text = MARKDOWN_LINK_RE.sub(r"\1", text)
    text = REFERENCE_LINK_RE.sub(r"\1", text)
    text = HTML_TAG_RE.sub(" ", text)
    text = URL_RE.sub(" ", text)
    text = MARKUP_CHARS_RE.sub(" ", text)
    return SPACE_RE.sub(" ", text).strip()


def head(text: str, words: int = PASSAGE_WORDS) -> str:
    """The first `words` whitespace-separated words of the normalized text."""
    return " ".join(normalize(text).split()[:words])


def raw_head(text: str, words: int = PASSAGE_WORDS) -> str:
    """The first `words` words of the text as written (line breaks kept): what the `author` row shows."""
    out, count = [], 0
    for line in text.splitlines():
        taken = line.split()
        if count + len(taken) > words:
            out.append(" ".join(taken[: words - count]))
            break
        out.append(line)
        count += len(taken)
    return "\n".join(out).strip()


def passages(text: str, words: int = PASSAGE_WORDS, min_words: int = MIN_PASSAGE_WORDS) -> list[str]:
    """The normalized text cut into consecutive `words`-word passages; a shorter tail is kept when it has at
    least `min_words` words (or when it is the whole text and has at least `min_words // 3`)."""
    tokens = normalize(text).split()
    out = [" ".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]
    if out and len(out[-1].split()) < min_words and not (len(out) == 1 and len(tokens) >= min_words // 3):
        out.pop()
    return out


def pack_passages(texts: Iterable[str], words: int = PASSAGE_WORDS, min_words: int = MIN_PASSAGE_WORDS) -> list[str]:
    """The normalized texts, in order, run together and cut into `words`-word passages, so that an author of
    short posts (tweets, TILs) gets passages as long as a long-form author's; a tail under `min_words` is
    dropped."""
    tokens = [w for text in texts for w in normalize(text).split()]
    out = [" ".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]
    if out and len(out[-1].split()) < min_words:
        out.pop()
    return out


def word_count(text: str) -> int:
    return len(text.split())


# ----------------------------------------------------------------------------------------------- the judge
class TextDistortion:
    """Topic masked, style kept (Stamatatos, "Authorship attribution using text distortion", 2017): every word
    outside the `keep` most frequent words of the training texts becomes asterisks of its length, every digit
    ``#``; punctuation, spacing and the frequent (function) words stay. A title's topic vocabulary then no
    longer tells one technical author from another, or from the base model writing on that author's topic."""

    def __init__(self, texts: Iterable[str], keep: int = 300) -> None:
        counts = Counter(w for text in texts for w in words_lower(text))
        self.keep = keep
        self.kept = frozenset(w for w, _ in counts.most_common(keep))

    def __call__(self, text: str) -> str:
        def mask(match: re.Match[str]) -> str:
            word = match.group(0)
            return word if word.lower() in self.kept else re.sub(r"\d", "#", re.sub(r"[^\W\d_]", "*", word))

        return WORD_RE.sub(mask, text)


class AuthorshipJudge:
    """Char n-gram TF-IDF + multinomial logistic regression over the real authors and the base model."""

    def __init__(self, pipeline: Any, classes: Sequence[str], info: dict[str, Any],
                 distortion: TextDistortion | None = None, passage_words: int = PASSAGE_WORDS) -> None:
        self.pipeline = pipeline
        self.classes = list(classes)
        self.info = info
        self.distortion = distortion
        self.passage_words = passage_words

    @classmethod
    def fit(
        cls,
        texts_by_class: Mapping[str, Sequence[str]],
        *,
        seed: int = 0,
        max_passages_per_class: int = 400,
        ngram_range: tuple[int, int] = (2, 5),
        analyzer: str = "char_wb",
        max_features: int = 200_000,
        C: float = 10.0,
        distort_keep: int = 0,
        passage_words: int = PASSAGE_WORDS,
    ) -> AuthorshipJudge:
        """`texts_by_class`: class -> whole documents (packed here into `passage_words`-word passages). Each class
        is capped at `max_passages_per_class` passages (a seeded sample) and weighted to balance the classes.
        The judge then reads the first `passage_words` words of each text it is asked about."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        rng = random.Random(seed)
        xs: list[str] = []
        ys: list[str] = []
        counts: dict[str, int] = {}
        for label, texts in texts_by_class.items():
            cut = pack_passages(texts, passage_words, min(MIN_PASSAGE_WORDS, passage_words // 2))
            if len(cut) > max_passages_per_class:
                cut = rng.sample(cut, max_passages_per_class)
            if not cut:
                raise ValueError(f"no passage of {passage_words} words for class {label!r}")
            counts[label] = len(cut)
            xs.extend(cut)
            ys.extend([label] * len(cut))
        if len(counts) < 2:
            raise ValueError("the judge needs at least two classes")
        distortion = TextDistortion(xs, distort_keep) if distort_keep > 0 else None
        if distortion is not None:
            xs = [distortion(x) for x in xs]
        pipeline = make_pipeline(
            TfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range, sublinear_tf=True, min_df=2,
                            max_features=max_features, lowercase=False),
            LogisticRegression(C=C, max_iter=2000, class_weight="balanced", random_state=seed),
        )
        pipeline.fit(xs, ys)
        info = {
            "features": f"TF-IDF {analyzer} {ngram_range[0]}-{ngram_range[1]} (sublinear tf, min_df 2, "
                        f"max {max_features})",
            "model": f"LogisticRegression multinomial, C={C}, class_weight=balanced",
            "passage_words": passage_words,
            "train_passages": counts,
        }
        if distortion is not None:
            info["text_distortion"] = (f"words outside the {distort_keep} most frequent of the training passages "
                                       "masked to asterisks, digits to # (topic masked, style kept)")
        return cls(pipeline, [str(c) for c in pipeline.classes_], info, distortion, passage_words)

    def proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """P(class | text) for each text, the text cut to its first `passage_words` normalized words."""
        if not texts:
            return []
        prepared = [head(t, self.passage_words) for t in texts]
        if self.distortion is not None:
            prepared = [self.distortion(t) for t in prepared]
        rows = self.pipeline.predict_proba(prepared)
        return [{str(c): float(p) for c, p in zip(self.classes, row, strict=True)} for row in rows]

    def judge(self, texts: Sequence[str], author: str) -> list[dict[str, Any]]:
        """Per text: the predicted class, whether it is `author`, and P(author)."""
        out = []
        for text, probs in zip(texts, self.proba(texts), strict=True):
            if not normalize(text):
                out.append({"predicted": None, "top1": False, "p_author": 0.0, "empty": True})
                continue
            predicted = str(max(probs, key=probs.__getitem__))
            out.append({"predicted": predicted, "top1": predicted == author, "p_author": probs.get(author, 0.0)})
        return out

    def validate(self, texts_by_class: Mapping[str, Sequence[str]]) -> dict[str, dict[str, Any]]:
        """Top-1 accuracy and mean P(true class) per class on texts the judge never saw."""
        report: dict[str, dict[str, Any]] = {}
        for label, texts in texts_by_class.items():
            texts = [t for t in texts if normalize(t)]
            verdicts = self.judge(texts, label)
            confusion = Counter(None if v["predicted"] is None else str(v["predicted"]) for v in verdicts)
            report[label] = {
                "n": len(verdicts),
                "top1": sum(v["top1"] for v in verdicts) / len(verdicts) if verdicts else None,
                "mean_p": sum(v["p_author"] for v in verdicts) / len(verdicts) if verdicts else None,
                "predicted": dict(confusion.most_common()),
            }
        return report


# ------------------------------------------------------------------------------------------- draft metrics
def words_lower(text: str) -> list[str]:
    return [w.lower() for w in WORD_RE.findall(text)]


def repeated_ngram_rate(text: str, n: int = 4) -> float:
    """Fraction of the text's word n-grams (positions) whose n-gram occurs more than once in it.
    0.0 for a text with no repetition (or fewer than n words); degenerate loops approach 1.0."""
    tokens = words_lower(text)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    counts = Counter(grams)
    return sum(1 for g in grams if counts[g] > 1) / len(grams)


def _clean_url(url: str) -> str:
    return url.rstrip(").,;:!?'\"").rstrip("/").lower().removeprefix("http://").removeprefix("https://").removeprefix("www.")


def find_urls(text: str) -> list[str]:
    return [m.group(0) for m in URL_RE.finditer(text)]


def url_index(texts: Iterable[str]) -> set[str]:
    """Every URL in the texts, normalized (scheme, ``www.``, trailing slash and punctuation dropped)."""
    return {_clean_url(u) for text in texts for u in find_urls(text)}


def invented_urls(draft: str, allowed: set[str], prompt: str = "") -> list[str]:
    """URLs in the draft found neither in the prompt nor in `allowed` (a `url_index` of the author's training
    posts and what the variant was shown)."""
    known = allowed | url_index([prompt])
    return [u for u in find_urls(draft) if _clean_url(u) not in known]


def has_preamble(text: str) -> bool:
    """The draft opens like an assistant answering a request ("Sure!", "Here's a ...", "As an AI ...")."""
    return bool(PREAMBLE_RE.match(text.strip()))


PROMPT_MARKER_RE = re.compile(r"<{3,}|>{3,}|\bSOURCE \d+\b")
"""The product's prompt scaffolding (`tools.prompts.quote` wraps sources as ``<<<SOURCE 1 ... SOURCE 1>>>``)."""


def echoes_prompt(text: str, instruction: str, min_words: int = 6) -> bool:
    """The draft repeats the prompt back: the instruction's first `min_words` words (or all of them, when it
    is shorter) occur verbatim, lowercased, in the draft's words, or the draft holds the prompt's quoting
    markers (``<<<``, ``>>>``, ``SOURCE 3``)."""
    if PROMPT_MARKER_RE.search(text):
        return True
    prompt = words_lower(instruction)[:min_words]
    if not prompt:
        return False
    draft = words_lower(text)
    k = len(prompt)
    return any(draft[i : i + k] == prompt for i in range(len(draft) - k + 1))


def cosine_rank1(draft_vectors: Sequence[Sequence[float]], post_vectors: Sequence[Sequence[float]],
                 own: Sequence[int]) -> list[bool]:
    """For each draft i: does post ``own[i]`` have the highest cosine similarity of all the posts?"""
    import numpy as np

    if not draft_vectors:
        return []
    d = np.asarray(draft_vectors, dtype=float)
    p = np.asarray(post_vectors, dtype=float)
    d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-12
    p /= np.linalg.norm(p, axis=1, keepdims=True) + 1e-12
    sims = d @ p.T
    return [bool(int(np.argmax(row)) == own[i]) for i, row in enumerate(sims)]


__all__ = [
    "BASE_CLASS",
    "AuthorshipJudge",
    "TextDistortion",
    "cosine_rank1",
    "echoes_prompt",
    "find_urls",
    "has_preamble",
    "head",
    "invented_urls",
    "normalize",
    "pack_passages",
    "passages",
    "raw_head",
    "repeated_ngram_rate",
    "url_index",
    "word_count",
]
