"""Contracts between the ingestion stages: fetching, collecting per platform, and the pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from pydantic import BaseModel

from twin.domain import PageValidators, RawDocument


class UrlRefused(Exception):
    """The URL guard refused a URL (scheme, private address, allow-list, redirect target)."""


class FetchFailed(Exception):
    """A fetch that was allowed but did not succeed (HTTP error, timeout, too large, not HTML)."""


class FetchResult(BaseModel):
    url: str
    """Final URL after redirects."""
    status_code: int
    content_type: str | None = None
    html: str
    """Body as text (HTML, XML feed or plain text); empty when ``not_modified``."""
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    """The server answered 304 to our conditional GET: the page is as we stored it."""

    def validators(self) -> PageValidators:
        import hashlib

        return PageValidators(etag=self.etag, last_modified=self.last_modified,
                              body_hash=hashlib.sha256(self.html.encode("utf-8", "replace")).hexdigest())


class Fetcher(Protocol):
    """Every web fetch goes through one: URL guard, caps, crawl4ai (HTTP strategy or Chromium over CDP)."""

    async def fetch(self, url: str, *, render_js: bool = False,
                    validators: PageValidators | None = None) -> FetchResult:
        """Raises `UrlRefused` or `FetchFailed`. With `validators` the fetch is a conditional GET and may
        come back ``not_modified``."""
        ...


class Problem(BaseModel):
    """A URL that a collector could not turn into a document; never aborts the batch."""

    url: str
    reason: str
    refused: bool = False
    """True when the URL guard refused it, False when fetching or parsing failed."""


class Unchanged(BaseModel):
    """A page whose stored document is still current (the server said 304, or the body is the same)."""

    url: str
    document_id: int
    not_modified: bool = False
    """True when the server said so (304); False when we compared the body ourselves."""


CollectedItem = RawDocument | Problem | Unchanged


class Collector(Protocol):
    def __call__(self, url: str, *, render_js: bool, fetcher: Fetcher) -> AsyncIterator[CollectedItem]: ...
