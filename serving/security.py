"""Who may talk to the service: which Host names it answers to, which origins may change state, which
content types the JSON endpoints take, and the CSRF token of the page's forms.

A web page the user happens to visit can send requests to ``127.0.0.1``; these checks keep it from reading
anything (a foreign Host, as in DNS rebinding, gets 400 from Litestar's allowed-hosts middleware) and from
changing anything (a cross-origin POST gets 403, a non-JSON body to a JSON endpoint 415, a page form without
the CSRF token 403). Clients that are not browsers (CLI, curl) send no Origin and no Sec-Fetch-Site and pass
as before, subject to the API token when one is configured.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE

from twin.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
CSRF_HEADER = "x-csrftoken"
CSRF_EXEMPT = ["^/api/", "^/v1/", "^/schema"]
"""Paths for API clients (bearer token, no cookies needed): the origin and content-type checks guard them."""
SECRET_FILE = "serve_secret"


def _host_literal(host: str) -> str:
    """An address as it appears in a Host header: IPv6 in brackets."""
    try:
        return f"[{host}]" if ipaddress.ip_address(host.strip("[]")).version == 6 else host
    except ValueError:
        return host


def _has_port(host: str) -> bool:
    return host.rsplit("]", 1)[-1].count(":") == 1 if host.startswith("[") else host.count(":") == 1


def allowed_hosts(settings: Settings) -> list[str]:
    """The Host header values the service answers: the bound address and the loopback names with the port,
    and the configured public names (as given, and with the port when they name none)."""
    port = settings.serve.port
    names = [_host_literal(settings.serve.host), *LOOPBACK_NAMES]
    hosts = [f"{name}:{port}" for name in names]
    if port in (80, 443):  # browsers leave a default port out of the Host header
        hosts += names
    for name in settings.serve.public_hosts:
        name = _host_literal(name.strip().lower())
        hosts.append(name)
        if not _has_port(name):
            hosts.append(f"{name}:{port}")
    return list(dict.fromkeys(hosts))


def allowed_hosts_config(settings: Settings) -> AllowedHostsConfig:
    return AllowedHostsConfig(allowed_hosts=allowed_hosts(settings), www_redirect=False)


def make_origin_guard(settings: Settings):  # noqa: ANN201 - a Litestar guard
    """State-changing requests only from the service's own origin: an Origin header must name an allowed
    host, and a browser saying the request is cross-site (or same-site from an origin not ours) is refused."""
    hosts = set(allowed_hosts(settings))

    def origin_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        if connection.scope.get("method", "GET") in SAFE_METHODS:
            return
        origin = connection.headers.get("origin")
        site = connection.headers.get("sec-fetch-site")
        if origin is not None:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or parts.netloc not in hosts:
                raise PermissionDeniedException(
                    f"Cross-origin request refused: {origin} is not this service.")
        if site == "cross-site" or (site == "same-site" and origin is None):
            raise PermissionDeniedException(f"Cross-origin request refused (Sec-Fetch-Site: {site}).")

    return origin_guard


def _expected_media_type(handler: BaseRouteHandler) -> str | None:
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return None
    media_type = getattr(data.kwarg_definition, "media_type", None) or RequestEncodingType.JSON
    return str(getattr(media_type, "value", media_type))


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (content_type.startswith("application/")
                                                   and content_type.endswith("+json"))


def content_type_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """A body goes only to a handler in the content type it reads: JSON endpoints refuse the form and
    text types a browser may send cross-origin without asking first (415), forms and uploads keep theirs."""
    expected = _expected_media_type(handler)
    if connection.scope.get("method", "GET") in SAFE_METHODS or expected is None:
        return
    headers = connection.headers
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    has_body = bool(content_type) or headers.get("content-length", "0") not in ("", "0")
    if not has_body and "transfer-encoding" not in headers:
        return  # nothing to read: the handler says what is missing
    given = content_type or "no type"
    if expected == RequestEncodingType.JSON.value:
        if not _is_json(content_type):
            raise HTTPException(status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                                detail=f"Send JSON (Content-Type: application/json), not {given}.")
    elif content_type != expected:
        raise HTTPException(status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail=f"Send {expected}, not {given}.")


def load_secret(settings: Settings) -> str:
    """The service's own secret (CSRF tokens, the login cookie), made once per data dir and kept there
    (mode 600) so that tokens and logins outlive a restart."""
    path = Path(settings.data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text().strip()
        if len(secret) >= 32:
            return secret
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC, 0o600)
    secret = secrets.token_hex(32)
    with os.fdopen(fd, "w") as out:
        out.write(secret)
    return secret


def csrf_config(settings: Settings, secret: str) -> CSRFConfig:
    """Double-submit CSRF token for the page's forms; the page sends it in the htmx header (and as a hidden
    field in its plain forms). The cookie name carries the port: services on one host keep apart."""
    return CSRFConfig(secret=secret, cookie_name=f"twin_csrf_{settings.serve.port}", header_name=CSRF_HEADER,
                      cookie_httponly=True, cookie_samesite="strict",
                      cookie_secure=settings.serve.secure_cookies is True, exclude=CSRF_EXEMPT)


def login_cookie_value(secret: str, token: str) -> str:
    """What the login cookie holds: an HMAC of the API token, never the token itself."""
    return hmac.new(secret.encode(), b"twin-login\0" + token.encode(), hashlib.sha256).hexdigest()
