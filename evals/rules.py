"""Platform rules a draft must keep: length, hashtags, links, article structure, and sane output.

GitHub text (a README section, release notes, a code snippet with commentary) is markdown that GitHub renders:
it needs a shape (a heading, a list or a fenced code block), and code in it comes with words that explain it.

Every platform also gets the output checks: not empty, not truncated mid-sentence, not degenerate
(a model stuck repeating itself). ``score`` is the fraction of checks passed; empty output scores 0.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from enum import Enum

from pydantic import BaseModel

from evals.text import (
    EMOJI_RE,
    FENCED_CODE_RE,
    HEADING_RE,
    LIST_MARKER_RE,
    URL_RE,
    count_hashtags,
    count_links,
    lower_words,
    paragraphs,
    split_sentences,
    words,
)

X_POST_CHARS = 280
THREAD_MARKER_RE = re.compile(r"(?:^\d{1,2}/\d{0,2}\s)|(?:\s\(?\d{1,2}/\d{1,2}\)?$)")
TRAILING_MARKER_RE = re.compile(r"\s*\(?\d{1,2}/\d{1,2}\)?\s*$")
SENTENCE_END = tuple('.!?…)"\'”’*_`]')
HASHTAG_LINE_RE = re.compile(r"^(?:\s*#[A-Za-z][\w-]*)+\s*$")
REFERENCE_LINK_RE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+")
SIGN_OFF_PREFIXES = (
    "h/t", "ht:", "hat tip", "—", "–", "--", "- ", "via ", "cc ", "ps", "p.s.", "thanks", "cheers",
)


class PlatformLimits(BaseModel):
    max_chars: int | None = None
    """For X: per post (each part of a thread)."""
    max_hashtags: int | None = None
    max_links: int | None = None
    min_words: int | None = None
    needs_heading: bool = False
    thread: bool = False
    """Longer text must be a numbered thread (see :func:`split_thread`)."""
    markdown_shape: bool = False
    """The text needs a heading, a list or a fenced code block (GitHub renders markdown; a wall of text
    is not a README section, release notes or a snippet)."""
    code_commentary: bool = False
    """Fenced code must come with at least ``MIN_COMMENTARY_WORDS`` words of prose around it."""


PLATFORM_LIMITS: dict[str, PlatformLimits] = {
    "linkedin": PlatformLimits(max_chars=3000, max_hashtags=5, max_links=2),
    "x": PlatformLimits(max_chars=X_POST_CHARS, thread=True),
    "medium": PlatformLimits(min_words=300, needs_heading=True),
    "substack": PlatformLimits(min_words=300, needs_heading=True),
    "blog": PlatformLimits(min_words=300, needs_heading=True),
    "github": PlatformLimits(max_links=10, markdown_shape=True, code_commentary=True),
}
MIN_COMMENTARY_WORDS = 12

DEGENERATION_NGRAM = 3
MAX_REPEATED_NGRAM_RATIO = 0.2
"""Natural prose of a few hundred words repeats well under 10% of its word trigrams."""


class RuleCheck(BaseModel):
    name: str
    passed: bool
    detail: str


class RulesResult(BaseModel):
    score: float
    """Fraction of checks passed, in [0, 1]; 0 for empty output."""
    violations: list[str]
    checks: list[RuleCheck]


def _platform_name(platform: str | Enum) -> str:
    return str(platform.value if isinstance(platform, Enum) else platform).lower()


def repeated_ngram_ratio(text: str, n: int = DEGENERATION_NGRAM) -> float:
    """Share of word n-grams that repeat an earlier one: ``1 - distinct / total`` (0 for short texts)."""
    tokens = lower_words(text)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if len(grams) < 2:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def looks_truncated(text: str) -> bool:
    """True when the text stops mid-sentence (or inside a code block).

    Trailing hashtag lines, links, emoji and thread markers are ignored; a text ending in a list item,
    heading or closed code block is complete.
    """
    fences = sum(1 for line in text.splitlines() if line.lstrip().startswith(("```", "~~~")))
    if fences % 2 == 1:
        return True
    lines = [line.rstrip() for line in text.rstrip().splitlines()]
    while lines and (
        not lines[-1].strip() or HASHTAG_LINE_RE.match(lines[-1]) or REFERENCE_LINK_RE.match(lines[-1])
    ):
        lines.pop()
    if not lines:
        return False
    last = EMOJI_RE.sub("", TRAILING_MARKER_RE.sub("", lines[-1])).rstrip()
    if not last or last.endswith(("```", "~~~", ">")) or URL_RE.search(last[-1:] and last.split()[-1]):
        return False  # a code block, HTML tag or link is a deliberate last element
    if (
        HEADING_RE.match(last)
        or LIST_MARKER_RE.match(last)
        or last.startswith(("|", "    ", "\t"))
        or _is_sign_off(last, lines)
    ):
        return False
    return not last.endswith(SENTENCE_END)


def _is_sign_off(last: str, lines: list[str]) -> bool:
    """A short last paragraph of its own like "h/t Jane Doe", "— Ron Paul" or "Cheers, Sam"."""
    own_paragraph = len(lines) == 1 or not lines[-2].strip()
    tokens = last.split()
    if not own_paragraph or len(tokens) > 5 or last.endswith((",", ":", ";")):
        return False
    return last.lower().startswith(SIGN_OFF_PREFIXES) or all(t[:1].isupper() for t in words(last))


def parse_thread(text: str) -> list[str] | None:
    """The parts of a numbered thread (blank-line separated, each with an ``i/n`` marker), else None."""
    parts = paragraphs(text)
    if len(parts) >= 2 and all(THREAD_MARKER_RE.search(p) for p in parts):
        return parts
    return None


def _pieces(text: str, budget: int) -> list[tuple[str, bool]]:
    """Sentences (or word runs, for over-long sentences) with a flag for 'starts a paragraph'."""
    pieces: list[tuple[str, bool]] = []
    for block in paragraphs(text):
        for k, sentence in enumerate(split_sentences(block)):
            if len(sentence) <= budget:
                pieces.append((sentence, k == 0))
                continue
            current = ""
            for word in sentence.split():
                while len(word) > budget:  # a single over-long token (a URL): cut it
                    if current:
                        pieces.append((current, k == 0 and not pieces))
                        current = ""
                    pieces.append((word[:budget], False))
                    word = word[budget:]
                candidate = f"{current} {word}".strip()
                if len(candidate) <= budget:
                    current = candidate
                else:
                    pieces.append((current, k == 0 and not pieces))
                    current = word
            if current:
                pieces.append((current, False))
    return pieces


def _pack(pieces: list[tuple[str, bool]], budget: int) -> list[str]:
    parts: list[str] = []
    current = ""
    for piece, starts_paragraph in pieces:
        joiner = "\n" if starts_paragraph else " "
        candidate = f"{current}{joiner}{piece}" if current else piece
        if len(candidate) <= budget:
            current = candidate
        else:
            parts.append(current)
            current = piece
    if current:
        parts.append(current)
    return parts


def split_thread(text: str, limit: int = X_POST_CHARS) -> list[str]:
    """Split ``text`` into numbered posts (``"... 1/3"``), each at most ``limit`` characters.

    Breaks fall between sentences where possible, then between words. A text that fits is returned
    as one post without a marker.
    """
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    digits = 1
    while True:
        budget = limit - len(f" {'9' * digits}/{'9' * digits}")
        parts = _pack(_pieces(text, budget), budget)
        if len(str(len(parts))) <= digits:
            break
        digits += 1
    return [f"{part} {i}/{len(parts)}" for i, part in enumerate(parts, 1)]


def _check(name: str, passed: bool, detail: str) -> RuleCheck:
    return RuleCheck(name=name, passed=passed, detail=detail)


def check_platform_rules(text: str, platform: str | Enum, *, max_words: int | None = None) -> RulesResult:
    """Check ``text`` against the rules of ``platform`` (linkedin, x, medium, substack, blog, github; others
    get only the output checks).

    ``max_words`` is the most the generation budget lets a draft hold: a minimum length above it could
    never be met, so the minimum becomes 80% of it (a rule no draft can keep steers nothing).
    """
    name = _platform_name(platform)
    limits = PLATFORM_LIMITS.get(name, PlatformLimits())
    if not text.strip():
        return RulesResult(
            score=0.0,
            violations=["empty output: the draft has no text"],
            checks=[_check("not_empty", False, "empty")],
        )
    checks = [_check("not_empty", True, f"{len(text)} characters")]

    truncated = looks_truncated(text)
    checks.append(
        _check(
            "not_truncated",
            not truncated,
            "ends mid-sentence; finish the last sentence" if truncated else "ok",
        )
    )
    ratio = repeated_ngram_ratio(text)
    repeated = Counter(tuple(g) for g in _trigrams(text)).most_common(1)
    example = " ".join(repeated[0][0]) if repeated and repeated[0][1] > 1 else ""
    checks.append(
        _check(
            "not_degenerate",
            ratio <= MAX_REPEATED_NGRAM_RATIO,
            f"{ratio:.0%} of word trigrams repeat (limit {MAX_REPEATED_NGRAM_RATIO:.0%})"
            + (f', e.g. "{example}"; remove the repetition' if ratio > MAX_REPEATED_NGRAM_RATIO else ""),
        )
    )

    if limits.max_chars is not None:
        if limits.thread:
            posts = parse_thread(text) or [text.strip()]
            too_long = [i for i, post in enumerate(posts, 1) if len(post) > limits.max_chars]
            if len(posts) == 1:
                detail = f"{len(posts[0])} characters (limit {limits.max_chars} per post)"
                if too_long:
                    parts = math.ceil(len(posts[0]) / (limits.max_chars - 6))
                    detail += f"; shorten it or split it into a thread of about {parts} numbered posts"
            else:
                detail = f"thread of {len(posts)} posts" + (
                    f"; posts {', '.join(map(str, too_long))} exceed {limits.max_chars} characters"
                    if too_long
                    else f", each within {limits.max_chars} characters"
                )
            checks.append(_check("length", not too_long, detail))
        else:
            checks.append(
                _check(
                    "length",
                    len(text) <= limits.max_chars,
                    f"{len(text)} characters (limit {limits.max_chars})",
                )
            )
    if limits.max_hashtags is not None:
        n = count_hashtags(text)
        checks.append(
            _check("hashtags", n <= limits.max_hashtags, f"{n} hashtags (limit {limits.max_hashtags})")
        )
    if limits.max_links is not None:
        n = count_links(text)
        checks.append(_check("links", n <= limits.max_links, f"{n} links (limit {limits.max_links})"))
    if limits.min_words is not None:
        n = len(words(FENCED_CODE_RE.sub(" ", text)))
        least = limits.min_words if max_words is None else min(limits.min_words, int(max_words * 0.8))
        checks.append(_check("article_length", n >= least, f"{n} words (at least {least})"))
    if limits.needs_heading:
        has = has_title_or_headings(text)
        checks.append(
            _check(
                "structure",
                has,
                "has a title/headings"
                if has
                else "no title or section headings; start with a '# Title' line",
            )
        )

    if limits.markdown_shape:
        shaped = has_markdown_shape(text)
        checks.append(_check(
            "markdown_shape", shaped,
            "has a heading, list or code block" if shaped
            else "plain paragraphs only; give it a '## Heading', a '- ' list or a fenced code block",
        ))
    if limits.code_commentary and FENCED_CODE_RE.search(text):
        n = len(words(FENCED_CODE_RE.sub(" ", text)))
        checks.append(_check(
            "code_commentary", n >= MIN_COMMENTARY_WORDS,
            f"{n} words around the code (at least {MIN_COMMENTARY_WORDS})"
            + ("" if n >= MIN_COMMENTARY_WORDS else "; say what the code does and why"),
        ))

    violations = [f"{c.name}: {c.detail}" for c in checks if not c.passed]
    score = sum(c.passed for c in checks) / len(checks)
    return RulesResult(score=score, violations=violations, checks=checks)


def _trigrams(text: str) -> list[tuple[str, ...]]:
    tokens = lower_words(text)
    return [tuple(tokens[i : i + DEGENERATION_NGRAM]) for i in range(len(tokens) - DEGENERATION_NGRAM + 1)]


def has_markdown_shape(text: str) -> bool:
    """A fenced code block, a markdown heading or a list item."""
    if FENCED_CODE_RE.search(text):
        return True
    return any(HEADING_RE.match(line) or LIST_MARKER_RE.match(line) for line in text.splitlines())


def has_title_or_headings(text: str) -> bool:
    """A markdown heading anywhere, or a short first line without final punctuation, then a blank line."""
    body = FENCED_CODE_RE.sub("\n", text)
    if any(HEADING_RE.match(line) for line in body.splitlines()):
        return True
    blocks = paragraphs(body)
    if len(blocks) < 2:
        return False
    first = blocks[0]
    return "\n" not in first and len(words(first)) <= 15 and not first.rstrip().endswith((".", ",", ";", ":"))
