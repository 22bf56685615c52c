"""Chunking by kind: posts whole, articles by headings and paragraphs, code by top-level definition.

Token counts come from the embedder's own tokenizer (`HFTokenCounter`), so "max_tokens" means what the
embedder will see. Article structure comes from a CommonMark parser (markdown-it-py): LlamaIndex's
`MarkdownNodeParser` only knows backtick fences, so a ``# comment`` line inside an indented or ``~~~`` code
block would start a new section there (17 of the 365 Chris Wellons articles have one). A paragraph too long
for one chunk goes through LlamaIndex's `SentenceSplitter` with the same tokenizer.
"""

from __future__ import annotations

import ast
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from twin.domain import Chunk, Document, Kind
from twin.settings import ChunkSettings

if TYPE_CHECKING:
    from collections.abc import Callable

CHUNK_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/llm-twin/chunks")
TITLE_SEPARATOR = " › "
MARKDOWN_SUFFIXES = (".md", ".markdown", ".rst", ".txt", ".mdx")
SENTENCE_BOUNDARY_RE = re.compile(r"(?<=[.!?])\s+(?=\S)")
FENCE_OPEN_RE = re.compile(r"^(\s*)(`{3,}|~{3,})")


class TokenCounter(Protocol):
    def count(self, text: str) -> int: ...


class HFTokenCounter:
    """Counts tokens with a Hugging Face `tokenizer.json` (the embedder's own), without special tokens."""

    def __init__(self, tokenizer_file: Path | str) -> None:
        from tokenizers import Tokenizer

        path = Path(tokenizer_file)
        if path.is_dir():
            path = path / "tokenizer.json"
        self._tokenizer = Tokenizer.from_file(str(path))
        # The file may enable truncation (MiniLM's stops at 128) and padding: both would falsify counts.
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


UnitKind = Literal["heading", "prose", "code"]


@dataclass
class _Unit:
    """A piece that is never split when it fits: a heading, a paragraph or list, a code block, a definition."""

    text: str
    tokens: int
    kind: UnitKind
    path: tuple[str, ...] = ()
    """Heading path (article) or definition name (code) the unit belongs to."""


@dataclass
class _Draft:
    units: list[_Unit] = field(default_factory=list)
    tokens: int = 0
    path: tuple[str, ...] = ()


def chunk_id(document_id: int, version: int, index: int) -> str:
    """Deterministic, so embedding the same document version again overwrites the same points."""
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{document_id}:{version}:{index}"))


def chunk_document(
    document: Document, author: str, settings: ChunkSettings, tokenizer: TokenCounter
) -> list[Chunk]:
    """Split one stored document version into retrievable chunks."""
    text = document.clean_text.strip("\n")
    if not text.strip():
        return []
    if document.kind is Kind.code and not _is_markdown_path(document.url):
        pieces = _chunk_code(text, _language_of(document.url), settings, tokenizer)
    elif document.kind in (Kind.post, Kind.note) and tokenizer.count(text) <= settings.post_max_tokens:
        pieces = [(text, ())]
    else:
        pieces = _chunk_markdown(text, settings, tokenizer)
    return [
        Chunk(
            id=chunk_id(document.id, document.version, index),
            document_id=document.id,
            version=document.version,
            author=author,
            author_id=document.author_id,
            platform=document.platform,
            kind=document.kind,
            url=document.url,
            title=_title(document.title, path),
            index=index,
            text=piece,
            published_at=document.published_at,
        )
        for index, (piece, path) in enumerate(pieces)
        if piece.strip()
    ]


def _title(document_title: str | None, path: tuple[str, ...]) -> str | None:
    parts = [document_title] if document_title else []
    for part in path:
        if part and part not in parts:
            parts.append(part)
    return TITLE_SEPARATOR.join(parts) if parts else None


def _is_markdown_path(url: str) -> bool:
    return url.lower().endswith(MARKDOWN_SUFFIXES)


def _language_of(url: str) -> str:
    return Path(url.split("?")[0]).suffix.lower().lstrip(".")


# ---------------------------------------------------------------- articles


def _markdown_units(text: str, tokenizer: TokenCounter) -> list[_Unit]:
    from markdown_it import MarkdownIt

    lines = text.split("\n")
    tokens = MarkdownIt("commonmark").parse(text)
    units: list[_Unit] = []
    headings: list[tuple[int, str]] = []
    for position, token in enumerate(tokens):
        if token.level != 0 or token.map is None or token.nesting == -1:
            continue
        block = "\n".join(lines[token.map[0] : token.map[1]]).strip("\n")
        if not block.strip():
            continue
        if token.type == "heading_open":
            level = int(token.tag[1:])
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, tokens[position + 1].content.strip()))
            kind: UnitKind = "heading"
        elif token.type in {"fence", "code_block"}:
            kind = "code"
        else:
            kind = "prose"
        units.append(_Unit(block, tokenizer.count(block), kind, tuple(h[1] for h in headings)))
    return units


def _chunk_markdown(
    text: str, settings: ChunkSettings, tokenizer: TokenCounter
) -> list[tuple[str, tuple[str, ...]]]:
    units = _markdown_units(text, tokenizer)
    if not units:  # markdown-it found no blocks (whitespace only); keep what there is
        units = [_Unit(text, tokenizer.count(text), "prose")]
    return _pack(units, settings, tokenizer, keep_code_with_lead_in=True)


def _pack(
    units: list[_Unit], settings: ChunkSettings, tokenizer: TokenCounter, *, keep_code_with_lead_in: bool
) -> list[tuple[str, tuple[str, ...]]]:
    """Greedy packing to about `target_tokens`, never over `max_tokens` when a unit fits on its own.

    A heading starts a new chunk once the current one is half full, so sections stay together; a code block
    may take a chunk up to `max_tokens` to stay with the paragraph that introduces it. A chunk that
    continues prose cut for size starts with the previous chunk's last sentences (up to `overlap_tokens`).
    """
    target, limit = settings.target_tokens, settings.max_tokens
    chunks: list[_Draft] = []
    current = _Draft()

    def flush() -> None:
        nonlocal current
        if current.units:
            chunks.append(current)
        current = _Draft()

    for unit in units:
        for piece in _split_oversized(unit, settings, tokenizer):
            if not current.units:
                current = _Draft([piece], piece.tokens, piece.path)
                continue
            fits_target = current.tokens + piece.tokens <= target
            within_limit = current.tokens + piece.tokens <= limit
            keeps_code_with_lead_in = keep_code_with_lead_in and piece.kind == "code" and within_limit
            completes_heading = within_limit and all(unit.kind == "heading" for unit in current.units)
            new_section = piece.kind == "heading" and current.tokens >= target // 2
            if (fits_target or keeps_code_with_lead_in or completes_heading) and not new_section:
                current.units.append(piece)
                current.tokens += piece.tokens
                continue
            previous = current
            flush()
            overlap = None
            if piece.kind == "prose" and previous.units[-1].kind == "prose" and settings.overlap_tokens > 0:
                overlap = _tail_sentences(previous.units[-1].text, settings.overlap_tokens, tokenizer)
            if overlap and overlap.tokens + piece.tokens <= limit:
                current = _Draft([overlap, piece], overlap.tokens + piece.tokens, piece.path)
            else:
                current = _Draft([piece], piece.tokens, piece.path)
    flush()
    return [("\n\n".join(unit.text for unit in draft.units), draft.path) for draft in chunks]


def _tail_sentences(text: str, budget: int, tokenizer: TokenCounter) -> _Unit | None:
    sentences = SENTENCE_BOUNDARY_RE.split(text.strip())
    if len(sentences) < 2:
        return None  # the whole unit is one sentence: repeating it would not be an overlap
    taken: list[str] = []
    for sentence in reversed(sentences[1:]):
        candidate = " ".join([sentence, *taken])
        if tokenizer.count(candidate) > budget:
            break
        taken.insert(0, sentence)
    if not taken:
        return None
    tail = " ".join(taken)
    return _Unit(tail, tokenizer.count(tail), "prose")


def _split_oversized(unit: _Unit, settings: ChunkSettings, tokenizer: TokenCounter) -> list[_Unit]:
    if unit.tokens <= settings.max_tokens:
        return [unit]
    if unit.kind == "code":
        return [
            _Unit(text, tokenizer.count(text), "code", unit.path)
            for text in _split_code_block(unit.text, settings.max_tokens, tokenizer)
        ]
    splitter = _sentence_splitter(settings, tokenizer)
    return [
        _Unit(text, tokenizer.count(text), "prose", unit.path) for text in splitter.split_text(unit.text)
    ]


def _sentence_splitter(settings: ChunkSettings, tokenizer: TokenCounter):  # noqa: ANN202 - lazy import
    from llama_index.core.node_parser import SentenceSplitter

    as_tokens: Callable[[str], list[int]] = lambda text: [0] * tokenizer.count(text)  # noqa: E731
    return SentenceSplitter(
        chunk_size=settings.target_tokens,
        chunk_overlap=min(settings.overlap_tokens, settings.target_tokens // 4),
        tokenizer=as_tokens,
        paragraph_separator="\n\n",
    )


def _split_code_block(text: str, limit: int, tokenizer: TokenCounter) -> list[str]:
    """Split a too-long code block between lines, preferring blank lines; a fence is closed and reopened."""
    lines = text.split("\n")
    opener = FENCE_OPEN_RE.match(lines[0])
    fence_open = fence_close = None
    if opener and len(lines) >= 2 and lines[-1].strip().startswith(opener.group(2)[0] * 3):
        fence_open, fence_close = lines[0], lines[-1]
        lines = lines[1:-1]
    wrap_cost = tokenizer.count(f"{fence_open}\n{fence_close}") if fence_open else 0
    pieces = _pack_lines(lines, limit - wrap_cost, tokenizer)
    if fence_open:
        return [f"{fence_open}\n{piece}\n{fence_close}" for piece in pieces]
    return pieces


def _pack_lines(lines: list[str], limit: int, tokenizer: TokenCounter) -> list[str]:
    groups: list[list[str]] = [[]]
    for line in lines:  # blank-line separated groups, the natural seams of code
        groups[-1].append(line)
        if not line.strip():
            groups.append([])
    pieces: list[str] = []
    current: list[str] = []
    current_tokens = 0
    for group in groups:
        if not group:
            continue
        group_tokens = tokenizer.count("\n".join(group))
        if group_tokens > limit:
            candidates = [[line] for line in group]  # a group too big on its own: go line by line
        else:
            candidates = [group]
        for candidate in candidates:
            candidate_tokens = group_tokens if candidate is group else tokenizer.count(candidate[0])
            if current and current_tokens + candidate_tokens > limit:
                pieces.append("\n".join(current).strip("\n"))
                current, current_tokens = [], 0
            current.extend(candidate)
            current_tokens += candidate_tokens
    if current:
        pieces.append("\n".join(current).strip("\n"))
    return [piece for piece in pieces if piece.strip()]


# ---------------------------------------------------------------- code


def _chunk_code(
    text: str, language: str, settings: ChunkSettings, tokenizer: TokenCounter
) -> list[tuple[str, tuple[str, ...]]]:
    segments = _python_segments(text) if language == "py" else None
    if segments is None:
        segments = _blank_line_segments(text)
    units = [_Unit(body, tokenizer.count(body), "code", (name,) if name else ()) for body, name in segments]
    return _pack(units, settings, tokenizer, keep_code_with_lead_in=False)


def _python_segments(text: str) -> list[tuple[str, str | None]] | None:
    """Top-level statements grouped: each def/class (with decorators and the comments just above it) alone,
    runs of other statements (imports, constants) together. None when the file does not parse."""
    try:
        module = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    lines = text.split("\n")
    starts: list[tuple[int, str | None]] = []
    previous_was_definition = True
    for node in module.body:
        is_definition = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))]) - 1
        while start > 0 and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        if is_definition:
            starts.append((start, node.name))  # type: ignore[attr-defined]
        elif previous_was_definition:
            starts.append((start, None))
        previous_was_definition = is_definition
    if not starts:
        return [(text, None)]
    if starts[0][0] > 0:  # module docstring or leading comments before the first statement
        starts[0] = (0, starts[0][1])
    segments = []
    for (start, name), (end, _) in zip(starts, [*starts[1:], (len(lines), None)]):
        body = "\n".join(lines[start:end]).strip("\n")
        if body.strip():
            segments.append((body, name))
    return segments


def _blank_line_segments(text: str) -> list[tuple[str, str | None]]:
    """Top-level blocks of any language: split at blank lines, except before an indented line or a closing
    bracket, which continue the block above (a function body with blank lines inside stays whole)."""
    segments: list[list[str]] = []
    current: list[str] = []
    pending_blank = False
    for line in text.split("\n"):
        if not line.strip():
            pending_blank = True
            current.append(line)
            continue
        continues_block = line[:1].isspace() or line.lstrip()[:1] in {"}", ")", "]"} or line.startswith("end")
        if pending_blank and not continues_block and any(item.strip() for item in current):
            segments.append(current)
            current = []
        pending_blank = False
        current.append(line)
    if current:
        segments.append(current)
    return [("\n".join(segment).strip("\n"), None) for segment in segments if "".join(segment).strip()]
