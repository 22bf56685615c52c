"""From a source URL to raw documents, per platform.

``collect_source`` dispatches on the platform and yields :class:`RawDocument` or :class:`Problem` items;
a failing URL becomes a ``Problem`` (``refused=True`` when the URL guard said no) and the batch goes on.
Links to fetch come only from the source itself (the URL given, its feed, sitemap or archive), never
from links inside an article's text, and at most ``settings.crawl.max_pages_per_source`` pages are
fetched per source. A link that is not one of the author's sources (``collect_reference``) is one page:
nothing it lists or advertises is fetched.

- Medium: a profile (``/@user``, ``user.medium.com``) or publication is read through its RSS feed, then
  each article page; a single article URL is one document.
- Substack: a publication through its archive API (``/api/v1/archive``) and ``/feed``, then each post;
  a single ``/p/...`` post is one document.
- Any blog: an article URL, an RSS/Atom feed, a sitemap, or a home page advertising a feed.
- LinkedIn: a public post URL (``/posts/...``, ``/feed/update/urn:li:...``); profiles need the export.
- X: answered with a Problem (X pages need a login): import the archive ZIP instead.
- GitHub: handed to ``ingestion.github.collect_github``.
"""

from __future__ import annotations

import asyncio
import html as html_lib
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from urllib.parse import urljoin, urlsplit, urlunsplit

from ingestion.extract import ExtractedPage, extract_article, parse_datetime
from ingestion.feeds import (
    Feed,
    FeedEntry,
    is_feed_response,
    parse_feed,
    parse_sitemap,
    read_page_head,
    strip_tracking,
    xml_document_kind,
)
from ingestion.types import CollectedItem, FetchFailed, Fetcher, FetchResult, Problem, Unchanged, UrlRefused
from ingestion.urlguard import UrlGuard
from twin.domain import Kind, PageValidators, Platform, RawDocument
from twin.settings import Settings

log = logging.getLogger(__name__)

NOTE_MAX_WORDS = 80
"""A blog entry shorter than this (a few sentences) is a note rather than an article."""
MIN_WORDS = 5
"""Pages with less extracted text than this are not writing (tag pages, empty shells)."""
CONCURRENT_PAGES = 4
SUBSTACK_PAGE_SIZE = 12

_MEDIUM_ARTICLE_ID = re.compile(r"-[0-9a-f]{8,12}$")
_LISTING_SEGMENTS = {"tag", "tags", "category", "categories", "page", "author", "authors", "archive", "search"}

X_PROBLEM = (
    "X (Twitter) pages need a login to read, so they are not crawled. Download your archive "
    "(Settings > Your account > Download an archive of your data) and run `twin import AUTHOR archive.zip`."
)
LINKEDIN_PROFILE_PROBLEM = (
    "LinkedIn profiles and activity pages need a login. Request your data export (Settings > Data privacy > "
    "Get a copy of your data) and run `twin import AUTHOR export.zip`, or add public post URLs (/posts/...)."
)


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _host_is(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def detect_platform(url: str) -> Platform:
    """The platform a URL belongs to, from its host; a git URL (path ending ``.git``) is a repository;
    anything unknown is a blog."""
    host = _host(url)
    if _host_is(host, "github.com") or urlsplit(url).path.rstrip("/").endswith(".git"):
        return Platform.github
    if _host_is(host, "linkedin.com"):
        return Platform.linkedin
    if _host_is(host, "x.com") or _host_is(host, "twitter.com"):
        return Platform.x
    if _host_is(host, "medium.com"):
        return Platform.medium
    if _host_is(host, "substack.com"):
        return Platform.substack
    return Platform.blog


async def collect_source(
    url: str,
    platform: Platform,
    *,
    render_js: bool,
    fetcher: Fetcher,
    settings: Settings,
    guard: UrlGuard,
    known_pages: Mapping[str, PageValidators] | None = None,
) -> AsyncIterator[CollectedItem]:
    """Everything one source holds, as raw documents, per-URL problems and pages known to be unchanged.

    ``known_pages`` (document URL -> what we stored of its page) turns each page fetch into a conditional
    GET; a page the server calls unchanged, or whose body is byte-identical, is not extracted again.
    """
    collector = _SourceCollector(url, platform, render_js=render_js, fetcher=fetcher, settings=settings,
                                 known_pages=known_pages or {})
    if platform is Platform.github:
        from ingestion.github import collect_github

        async for item in collect_github(url, settings=settings, guard=guard):
            yield item
        return
    handlers: dict[Platform, Callable[[], AsyncIterator[CollectedItem]]] = {
        Platform.x: collector.x,
        Platform.linkedin: collector.linkedin,
        Platform.medium: collector.medium,
        Platform.substack: collector.substack,
        Platform.blog: collector.blog,
    }
    async for item in handlers[platform]():
        yield item


async def collect_reference(
    url: str,
    platform: Platform,
    *,
    render_js: bool,
    fetcher: Fetcher,
    settings: Settings,
    known_pages: Mapping[str, PageValidators] | None = None,
) -> AsyncIterator[CollectedItem]:
    """Exactly the page at `url` (a link from a chat request), as a `Kind.reference` document.

    One fetch and nothing more: no feed, sitemap, archive or pagination is followed, whatever the page
    advertises, since links to crawl come only from the user. A feed or sitemap URL is answered with a
    Problem (add it as a source to collect what it lists); a repository link is read as its web page.
    """
    collector = _SourceCollector(url, platform, render_js=render_js, fetcher=fetcher, settings=settings,
                                 known_pages=known_pages or {})
    async for item in collector.reference():
        if isinstance(item, RawDocument):
            item.kind = Kind.reference
        yield item


class _SourceCollector:
    """State for collecting one source: its fetcher, caps and the URLs already seen."""

    def __init__(self, url: str, platform: Platform, *, render_js: bool, fetcher: Fetcher, settings: Settings,
                 known_pages: Mapping[str, PageValidators]):
        self.url = url.strip()
        self.known_pages = known_pages
        self.platform = platform
        self.render_js = render_js
        self.fetcher = fetcher
        self.settings = settings
        self.max_pages = settings.crawl.max_pages_per_source
        self.fetched_pages = 0
        self.seen: set[str] = set()

    # -- fetching -----------------------------------------------------------------------------------

    async def fetch(self, url: str, *, render_js: bool | None = None, listing: bool = False) -> FetchResult | Problem:
        """One fetch as a result or a Problem. Listings (feeds, sitemaps, archive pages) are not counted
        against ``max_pages_per_source``; the documents they list are."""
        validators = None
        if not listing:
            self.fetched_pages += 1
            validators = self.known_pages.get(strip_tracking(url))
        try:
            return await self.fetcher.fetch(url, render_js=self.render_js if render_js is None else render_js,
                                            validators=validators)
        except UrlRefused as exc:
            return Problem(url=url, reason=str(exc), refused=True)
        except FetchFailed as exc:
            return Problem(url=url, reason=str(exc))

    def unchanged(self, url: str, page: FetchResult) -> Unchanged | None:
        """The page's stored document is current: the server said 304, or the body is the same bytes."""
        known = self.known_pages.get(strip_tracking(url))
        if known is None or known.document_id is None:
            return None
        if page.not_modified or (known.body_hash and known.body_hash == page.validators().body_hash):
            return Unchanged(url=strip_tracking(url), document_id=known.document_id, not_modified=page.not_modified)
        return None

    def budget_left(self) -> int:
        return max(0, self.max_pages - self.fetched_pages)

    # -- platforms ----------------------------------------------------------------------------------

    async def x(self) -> AsyncIterator[CollectedItem]:
        yield Problem(url=self.url, reason=X_PROBLEM)

    async def linkedin(self) -> AsyncIterator[CollectedItem]:
        path = urlsplit(self.url).path
        if not (path.startswith("/posts/") or path.startswith("/feed/update/") or path.startswith("/pulse/")):
            yield Problem(url=self.url, reason=LINKEDIN_PROFILE_PROBLEM)
            return
        page = await self.fetch(self.url)
        if isinstance(page, Problem):
            yield page
            return
        yield self.unchanged(self.url, page) or await asyncio.to_thread(
            self._linkedin_post, page, path.startswith("/pulse/"))

    def _linkedin_post(self, page: FetchResult, is_article: bool) -> CollectedItem:
        head = read_page_head(page.html, page.url)
        extracted = extract_article(page.html, page.url)
        og_text = html_lib.unescape(head.og_description or "").strip()
        text = extracted.text_markdown
        if not is_article and og_text and not _og_is_truncation(og_text, extracted):
            # The public page's og:description is the post itself, while its main text may add sign-in
            # prompts and "more posts" blocks.
            text = og_text
        if len(text.split()) < 1:
            return Problem(url=self.url, reason="no post text found on the public page")
        return RawDocument(
            url=strip_tracking(self.url),
            page=page.validators(),
            platform=Platform.linkedin,
            kind=Kind.article if is_article else Kind.post,
            title=head.og_title or extracted.title,
            published_at=head.published_at or extracted.published_at,
            text=text,
            metadata={"source_url": self.url, "fetched_url": page.url, "extractor": "og:description"
                      if text == og_text else extracted.extractor},
        )

    async def reference(self) -> AsyncIterator[CollectedItem]:
        if self.platform is Platform.x:
            yield Problem(url=self.url, reason=X_PROBLEM)
            return
        if self.platform is Platform.linkedin:  # a post is one page; a profile is answered with a Problem
            async for item in self.linkedin():
                yield item
            return
        page = await self.fetch(self.url)
        if isinstance(page, Problem):
            yield page
            return
        if xml_document_kind(page.html) or is_feed_response(page.html, page.content_type):
            yield Problem(url=self.url, reason="a feed or sitemap, not a page: linked pages are read one by one; "
                          "add it as a source (`twin sources add`) to collect what it lists")
            return
        yield self.unchanged(self.url, page) or await asyncio.to_thread(self._document_from_page, page, None, None)

    async def medium(self) -> AsyncIterator[CollectedItem]:
        target = _medium_feed_url(self.url)
        if target == "article":
            async for item in self.single_article(self.url, kind=Kind.article):
                yield item
        elif target is None:
            yield Problem(url=self.url, reason="a Medium URL needs a profile (/@user), publication or article")
        else:
            async for item in self.from_feed_url(target, default_kind=Kind.article):
                yield item

    async def substack(self) -> AsyncIterator[CollectedItem]:
        parts = urlsplit(self.url)
        segments = [s for s in parts.path.split("/") if s]
        origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        if segments[:1] == ["p"] and len(segments) >= 2:
            async for item in self.single_article(self.url, kind=Kind.article):
                yield item
            return
        if segments[:1] == ["feed"]:
            async for item in self.from_feed_url(self.url, default_kind=Kind.article):
                yield item
            return
        async for item in self.substack_publication(origin):
            yield item

    async def substack_publication(self, origin: str) -> AsyncIterator[CollectedItem]:
        """All posts: the archive API lists every post; the feed adds dates and full text for recent ones."""
        feed_url = f"{origin}/feed"
        feed_page = await self.fetch(feed_url, listing=True)
        feed = Feed()
        if isinstance(feed_page, FetchResult) and is_feed_response(feed_page.html, feed_page.content_type):
            feed = await asyncio.to_thread(parse_feed, feed_page.html, feed_page.url)
        entries: dict[str, FeedEntry] = {strip_tracking(e.url): e for e in feed.entries}
        listed: list[FeedEntry] = []
        archive_problem: Problem | None = None
        offset = 0
        while self.budget_left() > len(listed) and offset < self.max_pages + SUBSTACK_PAGE_SIZE:
            api_url = f"{origin}/api/v1/archive?sort=new&offset={offset}&limit={SUBSTACK_PAGE_SIZE}"
            page = await self.fetch(api_url, listing=True)
            if isinstance(page, Problem):
                archive_problem = page
                break
            try:
                posts = json.loads(page.html)
            except ValueError:
                archive_problem = Problem(url=api_url, reason="archive API did not answer JSON")
                break
            if not isinstance(posts, list) or not posts:
                break
            for post in posts:
                link = post.get("canonical_url") or (f"{origin}/p/{post['slug']}" if post.get("slug") else None)
                if not link or post.get("type") not in (None, "newsletter", "thread", "podcast"):
                    continue
                key = strip_tracking(urljoin(origin, link))
                known = entries.get(key)
                listed.append(FeedEntry(
                    url=key,
                    title=post.get("title") or (known.title if known else None),
                    published_at=parse_datetime(post.get("post_date")) or (known.published_at if known else None),
                    content_html=known.content_html if known else None,
                ))
            if len(posts) < SUBSTACK_PAGE_SIZE:
                break
            offset += SUBSTACK_PAGE_SIZE
        listed_keys = {e.url for e in listed}
        listed.extend(e for k, e in entries.items() if k not in listed_keys)
        if not listed:
            yield archive_problem or (feed_page if isinstance(feed_page, Problem) else
                                      Problem(url=self.url, reason="no posts found in the archive or the feed"))
            return
        async for item in self.from_entries(listed, default_kind=Kind.article, listing_url=origin):
            yield item

    async def blog(self) -> AsyncIterator[CollectedItem]:
        page = await self.fetch(self.url, listing=True)
        if isinstance(page, Problem):
            yield page
            return
        document_kind = xml_document_kind(page.html)
        if document_kind == "sitemap":
            async for item in self.from_sitemap(page):
                yield item
            return
        if is_feed_response(page.html, page.content_type):
            async for item in self.from_feed(page, default_kind=Kind.article):
                yield item
            return
        head = await asyncio.to_thread(read_page_head, page.html, page.url)
        if head.generator and head.generator.lower().startswith("substack") and self._is_home(page.url, head):
            self.platform = Platform.substack
            async for item in self.substack_publication(_origin(page.url)):
                yield item
            return
        if self._is_home(page.url, head):
            for feed_url in head.feeds[:1]:
                async for item in self.from_feed_url(feed_url, default_kind=Kind.article):
                    yield item
                return
        self.fetched_pages += 1
        yield self.unchanged(self.url, page) or await asyncio.to_thread(self._document_from_page, page, None, None)

    @staticmethod
    def _is_home(url: str, head: object) -> bool:
        """A site's home or listing page rather than one article."""
        segments = [s for s in urlsplit(url).path.split("/") if s]
        og_type = getattr(head, "og_type", None)
        if og_type == "article" or any(t in ("BlogPosting", "Article", "NewsArticle") for t in
                                       getattr(head, "json_ld_types", [])):
            return False
        return not segments or segments[-1] in {"blog", "posts", "articles", "writing"} or \
            bool(segments and segments[0] in _LISTING_SEGMENTS) or og_type == "website"

    # -- shared paths -------------------------------------------------------------------------------

    async def single_article(self, url: str, *, kind: Kind) -> AsyncIterator[CollectedItem]:
        page = await self.fetch(url)
        if isinstance(page, Problem):
            yield page
            return
        yield self.unchanged(url, page) or await asyncio.to_thread(self._document_from_page, page, None, kind)

    async def from_feed_url(self, feed_url: str, *, default_kind: Kind) -> AsyncIterator[CollectedItem]:
        page = await self.fetch(feed_url, listing=True)
        if isinstance(page, Problem):
            yield page
            return
        if not is_feed_response(page.html, page.content_type):
            yield Problem(url=feed_url, reason="expected an RSS or Atom feed here, got another kind of page")
            return
        async for item in self.from_feed(page, default_kind=default_kind):
            yield item

    async def from_feed(self, page: FetchResult, *, default_kind: Kind) -> AsyncIterator[CollectedItem]:
        feed = await asyncio.to_thread(parse_feed, page.html, page.url)
        if not feed.entries:
            yield Problem(url=page.url, reason="the feed has no entries")
            return
        async for item in self.from_entries(feed.entries, default_kind=default_kind, listing_url=page.url):
            yield item

    async def from_sitemap(self, page: FetchResult, depth: int = 0) -> AsyncIterator[CollectedItem]:
        links = await asyncio.to_thread(parse_sitemap, page.html, page.url)
        pages = [u for u in links.pages if not _is_listing_url(u)]
        if depth < 2:
            for child in links.sitemaps:
                if self.budget_left() <= len(pages):
                    break
                child_page = await self.fetch(child, listing=True)
                if isinstance(child_page, Problem):
                    yield child_page
                    continue
                child_links = await asyncio.to_thread(parse_sitemap, child_page.html, child_page.url)
                pages.extend(u for u in child_links.pages if not _is_listing_url(u))
        entries = [FeedEntry(url=u) for u in pages]
        async for item in self.from_entries(entries, default_kind=Kind.article, listing_url=page.url,
                                            skip_thin=True):
            yield item

    async def from_entries(
        self, entries: Iterable[FeedEntry], *, default_kind: Kind, listing_url: str, skip_thin: bool = False
    ) -> AsyncIterator[CollectedItem]:
        """Fetch each listed page (a few at a time) and yield documents in listing order."""
        todo: list[FeedEntry] = []
        for entry in entries:
            key = strip_tracking(entry.url)
            if key in self.seen:
                continue
            self.seen.add(key)
            todo.append(entry)
        limit = self.budget_left()
        if len(todo) > limit:
            log.info("%s lists %d pages; collecting the first %d (max_pages_per_source)", listing_url,
                     len(todo), limit)
            todo = todo[:limit]
        for start in range(0, len(todo), CONCURRENT_PAGES):
            batch = todo[start:start + CONCURRENT_PAGES]
            results = await asyncio.gather(*(self._entry_document(e, default_kind, listing_url) for e in batch))
            for item in results:
                if item is None:
                    continue
                if skip_thin and isinstance(item, RawDocument) and len(item.text.split()) < MIN_WORDS:
                    continue
                yield item

    async def _entry_document(self, entry: FeedEntry, default_kind: Kind, listing_url: str) -> CollectedItem | None:
        page = await self.fetch(entry.url)
        if isinstance(page, Problem):
            from_feed = await asyncio.to_thread(self._document_from_feed_content, entry, default_kind, listing_url)
            if from_feed is not None and not page.refused:
                from_feed.metadata["page_problem"] = page.reason
                return from_feed
            return page
        if unchanged := self.unchanged(entry.url, page):
            return unchanged
        document = await asyncio.to_thread(self._document_from_page, page, entry, default_kind)
        if isinstance(document, RawDocument):
            document.metadata["listed_in"] = listing_url
            # Feeds sometimes carry the whole text while the page hides it (paywall, JS): keep the longer.
            from_feed = await asyncio.to_thread(self._document_from_feed_content, entry, default_kind, listing_url)
            if from_feed is not None and len(from_feed.text) > len(document.text) * 1.1:
                from_feed.metadata["fetched_url"] = page.url
                from_feed.page = document.page
                return from_feed
        return document

    def _kind_for(self, words: int, default_kind: Kind | None) -> Kind:
        if default_kind is not None and self.platform is not Platform.blog:
            return default_kind
        return Kind.note if words < NOTE_MAX_WORDS else Kind.article

    def _document_from_page(self, page: FetchResult, entry: FeedEntry | None,
                            default_kind: Kind | None) -> CollectedItem:
        extracted: ExtractedPage = extract_article(page.html, page.url)
        words = extracted.word_count
        if words < 1:
            return Problem(url=entry.url if entry else page.url, reason="no main text found on the page")
        url = strip_tracking(entry.url if entry else page.url)
        return RawDocument(
            url=url,
            platform=self.platform,
            kind=self._kind_for(words, default_kind),
            title=(entry.title if entry else None) or extracted.title,
            published_at=(entry.published_at if entry else None) or extracted.published_at,
            text=extracted.text_markdown,
            page=page.validators(),
            metadata={
                "source_url": self.url,
                "fetched_url": page.url,
                "extractor": extracted.extractor,
                "author": extracted.author,
                "description": extracted.description,
                "site_name": extracted.site_name,
                "tags": sorted(set(extracted.tags) | set(entry.tags if entry else [])),
            },
        )

    def _document_from_feed_content(self, entry: FeedEntry, default_kind: Kind, listing_url: str) -> RawDocument | None:
        if not entry.content_html or len(entry.content_html) < 200:
            return None
        wrapped = f"<html><head><title>{html_lib.escape(entry.title or '')}</title></head><body><article>" \
                  f"{entry.content_html}</article></body></html>"
        extracted = extract_article(wrapped, entry.url)
        if extracted.word_count < MIN_WORDS:
            return None
        return RawDocument(
            url=strip_tracking(entry.url),
            platform=self.platform,
            kind=self._kind_for(extracted.word_count, default_kind),
            title=entry.title or extracted.title,
            published_at=entry.published_at,
            text=extracted.text_markdown,
            metadata={"source_url": self.url, "listed_in": listing_url, "extractor": "feed:" + extracted.extractor,
                      "tags": sorted(set(entry.tags))},
        )


def _medium_feed_url(url: str) -> str | None:
    """The RSS feed of a Medium profile or publication URL, ``"article"`` for an article, None if neither."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    segments = [s for s in parts.path.split("/") if s]
    origin = _origin(url)
    if segments[:1] == ["feed"]:
        return url
    if host.endswith(".medium.com") and host != "www.medium.com":  # ada.medium.com
        return "article" if segments else f"{origin}/feed"
    if not segments:
        return None
    if _MEDIUM_ARTICLE_ID.search(segments[-1]) or segments[0] == "p":
        return "article"
    if len(segments) == 1 or segments[1] in {"latest", "archive", "about", "followers", "tagged", "home"}:
        return f"{origin}/feed/{segments[0]}"
    return "article"


def _og_is_truncation(og_text: str, extracted: ExtractedPage) -> bool:
    """og:description is sometimes cut short: the main text then holds the whole post (and not much else)."""
    body = extracted.text_markdown
    og_words = len(og_text.split())
    return og_text[:80] in body and og_words * 1.2 < extracted.word_count <= og_words * 3


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _is_listing_url(url: str) -> bool:
    segments = [s for s in urlsplit(url).path.split("/") if s]
    return not segments or segments[0] in _LISTING_SEGMENTS



