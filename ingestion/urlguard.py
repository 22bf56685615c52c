"""The URL guard: the one place that decides where an outbound request may go.

Every outbound path (the HTTP fetcher, Chromium, git clones, the GitHub API, feeds) goes through here:

- :meth:`UrlGuard.resolve_async` checks a URL (only http(s); no credentials; a host written in a canonical
  form; every address the host resolves to public, unless the host is on the allow-list) and returns the
  addresses it approved, so the caller connects to exactly those (git's ``curloptResolve``, the Chromium
  proxy in :mod:`ingestion.proxy`);
- :func:`guarded_session` is an aiohttp session whose resolver applies the same rule to the addresses the
  connection actually uses, which closes the DNS rebinding gap between check and connect;
- :func:`follow_redirects` follows redirects hop by hop, every hop checked again;
- :func:`read_capped` enforces the byte cap while the body streams in.

``allowed_hosts`` names hosts (exact match on the URL's host) that skip the address check, e.g. the
tests' ``127.0.0.1`` server or an intranet blog the user trusts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

from ingestion.types import FetchFailed, UrlRefused

if TYPE_CHECKING:
    import aiohttp

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IPAddress]]
"""``(host, port) -> addresses``; blocking. The system resolver unless a test supplies its own DNS."""
R = TypeVar("R")

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}

# WHATWG URL parsing treats a host whose last label is a number (decimal, octal or 0x-hex) as an IPv4
# address in some shorthand ("2130706433", "0177.0.0.1", "0x7f.1"). Browsers and libc accept those; we
# accept only the canonical dotted-decimal form so that what we check is what gets connected to.
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def address_problem(address: IPAddress) -> str | None:
    """Why an address is not a public unicast address, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        # Addresses that embed an IPv4 address are judged by the embedded one as well.
        if address.ipv4_mapped is not None:
            inner = address_problem(address.ipv4_mapped)
            return f"IPv4-mapped IPv6 address of {address.ipv4_mapped}" + (f", a {inner}" if inner else "")
        if address.sixtofour is not None and (inner := address_problem(address.sixtofour)):
            return f"6to4 address embedding {address.sixtofour} ({inner})"
        if address.teredo is not None and (inner := address_problem(address.teredo[1])):
            return f"Teredo address embedding {address.teredo[1]} ({inner})"
        if address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            if inner := address_problem(embedded):
                return f"NAT64 address embedding {embedded} ({inner})"
        if address.is_site_local:
            return "site-local address"
        if address in ipaddress.ip_network("fc00::/7"):
            return "unique local address (ULA)"
    if address.is_unspecified:
        return "unspecified address"
    if address.is_loopback:
        return "loopback address"
    if address.is_link_local:
        return "link-local address (includes cloud metadata 169.254.169.254)"
    if address.is_multicast:
        return "multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in ipaddress.ip_network("100.64.0.0/10"):
        return "carrier-grade NAT address (100.64.0.0/10)"
    if address.is_private:
        return "private address"
    if address.is_reserved:
        return "reserved address"
    if not address.is_global:
        return "non-global address"
    return None


class GuardedUrl:
    """A URL that passed the syntactic checks: normalized text plus its host and port."""

    __slots__ = ("url", "host", "port", "literal")

    def __init__(self, url: str, host: str, port: int, literal: IPAddress | None) -> None:
        self.url = url
        self.host = host
        self.port = port
        self.literal = literal


class UrlGuard:
    """Decides whether a URL may be fetched; raises :class:`UrlRefused` with the reason when not."""

    def __init__(self, allowed_hosts: Iterable[str] = (), *, resolver: Resolver | None = None) -> None:
        self.allowed_hosts = frozenset(h.strip().lower().strip("[]") for h in allowed_hosts if h.strip())
        self._resolver = resolver or system_resolver

    def is_allowed_host(self, host: str) -> bool:
        return host.lower().strip("[]") in self.allowed_hosts

    def parse(self, url: str) -> GuardedUrl:
        """Syntactic checks and normalization, without DNS."""
        text = url.strip()
        if any(ch.isspace() or ord(ch) < 0x20 for ch in text):
            raise UrlRefused(f"{url!r}: URL contains whitespace or control characters")
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise UrlRefused(f"{url!r}: not a valid URL ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise UrlRefused(f"{url!r}: only http and https URLs are fetched, not {scheme or 'no scheme'!r}")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise UrlRefused(f"{url!r}: URLs with credentials (user@host) are not fetched")
        raw_host = parts.hostname
        if not raw_host:
            raise UrlRefused(f"{url!r}: URL has no host")
        host, literal = self._canonical_host(url, raw_host)
        port = port or DEFAULT_PORTS[scheme]
        netloc_host = f"[{host}]" if isinstance(literal, ipaddress.IPv6Address) else host
        netloc = netloc_host if port == DEFAULT_PORTS[scheme] else f"{netloc_host}:{port}"
        normalized = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
        return GuardedUrl(normalized, host, port, literal)

    @staticmethod
    def _canonical_host(url: str, raw_host: str) -> tuple[str, IPAddress | None]:
        host = raw_host.lower()
        if ":" in host:  # urlsplit only yields ':' in a host from a bracketed IPv6 literal
            try:
                v6 = ipaddress.IPv6Address(host)
            except ValueError:
                raise UrlRefused(f"{url!r}: invalid IPv6 address {raw_host!r}") from None
            if v6.scope_id:
                raise UrlRefused(f"{url!r}: IPv6 addresses with a zone are not fetched")
            return v6.compressed, v6
        if host.endswith("."):
            raise UrlRefused(f"{url!r}: host {raw_host!r} ends with a dot; write it without")
        if _NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
            try:
                v4 = ipaddress.IPv4Address(host)
            except ValueError:
                v4 = None
            if v4 is None or str(v4) != host:
                raise UrlRefused(
                    f"{url!r}: host {raw_host!r} is an IP address in a non-canonical form "
                    "(decimal, octal, hex or shortened); write it as dotted decimal"
                )
            return host, v4
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UrlRefused(f"{url!r}: host {raw_host!r} is not a valid domain name") from None
        if not _HOSTNAME.match(ascii_host):
            raise UrlRefused(f"{url!r}: host {raw_host!r} is not a valid domain name")
        return ascii_host, None

    def check_addresses(self, url: str, host: str, addresses: Iterable[IPAddress]) -> None:
        """Refuse unless the host is allowed or every address is public."""
        if self.is_allowed_host(host):
            return
        seen = list(addresses)
        if not seen:
            raise UrlRefused(f"{url!r}: host {host!r} resolves to no address")
        for address in seen:
            if problem := address_problem(address):
                where = host if str(address) == host else f"{host} resolves to {address}, which"
                raise UrlRefused(f"{url!r}: {where} is not a public address ({problem})")

    def resolve(self, url: str) -> CheckedUrl:
        """Check a URL (blocking DNS); returns it normalized with the addresses it may be fetched from."""
        target = self.parse(url)
        return self._judge(url, target, None if target.literal is not None else self._lookup(url, target))

    async def resolve_async(self, url: str) -> CheckedUrl:
        """Like :meth:`resolve`, resolving without blocking the event loop."""
        target = self.parse(url)
        if target.literal is not None:
            return self._judge(url, target, None)
        return self._judge(url, target, await asyncio.to_thread(self._lookup, url, target))

    def check(self, url: str) -> str:
        """Blocking variant; returns the normalized URL."""
        return self.resolve(url).url

    async def check_async(self, url: str) -> str:
        return (await self.resolve_async(url)).url

    async def connect_addresses(self, host: str, port: int) -> list[IPAddress]:
        """The addresses a connection to ``host`` may use, checked now (at connect time)."""
        url = f"//{host}:{port}"
        addresses = await asyncio.to_thread(self._lookup, url, GuardedUrl(url, host, port, None))
        self.check_addresses(url, host, addresses)
        return addresses

    def _lookup(self, url: str, target: GuardedUrl) -> list[IPAddress]:
        try:
            return list(dict.fromkeys(self._resolver(target.host, target.port)))
        except (OSError, UnicodeError) as exc:
            if self.is_allowed_host(target.host):
                return []  # allowed without resolving; the connection will say what is wrong
            raise UrlRefused(f"{url!r}: host {target.host!r} does not resolve ({exc})") from None

    def _judge(self, url: str, target: GuardedUrl, looked_up: list[IPAddress] | None) -> CheckedUrl:
        addresses = [target.literal] if target.literal is not None else looked_up or []
        self.check_addresses(url, target.host, addresses)
        return CheckedUrl(url=target.url, host=target.host, port=target.port, addresses=tuple(addresses))


@dataclass(frozen=True)
class CheckedUrl:
    """A URL the guard approved, with the addresses it approved for it (pin connections to these)."""

    url: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]
    """Empty only for an allowed host that did not resolve."""

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme


def system_resolver(host: str, port: int) -> list[IPAddress]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # sockaddr[0] of an IPv6 result may carry a "%zone" suffix.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


# -- caps and redirects ---------------------------------------------------------------------------------


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class TooManyRedirects(FetchFailed):
    pass


async def follow_redirects(
    url: str,
    send: Callable[[CheckedUrl, int], Awaitable[R]],
    location_of: Callable[[R], str | None],
    *,
    guard: UrlGuard,
    max_redirects: int,
    check: Callable[[str], Awaitable[CheckedUrl]] | None = None,
) -> tuple[CheckedUrl, R]:
    """Request ``url`` and follow its redirects, each hop checked by the guard before it is requested.

    ``send(checked, hop)`` makes one request without following redirects; ``location_of(answer)`` is the
    redirect target of an answer, or None when it is final. Raises :class:`UrlRefused` (a hop refused) or
    :class:`TooManyRedirects`.
    """
    check = check or guard.resolve_async
    current = await check(url)
    for hop in range(max_redirects + 1):
        answer = await send(current, hop)
        location = location_of(answer)
        if location is None:
            return current, answer
        try:
            current = await check(urljoin(current.url, location))
        except UrlRefused as exc:
            raise UrlRefused(f"{url}: redirect from {current.url} refused: {exc}") from None
    raise TooManyRedirects(f"{url}: more than {max_redirects} redirects")


async def read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The body, refused as soon as it (or its declared length) passes ``max_bytes``."""
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise FetchFailed(f"body of {declared} bytes is over the {max_bytes}-byte cap")
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > max_bytes:
            raise FetchFailed(f"body is over the {max_bytes}-byte cap")
    return bytes(body)


def guarded_session(guard: UrlGuard, *, timeout_s: float, headers: dict[str, str] | None = None,
                    limit: int = 100) -> aiohttp.ClientSession:
    """An aiohttp session that connects only to addresses the guard approves at connect time."""
    import aiohttp
    from aiohttp.abc import AbstractResolver, ResolveResult

    class GuardedResolver(AbstractResolver):
        async def resolve(self, host: str, port: int = 0,
                          family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
            addresses = await guard.connect_addresses(host, port)
            wanted = {socket.AF_INET: 4, socket.AF_INET6: 6}.get(family)
            return [
                ResolveResult(hostname=host, host=str(address), port=port,
                              family=socket.AF_INET if address.version == 4 else socket.AF_INET6,
                              proto=0, flags=socket.AI_NUMERICHOST)
                for address in addresses if wanted in (None, address.version)
            ]

        async def close(self) -> None:
            pass

    connector = aiohttp.TCPConnector(limit=limit, resolver=GuardedResolver(), use_dns_cache=False)
    return aiohttp.ClientSession(connector=connector, headers=headers,
                                 timeout=aiohttp.ClientTimeout(total=timeout_s))
