"""WebFetcher against a real HTTP server on 127.0.0.1: redirects re-checked, caps, and Chromium over CDP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestion.fetch import WebFetcher
from ingestion.types import FetchFailed, UrlRefused
from ingestion.urlguard import UrlGuard
from twin.settings import Settings
from webserver import TestSite, serve_site

JS_PAGE = """<!doctype html><html><head><title>Rendered post</title></head><body>
<nav><a href="/">Home</a></nav><main id="app"><p>Loading…</p></main>
<script>
fetch('/api/post.json').then(r => r.json()).then(post => {
  document.getElementById('app').innerHTML =
    '<article><h1>' + post.title + '</h1><p>' + post.body + '</p></article>';
});
</script></body></html>"""
JS_TEXT = "This paragraph exists only after JavaScript ran 🎉 #rendered"


@pytest.fixture
def site() -> Iterator[TestSite]:
    with serve_site() as running:
        running.add("/post", "<html><head><title>Post</title></head><body><article><p>Plain post body.</p>"
                             "</article></body></html>")
        running.add("/feed.xml", "<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>",
                    content_type="application/rss+xml")
        running.add("/image.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, content_type="image/png")
        yield running


@pytest.fixture
def loopback_settings(tmp_path) -> Settings:
    """Only 127.0.0.1 is allowed: redirects to localhost, 127.0.0.2 or [::1] must be refused."""
    settings = Settings(data_dir=tmp_path / "data", allowed_hosts=["127.0.0.1"], _env_file=None)
    settings.crawl.timeout_s = 2.0
    settings.crawl.max_bytes = 200_000
    settings.crawl.max_redirects = 3
    return settings


def fetcher_for(settings: Settings) -> WebFetcher:
    return WebFetcher(settings, UrlGuard(settings.allowed_hosts))


async def test_plain_fetch_returns_body_and_final_url(site: TestSite, loopback_settings: Settings) -> None:
    async with fetcher_for(loopback_settings) as fetcher:
        page = await fetcher.fetch(site.url("/post#top"))
        feed = await fetcher.fetch(site.url("/feed.xml"))
    assert page.url == site.url("/post") and page.status_code == 200
    assert "Plain post body." in page.html and page.content_type.startswith("text/html")
    assert feed.html.startswith("<?xml") and feed.content_type == "application/rss+xml"
    assert fetcher.latency_summary()["http"]["pages"] == 2
    # crawl4ai's state lives under the data dir, never the home dir
    assert (loopback_settings.data_dir / "crawl4ai").is_dir()
    assert os.environ["CRAWL4_AI_BASE_DIRECTORY"]


async def test_conditional_get_with_the_stored_etag_comes_back_not_modified(
    site: TestSite, loopback_settings: Settings
) -> None:
    site.add("/tagged", "<html><body><article><p>Version one of the post.</p></article></body></html>",
             etag='"v1"')
    async with fetcher_for(loopback_settings) as fetcher:
        first = await fetcher.fetch(site.url("/tagged"))
        known = first.validators()
        again = await fetcher.fetch(site.url("/tagged"), validators=known)
        site.add("/tagged", "<html><body><article><p>Version two.</p></article></body></html>", etag='"v2"')
        changed = await fetcher.fetch(site.url("/tagged"), validators=known)
    assert first.etag == '"v1"' and not first.not_modified and "Version one" in first.html
    assert again.not_modified and again.status_code == 304 and again.html == ""
    assert not changed.not_modified and "Version two" in changed.html and changed.etag == '"v2"'
    assert site.not_modified == {"/tagged": 1} and site.hits["/tagged"] == 3


async def test_redirect_chain_is_followed_hop_by_hop(site: TestSite, loopback_settings: Settings) -> None:
    site.redirect("/old", "/older", status=301)
    site.redirect("/older", site.url("/post"), status=308)
    async with fetcher_for(loopback_settings) as fetcher:
        page = await fetcher.fetch(site.url("/old"))
    assert page.url == site.url("/post")
    assert site.hits == {"/old": 1, "/older": 1, "/post": 1}


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/post",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/post",
        "http://localhost:{port}/post",  # allowed_hosts is an exact match: localhost is not 127.0.0.1
        "http://2130706433:{port}/post",
        "file:///etc/passwd",
    ],
)
async def test_redirect_into_private_space_is_refused(site: TestSite, loopback_settings: Settings, target: str) -> None:
    site.redirect("/hop1", "/hop2")
    site.redirect("/hop2", target.format(port=site.port))
    async with fetcher_for(loopback_settings) as fetcher:
        with pytest.raises(UrlRefused, match="redirect from .*/hop2 refused"):
            await fetcher.fetch(site.url("/hop1"))
    assert site.hits == {"/hop1": 1, "/hop2": 1}


async def test_too_many_redirects(site: TestSite, loopback_settings: Settings) -> None:
    site.redirect("/loop", "/loop")
    async with fetcher_for(loopback_settings) as fetcher:
        with pytest.raises(FetchFailed, match="more than 3 redirects"):
            await fetcher.fetch(site.url("/loop"))
    assert site.hits["/loop"] == 4


async def test_byte_cap_declared_and_streamed(site: TestSite, loopback_settings: Settings) -> None:
    site.add("/big", "<p>" + "word " * 60_000 + "</p>")  # ~300 kB with Content-Length
    site.add("/endless", "", stream_bytes=50_000_000)  # chunked, no Content-Length
    async with fetcher_for(loopback_settings) as fetcher:
        with pytest.raises(FetchFailed, match="200000-byte cap"):
            await fetcher.fetch(site.url("/big"))
        with pytest.raises(FetchFailed, match="200000-byte cap"):
            await fetcher.fetch(site.url("/endless"))
        assert (await fetcher.fetch(site.url("/post"))).status_code == 200  # the fetcher still works


async def test_timeout(site: TestSite, loopback_settings: Settings) -> None:
    loopback_settings.crawl.timeout_s = 0.5
    site.add("/slow", "<p>late</p>", delay_s=2.0)
    async with fetcher_for(loopback_settings) as fetcher:
        with pytest.raises(FetchFailed, match="timed out"):
            await fetcher.fetch(site.url("/slow"))
    assert fetcher.timings[-1].seconds < 1.5


async def test_http_errors_and_binary_bodies_fail_clearly(site: TestSite, loopback_settings: Settings) -> None:
    async with fetcher_for(loopback_settings) as fetcher:
        with pytest.raises(FetchFailed, match="HTTP 404"):
            await fetcher.fetch(site.url("/missing"))
        with pytest.raises(FetchFailed, match="not a text document"):
            await fetcher.fetch(site.url("/image.png"))
        with pytest.raises(UrlRefused, match="loopback"):
            await fetcher.fetch(f"http://127.0.0.2:{site.port}/post")
    assert not (loopback_settings.data_dir / "crawl4ai" / ".crawl4ai" / "downloads").exists()


async def test_javascript_page_needs_chromium(site: TestSite, loopback_settings: Settings) -> None:
    loopback_settings.crawl.timeout_s = 15.0
    site.add("/app", JS_PAGE)
    site.add("/api/post.json", f'{{"title": "Rendered", "body": "{JS_TEXT}"}}', content_type="application/json")
    site.add("/leaky", """<html><body><article><p>A page whose script reaches for the metadata service and
another loopback address; both requests must be stopped by the guard.</p></article>
<img src="http://127.0.0.2:{port}/pixel.png">
<script>fetch('http://169.254.169.254/latest/meta-data/').catch(() => {{}});</script></body></html>""".format(
        port=site.port))
    site.redirect("/js-redirect", "/js-redirect-2")
    site.redirect("/js-redirect-2", "/app")
    site.redirect("/js-bad-redirect", "/js-redirect-2b")
    site.redirect("/js-redirect-2b", "http://169.254.169.254/latest/meta-data/")

    async with fetcher_for(loopback_settings) as fetcher:
        plain = await fetcher.fetch(site.url("/app"))
        rendered = await fetcher.fetch(site.url("/app"), render_js=True)
        redirected = await fetcher.fetch(site.url("/js-redirect"), render_js=True)
        leaky = await fetcher.fetch(site.url("/leaky"), render_js=True)
        with pytest.raises(UrlRefused, match="169.254.169.254"):
            await fetcher.fetch(site.url("/js-bad-redirect"), render_js=True)
        chromium = fetcher._chromium
        assert chromium is not None and chromium.process is not None
        pid = chromium.process.pid

    assert JS_TEXT not in plain.html
    assert JS_TEXT in rendered.html
    assert redirected.url == site.url("/app") and JS_TEXT in redirected.html
    assert "metadata service" in leaky.html
    blocked = "\n".join(fetcher.blocked_requests)
    assert "169.254.169.254" in blocked and "127.0.0.2" in blocked
    assert site.hits["/js-redirect-2b"] == 1
    assert fetcher.latency_summary()["browser"]["pages"] == 3
    assert live_processes_in_group(pid) == []  # Chromium and its helpers are gone (zombies aside)


def live_processes_in_group(pgid: int) -> list[int]:
    live = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            live.append(int(entry.name))
    return live
