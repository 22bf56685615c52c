"""Text helpers shared by the metrics: sentences, words, prose without code, and a function-word list.

Sentences come from NLTK's Punkt English model. NLTK's data cannot be downloaded here, but
llama-index-core ships ``punkt_tab`` inside its wheel; the parameter files are read directly, so
nothing touches ``nltk.data.path`` (process-wide state) or the network.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nltk.tokenize.punkt import PunktSentenceTokenizer

WORD_RE = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*")
FENCED_CODE_RE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE_RE = re.compile(r"`[^`\n]+`")
HTML_TAG_RE = re.compile(r"</?[A-Za-z][^>\n]*>")
URL_RE = re.compile(r"https?://[^\s<>()\[\]\"']+[^\s<>()\[\]\"'.,;:!?]")
MARKDOWN_LINK_RE = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
PARAGRAPH_SPLIT_RE = re.compile(r"\n\s*\n")
LIST_MARKER_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s+\S")
EMOJI_RE = re.compile(
    "[\U0001f300-\U0001faff\U0001f000-\U0001f2ff\U0001f600-\U0001f64f\u2600-\u27bf\u2b50\u2b55]"
)
HASHTAG_RE = re.compile(r"(?<![\w#&/])#[A-Za-z][\w-]*")

# A fixed list of English function words (articles, pronouns, prepositions, conjunctions, auxiliaries,
# common adverbs and quantifiers), the classic authorship markers of Mosteller and Wallace and later
# stylometry. Order matters only for the profile vector, so it is fixed here and never sorted by data.
FUNCTION_WORDS: tuple[str, ...] = (
    "a", "about", "above", "after", "again", "against", "all", "almost", "also", "although", "always",
    "am", "among", "an", "and", "another", "any", "anything", "are", "around", "as", "at", "be",
    "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could",
    "did", "do", "does", "doing", "down", "during", "each", "either", "enough", "even", "ever",
    "every", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here",
    "hers", "herself", "him", "himself", "his", "how", "however", "i", "if", "in", "into", "is", "it",
    "its", "itself", "just", "least", "less", "like", "many", "may", "me", "might", "more", "most",
    "much", "must", "my", "myself", "neither", "never", "no", "nor", "not", "nothing", "now", "of",
    "off", "often", "on", "once", "one", "only", "or", "other", "our", "ours", "ourselves", "out",
    "over", "own", "perhaps", "quite", "rather", "really", "same", "she", "should", "since", "so",
    "some", "something", "still", "such", "than", "that", "the", "their", "theirs", "them",
    "themselves", "then", "there", "these", "they", "this", "those", "though", "through", "thus",
    "to", "too", "toward", "under", "until", "up", "upon", "us", "very", "was", "we", "well", "were",
    "what", "when", "where", "whether", "which", "while", "who", "whom", "whose", "why", "will",
    "with", "within", "without", "would", "yet", "you", "your", "yours", "yourself", "yourselves",
)
FUNCTION_WORD_SET = frozenset(FUNCTION_WORDS)


@functools.lru_cache(maxsize=1)
def _punkt_english() -> PunktSentenceTokenizer:
    from nltk.tabdata import PunktDecoder
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    spec = importlib.util.find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llama-index-core is not installed; it ships the Punkt English model we use")
    model_dir = (
        Path(spec.submodule_search_locations[0]) / "_static" / "nltk_cache" / "tokenizers" / "punkt_tab"
        / "english"
    )
    if not model_dir.is_dir():
        raise RuntimeError(f"Punkt English model not found at {model_dir}")
    decoder = PunktDecoder()
    params = PunktParameters()
    with (model_dir / "collocations.tab").open(encoding="utf-8") as f:
        params.collocations = set(decoder.tab2tups(f))
    with (model_dir / "sent_starters.txt").open(encoding="utf-8") as f:
        params.sent_starters = decoder.txt2set(f)
    with (model_dir / "abbrev_types.txt").open(encoding="utf-8") as f:
        params.abbrev_types = decoder.txt2set(f)
    with (model_dir / "ortho_context.tab").open(encoding="utf-8") as f:
        params.ortho_context = decoder.tab2intdict(f)
    return PunktSentenceTokenizer(params)


def strip_code(text: str) -> str:
    """Drop fenced code blocks, inline code and HTML tags: they are not the author's prose voice."""
    text = FENCED_CODE_RE.sub("\n", text)
    text = INLINE_CODE_RE.sub(" ", text)
    return HTML_TAG_RE.sub(" ", text)


def paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks, stripped, empty ones dropped."""
    return [p.strip() for p in PARAGRAPH_SPLIT_RE.split(text) if p.strip()]


def split_sentences(text: str) -> list[str]:
    """Sentences of prose: Punkt English within each paragraph; headings and list items stand alone.

    A line break inside a paragraph is kept as a soft wrap (many authors hard-wrap at 72 columns),
    except before a list item or heading, which starts a new unit.
    """
    tokenizer = _punkt_english()
    sentences: list[str] = []
    for block in paragraphs(text):
        units: list[list[str]] = []
        for line in block.splitlines():
            if not line.strip():
                continue
            if not units or LIST_MARKER_RE.match(line) or HEADING_RE.match(line) or HEADING_RE.match(
                units[-1][0]
            ):
                units.append([line.strip()])
            else:
                units[-1].append(line.strip())
        for unit in units:
            joined = " ".join(unit)
            sentences.extend(s.strip() for s in tokenizer.tokenize(joined) if s.strip())
    return sentences


def words(text: str) -> list[str]:
    """Word tokens (letters and digits, inner apostrophes kept), case preserved."""
    return WORD_RE.findall(text)


def lower_words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in WORD_RE.findall(text)]


def count_links(text: str) -> int:
    """Markdown links plus bare URLs outside them."""
    markdown_links = MARKDOWN_LINK_RE.findall(text)
    bare = URL_RE.findall(MARKDOWN_LINK_RE.sub(" ", text))
    return len(markdown_links) + len(bare)


def count_hashtags(text: str) -> int:
    return len(HASHTAG_RE.findall(text))
