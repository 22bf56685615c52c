"""Chromium connects only to addresses the URL guard checked, in real Chromium against local servers.

A canary listener on 127.0.0.2 counts every TCP connection it is offered; the guard allows only the test
site's host, so any connection the canary sees is one that bypassed the guard.
"""

from __future__ import annotations

import ipaddress
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestion.fetch import WebFetcher
from ingestion.urlguard import IPAddress, UrlGuard
from twin.settings import Settings
from webserver import TestSite, serve_site

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")

NOISY_PAGE = """<!doctype html><html><head><title>Noisy page</title></head><body>
<article><h1>Noisy page</h1><p id="text">A page that reaches for other hosts while it renders.</p></article>
<script>
const canary = 'http://127.0.0.2:{canary}';
try {{ new WebSocket('ws://127.0.0.2:{canary}/socket'); }} catch (e) {{}}
if (navigator.serviceWorker) navigator.serviceWorker.register('/sw.js').catch(() => {{}});
try {{ window.open(canary + '/popup'); }} catch (e) {{}}
document.getElementById('text').textContent += ' Rendered by script.';
</script></body></html>"""
SERVICE_WORKER = "self.addEventListener('install', () => fetch('http://127.0.0.2:{canary}/from-sw'));"


class Canary:
    """A TCP listener that counts connections (and answers nothing)."""

    def __init__(self, host: str, port: int = 0) -> None:
        self.connections = 0
        self._socket = socket.create_server((host, port))
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


@pytest.fixture
def site() -> Iterator[TestSite]:
    with serve_site() as running:
        yield running


@pytest.fixture
def canary() -> Iterator[Canary]:
    listener = Canary("127.0.0.2")
    yield listener
    listener.close()


def _settings(tmp_path: Path, allowed: list[str], chromium: str = CHROMIUM) -> Settings:
    settings = Settings(data_dir=tmp_path / "data", allowed_hosts=allowed, _env_file=None)
    settings.crawl.timeout_s = 15.0
    settings.crawl.chromium_path = chromium
    return settings


async def test_page_cannot_reach_unchecked_hosts(site: TestSite, canary: Canary, tmp_path: Path) -> None:
    site.add("/noisy", NOISY_PAGE.format(canary=canary.port))
    site.add("/sw.js", SERVICE_WORKER.format(canary=canary.port), content_type="text/javascript")

    # The same page in a stock Playwright Chromium does open the WebSocket, the service worker and the popup.
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        page = await browser.new_page()
        await page.goto(site.url("/noisy"), wait_until="networkidle")
        await page.wait_for_timeout(500)
        await browser.close()
    assert canary.connections >= 2 and site.hits.get("/sw.js") == 1
    canary.connections = 0
    site.hits.clear()

    settings = _settings(tmp_path, ["127.0.0.1"])
    async with WebFetcher(settings, UrlGuard(settings.allowed_hosts)) as fetcher:
        page = await fetcher.fetch(site.url("/noisy"), render_js=True)
    assert "Rendered by script." in page.html
    assert canary.connections == 0
    assert "/sw.js" not in site.hits  # registration is blocked before the worker's script is fetched
    assert any(f"127.0.0.2:{canary.port}" in refusal for refusal in fetcher.blocked_requests)


async def test_chromium_never_resolves_a_host_itself(site: TestSite, tmp_path: Path) -> None:
    """The guard's DNS says blog.test is the site on 127.0.0.1; Chromium's own DNS (a host-resolver rule, as
    a rebinding attacker's server would answer it) says 127.0.0.2, where a canary listens on the same port.
    Pinned to the checked address, every request the page makes reaches the site and none the canary."""
    canary = Canary("127.0.0.2", site.port)
    site.add("/post", '<html><body><article><p id="p">Pinned post.</p></article><img src="/pixel.png">'
                      "<script>fetch('/data.json').then(r => r.json()).then(d => {"
                      "document.getElementById('p').textContent += ' ' + d.text; });</script></body></html>")
    site.add("/pixel.png", b"\x89PNG\r\n\x1a\n", content_type="image/png")
    site.add("/data.json", '{"text": "Loaded over the pinned address."}', content_type="application/json")
    wrapper = tmp_path / "chromium-with-other-dns"
    wrapper.write_text(f'#!/bin/sh\nexec {CHROMIUM} "--host-resolver-rules=MAP blog.test 127.0.0.2" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)

    def guard_dns(host: str, port: int) -> list[IPAddress]:
        if host != "blog.test":
            raise OSError(f"{host}: unknown")
        return [ipaddress.ip_address("127.0.0.1")]

    settings = _settings(tmp_path, ["blog.test"], chromium=str(wrapper))
    try:
        async with WebFetcher(settings, UrlGuard(settings.allowed_hosts, resolver=guard_dns)) as fetcher:
            page = await fetcher.fetch(f"http://blog.test:{site.port}/post", render_js=True)
    finally:
        canary.close()
    assert "Loaded over the pinned address." in page.html
    assert site.hits.get("/post") == 1 and site.hits.get("/pixel.png") == 1 and site.hits.get("/data.json") == 1
    assert canary.connections == 0
