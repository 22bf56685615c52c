"""Main text and metadata out of a fetched HTML page.

trafilatura does the work (it scored F1 0.95 on a public article-extraction benchmark where crawl4ai's
pruning filter scored 0.78): markdown output with formatting, so paragraphs, headings, lists, emphasis,
code blocks, tables, emoji and hashtags survive. Two things are added on top of its markdown:
blockquotes come out with ``> `` markers (trafilatura keeps the quote's text but drops the marker,
and quoting is part of a writer's voice), and when trafilatura finds no main text the page goes through
crawl4ai's markdown generator instead, which ``extractor`` reports.
"""

from __future__ import annotations

import logging
import os
import tempfile
from copy import deepcopy
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

log = logging.getLogger(__name__)

Favor = Literal["balanced", "precision", "recall"]

# Measured by benchmarks/extraction.py (32 pages, 8 layouts; benchmarks/results/extraction.json):
# favor_precision scored F1 0.994 against 0.992 for the balanced and recall modes, and was the fastest;
# on short pages it also keeps less furniture around the post.
DEFAULT_FAVOR: Favor = "precision"


class ExtractedPage(BaseModel):
    url: str
    title: str | None = None
    published_at: datetime | None = None
    author: str | None = None
    description: str | None = None
    site_name: str | None = None
    tags: list[str] = Field(default_factory=list)
    text_markdown: str
    extractor: Literal["trafilatura", "crawl4ai", "none"]
    """Which extractor produced ``text_markdown`` (``crawl4ai`` is the fallback)."""

    @property
    def word_count(self) -> int:
        return len(self.text_markdown.split())


def parse_datetime(value: str | None) -> datetime | None:
    """An ISO-ish date or datetime string as an aware datetime (UTC when no zone is given)."""
    if not value:
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.strptime(text[:10], "%Y-%m-%d")
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def extract_article(html: str, url: str, *, favor: Favor = DEFAULT_FAVOR) -> ExtractedPage:
    """Main text of an article page as markdown, with title, date, author and tags when the page has them."""
    import trafilatura

    document = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_formatting=True,
        include_tables=True,
        include_links=False,
        include_images=False,
        include_comments=False,
        favor_precision=favor == "precision",
        favor_recall=favor == "recall",
        date_extraction_params={
            "extensive_search": True,
            "original_date": True,
            "outputformat": "%Y-%m-%dT%H:%M:%S%z",
        },
    )
    text = _markdown_with_quotes(document.body) if document is not None and document.body is not None else ""
    extractor: Literal["trafilatura", "crawl4ai", "none"] = "trafilatura"
    if not text.strip():
        text = crawl4ai_markdown(html, url)
        extractor = "crawl4ai" if text.strip() else "none"
    metadata = document if document is not None else trafilatura.extract_metadata(html, default_url=url)
    tags: list[str] = []
    if metadata is not None:
        for group in (metadata.categories or [], metadata.tags or []):
            tags.extend(tag for tag in group if tag and tag not in tags)
    return ExtractedPage(
        url=url,
        title=(metadata.title if metadata is not None else None) or None,
        published_at=parse_datetime(metadata.date if metadata is not None else None),
        author=(metadata.author if metadata is not None else None) or None,
        description=(metadata.description if metadata is not None else None) or None,
        site_name=(metadata.sitename if metadata is not None else None) or None,
        tags=tags,
        text_markdown=text.strip(),
        extractor=extractor,
    )


def _markdown_with_quotes(body: object) -> str:
    """trafilatura's markdown for its extracted tree, with ``> `` on blockquote lines."""
    from trafilatura.utils import normalize_unicode
    from trafilatura.xml import xmltotxt

    tree = deepcopy(body)
    quotes: dict[str, str] = {}
    for index, quote in enumerate(list(tree.iter("quote"))):  # type: ignore[attr-defined]
        if quote.getparent() is None or any(a.tag == "quote" for a in quote.iterancestors()):
            continue
        rendered = xmltotxt(_as_root(quote), include_formatting=True).strip()
        marker = f"TWINQUOTEMARK{index}X"
        quotes[marker] = "\n".join(f"> {line}".rstrip() for line in rendered.splitlines())
        placeholder = quote.makeelement("p", {})
        placeholder.text = marker
        placeholder.tail = quote.tail
        quote.getparent().replace(quote, placeholder)
    text = xmltotxt(tree, include_formatting=True)
    for marker, block in quotes.items():
        text = text.replace(marker, block)
    return normalize_unicode(text)


def _as_root(element: object) -> object:
    """A copy of one element as a standalone tree (xmltotxt renders a whole tree, tails included)."""
    copy = deepcopy(element)
    copy.tail = None  # type: ignore[attr-defined]
    wrapper = copy.makeelement("body", {})  # type: ignore[attr-defined]
    wrapper.append(copy)
    return wrapper


def crawl4ai_markdown(html: str, url: str, *, pruned: bool = True) -> str:
    """crawl4ai's markdown of a page: pruned of low-text blocks (``fit_markdown``) or whole."""
    # Importing crawl4ai creates its state folders under $CRAWL4_AI_BASE_DIRECTORY (the home dir when
    # unset). WebFetcher points it at the data dir; a bare call here gets a scratch folder instead.
    os.environ.setdefault("CRAWL4_AI_BASE_DIRECTORY", str(Path(tempfile.gettempdir()) / f"llm-twin-crawl4ai-{os.getuid()}"))
    os.environ.setdefault("CRAWL4AI_NO_CLOUD_NOTICE", "1")
    from crawl4ai.content_filter_strategy import PruningContentFilterLXML
    from crawl4ai.markdown_generation_strategy import DefaultMarkdownGenerator

    generator = DefaultMarkdownGenerator(
        content_filter=PruningContentFilterLXML() if pruned else None,
        options={"ignore_links": True, "ignore_images": True},
    )
    result = generator.generate_markdown(input_html=html, base_url=url, citations=False)
    if pruned and result.fit_markdown and result.fit_markdown.strip():
        return result.fit_markdown
    return result.raw_markdown or ""
