"""Chat on the page: the form posts a request, the answer opens a server-sent event stream of the run.

The browser's EventSource can only GET, so the POST checks and parks the request under a one-time key and
returns the run panel, whose `sse-connect` then fetches ``/chat/stream/{key}``. The stream sends HTML
fragments for htmx's SSE extension to swap in: steps, tokens, drafts (stored in the inbox), then ``done``.
A reconnect after the end finds the key used up and is told so, rather than starting a second run.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import ServerSentEvent, ServerSentEventMessage, Template
from litestar.template import TemplateEngineProtocol

from agents.schemas import AgentEvent, DraftRequest
from serving.api.chat import admit_run
from serving.service import TwinService
from serving.web.forms import ChatForm, lines
from serving.web.plugin import PAGE_EXCEPTION_HANDLERS
from twin.domain import DRAFT_PLATFORMS, TwinError

DRAFTING_NODES = ("draft", "revise")


class ChatPages(Controller):
    tags = ["pages"]
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTION_HANDLERS

    @get("/chat", name="chat")
    async def chat_page(self, service: TwinService, author: str | None = None) -> Template:
        authors = service.db.list_authors()
        context = {
            "authors": [a.name for a in authors],
            "selected": author or (authors[0].name if authors else ""),
            "platforms": DRAFT_PLATFORMS,
            "limits": service.settings.serve,
            "model": service.health()["model"],
            "page": "chat",
        }
        return Template(template_name="chat.html", context=context)

    @post("/chat", name="chat_submit")
    async def submit(
        self,
        request: Request,
        service: TwinService,
        data: Annotated[ChatForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        draft_request = DraftRequest(author=data.author, prompt=data.prompt, links=lines(data.links),
                                     platform=data.platform, drafts=data.drafts)
        admit_run(service, draft_request)
        key = request.app.state.pending_chats.park(draft_request)
        return Template(template_name="partials/chat_run.html",
                        context={"key": key, "chat": draft_request})

    @get("/chat/stream/{key:str}", name="chat_stream")
    async def stream(self, request: Request, service: TwinService, key: str) -> ServerSentEvent:
        draft_request = request.app.state.pending_chats.take(key)
        engine = request.app.template_engine
        return ServerSentEvent(_events(service, engine, draft_request))


def _render(engine: TemplateEngineProtocol, name: str, **context: Any) -> str:
    return engine.get_template(name).render(**context)


def _message(event: str, data: str) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=event, data=data)


async def _events(
    service: TwinService, engine: TemplateEngineProtocol, draft_request: DraftRequest | None
) -> AsyncIterator[ServerSentEventMessage]:
    from agents.run import run_agent

    if draft_request is None:
        yield _message("error", _render(engine, "partials/chat_error.html",
                                        message="This chat has already run (or expired); its drafts are in the inbox."))
        yield _message("done", "")
        return
    slot = service.run_slot()
    if slot.locked():
        yield _message("error", _render(engine, "partials/chat_error.html",
                                        message="Every run slot is taken; send the request again in a moment."))
        yield _message("done", "")
        return
    async with slot:
        try:
            async for event in run_agent(service.agent_deps(), draft_request):
                for message in _event_messages(service, engine, event, draft_request.drafts):
                    yield message
        except TwinError as exc:
            yield _message("error", _render(engine, "partials/chat_error.html", message=str(exc)))
            yield _message("done", "")


def _event_messages(
    service: TwinService, engine: TemplateEngineProtocol, event: AgentEvent, drafts: int
) -> list[ServerSentEventMessage]:
    if event.type == "token":
        # Drafts are written concurrently: each token goes to its draft's box (an out-of-band append).
        slot = event.data.get("draft")
        slot = slot if isinstance(slot, int) and 0 <= slot < drafts else 0
        text = html.escape(str(event.data.get("text", "")))
        return [_message("token", f'<span id="live-tokens-{slot}" hx-swap-oob="beforeend">{text}</span>')]
    if event.type == "step":
        reset = event.node in DRAFTING_NODES and event.data.get("status") == "started"
        return [_message("step", _render(engine, "partials/chat_step.html", event=event,
                                         reset_slots=range(drafts) if reset else ()))]
    if event.type == "draft":
        draft_id = event.data.get("draft_id")
        if draft_id is None:
            return []
        draft = service.db.get_draft(draft_id)
        author = service.db.get_author_by_id(draft.author_id)
        return [_message("draft", _render(engine, "partials/draft.html", draft=draft, author_name=author.name,
                                          editing=False))]
    if event.type == "error":
        return [_message("error", _render(engine, "partials/chat_error.html", message=event.data.get("message"))),
                _message("done", _render(engine, "partials/chat_done.html", result=None,
                                         run_id=event.data.get("run_id")))]
    result = event.data.get("result") or {}
    return [_message("done", _render(engine, "partials/chat_done.html", result=result,
                                     run_id=result.get("run_id")))]
