"""Login for the page when an API token is configured: an HMAC of the token (never the token) goes into an
HttpOnly, SameSite=Strict cookie, Secure over https."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from serving.auth import TOKEN_COOKIE, token_matches
from serving.security import login_cookie_value
from serving.service import TwinService
from serving.web.forms import LoginForm
from serving.web.plugin import PAGE_EXCEPTION_HANDLERS

COOKIE_MAX_AGE_S = 30 * 24 * 3600


def _safe_next(target: str) -> str:
    """Only paths on this site (no `//host` or scheme): the login must not bounce anywhere else."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


class LoginPages(Controller):
    tags = ["pages"]
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTION_HANDLERS

    @get("/login", name="login")
    async def login_page(self, service: TwinService, next: str = "/") -> Template:
        return Template(template_name="login.html",
                        context={"next": _safe_next(next), "token_required": bool(service.settings.serve.api_token)})

    @post("/login", name="login_submit")
    async def login(
        self, request: Request, service: TwinService,
        data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        expected = service.settings.serve.api_token
        if expected and not token_matches(expected, data.token.strip()):
            return Template(template_name="login.html", status_code=401,
                            context={"next": _safe_next(data.next), "token_required": True,
                                     "error": "That token is not the service's API token."})
        cookies = []
        if expected:
            value = login_cookie_value(request.app.state.serve_secret, expected)
            cookies.append(Cookie(key=TOKEN_COOKIE, value=value, httponly=True, samesite="strict", path="/",
                                  max_age=COOKIE_MAX_AGE_S, secure=secure_cookie(request, service)))
        return Redirect(_safe_next(data.next), status_code=303, cookies=cookies)

    @post("/logout", name="logout")
    async def logout(self, request: Request, service: TwinService) -> Redirect:
        return Redirect("/login", status_code=303,
                        cookies=[Cookie(key=TOKEN_COOKIE, value="", max_age=0, path="/", httponly=True,
                                        samesite="strict", secure=secure_cookie(request, service))])


def secure_cookie(request: Request, service: TwinService) -> bool:
    """``Secure`` as configured, or when the request came over https (a TLS proxy in front)."""
    configured = service.settings.serve.secure_cookies
    return configured if configured is not None else request.url.scheme == "https"
