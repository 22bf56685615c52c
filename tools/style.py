"""A style card and few-shot examples from the author's own corpus, for the draft prompt.

The adapter carries the voice; the card keeps the prompt honest about form (length, paragraphs, sentence
length, emoji and hashtag habits, openings and sign-offs), and the examples show it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel

from evals.text import EMOJI_RE, count_hashtags, paragraphs, split_sentences, strip_code, words
from twin.domain import Document, Kind, Platform, own_writing

MIN_REPEATS = 2
"""An opening or sign-off counts as a habit when at least this many posts share it."""


class StyleCard(BaseModel):
    """How the author writes on one platform, summarised from their texts."""

    platform: Platform
    based_on: int
    typical_words: int
    words_low: int
    words_high: int
    paragraphs: float
    sentence_words: float
    emoji_per_post: float
    hashtags_per_post: float
    openings: list[str]
    sign_offs: list[str]

    def render(self) -> str:
        lines = [
            f"Style card (from {self.based_on} of the author's texts):",
            f"- length: usually {self.words_low}-{self.words_high} words (median {self.typical_words})",
            f"- about {self.paragraphs:.0f} paragraph(s); sentences average {self.sentence_words:.0f} words",
            f"- emoji per post: {self.emoji_per_post:.1f}; hashtags per post: {self.hashtags_per_post:.1f}",
        ]
        if self.openings:
            lines.append("- often opens with: " + "; ".join(f'"{o}"' for o in self.openings))
        if self.sign_offs:
            lines.append("- often signs off with: " + "; ".join(f'"{s}"' for s in self.sign_offs))
        return "\n".join(lines)


def _platform_texts(documents: Sequence[Document], platform: Platform) -> list[Document]:
    """The author's texts for the platform; posts of any platform when there are none for it. Pages linked
    in chat requests (references) are someone else's writing and never an example of the author's."""
    documents = own_writing(documents)
    same = [d for d in documents if d.platform == platform and d.clean_text.strip()]
    if same:
        return same
    posts = [d for d in documents if d.kind == Kind.post and d.clean_text.strip()]
    return posts or [d for d in documents if d.clean_text.strip()]


def _habits(snippets: Sequence[str], limit: int = 3) -> list[str]:
    counts = Counter(s for s in snippets if s)
    return [text for text, n in counts.most_common(limit) if n >= MIN_REPEATS]


def _opening(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return " ".join(first.split()[:3])


def _sign_off(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) < 2 or len(lines[-1].split()) > 8:
        return ""
    return lines[-1]


def build_style_card(documents: Sequence[Document], platform: Platform) -> StyleCard | None:
    """The card for `platform`, or None when the author has no text yet."""
    texts = [d.clean_text for d in _platform_texts(documents, platform)]
    if not texts:
        return None
    prose = [strip_code(t) for t in texts]
    word_counts = sorted(len(words(p)) for p in prose)
    quartiles = statistics.quantiles(word_counts, n=4) if len(word_counts) > 1 else [word_counts[0]] * 3
    sentence_lengths = [len(words(s)) for p in prose for s in split_sentences(p) if words(s)]
    return StyleCard(
        platform=platform,
        based_on=len(texts),
        typical_words=int(statistics.median(word_counts)),
        words_low=int(quartiles[0]),
        words_high=int(quartiles[2]),
        paragraphs=statistics.median(len(paragraphs(p)) or 1 for p in prose),
        sentence_words=statistics.fmean(sentence_lengths) if sentence_lengths else 0.0,
        emoji_per_post=statistics.fmean(len(EMOJI_RE.findall(p)) for p in prose),
        hashtags_per_post=statistics.fmean(count_hashtags(p) for p in prose),
        openings=_habits([_opening(t) for t in texts]),
        sign_offs=_habits([_sign_off(t) for t in texts]),
    )


def pick_examples(
    documents: Sequence[Document], platform: Platform, count: int, max_words: int = 220
) -> list[Document]:
    """A few of the author's own texts for the platform, typical in length, most recent first."""
    if count <= 0:
        return []
    candidates = _platform_texts(documents, platform)
    short = [d for d in candidates if 0 < d.word_count <= max_words] or sorted(candidates, key=lambda d: d.word_count)
    by_recency = sorted(short, key=lambda d: (d.published_at is not None, d.published_at, d.id), reverse=True)
    return by_recency[:count]
