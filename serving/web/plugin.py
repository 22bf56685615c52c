"""Templates, static files, template filters, and the error responses every page controller shares."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.config.app import AppConfig
from litestar.exceptions import (
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.plugins import InitPluginProtocol
from litestar.plugins.htmx import HTMXTemplate
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.router import Router
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from pydantic import ValidationError as PydanticValidationError

from serving.web.pending import PendingChats
from twin.domain import TwinError
from twin.settings import Settings

WEB_DIR = Path(__file__).parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"


def static_files_router() -> Router:
    return create_static_files_router(path="/static", directories=[STATIC_DIR], name="static")


class WebPlugin(InitPluginProtocol):
    """Registers the Jinja templates (with the page's filters) and what the pages keep between requests."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.template_config = TemplateConfig(
            directory=TEMPLATES_DIR, engine=JinjaTemplateEngine, engine_callback=self._configure
        )
        app_config.state["pending_chats"] = PendingChats()
        app_config.exception_handlers.setdefault(PermissionDeniedException, forbidden)
        return app_config

    def _configure(self, engine: JinjaTemplateEngine) -> None:
        env = engine.engine
        env.globals["auth_enabled"] = bool(self.settings.serve.api_token)
        env.filters.update(when=_when, score=_score, urlquote=lambda v: quote(str(v), safe=""),
                           tojson_pretty=lambda v: json.dumps(v, indent=2, default=str))
        env.globals["platform_label"] = _platform_label


def _when(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone().strftime("%Y-%m-%d %H:%M")


def _score(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.2f}" if abs(value) < 1000 else f"{value:,.0f}"


def _platform_label(platform: Any) -> str:
    value = getattr(platform, "value", platform)
    return {"x": "X", "linkedin": "LinkedIn", "github": "GitHub"}.get(value, str(value).capitalize())


# errors --------------------------------------------------------------------------------------------
def validation_reason(exc: PydanticValidationError) -> str:
    """Pydantic's errors as one line: ``cron: '0 9' is not a crontab...; drafts: ...``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "form"
        parts.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _message(exc: Exception) -> str:
    if isinstance(exc, PydanticValidationError):
        return validation_reason(exc)
    if isinstance(exc, ValidationException):
        problems = [f"{item.get('key') or 'form'}: {item.get('message')}" for item in (exc.extra or [])
                    if isinstance(item, dict)]
        return "; ".join(problems) or exc.detail
    if isinstance(exc, NotFoundException | PermissionDeniedException):
        return exc.detail
    return str(exc) or type(exc).__name__


def page_error(request: Request, exc: Exception) -> Response:
    """Errors on pages: an alert in the page's flash area for htmx requests, an error page otherwise."""
    status = getattr(exc, "status_code", 400)
    message = _message(exc)
    if request.headers.get("hx-request"):
        return HTMXTemplate(template_name="partials/flash.html", context={"message": message, "level": "error"},
                            status_code=status, re_target="#flash", re_swap="innerHTML")
    return Template(template_name="error.html", context={"message": message, "status": status},
                    status_code=status)


def forbidden(request: Request, exc: PermissionDeniedException) -> Response:
    """A refused request (another origin, a missing or stale CSRF token): JSON for the API, a message on
    pages."""
    if request.url.path.startswith(("/api/", "/v1/", "/schema")):
        return Response({"status_code": exc.status_code, "detail": exc.detail}, status_code=exc.status_code)
    if "CSRF" in exc.detail:
        exc = PermissionDeniedException(f"{exc.detail}: reload the page and try again.")
    return page_error(request, exc)


def to_login(request: Request, _: NotAuthorizedException) -> Response:
    """A page without a valid token sends the browser to /login and back afterwards."""
    target = "/login?next=" + quote(request.url.path)
    if request.headers.get("hx-request"):
        return Response(content=None, status_code=401, headers={"HX-Redirect": target})
    return Redirect(path=target, status_code=303)


PAGE_EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    NotAuthorizedException: to_login,
    TwinError: page_error,
    ValidationException: page_error,
    NotFoundException: page_error,
    ValueError: page_error,
}


def page_or_fragment(request: Request, page: str, fragment: str, context: dict[str, Any]) -> Template:
    """The whole page for a normal visit, only the fragment when htmx asks for it."""
    return Template(template_name=fragment if request.headers.get("hx-request") else page, context=context)
