"""Every web fetch: URL guard, caps on bytes, time and redirects, and crawl4ai underneath.

Two crawl4ai strategies, one per need:

- ``AsyncHTTPCrawlerStrategy`` (browser-less, ~20 ms a page) for ordinary pages and feeds. Redirects
  are not auto-followed: each hop's ``Location`` goes back through the guard. Its aiohttp session is
  built with a resolver that applies the guard's address rule at connect time (closing the DNS
  rebinding gap between check and connect), and the body is read in chunks up to ``max_bytes``.
- A real Chromium over CDP for sources that need JavaScript. We start ``chromium --headless`` (or attach
  to ``settings.crawl.cdp_url``) and every request the page makes (document, redirects, scripts, XHR,
  images) passes the guard through a Playwright route installed by crawl4ai's
  ``on_page_context_created`` hook; refused requests are aborted.

Usage::

    async with WebFetcher(settings, UrlGuard(settings.allowed_hosts)) as fetcher:
        page = await fetcher.fetch("https://example.com/post")
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import shutil
import signal
import socket
import statistics
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from pydantic import BaseModel

from ingestion.types import FetchFailed, FetchResult, UrlRefused
from ingestion.urlguard import UrlGuard, address_problem
from twin.domain import PageValidators
from twin.settings import Settings

if TYPE_CHECKING:
    from crawl4ai import AsyncWebCrawler

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_REFUSED_HEADER = "x-twin-guard-refused"
# The conditional-GET headers of the fetch running in this task. A context variable rather than a field of
# the CrawlerRunConfig: building a CrawlerRunConfig costs ~40-120 ms here (crawl4ai inspects signatures on
# every attribute set), so one config serves every fetch and the per-request part travels beside it.
_conditional_headers_var: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar(
    "twin_conditional_headers", default={})
# Bodies we can read as text; anything else (images, PDFs, archives) is not a page to learn from.
_TEXT_TYPES = ("text/", "application/xml", "application/xhtml+xml", "application/rss+xml",
               "application/atom+xml", "application/json", "application/feed+json", "application/ld+json")


class FetchTiming(BaseModel):
    url: str
    strategy: str
    """``http`` or ``browser``."""
    seconds: float
    status_code: int | None = None
    bytes: int = 0
    ok: bool = True


def crawl4ai_base_dir(settings: Settings) -> Path:
    """crawl4ai keeps a cache database and downloads under ``$CRAWL4_AI_BASE_DIRECTORY/.crawl4ai``."""
    return settings.data_dir / "crawl4ai"


def _prepare_crawl4ai_env(settings: Settings) -> Path:
    base = crawl4ai_base_dir(settings)
    base.mkdir(parents=True, exist_ok=True)
    # crawl4ai reads this at import time (module-level paths), so set it before the first import; an
    # already-imported crawl4ai keeps its first value, which is still never the home directory in our
    # processes because every entry point goes through here first.
    os.environ.setdefault("CRAWL4_AI_BASE_DIRECTORY", str(base))
    os.environ.setdefault("CRAWL4AI_NO_CLOUD_NOTICE", "1")
    return base


def _build_http_strategy(guard: UrlGuard, settings: Settings) -> Any:
    """crawl4ai's HTTP strategy with a guarded resolver, a byte cap and redirects left to us."""
    import aiohttp
    from aiohttp.abc import AbstractResolver, ResolveResult
    from aiohttp.resolver import ThreadedResolver
    from crawl4ai.async_configs import HTTPCrawlerConfig
    from crawl4ai.async_crawler_strategy import AsyncHTTPCrawlerStrategy
    from crawl4ai.models import AsyncCrawlResponse

    import ipaddress

    crawl = settings.crawl

    class GuardedResolver(AbstractResolver):
        """Applies the guard's address rule to what the connection will actually use."""

        def __init__(self) -> None:
            self._inner = ThreadedResolver()

        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            results = await self._inner.resolve(host, port, family)
            if not guard.is_allowed_host(host):
                for result in results:
                    address = ipaddress.ip_address(result["host"].split("%", 1)[0])
                    if problem := address_problem(address):
                        raise UrlRefused(f"{host} resolved to {address} at connect time ({problem})")
            return results

        async def close(self) -> None:
            await self._inner.close()

    class GuardedHTTPStrategy(AsyncHTTPCrawlerStrategy):
        async def start(self) -> None:
            if not self._session:
                connector = aiohttp.TCPConnector(
                    limit=self.max_connections, resolver=GuardedResolver(), use_dns_cache=False
                )
                self._session = aiohttp.ClientSession(
                    headers=dict(self._BASE_HEADERS) | {"User-Agent": crawl.user_agent},
                    connector=connector,
                    timeout=aiohttp.ClientTimeout(total=crawl.timeout_s),
                )

        async def _handle_http(self, url: str, config: Any) -> AsyncCrawlResponse:
            # Replaces the stock method for three reasons: it raises on 3xx (losing ``Location``), it
            # reads bodies whole with no cap, and it saves non-HTML responses (feeds) under ~/.crawl4ai.
            async with self._session_context() as session:
                try:
                    conditional = _conditional_headers_var.get()
                    async with session.get(
                        url,
                        allow_redirects=False,
                        timeout=aiohttp.ClientTimeout(total=crawl.timeout_s),
                        headers=dict(self.browser_config.headers or {}) | conditional,
                    ) as response:
                        headers = {k.lower(): v for k, v in response.headers.items()}
                        if response.status in REDIRECT_STATUSES or response.status == 304:
                            return AsyncCrawlResponse(
                                html="", response_headers=headers, status_code=response.status,
                                redirected_url=url, placeholder_html=True,
                            )
                        declared = response.content_length
                        if declared is not None and declared > crawl.max_bytes:
                            raise FetchFailed(f"body of {declared} bytes is over the {crawl.max_bytes}-byte cap")
                        body = bytearray()
                        async for chunk in response.content.iter_chunked(64 * 1024):
                            body += chunk
                            if len(body) > crawl.max_bytes:
                                raise FetchFailed(f"body is over the {crawl.max_bytes}-byte cap")
                        try:
                            encoding = response.get_encoding()
                        except RuntimeError:
                            encoding = "utf-8"
                        return AsyncCrawlResponse(
                            html=bytes(body).decode(encoding, errors="replace"),
                            response_headers=headers,
                            status_code=response.status,
                            redirected_url=url,
                            # Non-2xx bodies are kept for our status check, not judged as "blocked".
                            placeholder_html=not (200 <= response.status < 300),
                        )
                except asyncio.TimeoutError:
                    raise FetchFailed(f"timed out after {crawl.timeout_s:g} s") from None
                except UrlRefused as exc:
                    return AsyncCrawlResponse(
                        html="", response_headers={_REFUSED_HEADER: str(exc)}, status_code=0,
                        redirected_url=url, placeholder_html=True,
                    )

    return GuardedHTTPStrategy(
        browser_config=HTTPCrawlerConfig(follow_redirects=False, headers={"User-Agent": crawl.user_agent})
    )


class ChromiumProcess:
    """A headless Chromium we started, reachable over CDP on 127.0.0.1."""

    FLAGS = (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
        "--disable-domain-reliability", "--disable-client-side-phishing-detection",
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
    )

    def __init__(self, executable: str, work_dir: Path, start_timeout_s: float = 20.0) -> None:
        self.executable = executable
        self.work_dir = work_dir
        self.start_timeout_s = start_timeout_s
        self.process: asyncio.subprocess.Process | None = None
        self.profile_dir: Path | None = None
        self.cdp_url: str | None = None

    async def start(self) -> str:
        if not Path(self.executable).exists() and shutil.which(self.executable) is None:
            raise FetchFailed(f"Chromium not found at {self.executable} (set TWIN_CRAWL__CHROMIUM_PATH)")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.profile_dir = Path(tempfile.mkdtemp(prefix="chromium-", dir=self.work_dir))
        self.process = await asyncio.create_subprocess_exec(
            self.executable, *self.FLAGS, f"--user-data-dir={self.profile_dir}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # its renderers join our process group, so stop() ends them all
        )
        # With port 0 Chromium picks a free port and writes it to DevToolsActivePort.
        port_file = self.profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise FetchFailed(f"Chromium exited at start with code {self.process.returncode}")
            if port_file.exists() and (lines := port_file.read_text().splitlines()):
                self.cdp_url = f"http://127.0.0.1:{int(lines[0])}"
                return self.cdp_url
            await asyncio.sleep(0.05)
        await self.stop()
        raise FetchFailed(f"Chromium did not open its CDP port within {self.start_timeout_s:.0f} s")

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=5)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        if self.profile_dir is not None:
            shutil.rmtree(self.profile_dir, ignore_errors=True)
            self.profile_dir = None


class WebFetcher:
    """The project's :class:`~ingestion.types.Fetcher`: an async context manager owning the crawlers."""

    def __init__(self, settings: Settings, guard: UrlGuard) -> None:
        self.settings = settings
        self.guard = guard
        self.timings: list[FetchTiming] = []
        self.blocked_requests: list[str] = []
        """Sub-requests (scripts, images, XHR) the guard stopped while rendering pages in Chromium."""
        self._base_dir: Path | None = None
        self._http: AsyncWebCrawler | None = None
        self._browser: AsyncWebCrawler | None = None
        self._chromium: ChromiumProcess | None = None
        self._browser_lock = asyncio.Lock()
        self._http_config: Any = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> WebFetcher:
        self._base_dir = _prepare_crawl4ai_env(self.settings)
        from crawl4ai import AsyncWebCrawler

        crawler = AsyncWebCrawler(
            crawler_strategy=_build_http_strategy(self.guard, self.settings),
            base_directory=str(self._base_dir),
            logger=self._crawl4ai_logger(),
        )
        self._http = await self._stack.enter_async_context(crawler)
        return self

    def _crawl4ai_logger(self) -> Any:
        """crawl4ai's own log, critical lines only: its per-page lines (rendered with rich and appended to a
        file opened anew for each line; a 304 or a redirect is logged as an error) cost ~2 ms a page, and
        every fetch's outcome is ours to report (FetchFailed/UrlRefused with the reason, FetchTiming)."""
        from crawl4ai.async_logger import AsyncLogger, LogLevel

        assert self._base_dir is not None
        return AsyncLogger(log_file=str(self._base_dir / "crawler.log"), log_level=LogLevel.CRITICAL,
                           verbose=False)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._stack.aclose()
        finally:
            if self._chromium is not None:
                await self._chromium.stop()
                self._chromium = None

    # -- public API ---------------------------------------------------------------------------------

    async def fetch(self, url: str, *, render_js: bool = False,
                    validators: PageValidators | None = None) -> FetchResult:
        """Fetch one URL; raises ``UrlRefused`` or ``FetchFailed``. With ``validators`` (from the last time
        this page was stored) the HTTP fetch is a conditional GET and may return ``not_modified``."""
        if self._http is None:
            raise RuntimeError("WebFetcher is used outside its `async with` block")
        started = time.perf_counter()
        strategy = "browser" if render_js else "http"
        try:
            if render_js:
                result = await self._fetch_rendered(url)
            else:
                result = await self._fetch_http(url, validators)
        except (UrlRefused, FetchFailed):
            self.timings.append(FetchTiming(url=url, strategy=strategy, seconds=time.perf_counter() - started,
                                            ok=False))
            raise
        self.timings.append(FetchTiming(
            url=url, strategy=strategy, seconds=time.perf_counter() - started,
            status_code=result.status_code, bytes=len(result.html.encode("utf-8", errors="ignore")),
        ))
        return result

    def latency_summary(self) -> dict[str, dict[str, float]]:
        """Per-strategy page latency (seconds) over this fetcher's successful fetches."""
        summary: dict[str, dict[str, float]] = {}
        for strategy in ("http", "browser"):
            seconds = sorted(t.seconds for t in self.timings if t.strategy == strategy and t.ok)
            if not seconds:
                continue
            summary[strategy] = {
                "pages": len(seconds),
                "mean_s": statistics.fmean(seconds),
                "p50_s": seconds[len(seconds) // 2],
                "p95_s": seconds[min(len(seconds) - 1, int(len(seconds) * 0.95))],
            }
        return summary

    # -- HTTP strategy ------------------------------------------------------------------------------

    def _http_run_config(self) -> Any:
        if self._http_config is None:
            from crawl4ai import CacheMode, CrawlerRunConfig

            class RunConfig(CrawlerRunConfig):
                # crawl4ai's __setattr__ runs inspect.signature(__init__) on every attribute set (~1 ms),
                # and arun sets a few per page (proxy rotation); ours never sets a deprecated name, which
                # is all that check is for.
                def __setattr__(self, name: str, value: Any) -> None:
                    object.__setattr__(self, name, value)

            self._http_config = RunConfig(
                cache_mode=CacheMode.BYPASS, page_timeout=int(self.settings.crawl.timeout_s * 1000), verbose=False,
            )
        return self._http_config

    async def _fetch_http(self, url: str, validators: PageValidators | None = None) -> FetchResult:
        assert self._http is not None
        crawl = self.settings.crawl
        current = await self.guard.check_async(url)
        deadline = time.monotonic() + crawl.timeout_s
        for _hop in range(crawl.max_redirects + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchFailed(f"{url}: timed out after {crawl.timeout_s:.0f} s")
            try:
                # Validators belong to the URL asked for; a redirect hop is fetched unconditionally.
                asked = current == url and validators is not None
                _conditional_headers_var.set(_conditional_headers(validators) if asked else {})
                result = await asyncio.wait_for(self._http.arun(current, config=self._http_run_config()),
                                                timeout=remaining)
            except asyncio.TimeoutError:
                raise FetchFailed(f"{current}: timed out after {crawl.timeout_s:.0f} s") from None
            headers = {k.lower(): v for k, v in (result.response_headers or {}).items()}
            if refusal := headers.get(_REFUSED_HEADER):
                raise UrlRefused(f"{current}: {refusal}")
            status = result.status_code or 0
            if status in REDIRECT_STATUSES:
                location = headers.get("location")
                if not location:
                    raise FetchFailed(f"{current}: HTTP {status} redirect without a Location header")
                target = urljoin(current, location)
                try:
                    current = await self.guard.check_async(target)
                except UrlRefused as exc:
                    raise UrlRefused(f"{url}: redirect from {current} refused: {exc}") from None
                continue
            if status == 304:
                return FetchResult(url=current, status_code=304, html="", not_modified=True,
                                   etag=headers.get("etag"), last_modified=headers.get("last-modified"))
            if not result.success and not status:
                raise FetchFailed(f"{current}: {_short_error(result.error_message)}")
            if not 200 <= status < 300:
                raise FetchFailed(f"{current}: HTTP {status}")
            content_type = headers.get("content-type")
            if content_type and not content_type.split(";")[0].strip().lower().startswith(_TEXT_TYPES):
                raise FetchFailed(f"{current}: not a text document ({content_type})")
            return FetchResult(url=current, status_code=status, content_type=content_type, html=result.html or "",
                               etag=headers.get("etag"), last_modified=headers.get("last-modified"))
        raise FetchFailed(f"{url}: more than {crawl.max_redirects} redirects")

    # -- Chromium over CDP --------------------------------------------------------------------------

    async def _browser_crawler(self) -> AsyncWebCrawler:
        async with self._browser_lock:
            if self._browser is not None:
                return self._browser
            from crawl4ai import AsyncWebCrawler, BrowserConfig

            crawl = self.settings.crawl
            cdp_url = crawl.cdp_url
            if not cdp_url:
                assert self._base_dir is not None
                self._chromium = ChromiumProcess(crawl.chromium_path, self._base_dir / "chromium")
                cdp_url = await self._chromium.start()
            browser_config = BrowserConfig(
                browser_mode="cdp", cdp_url=cdp_url, headless=True, user_agent=crawl.user_agent, verbose=False
            )
            crawler = AsyncWebCrawler(config=browser_config, base_directory=str(self._base_dir),
                                      logger=self._crawl4ai_logger())
            crawler.crawler_strategy.set_hook("on_page_context_created", self._install_route_guard)
            self._browser = await self._stack.enter_async_context(crawler)
            return self._browser

    async def _install_route_guard(self, page: Any, context: Any = None, config: Any = None, **_: Any) -> Any:
        """Every request the page makes passes the guard; refused ones are aborted and recorded."""
        refusals: list[str] = (config.shared_data or {}).setdefault("refusals", []) if config else []
        guard = self.guard

        async def guard_route(route: Any) -> None:
            request_url = route.request.url
            if request_url.startswith(("data:", "blob:", "about:")):
                await route.continue_()
                return
            try:
                await guard.check_async(request_url)
            except UrlRefused as exc:
                refusals.append(str(exc))
                await route.abort("blockedbyclient")
                return
            if route.request.is_navigation_request():
                # Chromium follows redirects without asking the route again, so for documents we make
                # the request ourselves, hop by hop, and hand the browser only guarded answers.
                final_url = await self._route_navigation(route, refusals)
                if final_url and config is not None and config.shared_data is not None and route.request.frame.parent_frame is None:
                    config.shared_data.setdefault("document_url", final_url)
                return
            await route.continue_()

        await page.route("**/*", guard_route)
        return page

    async def _route_navigation(self, route: Any, refusals: list[str]) -> str | None:
        """Fetch a document hop by hop; returns the final URL, or None when a hop was refused."""
        current = route.request.url
        for _hop in range(self.settings.crawl.max_redirects + 1):
            response = await route.fetch(url=current, max_redirects=0,
                                         timeout=self.settings.crawl.timeout_s * 1000)
            if response.status not in REDIRECT_STATUSES:
                body = await response.body()
                if len(body) > self.settings.crawl.max_bytes:
                    refusals.append(f"{current}: body over the {self.settings.crawl.max_bytes}-byte cap")
                    await route.abort("blockedbyclient")
                    return None
                await route.fulfill(response=response, body=body)
                return current
            location = response.headers.get("location")
            if not location:
                await route.fulfill(response=response)
                return current
            target = urljoin(current, location)
            try:
                current = await self.guard.check_async(target)
            except UrlRefused as exc:
                refusals.append(f"redirect from {current} refused: {exc}")
                await route.abort("blockedbyclient")
                return None
        refusals.append(f"{route.request.url}: more than {self.settings.crawl.max_redirects} redirects")
        await route.abort("blockedbyclient")
        return None

    async def _fetch_rendered(self, url: str) -> FetchResult:
        from crawl4ai import CacheMode, CrawlerRunConfig

        checked = await self.guard.check_async(url)
        crawler = await self._browser_crawler()
        shared: dict[str, Any] = {"refusals": []}
        config = CrawlerRunConfig(
            cache_mode=CacheMode.BYPASS,
            page_timeout=int(self.settings.crawl.timeout_s * 1000),
            wait_until="networkidle",
            shared_data=shared,
            verbose=False,
        )
        try:
            result = await asyncio.wait_for(crawler.arun(checked, config=config),
                                            timeout=self.settings.crawl.timeout_s + 5)
        except asyncio.TimeoutError:
            raise FetchFailed(f"{checked}: timed out after {self.settings.crawl.timeout_s:.0f} s") from None
        refusals: list[str] = shared["refusals"]
        final_url = shared.get("document_url")
        # crawl4ai's anti-bot heuristics call short pages "blocked"; we take any page the browser
        # loaded and leave judging its text to the extractor.
        if not result.html or final_url is None:
            if refusals:
                raise UrlRefused(f"{checked}: {refusals[0]}")
            raise FetchFailed(f"{checked}: {_short_error(result.error_message)}")
        status = result.status_code or 200
        if not 200 <= status < 300:
            raise FetchFailed(f"{checked}: HTTP {status}")
        if refusals:
            self.blocked_requests.extend(refusals)
            log.info("%s: %d sub-requests refused by the URL guard, first: %s", checked, len(refusals), refusals[0])
        headers = {k.lower(): v for k, v in (result.response_headers or {}).items()}
        return FetchResult(url=final_url, status_code=status, content_type=headers.get("content-type"),
                           html=result.html)


def _conditional_headers(validators: PageValidators | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if validators is not None:
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
    return headers


def _short_error(message: str | None) -> str:
    """crawl4ai's error messages carry code context; keep the first meaningful line."""
    if not message:
        return "fetch failed"
    for line in message.splitlines():
        line = line.strip()
        if line.startswith("Error:"):
            return line.removeprefix("Error:").strip()
    return message.strip().splitlines()[0][:300]
