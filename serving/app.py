"""`create_app()`: the one Litestar application used by `twin serve` and by the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging.config import LoggingConfig
from litestar.openapi.config import OpenAPIConfig

from serving.api.deps import provide_service
from serving.api.library import AuthorController, JobController
from serving.api.training import TrainingController
from serving.auth import check_bind_address, make_token_guard
from serving.errors import EXCEPTION_HANDLERS
from serving.security import (
    allowed_hosts_config,
    content_type_guard,
    csrf_config,
    load_secret,
    make_origin_guard,
)
from serving.service import TwinService
from twin.settings import Settings, get_settings


@get("/api/health", operation_id="health", tags=["service"])
async def health(service: TwinService) -> dict[str, object]:
    return service.health()


def _optional_route_handlers() -> list[object]:
    """Controllers of later stages (chat, OpenAI-compatible API, web pages, schedules) when present."""
    import importlib

    handlers: list[object] = []
    for module_name in ("serving.api.chat", "serving.api.openai", "serving.api.drafts", "serving.web",
                        "serving.api.schedules"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        handlers.extend(module.ROUTE_HANDLERS)
    return handlers


def create_app(settings: Settings | None = None, *, service: TwinService | None = None,
               with_model: bool = True) -> Litestar:
    settings = settings or get_settings()
    check_bind_address(settings)
    secret = load_secret(settings)
    twin_service = service or TwinService(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.service = twin_service
        await twin_service.start(with_model=with_model)
        scheduler = None
        if settings.schedule.enabled:
            from serving.scheduler import start_scheduler

            scheduler = app.state.scheduler = start_scheduler(twin_service)
        try:
            yield
        finally:
            if scheduler is not None:
                await scheduler.stop()
            await twin_service.stop()

    plugins = []
    try:
        from serving.web import plugins as web_plugins

        plugins = web_plugins(settings)
    except ModuleNotFoundError as exc:
        if exc.name != "serving.web":
            raise

    return Litestar(
        route_handlers=[health, AuthorController, JobController, TrainingController, *_optional_route_handlers()],
        dependencies={"service": Provide(provide_service, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        # Origin first (a cross-origin request is refused whatever it carries), then the token, then the body.
        guards=[make_origin_guard(settings), make_token_guard(settings, secret), content_type_guard],
        allowed_hosts=allowed_hosts_config(settings),
        csrf_config=csrf_config(settings, secret),
        state=State({"serve_secret": secret}),
        lifespan=[lifespan],
        request_max_body_size=settings.serve.max_body_bytes,
        openapi_config=OpenAPIConfig(title="LLM Twin", version="0.1.0", path="/schema"),
        plugins=plugins,
        # The entry point owns the root logger (cli.terminal: library logs to a file); Litestar keeps its own.
        logging_config=LoggingConfig(configure_root_logger=False),
        debug=False,
    )
