"""The web page: server-rendered Jinja templates with htmx; every asset is served from ``/static``.

`create_app` adds `ROUTE_HANDLERS` and `plugins(settings)`; the controllers are thin over `TwinService`,
the scheduler and the agent, like the JSON API's.
"""

from __future__ import annotations

from serving.web.chat import ChatPages
from serving.web.inbox import InboxPages, SchedulePages
from serving.web.library import JobPages, LibraryPages
from serving.web.plugin import WebPlugin, static_files_router
from serving.web.session import LoginPages
from twin.settings import Settings

ROUTE_HANDLERS: list = [static_files_router(), LoginPages, LibraryPages, JobPages, ChatPages, InboxPages,
                        SchedulePages]


def plugins(settings: Settings) -> list:
    from litestar.plugins.htmx import HTMXPlugin

    return [HTMXPlugin(), WebPlugin(settings)]
