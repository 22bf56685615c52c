"""The URL guard on literal addresses and odd encodings (no DNS needed)."""

from __future__ import annotations

import ipaddress

import pytest

from ingestion.types import UrlRefused
from ingestion.urlguard import UrlGuard, address_problem

ONLY_LOOPBACK_V4 = UrlGuard(["127.0.0.1"])
NOTHING_ALLOWED = UrlGuard([])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/file", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("gopher://127.0.0.1:25/", "only http and https"),
        ("http:///nohost", "no host"),
        ("http://127.0.0.2/", "loopback"),
        ("http://127.255.255.254/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://172.16.0.1/", "private"),
        ("http://172.31.255.255/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://100.127.255.254/", "carrier-grade NAT"),
        ("http://224.0.0.251/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://240.0.0.1/", "private"),  # reserved 240/4 (Python counts it private too)
        ("http://255.255.255.255/", "private"),
        ("http://192.0.2.10/", "private"),  # documentation range
        ("http://[fd12:3456::1]/", "unique local"),
        ("http://[fc00::1]/", "unique local"),
        ("http://[fec0::1]/", "site-local"),
        ("http://[::ffff:127.0.0.1]/", "IPv4-mapped"),
        ("http://[::ffff:7f00:1]/", "IPv4-mapped"),
        ("http://[::ffff:169.254.169.254]/", "IPv4-mapped"),
        ("http://[::ffff:8.8.8.8]/", "IPv4-mapped"),
        ("http://[2002:7f00:1::1]/", "6to4"),
        ("http://[2002:a9fe:a9fe::1]/", "6to4"),
        ("http://[64:ff9b::a9fe:a9fe]/", "NAT64"),
        ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "Teredo"),  # embeds 127.0.0.1
        # Odd encodings of 127.0.0.1 that libc and browsers accept.
        ("http://2130706433/", "non-canonical"),
        ("http://0177.0.0.1/", "non-canonical"),
        ("http://0x7f.1/", "non-canonical"),
        ("http://0x7f000001/", "non-canonical"),
        ("http://127.1/", "non-canonical"),
        ("http://127.000.000.001/", "non-canonical"),
        ("http://017700000001/", "non-canonical"),
        ("http://127.0.0.1./", "ends with a dot"),
        ("http://localhost./", "ends with a dot"),
        # Credentials in the URL, in either direction.
        ("http://evil@127.0.0.1/", "credentials"),
        ("http://127.0.0.1@evil.example/", "credentials"),
        ("http://user:pass@127.0.0.1:8000/", "credentials"),
        ("http://bad host/", "whitespace"),
        ("http://exa_mple..com/", "not a valid domain"),
    ],
)
def test_refused_urls_say_why(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused, match=reason) as refused:
        ONLY_LOOPBACK_V4.check(url)
    assert repr(url) in str(refused.value)  # the report names the URL it refused


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("http://127.0.0.1:8000/a?b=1#frag", "http://127.0.0.1:8000/a?b=1"),
        ("HTTP://127.0.0.1", "http://127.0.0.1/"),
        ("https://8.8.8.8:443/p", "https://8.8.8.8/p"),
        ("http://[2606:4700:4700::1111]/", "http://[2606:4700:4700::1111]/"),
        ("http://1.1.1.1:8080/x", "http://1.1.1.1:8080/x"),
    ],
)
def test_public_and_allowed_literals_pass_normalized(url: str, normalized: str) -> None:
    assert ONLY_LOOPBACK_V4.check(url) == normalized


def test_allow_list_is_an_exact_host_match() -> None:
    guard = UrlGuard(["127.0.0.1"])
    assert guard.check("http://127.0.0.1:9/") == "http://127.0.0.1:9/"
    for other in ("http://127.0.0.2/", "http://[::1]/", "http://localhost/", "http://[::ffff:127.0.0.1]/"):
        with pytest.raises(UrlRefused):
            guard.check(other)
    # Named hosts are allowed without resolving them; different spellings are not the same name.
    named = UrlGuard(["LocalHost", "[::1]"])
    assert named.check("http://localhost:8000/x") == "http://localhost:8000/x"
    assert named.check("http://[::1]:8000/") == "http://[::1]:8000/"
    with pytest.raises(UrlRefused):
        named.check("http://127.0.0.1/")


def test_nothing_private_passes_without_an_allow_list() -> None:
    with pytest.raises(UrlRefused, match="loopback"):
        NOTHING_ALLOWED.check("http://127.0.0.1/")
    with pytest.raises(UrlRefused, match="loopback"):
        NOTHING_ALLOWED.check("http://localhost/")  # resolves (via /etc/hosts) to loopback


async def test_async_check_matches_sync() -> None:
    assert await ONLY_LOOPBACK_V4.check_async("http://127.0.0.1:1/x#y") == "http://127.0.0.1:1/x"
    with pytest.raises(UrlRefused, match="link-local"):
        await ONLY_LOOPBACK_V4.check_async("http://169.254.169.254/")
    with pytest.raises(UrlRefused, match="does not resolve"):
        await NOTHING_ALLOWED.check_async("http://no-such-host.invalid/")


def test_every_resolved_address_must_be_public() -> None:
    guard = UrlGuard([])
    public = ipaddress.ip_address("93.184.216.34")
    private = ipaddress.ip_address("10.0.0.5")
    guard.check_addresses("http://mixed.example/", "mixed.example", [public])
    with pytest.raises(UrlRefused, match="resolves to 10.0.0.5"):
        guard.check_addresses("http://mixed.example/", "mixed.example", [public, private])
    with pytest.raises(UrlRefused, match="no address"):
        guard.check_addresses("http://empty.example/", "empty.example", [])


def test_address_problem_classifies() -> None:
    assert address_problem(ipaddress.ip_address("8.8.8.8")) is None
    assert address_problem(ipaddress.ip_address("2606:4700::1")) is None
    assert "6to4" in (address_problem(ipaddress.ip_address("2002:0a00:0001::")) or "")
    assert address_problem(ipaddress.ip_address("2002:0808:0808::")) is None  # 6to4 of a public address
