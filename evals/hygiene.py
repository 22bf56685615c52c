"""What a draft must never be: an assistant's reply, an echo of its prompt, a loop, or a page of made-up links.

A small model copies whatever stands in its prompt and slips into the chat assistant it was tuned to be.
These checks catch that, and :func:`clean_draft` removes what can be removed without rewriting the post:

- an assistant's preamble ("Sure! Here's a blog post about ...", "I'd be happy to help") and sign-off
  ("I hope this helps", "Let me know if ..."),
- sentences repeated verbatim (a model stuck in a loop), and a last sentence cut off by the token budget,
- links whose address appears in neither the brief nor the sources (invented URLs): the link text stays,
- HTML paragraph tags wrapped around a paragraph (``<p>...</p>``, a lone ``<br>``): a post is markdown, and
  a tag inside a sentence or in code (a post about HTML) stays.

:func:`check_hygiene` then says whether what is left is still a post: not an echo of the prompt's task line,
style card, critique or sources, not the title restated, not looping. A rejected draft is never selected.
It also lists template placeholders left for someone to fill in ("[my company]", "[Your Name]"): such a draft
is a post but not one to publish as it is, so it scores lower and fails its critique without being rejected.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from evals.text import MARKDOWN_LINK_RE, URL_RE, lower_words, paragraphs, split_sentences, strip_code

PREAMBLE_RE = re.compile(
    r"^\W{0,3}(?:"
    r"sure\b|certainly\b|of course\b|absolutely\b|great question|good question|okay\b|ok\b|alright\b"
    r"|i'?d (?:be )?(?:happy|glad|love) to|i would (?:be )?(?:happy|glad|love) to|i can help|happy to help"
    r"|here(?:'s| is| are)\b|below is|as an ai|as a (?:large )?language model|i'm an ai|i am an ai"
    r"|thank you for (?:asking|the (?:request|prompt))|what a great"
    r")",
    re.IGNORECASE,
)
SIGN_OFF_RE = re.compile(
    r"^\W{0,3}(?:i hope (?:this|that|you) |hope this helps|let me know (?:if|what|how)|feel free to "
    r"|if you have any (?:other |more |further )?questions|is there anything else|happy to help"
    r"|(?:please )?don't hesitate to|i'm here to help)",
    re.IGNORECASE,
)
SCAFFOLD_RE = re.compile(
    r"(?:^|\n)\s*task\s*:|style card|p\(author\)|stylometry:|closeness \d|quoted data|problems to fix"
    r"|<<<|>>>|\bsource \d+\b|\bexample \d+\b|previous draft|platform rules \(|grounding: \d"
    r"|write (?:one|a) (?:linkedin|blog|medium|substack|x|twitter)[\w ()]* post of about \d+ words",
    re.IGNORECASE,
)
PLACEHOLDER_RE = re.compile(
    r"\[(?:(?:your|my|our|insert|add|enter)\b[^\]\n]{0,40}"
    r"|(?:company|client|customer|product|brand|team|project|event|person|author|city|industry) name)"
    r"\](?![(\[:])",
    re.IGNORECASE,
)
"""A bracketed blank to fill in ("[my company]", "[Insert link]", "[Company Name]"), not a markdown link
(``[text](url)``, ``[text][ref]``, ``[ref]: url``). A bare "[url]" or "[date]" is left alone: authors write
those in usage lines (7 of the 3,108 shared-corpus posts do)."""
WRAPPING_HTML_RE = re.compile(r"^\s*<(?:p|div)(?:\s[^>\n]*)?>\s*|\s*</(?:p|div)>\s*$|^\s*<br\s*/?>\s*$", re.IGNORECASE)
TITLE_PREFIX_RE = re.compile(r"^\s*\**title\**\s*:\s*\**\s*(.+?)\**\s*$", re.IGNORECASE)

ECHO_NGRAM = 5
ECHO_MAX_FRACTION = 0.35
"""A draft whose word 5-grams come from its own prompt more often than this is an echo, not a post."""
MIN_NEW_WORDS = 12
"""Distinct words a draft must add beyond its brief: fewer means it restated the title."""
LOOP_NGRAM = 4
PLACEHOLDER_PENALTY = 0.5
MAX_REPEATED_4GRAM_RATE = 0.15
"""Share of word 4-grams that occur more than once; authors' own posts sit far below (~0.02-0.06)."""


def repeated_ngram_rate(text: str, n: int = LOOP_NGRAM) -> float:
    """Share of the text's word n-grams that occur more than once in it (0 for texts under two n-grams)."""
    tokens = lower_words(text)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if len(grams) < 2:
        return 0.0
    counts = Counter(grams)
    return sum(1 for g in grams if counts[g] > 1) / len(grams)


def urls_in(text: str) -> list[str]:
    return [m.group(0) for m in URL_RE.finditer(text)]


def _address(url: str) -> str:
    """host/path, lower-cased, without scheme, ``www.``, query, fragment or trailing slash and punctuation."""
    bare = re.sub(r"^https?://(?:www\.)?", "", url.lower())
    return re.split(r"[?#]", bare, maxsplit=1)[0].rstrip("/.,;:!?)]'\"")


def invented_urls(text: str, allowed_text: str) -> list[str]:
    """URLs in ``text`` that are not in ``allowed_text`` (the brief, the sources, the prompt): allowed are a
    page given there, a parent of one (``github.com/simonw`` of ``github.com/simonw/llm``) or a given site's
    home page. A made-up path on a real site (``datasette.io/write-to-file``) is invented: it would 404."""
    given = {_address(u) for u in urls_in(allowed_text)}
    hosts = {a.split("/")[0] for a in given}
    invented = []
    for url in urls_in(text):
        address = _address(url)
        if address in given or ("/" not in address and address in hosts):
            continue
        if any(g.startswith(address + "/") for g in given):
            continue
        invented.append(url)
    return invented


def _norm_sentence(sentence: str) -> str:
    return " ".join(lower_words(sentence))


class CleanedDraft(BaseModel):
    text: str
    removed: list[str]
    """What was taken out, in words ("preamble: ...", "repeated sentence: ...", "invented link: ...")."""


def _drop_preamble(blocks: list[str], removed: list[str]) -> list[str]:
    while blocks:
        first = blocks[0].strip()
        title = TITLE_PREFIX_RE.match(first.splitlines()[0]) if first else None
        if title:
            rest = first.splitlines()[1:]
            blocks[0] = "\n".join([f"# {title.group(1).strip()}", *rest])
            break
        if not PREAMBLE_RE.match(first):
            break
        sentences = split_sentences(first)
        kept = list(sentences)
        while kept and PREAMBLE_RE.match(kept[0]):
            removed.append(f"preamble: {kept.pop(0)[:80]}")
        # "Here's a post about X:" introduces what follows; a colon ends the preamble.
        if kept and kept[0].rstrip().endswith(":") and len(kept[0].split()) <= 20:
            removed.append(f"preamble: {kept.pop(0)[:80]}")
        if kept:
            blocks[0] = " ".join(kept)
            break
        blocks.pop(0)
    return blocks


def _drop_sign_off(blocks: list[str], removed: list[str]) -> list[str]:
    while blocks:
        sentences = split_sentences(blocks[-1])
        if not sentences or not SIGN_OFF_RE.match(sentences[-1]):
            break
        while sentences and SIGN_OFF_RE.match(sentences[-1]):
            removed.append(f"sign-off: {sentences.pop()[:80]}")
        if sentences:
            blocks[-1] = " ".join(sentences)
            break
        blocks.pop()
    return blocks


def _drop_repeats(blocks: list[str], removed: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for block in blocks:
        if block.lstrip().startswith(("```", "    ", "|")):
            out.append(block)
            continue
        kept = []
        for sentence in split_sentences(block) or [block]:
            key = _norm_sentence(sentence)
            if len(key.split()) >= 4 and key in seen:
                removed.append(f"repeated sentence: {sentence[:80]}")
                continue
            seen.add(key)
            kept.append(sentence)
        if kept:
            out.append(" ".join(kept) if len(kept) > 1 or "\n" not in block else block)
    return out


def _drop_invented_links(text: str, allowed_text: str, removed: list[str]) -> str:
    bad = set(invented_urls(text, allowed_text))
    if not bad:
        return text

    def unlink(match: re.Match[str]) -> str:
        if match.group(2) in bad or any(match.group(2).startswith(u) for u in bad):
            removed.append(f"invented link: {match.group(2)}")
            return match.group(1)
        return match.group(0)

    text = MARKDOWN_LINK_RE.sub(unlink, text)
    for url in sorted(bad, key=len, reverse=True):
        if url in text:
            removed.append(f"invented link: {url}")
            text = text.replace(url, "")
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text))


def placeholders_in(text: str) -> list[str]:
    """Template blanks ("[my company]", "[Your Name]") in the prose of ``text``, code left out."""
    return [m.group(0) for m in PLACEHOLDER_RE.finditer(strip_code(text))]


def _drop_wrapping_html(blocks: list[str], removed: list[str]) -> list[str]:
    out = []
    for block in blocks:
        if block.lstrip().startswith(("```", "~~~", "    ")):
            out.append(block)
            continue
        tags = [m.group(0).strip() for m in WRAPPING_HTML_RE.finditer(block)]
        bare = WRAPPING_HTML_RE.sub("", block)
        if tags:
            removed.append("html: " + " ".join(tags))
        if bare.strip():
            out.append(bare)
    return out


def _drop_cut_off_tail(text: str, removed: list[str]) -> str:
    """Drop a last sentence the token budget cut off, when at least one whole sentence stays."""
    stripped = text.rstrip()
    if not stripped or stripped.endswith((".", "!", "?", "…", ")", '"', "'", "”", "’", "`", "*")):
        return text
    last_line = stripped.splitlines()[-1].strip()
    if last_line.startswith(("#", "-", "*", "|", "```")) or re.match(r"^\d+[.)]\s", last_line):
        return text
    cut = max(stripped.rfind(". "), stripped.rfind("! "), stripped.rfind("? "), stripped.rfind(".\n"))
    if cut < len(stripped) // 3:
        return text
    removed.append(f"cut-off sentence: {stripped[cut + 1 :].strip()[:80]}")
    return stripped[: cut + 1]


def clean_draft(text: str, allowed_text: str = "", *, truncated: bool = False) -> CleanedDraft:
    """The draft without assistant preamble and sign-off, repeated sentences and invented links.

    ``allowed_text`` holds every address the draft may use (brief, sources); ``truncated`` says the token
    budget ended the text, so a half sentence at the end is dropped.
    """
    removed: list[str] = []
    blocks = paragraphs(text.strip())
    blocks = _drop_wrapping_html(blocks, removed)
    blocks = _drop_preamble(blocks, removed)
    blocks = _drop_sign_off(blocks, removed)
    blocks = _drop_repeats(blocks, removed)
    cleaned = "\n\n".join(b.strip() for b in blocks if b.strip())
    cleaned = _drop_invented_links(cleaned, allowed_text, removed)
    if truncated:
        cleaned = _drop_cut_off_tail(cleaned, removed)
    return CleanedDraft(text=cleaned.strip(), removed=removed)


class HygieneResult(BaseModel):
    preamble: bool
    scaffold: bool
    """Prompt furniture in the draft: a task line, style card, critique, quote markers."""
    echo_fraction: float
    """Share of the draft's word 5-grams found in its own prompt (instructions, sources, examples)."""
    new_words: int
    """Distinct words of the draft that are not in its brief."""
    repeated_4gram_rate: float
    invented_urls: list[str]
    placeholders: list[str] = []
    """Template blanks left to fill in: a post, but not one to publish as it is (lowers the score)."""
    problems: list[str]
    reject: bool
    """True: this is not a post (an echo, a restated title, a loop, prompt furniture); never select it."""

    @property
    def score(self) -> float:
        if self.reject:
            return 0.0
        blanks = PLACEHOLDER_PENALTY if self.placeholders else 0.0
        return 1.0 - min(1.0, self.echo_fraction + self.repeated_4gram_rate + blanks)


def check_hygiene(text: str, *, brief: str = "", prompt_texts: Iterable[str] = (), allowed_text: str = "") -> HygieneResult:
    """Is this still a post after cleaning? See the module docstring."""
    tokens = lower_words(text)
    prompt_grams: set[tuple[str, ...]] = set()
    for part in prompt_texts:
        words_ = lower_words(part)
        prompt_grams.update(tuple(words_[i : i + ECHO_NGRAM]) for i in range(len(words_) - ECHO_NGRAM + 1))
    grams = [tuple(tokens[i : i + ECHO_NGRAM]) for i in range(len(tokens) - ECHO_NGRAM + 1)]
    echo = sum(g in prompt_grams for g in grams) / len(grams) if grams else 0.0
    new_words = len(set(tokens) - set(lower_words(brief)))
    loops = repeated_ngram_rate(text)
    first = text.strip().split("\n", 1)[0]
    preamble = bool(PREAMBLE_RE.match(first))
    scaffold = bool(SCAFFOLD_RE.search(text))
    invented = invented_urls(text, allowed_text)
    problems: list[str] = []
    if not tokens:
        problems.append("empty: nothing is left of the draft")
    if scaffold:
        problems.append("echo: the draft repeats the prompt's own instructions, style card or critique")
    if echo > ECHO_MAX_FRACTION:
        problems.append(f"echo: {echo:.0%} of the draft's phrases are copied from its prompt")
    if tokens and brief.strip() and new_words < MIN_NEW_WORDS:
        problems.append(f"restates the brief: only {new_words} words beyond the title")
    if loops > MAX_REPEATED_4GRAM_RATE:
        problems.append(f"loop: {loops:.0%} of its 4-word phrases repeat")
    if preamble:
        problems.append("opens like an assistant's reply, not a post")
    if invented:
        problems.append("links to addresses in neither the brief nor the sources: " + ", ".join(invented[:3]))
    reject = bool(problems)
    return HygieneResult(
        preamble=preamble, scaffold=scaffold, echo_fraction=echo, new_words=new_words,
        repeated_4gram_rate=loops, invented_urls=invented, placeholders=placeholders_in(text), problems=problems,
        reject=reject,
    )


def allowed_urls_text(brief: str, sources: Sequence[str]) -> str:
    """Everything whose addresses a draft may cite."""
    return "\n".join([brief, *sources])
