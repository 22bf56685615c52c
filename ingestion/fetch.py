"""Every web fetch: URL guard, caps on bytes, time and redirects, and crawl4ai underneath.

Two crawl4ai strategies, one per need:

- ``AsyncHTTPCrawlerStrategy`` (browser-less, ~20 ms a page) for ordinary pages and feeds. Redirects
  are followed by :func:`~ingestion.urlguard.follow_redirects` (each hop checked again), over the guard's
  aiohttp session (:func:`~ingestion.urlguard.guarded_session`, whose resolver applies the address rule at
  connect time), and the body is read up to ``max_bytes``.
- A real Chromium over CDP for sources that need JavaScript. We start ``chromium --headless`` behind
  :class:`~ingestion.proxy.GuardedProxy`, so Chromium never resolves a host itself: every connection it
  makes (WebSockets, service workers and popups included) goes to an address the guard checked. On top,
  every request the page makes passes the guard through a Playwright route installed by crawl4ai's
  ``on_page_context_created`` hook (refused ones are aborted and recorded), documents are fetched hop by
  hop over the guarded session, and service-worker registration and ``window.open`` are disabled.
  Attached to an outside browser (``settings.crawl.cdp_url``) there is no proxy, only the route guard.

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
import statistics
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ingestion.proxy import GuardedProxy
from ingestion.types import FetchFailed, FetchResult, UrlRefused
from ingestion.urlguard import (
    REDIRECT_STATUSES, CheckedUrl, UrlGuard, follow_redirects, guarded_session, read_capped,
)
from twin.domain import PageValidators
from twin.settings import Settings

if TYPE_CHECKING:
    import aiohttp
    from crawl4ai import AsyncWebCrawler

log = logging.getLogger(__name__)

_REFUSED_HEADER = "x-twin-guard-refused"
# The conditional-GET headers of the fetch running in this task. A context variable rather than a field of
# the CrawlerRunConfig: building a CrawlerRunConfig costs ~40-120 ms here (crawl4ai inspects signatures on
# every attribute set), so one config serves every fetch and the per-request part travels beside it.
_conditional_headers_var: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar(
    "twin_conditional_headers", default={})
# Bodies we can read as text; anything else (images, PDFs, archives) is not a page to learn from.
# What a page may not do in our Chromium: register a service worker (its requests bypass the page's route)
# or open windows (a popup is a page without our route). The same idea as Playwright's
# ``service_workers="block"``, which a context we attach to over CDP cannot be given.
_PAGE_LOCKDOWN = """
if (self.ServiceWorkerContainer) {
  ServiceWorkerContainer.prototype.register = () =>
    Promise.reject(new DOMException('service workers are blocked by the crawler', 'SecurityError'));
}
window.open = () => null;
"""
# Request headers the browser's own network stack owns; the guarded session sets its own.
_NOT_FORWARDED = frozenset({"host", "content-length", "connection", "accept-encoding", "transfer-encoding"})
# Answer headers that describe the bytes on the wire, which the session has already decoded.
_NOT_RETURNED = frozenset({"content-length", "content-encoding", "transfer-encoding", "connection"})
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
    from crawl4ai.async_configs import HTTPCrawlerConfig
    from crawl4ai.async_crawler_strategy import AsyncHTTPCrawlerStrategy
    from crawl4ai.models import AsyncCrawlResponse

    crawl = settings.crawl

    class GuardedHTTPStrategy(AsyncHTTPCrawlerStrategy):
        async def start(self) -> None:
            if not self._session:
                self._session = guarded_session(
                    guard, timeout_s=crawl.timeout_s, limit=self.max_connections,
                    headers=dict(self._BASE_HEADERS) | {"User-Agent": crawl.user_agent},
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
                        body = await read_capped(response, crawl.max_bytes)
                        try:
                            encoding = response.get_encoding()
                        except RuntimeError:
                            encoding = "utf-8"
                        return AsyncCrawlResponse(
                            html=body.decode(encoding, errors="replace"),
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

    def __init__(self, executable: str, work_dir: Path, start_timeout_s: float = 20.0,
                 proxy_url: str | None = None) -> None:
        self.executable = executable
        self.proxy_url = proxy_url
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
            self.executable, *self.FLAGS, *self._proxy_flags(), f"--user-data-dir={self.profile_dir}", "about:blank",
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

    def _proxy_flags(self) -> list[str]:
        if self.proxy_url is None:
            return []
        # "<-loopback>" drops Chromium's implicit proxy bypass for localhost and 127.0.0.0/8, so loopback
        # requests meet the guard too.
        return [f"--proxy-server={self.proxy_url}", "--proxy-bypass-list=<-loopback>"]

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
        self._proxy: GuardedProxy | None = None
        self._session: aiohttp.ClientSession | None = None
        """The guarded session Chromium's documents are fetched over, hop by hop."""
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
            if self._proxy is not None:
                await self._proxy.stop()
                self._proxy = None

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
        deadline = time.monotonic() + crawl.timeout_s
        http = self._http

        async def send(current: CheckedUrl, hop: int) -> tuple[Any, dict[str, str]]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchFailed(f"{url}: timed out after {crawl.timeout_s:.0f} s")
            # Validators belong to the URL asked for; a redirect hop is fetched unconditionally.
            _conditional_headers_var.set(_conditional_headers(validators) if hop == 0 else {})
            try:
                result = await asyncio.wait_for(http.arun(current.url, config=self._http_run_config()),
                                                timeout=remaining)
            except asyncio.TimeoutError:
                raise FetchFailed(f"{current.url}: timed out after {crawl.timeout_s:.0f} s") from None
            headers = {k.lower(): v for k, v in (result.response_headers or {}).items()}
            if refusal := headers.get(_REFUSED_HEADER):
                raise UrlRefused(f"{current.url}: {refusal}")
            return result, headers

        def location_of(answer: tuple[Any, dict[str, str]]) -> str | None:
            result, headers = answer
            if (result.status_code or 0) not in REDIRECT_STATUSES:
                return None
            if not headers.get("location"):
                raise FetchFailed(f"{result.url}: HTTP {result.status_code} redirect without a Location header")
            return headers["location"]

        final, (result, headers) = await follow_redirects(url, send, location_of, guard=self.guard,
                                                          max_redirects=crawl.max_redirects)
        current, status = final.url, result.status_code or 0
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

    # -- Chromium over CDP --------------------------------------------------------------------------

    async def _browser_crawler(self) -> AsyncWebCrawler:
        async with self._browser_lock:
            if self._browser is not None:
                return self._browser
            from crawl4ai import AsyncWebCrawler, BrowserConfig

            crawl = self.settings.crawl
            self._session = await self._stack.enter_async_context(guarded_session(
                self.guard, timeout_s=crawl.timeout_s, headers={"User-Agent": crawl.user_agent}))
            cdp_url = crawl.cdp_url
            if not cdp_url:
                assert self._base_dir is not None
                self._proxy = GuardedProxy(self.guard, timeout_s=crawl.timeout_s)
                proxy_url = await self._proxy.start()
                self._chromium = ChromiumProcess(crawl.chromium_path, self._base_dir / "chromium",
                                                 proxy_url=proxy_url)
                cdp_url = await self._chromium.start()
            else:
                log.warning("Attached to the browser at %s: its connections are checked by the route guard "
                            "only, not pinned to the checked address (start no browser of your own for that)",
                            cdp_url)
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

        await page.add_init_script(_PAGE_LOCKDOWN)
        page.on("popup", _close_popup)
        await page.route("**/*", guard_route)
        return page

    async def _route_navigation(self, route: Any, refusals: list[str]) -> str | None:
        """Fetch a document hop by hop over the guarded session and hand the browser the answer; returns the
        final URL, or None when a hop was refused."""
        import aiohttp

        assert self._session is not None
        session, crawl = self._session, self.settings.crawl
        request = route.request
        headers = {name: value for name, value in (await request.all_headers()).items()
                   if name.lower() not in _NOT_FORWARDED and not name.startswith(":")}
        headers["Accept-Encoding"] = "gzip, deflate"

        async def send(current: CheckedUrl, hop: int) -> tuple[int, Any, bytes]:
            # A redirect is followed with a GET and no body, as browsers do for 301-303.
            method, body = (request.method, request.post_data_buffer) if hop == 0 else ("GET", None)
            async with session.request(method, current.url, headers=headers, data=body,
                                       allow_redirects=False) as response:
                if response.status in REDIRECT_STATUSES and response.headers.get("location"):
                    return response.status, response.headers, b""
                return response.status, response.headers, await read_capped(response, crawl.max_bytes)

        def location_of(answer: tuple[int, Any, bytes]) -> str | None:
            status, answer_headers, _ = answer
            return answer_headers.get("location") if status in REDIRECT_STATUSES else None

        try:
            final, (status, answer_headers, body) = await follow_redirects(
                request.url, send, location_of, guard=self.guard, max_redirects=crawl.max_redirects)
        except (UrlRefused, FetchFailed) as exc:
            refusals.append(str(exc))
            await route.abort("blockedbyclient")
            return None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.info("%s: %s", request.url, exc)
            await route.abort("failed")
            return None
        returned: dict[str, str] = {}
        for name, value in answer_headers.items():
            if name.lower() not in _NOT_RETURNED:
                returned[name] = f"{returned[name]}\n{value}" if name in returned else value
        await route.fulfill(status=status, headers=returned, body=body)
        return final.url

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
        if self._proxy is not None:
            # Connections the proxy stopped (WebSockets, service workers, popups), once each.
            refusals.extend(r for r in self._proxy.refusals if r not in refusals)
            self._proxy.refusals.clear()
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


def _close_popup(popup: Any) -> None:
    asyncio.ensure_future(popup.close())


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
