"""One URL-safety rule for every outbound path: the guard's session, the redirect follower, the Chromium
proxy and the GitHub API, against real servers on 127.0.0.1.

DNS is the one thing simulated: a guard's resolver answers "rebind.test" with a public address when the
URL is checked and with loopback afterwards, as a DNS-rebinding attacker's server would.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator

import pytest

from ingestion.github import GitHubProblem, resolve_targets
from ingestion.proxy import GuardedProxy
from ingestion.types import FetchFailed, UrlRefused
from ingestion.urlguard import (
    CheckedUrl, IPAddress, TooManyRedirects, UrlGuard, follow_redirects, guarded_session, read_capped,
)
from twin.settings import Settings
from webserver import TestSite, serve_site

PUBLIC = ipaddress.ip_address("93.184.216.34")
LOOPBACK = ipaddress.ip_address("127.0.0.1")


class RebindingDns:
    """Answers the first lookup of ``rebind.test`` with a public address, every later one with loopback."""

    def __init__(self) -> None:
        self.lookups = 0

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        if host != "rebind.test":
            raise OSError(f"{host}: unknown to this DNS")
        self.lookups += 1
        return [PUBLIC] if self.lookups == 1 else [LOOPBACK]


@pytest.fixture
def site() -> Iterator[TestSite]:
    with serve_site() as running:
        running.add("/post", "<html><body><p>Post.</p></body></html>")
        yield running


async def test_resolve_returns_the_addresses_it_checked() -> None:
    guard = UrlGuard(resolver=lambda host, port: [PUBLIC, PUBLIC])
    checked = await guard.resolve_async("https://Example.COM/a#b")
    assert checked == CheckedUrl(url="https://example.com/a", host="example.com", port=443, addresses=(PUBLIC,))
    assert guard.resolve("http://203.0.113.9.example/").addresses == (PUBLIC,)
    with pytest.raises(UrlRefused, match="loopback"):
        await UrlGuard(resolver=lambda host, port: [PUBLIC, LOOPBACK]).resolve_async("http://mixed.example/")
    # An allowed name that does not resolve passes (the connection will fail on its own), unpinned.
    allowed = UrlGuard(["intranet"], resolver=RebindingDns())
    assert (await allowed.resolve_async("http://intranet/")).addresses == ()


async def test_guarded_session_checks_the_address_it_connects_to(site: TestSite) -> None:
    dns = RebindingDns()
    guard = UrlGuard(resolver=dns)
    url = f"http://rebind.test:{site.port}/post"
    assert (await guard.resolve_async(url)).addresses == (PUBLIC,)  # what a check-then-connect client sees
    async with guarded_session(guard, timeout_s=5) as session:
        with pytest.raises(UrlRefused, match="loopback"):
            async with session.get(url):
                pass
    assert dns.lookups == 2 and site.hits == {}  # refused at connect time: nothing reached the server
    # An allowed host is fetched over the same session, its body under the byte cap.
    async with guarded_session(UrlGuard(["127.0.0.1"]), timeout_s=5) as session:
        async with session.get(site.url("/post")) as response:
            assert b"Post." in await read_capped(response, 1_000)
        async with session.get(site.url("/post")) as response:
            with pytest.raises(FetchFailed, match="10-byte cap"):
                await read_capped(response, 10)


async def test_follow_redirects_checks_every_hop() -> None:
    guard = UrlGuard(["127.0.0.1"])
    chain = {"http://127.0.0.1/a": "/b", "http://127.0.0.1/b": "http://127.0.0.2/c", "http://127.0.0.1/loop": "/loop"}
    sent: list[str] = []

    async def send(current: CheckedUrl, hop: int) -> str | None:
        sent.append(current.url)
        return chain.get(current.url)

    with pytest.raises(UrlRefused, match=r"redirect from http://127.0.0.1/b refused: .*loopback"):
        await follow_redirects("http://127.0.0.1/a", send, lambda location: location, guard=guard, max_redirects=5)
    assert sent == ["http://127.0.0.1/a", "http://127.0.0.1/b"]  # 127.0.0.2 was never asked
    with pytest.raises(TooManyRedirects, match="more than 2 redirects"):
        await follow_redirects("http://127.0.0.1/loop", send, lambda location: location, guard=guard, max_redirects=2)
    final, answer = await follow_redirects("http://127.0.0.1/b#x", send, lambda _: None, guard=guard, max_redirects=0)
    assert final.url == "http://127.0.0.1/b" and answer == "http://127.0.0.2/c"


async def _through_proxy(proxy_url: str, request: bytes) -> bytes:
    host, port = proxy_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


async def test_proxy_connects_only_to_checked_addresses(site: TestSite) -> None:
    proxy = GuardedProxy(UrlGuard(["127.0.0.1"], resolver=RebindingDns()), timeout_s=2)
    proxy_url = await proxy.start()
    try:
        allowed = await _through_proxy(proxy_url, f"GET {site.url('/post')} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                  "Proxy-Connection: keep-alive\r\n\r\n".encode())
        assert allowed.startswith(b"HTTP/1.1 200") and b"Connection: close" in allowed and b"Post." in allowed
        for request in (
            f"GET http://127.0.0.2:{site.port}/post HTTP/1.1\r\nHost: x\r\n\r\n",
            f"CONNECT 127.0.0.2:{site.port} HTTP/1.1\r\n\r\n",
            f"CONNECT [::1]:{site.port} HTTP/1.1\r\n\r\n",
            f"CONNECT localhost:{site.port} HTTP/1.1\r\n\r\n",
            f"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\n\r\n",
        ):
            assert (await _through_proxy(proxy_url, request.encode())).startswith(b"HTTP/1.1 403"), request
        # Checked as public, then rebound to loopback: the proxy connects to what it checked (the public
        # address, unreachable here), never to the loopback server.
        rebound = await _through_proxy(proxy_url, f"GET http://rebind.test:{site.port}/post HTTP/1.1\r\n\r\n".encode())
        assert not rebound.startswith(b"HTTP/1.1 200")
        tunnel = await _through_proxy(proxy_url, f"CONNECT 127.0.0.1:{site.port} HTTP/1.1\r\n\r\n"
                                                 f"GET /post HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert tunnel.startswith(b"HTTP/1.1 200 Connection established") and b"Post." in tunnel
    finally:
        await proxy.stop()
    assert site.hits == {"/post": 2}
    assert len(proxy.refusals) == 5 and any("169.254.169.254" in refusal for refusal in proxy.refusals)


async def test_github_api_redirects_are_checked(site: TestSite, tmp_path) -> None:
    settings = Settings(data_dir=tmp_path / "data", allowed_hosts=["127.0.0.1"], _env_file=None)
    guard = UrlGuard(settings.allowed_hosts)
    site.redirect("/users/ada/repos", f"https://127.0.0.2:{site.port}/users/ada/repos")
    with pytest.raises(UrlRefused, match="redirect from .* refused: .*loopback"):
        await resolve_targets("https://github.com/ada", settings=settings, guard=guard, api_base=site.url(""))
    site.add("/users/bob/repos", "x" * 10_000, content_type="application/json")
    settings.crawl.max_bytes = 1_000
    with pytest.raises(GitHubProblem, match="1000-byte cap"):
        await resolve_targets("https://github.com/bob", settings=settings, guard=guard, api_base=site.url(""))
    assert sorted(path.split("?")[0] for path in site.hits) == ["/users/ada/repos", "/users/bob/repos"]
