"""The URL guard: which URLs the crawler may fetch.

Only http(s); no credentials in the URL; a host written in a canonical form; and every address the host
resolves to must be public. ``allowed_hosts`` names hosts (exact match on the URL's host) that skip the
address check, e.g. the tests' ``127.0.0.1`` server or an intranet blog the user trusts.

The same address rule is applied again when the HTTP client connects (see ``fetch.GuardedResolver``), so
a host that resolves to a public address at check time and to a private one a moment later (DNS
rebinding) is still refused, and every redirect hop goes through :meth:`UrlGuard.check_async` again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from ingestion.types import UrlRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

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

    def __init__(self, allowed_hosts: Iterable[str] = ()) -> None:
        self.allowed_hosts = frozenset(h.strip().lower().strip("[]") for h in allowed_hosts if h.strip())

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

    def check(self, url: str) -> str:
        """Blocking variant (resolves with the system resolver); returns the normalized URL."""
        target = self.parse(url)
        if target.literal is not None or self.is_allowed_host(target.host):
            self.check_addresses(url, target.host, [target.literal] if target.literal else [])
            return target.url
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise UrlRefused(f"{url!r}: host {target.host!r} does not resolve ({exc})") from None
        self.check_addresses(url, target.host, _addresses(infos))
        return target.url

    async def check_async(self, url: str) -> str:
        """Like :meth:`check`, resolving without blocking the event loop."""
        target = self.parse(url)
        if target.literal is not None or self.is_allowed_host(target.host):
            self.check_addresses(url, target.host, [target.literal] if target.literal else [])
            return target.url
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                target.host, target.port, type=socket.SOCK_STREAM
            )
        except (socket.gaierror, UnicodeError) as exc:
            raise UrlRefused(f"{url!r}: host {target.host!r} does not resolve ({exc})") from None
        self.check_addresses(url, target.host, _addresses(infos))
        return target.url


def _addresses(infos: list[tuple]) -> list[IPAddress]:
    # sockaddr[0] of an IPv6 result may carry a "%zone" suffix.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
