"""Contracts between the ingestion stages: fetching, collecting per platform, and the pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from pydantic import BaseModel

from twin.domain import RawDocument


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
    """Body as text (HTML, XML feed or plain text)."""


class Fetcher(Protocol):
    """Every web fetch goes through one: URL guard, caps, crawl4ai (HTTP strategy or Chromium over CDP)."""

    async def fetch(self, url: str, *, render_js: bool = False) -> FetchResult:
        """Raises `UrlRefused` or `FetchFailed`."""
        ...


class Problem(BaseModel):
    """A URL that a collector could not turn into a document; never aborts the batch."""

    url: str
    reason: str
    refused: bool = False
    """True when the URL guard refused it, False when fetching or parsing failed."""


CollectedItem = RawDocument | Problem


class Collector(Protocol):
    def __call__(self, url: str, *, render_js: bool, fetcher: Fetcher) -> AsyncIterator[CollectedItem]: ...
