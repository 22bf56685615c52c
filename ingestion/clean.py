"""Cleaning: remove what is not the author's voice, keep what is.

Removed: boilerplate lines (subscribe/share/follow prompts, "originally published at", cookie notices),
tracking parameters in URLs, template markup (Hugo ``{{< >}}``/``{{% %}}``, Jekyll/Liquid ``{% %}`` and
``{{ }}``, WordPress ``[caption]...[/caption]``-style shortcodes, HTML comments such as ``<!--more-->``) and
zero-width characters. Kept: paragraph breaks, markdown structure (headings, lists, quotes), emoji, hashtags,
and code blocks, which are never touched: the block structure comes from a CommonMark parser
(markdown-it-py), so fenced, indented and ``<pre>`` code are found the way a renderer finds them.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from twin.domain import Kind, RawDocument

# Query parameters that only track where a click came from. Kept as an explicit list (rather than
# courlan's broader crawl-dedup pattern) because that pattern also drops real parameters like
# `?source=` or `?gallery_id=` that a reader needs.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "twclid", "yclid", "igshid", "igsh",
        "mc_cid", "mc_eid", "ref", "ref_src", "ref_url", "_hsenc", "_hsmi", "mkt_tok", "trk", "trkinfo",
        "li_fat_id", "oly_anon_id", "oly_enc_id", "vero_id", "wickedid", "__s", "sc_cid", "cmpid",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_")
# x.com / twitter.com add ?s=20&t=<token> to every shared link: they identify the sharer, not the tweet.
SHARE_PARAMS_BY_HOST = {
    "x.com": frozenset({"s", "t"}),
    "twitter.com": frozenset({"s", "t"}),
    "mobile.twitter.com": frozenset({"s", "t"}),
    "youtu.be": frozenset({"si"}),
    "youtube.com": frozenset({"si", "feature"}),
    "open.spotify.com": frozenset({"si"}),
    "linkedin.com": frozenset({"trackingId", "lipi", "midToken", "midSig", "trk", "rcm"}),
}

URL_RE = re.compile(r"https?://[^\s<>\"'`)\]]+")

# At most three more words after a prompt: "Follow me on LinkedIn" is chrome, "Follow me on this journey as I
# build a database" is the author talking.
SHORT_TAIL = r"(?:\W+[\w'.@/-]+){0,3}\W*"
# Lines that are platform chrome, matched case-insensitively against the line with markdown decoration
# removed. Only short lines are tested (see BOILERPLATE_MAX_WORDS) so a sentence that merely mentions
# subscribing is never dropped.
BOILERPLATE_PATTERNS = [
    r"subscribe( now| for free| here)?[.!]?",
    r"(thanks|thank you) for reading\b.*",
    r".*\bsubscribe for free to receive new posts.*",
    r"share( this)?( post| article| story)?[.!]?",
    r"(leave a|add a|write a) (comment|response)[.!]?",
    r"(copy link|restack|give a gift subscription|get the app|start writing)",
    r"(sign up|subscribe) (to|for) (my|our|the) (free )?(newsletter|mailing list|updates)" + SHORT_TAIL,
    r"click (here )?to (subscribe|share|tweet)" + SHORT_TAIL,
    r"follow (me|us) on\b" + SHORT_TAIL,
    r"(you can )?(also )?find me on (twitter|x|linkedin|mastodon|bluesky|github)\b" + SHORT_TAIL,
    r"(this (post|article|story) was )?originally (published|posted) (at|on|in)\b" + SHORT_TAIL,
    r"discover more from\b" + SHORT_TAIL,
    r"type your email.*",
    r"already have an account\?.*",
    r"(continue|keep) reading" + SHORT_TAIL,
    r"(read|view) (more|the full (post|article|story)) (on|at)\b" + SHORT_TAIL,
    r"(we|this (web)?site|our site) uses? cookies\b.*",
    r"(accept|reject|manage) (all )?cookies.*",
    r"(cookie|privacy) (policy|settings|preferences)",
    r"(…|\.\.\.)?\s*see more",
    r"show more",
    r"\d+ (likes?|comments?|reposts?|reactions?|claps?|responses?|restacks?)",
    r"(become|get) (a medium member|unlimited access)" + SHORT_TAIL,
    r"listen to this (post|article|story)" + SHORT_TAIL,
    r"(member-only story|open in app)",
]
BOILERPLATE_RE = re.compile(r"^(?:" + "|".join(BOILERPLATE_PATTERNS) + r")$", re.IGNORECASE)
BOILERPLATE_MAX_WORDS = 25
SENTENCE_END = (".", "!", "?", ":", ")", "*", "_", "]")
# Markdown decoration around a line: quote markers, list bullets, heading marks, emphasis.
LINE_DECORATION_RE = re.compile(r"^[\s>#*_\-+]*|[\s*_!.:]*$")
MARKDOWN_LINK_RE = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")

HUGO_SHORTCODE_RE = re.compile(r"[ \t]*\{\{[<%].*?[%>]\}\}", re.DOTALL)
LIQUID_TAG_RE = re.compile(r"[ \t]*\{%-?.*?-?%\}", re.DOTALL)
LIQUID_OUTPUT_RE = re.compile(r"[ \t]*\{\{.*?\}\}", re.DOTALL)
HTML_COMMENT_RE = re.compile(r"[ \t]*<!--.*?-->", re.DOTALL)
LIQUID_HIGHLIGHT_RE = re.compile(
    r"^[ \t]*\{%-?\s*highlight\s+([\w+#.-]+)[^%]*%\}[ \t]*\n(.*?)\n?[ \t]*\{%-?\s*endhighlight\s*-?%\}[ \t]*$",
    re.DOTALL | re.MULTILINE,
)
WORDPRESS_SHORTCODES = (
    "caption", "gallery", "embed", "audio", "video", "playlist", "youtube", "vimeo", "tweet", "soundcloud",
    "wpvideo", "googlemaps", "contact-form", "button", "spoiler", "pullquote", "blockquote", "latex",
    "sourcecode", "code",
)
_WP_NAMES = "|".join(re.escape(name) for name in WORDPRESS_SHORTCODES)
# A WordPress shortcode is either paired ([caption ...]text[/caption]: keep the text) or carries
# attributes ([gallery ids="1,2"]). A bare [video] is left alone: it is as likely a markdown link label.
WP_PAIRED_RE = re.compile(rf"\[({_WP_NAMES})(?:\s[^\]]*)?\](.*?)\[/\1\]", re.DOTALL | re.IGNORECASE)
WP_WITH_ATTRS_RE = re.compile(rf"\[(?:{_WP_NAMES})\s+[\w-]+=[^\]]*\]", re.IGNORECASE)
INLINE_CODE_RE = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
INLINE_HTML_TAG_RE = re.compile(r"</?[a-zA-Z][^>\n]*>")

# Invisible characters that only get in the way; the zero-width joiner is kept inside emoji sequences.
# Removed inside code blocks too: Jekyll authors put a zero-width space in `{\u200b{` to stop Liquid
# from reading their code, so removing it gives back the code they meant.
ZERO_WIDTH = {"\u200b", "\u200c", "\u2060", "\ufeff", "\u00ad", "\u180e"}
ZWJ = "\u200d"


def strip_tracking_params(url: str) -> str:
    """The URL without click-tracking query parameters; everything else as the author wrote it."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query:
        return url
    host = (parts.hostname or "").removeprefix("www.")
    host_params = SHARE_PARAMS_BY_HOST.get(host, frozenset())
    if host.endswith(".linkedin.com"):
        host_params = SHARE_PARAMS_BY_HOST["linkedin.com"]
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [
        (key, value)
        for key, value in pairs
        if key.lower() not in TRACKING_PARAMS
        and not key.lower().startswith(TRACKING_PREFIXES)
        and key not in host_params
    ]
    if len(kept) == len(pairs):
        return url
    return urlunsplit(parts._replace(query=urlencode(kept, doseq=True)))


def _clean_urls(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        url = match.group(0)
        trailing = ""
        while url and url[-1] in ".,;:!?":  # sentence punctuation after a bare URL
            trailing = url[-1] + trailing
            url = url[:-1]
        return strip_tracking_params(url) + trailing

    return URL_RE.sub(replace, text)


def _remove_invisible(text: str) -> str:
    out: list[str] = []
    for index, char in enumerate(text):
        if char in ZERO_WIDTH:
            continue
        if char == ZWJ:
            before = text[index - 1] if index else ""
            after = text[index + 1] if index + 1 < len(text) else ""
            if not (_is_emoji_part(before) and _is_emoji_part(after)):
                continue
        out.append(char)
    return "".join(out)


def _is_emoji_part(char: str) -> bool:
    return bool(char) and (
        unicodedata.category(char) in {"So", "Sk"} or char == "\ufe0f" or "\U0001f3fb" <= char <= "\U0001f3ff"
    )


def _is_boilerplate(line: str) -> bool:
    if not line.strip() or len(line.split()) > BOILERPLATE_MAX_WORDS:
        return False
    bare = MARKDOWN_LINK_RE.sub(r"\1", line)
    bare = INLINE_HTML_TAG_RE.sub("", bare)
    bare = LINE_DECORATION_RE.sub("", bare).strip()
    return bool(bare) and BOILERPLATE_RE.match(bare) is not None


def _drop_boilerplate(lines: list[str]) -> list[str]:
    """Drop boilerplate paragraphs, and boilerplate lines that stand on their own inside a paragraph.

    A line inside a soft-wrapped paragraph ("Read more on [interactive" followed by "rebasing](...)") is
    only a candidate when it is a whole sentence: the line before it ended one, and it ends one or the
    paragraph.
    """
    out: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph and not _is_boilerplate(" ".join(paragraph)):
            for index, line in enumerate(paragraph):
                starts_sentence = index == 0 or paragraph[index - 1].endswith(SENTENCE_END)
                ends_sentence = index == len(paragraph) - 1 or line.endswith(SENTENCE_END)
                if not (starts_sentence and ends_sentence and _is_boilerplate(line)):
                    out.append(line)
        paragraph.clear()

    for line in lines:
        if line.strip():
            paragraph.append(line)
        else:
            flush()
            out.append(line)
    flush()
    return out


def _clean_prose(text: str) -> str:
    """Clean a run of markdown that holds no code blocks (inline code spans are protected)."""
    spans: list[str] = []

    def protect(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"\x00{len(spans) - 1}\x00"

    text = INLINE_CODE_RE.sub(protect, text)
    text = HTML_COMMENT_RE.sub("", text)
    text = HUGO_SHORTCODE_RE.sub("", text)
    text = LIQUID_TAG_RE.sub("", text)
    text = LIQUID_OUTPUT_RE.sub("", text)
    for _ in range(3):  # nested shortcodes unwrap from the inside out
        text, count = WP_PAIRED_RE.subn(lambda m: m.group(2), text)
        if not count:
            break
    text = WP_WITH_ATTRS_RE.sub("", text)
    text = _clean_urls(text)
    text = "\n".join(_drop_boilerplate([line.rstrip() for line in text.split("\n")]))
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], text)


def _code_line_ranges(text: str) -> list[tuple[int, int]]:
    """[start, end) line ranges of code blocks (fenced, indented, <pre>) as a CommonMark renderer sees them."""
    from markdown_it import MarkdownIt

    ranges: list[tuple[int, int]] = []
    for token in MarkdownIt("commonmark").parse(text):
        if token.map is None:
            continue
        if token.type in {"fence", "code_block"} or (
            token.type == "html_block" and token.content.lstrip().lower().startswith("<pre")
        ):
            ranges.append((token.map[0], token.map[1]))
    return ranges


def clean_markdown(text: str) -> str:
    """Clean markdown prose; code blocks come through verbatim."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _remove_invisible(text)
    text = LIQUID_HIGHLIGHT_RE.sub(lambda m: f"```{m.group(1)}\n{m.group(2)}\n```", text)
    lines = text.split("\n")
    tagged: list[tuple[str, bool]] = []  # (line, is_code)
    cursor = 0
    for start, end in _code_line_ranges(text):
        if start < cursor:
            continue  # a token nested inside a range already taken
        tagged.extend((line, False) for line in _clean_prose("\n".join(lines[cursor:start])).split("\n"))
        tagged.extend((line, True) for line in lines[start:end])
        cursor = end
    tagged.extend((line, False) for line in _clean_prose("\n".join(lines[cursor:])).split("\n"))
    out: list[str] = []
    for line, is_code in tagged:
        if is_code or line.strip():
            out.append(line)
        elif out and out[-1].strip():
            out.append("")  # at most one blank line between prose lines
    return "\n".join(out).strip("\n")


def clean_text(raw: RawDocument) -> str:
    """The cleaned text of a collected document: markdown cleaned, source code only normalised."""
    if raw.kind is Kind.code:
        text = unicodedata.normalize("NFC", raw.text.replace("\r\n", "\n")).lstrip("\ufeff")
        return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
    return clean_markdown(raw.text)
