"""Reading what a site publishes about itself: RSS/Atom feeds, sitemaps, feed links and page metadata.

These are the only places collectors take links from (never from links inside an article's text).
Feeds go through feedparser; sitemaps and HTML heads through lxml.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from pydantic import BaseModel, Field

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json", "application/rdf+xml")
_XML_START = re.compile(r"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(rss|feed|rdf:RDF|urlset|sitemapindex)\b",
                        re.S | re.I)


class FeedEntry(BaseModel):
    url: str
    title: str | None = None
    published_at: datetime | None = None
    content_html: str | None = None
    """The entry's full content (``content:encoded``) or its summary, when the feed carries one."""
    tags: list[str] = Field(default_factory=list)


class Feed(BaseModel):
    title: str | None = None
    entries: list[FeedEntry] = Field(default_factory=list)


class SitemapLinks(BaseModel):
    pages: list[str] = Field(default_factory=list)
    sitemaps: list[str] = Field(default_factory=list)
    """Child sitemaps of a sitemap index."""


class PageHead(BaseModel):
    """What a page's ``<head>`` says about it."""

    title: str | None = None
    og_type: str | None = None
    og_title: str | None = None
    og_description: str | None = None
    generator: str | None = None
    feeds: list[str] = Field(default_factory=list)
    """Feed URLs the page advertises with ``<link rel="alternate" type="application/rss+xml">``."""
    published_at: datetime | None = None
    json_ld_types: list[str] = Field(default_factory=list)


def xml_document_kind(text: str) -> str | None:
    """``feed``, ``sitemap`` or None, from the document's root element."""
    match = _XML_START.match(text[:4096])
    if not match:
        return None
    root = match.group(1).lower()
    return "sitemap" if root in ("urlset", "sitemapindex") else "feed"


def is_feed_response(text: str, content_type: str | None) -> bool:
    kind = (content_type or "").split(";")[0].strip().lower()
    return kind in FEED_TYPES or xml_document_kind(text) == "feed"


def _struct_time_to_datetime(value: object) -> datetime | None:
    if not value:
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)  # type: ignore[index,misc]  # feedparser normalizes to UTC
    except (TypeError, ValueError):
        return None


def parse_feed(text: str, base_url: str) -> Feed:
    """Entries of an RSS/Atom feed, links resolved against the feed's URL."""
    import feedparser

    parsed = feedparser.parse(text)
    entries: list[FeedEntry] = []
    for entry in parsed.entries:
        link = entry.get("link") or next(
            (l.get("href") for l in entry.get("links", []) if l.get("rel") == "alternate"), None
        )
        if not link:
            continue
        content = None
        if entry.get("content"):
            content = max((c.get("value") or "" for c in entry.content), key=len) or None
        content = content or entry.get("summary") or None
        entries.append(FeedEntry(
            url=urljoin(base_url, link.strip()),
            title=entry.get("title") or None,
            published_at=_struct_time_to_datetime(entry.get("published_parsed") or entry.get("updated_parsed")),
            content_html=content,
            tags=[t.get("term") for t in entry.get("tags", []) if t.get("term")],
        ))
    return Feed(title=parsed.feed.get("title") or None, entries=entries)


def parse_sitemap(text: str, base_url: str) -> SitemapLinks:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=True, huge_tree=False)
    try:
        root = etree.fromstring(text.encode("utf-8"), parser=parser)
    except etree.XMLSyntaxError:
        return SitemapLinks()
    if root is None:
        return SitemapLinks()
    locs = [urljoin(base_url, (loc.text or "").strip()) for loc in root.iterfind(".//{*}loc") if (loc.text or "").strip()]
    if etree.QName(root).localname.lower() == "sitemapindex":
        return SitemapLinks(sitemaps=locs)
    return SitemapLinks(pages=locs)


def read_page_head(html: str, base_url: str) -> PageHead:
    import lxml.html

    try:
        tree = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return PageHead()

    def meta(*names: str) -> str | None:
        for name in names:
            for attr in ("property", "name"):
                values = tree.xpath(f"//meta[@{attr}=$n]/@content", n=name)
                if values and values[0].strip():
                    return values[0].strip()
        return None

    feeds: list[str] = []
    for link in tree.xpath("//link[@href]"):
        rels = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").lower().split(";")[0].strip()
        if "alternate" in rels and kind in FEED_TYPES:
            href = urljoin(base_url, link.get("href").strip())
            if href not in feeds:
                feeds.append(href)
    json_ld_types: list[str] = []
    published = meta("article:published_time", "og:article:published_time", "datePublished")
    for script in tree.xpath("//script[@type='application/ld+json']/text()"):
        try:
            data = json.loads(script)
        except ValueError:
            continue
        for item in data if isinstance(data, list) else data.get("@graph", [data]) if isinstance(data, dict) else []:
            if not isinstance(item, dict):
                continue
            types = item.get("@type")
            json_ld_types.extend(types if isinstance(types, list) else [types] if types else [])
            published = published or item.get("datePublished")
    from ingestion.extract import parse_datetime

    titles = tree.xpath("//title/text()")
    return PageHead(
        title=titles[0].strip() if titles and titles[0].strip() else None,
        og_type=meta("og:type"),
        og_title=meta("og:title", "twitter:title"),
        og_description=meta("og:description", "twitter:description", "description"),
        generator=meta("generator"),
        feeds=feeds,
        published_at=parse_datetime(published) if isinstance(published, str) else None,
        json_ld_types=[str(t) for t in json_ld_types],
    )


def strip_tracking(url: str) -> str:
    """A document's identity URL: no fragment, no tracking parameters (utm_*, Medium's ``source``...)."""
    from courlan.clean import clean_query

    parts = urlsplit(url)
    query = parts.query
    if query:
        host = (parts.hostname or "").lower()
        drop = {"source"} if host == "medium.com" or host.endswith(".medium.com") else set()
        drop |= {"r", "triedredirect"} if host.endswith(".substack.com") else set()
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() not in drop]
        query = clean_query(urlencode(kept), strict=True) if kept else ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))
