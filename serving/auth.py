"""API token auth: none on loopback by default; required (bearer header or login cookie) otherwise."""

from __future__ import annotations

import hmac
import ipaddress

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from serving.security import login_cookie_value
from twin.domain import TwinError
from twin.settings import Settings

TOKEN_COOKIE = "twin_token"
PUBLIC_PATHS = ("/login", "/static/", "/api/health")


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind_address(settings: Settings) -> None:
    """Refuse to serve beyond this machine without a token."""
    if not is_loopback(settings.serve.host) and not settings.serve.api_token:
        raise TwinError(
            f"Refusing to listen on {settings.serve.host} without an API token: set TWIN_SERVE__API_TOKEN "
            "(clients then send `Authorization: Bearer <token>`), or bind to 127.0.0.1."
        )


def token_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def has_valid_credentials(connection: ASGIConnection, expected: str, secret: str) -> bool:
    """The bearer header holds the token itself; the login cookie an HMAC of it (both compared in constant
    time)."""
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return token_matches(expected, header[7:].strip())
    return token_matches(login_cookie_value(secret, expected), connection.cookies.get(TOKEN_COOKIE))


def make_token_guard(settings: Settings, secret: str):  # noqa: ANN201 - a Litestar guard
    def token_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        expected = settings.serve.api_token
        if not expected or connection.url.path.startswith(PUBLIC_PATHS):
            return
        if not has_valid_credentials(connection, expected, secret):
            raise NotAuthorizedException("A valid API token is required (Authorization: Bearer <token>).")

    return token_guard
