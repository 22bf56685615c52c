"""Chat on the page: the form posts a request, the answer opens a server-sent event stream of the run.

The browser's EventSource can only GET, so the POST checks and parks the request under a one-time key and
returns the run panel, whose `sse-connect` then fetches ``/chat/stream/{key}``. The stream sends HTML
fragments for htmx's SSE extension to swap in: steps, tokens, drafts (stored in the inbox), then ``done``.
A reconnect after the end finds the key used up and is told so, rather than starting a second run.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import ServerSentEvent, ServerSentEventMessage, Template
from litestar.template import TemplateEngineProtocol

from agents.schemas import AgentEvent, DraftRequest
from serving.api.chat import admit_run, free_run_slot
from serving.service import TwinService
from serving.web.forms import ChatForm, lines
from serving.web.pending import ResumeRun
from serving.web.plugin import PAGE_EXCEPTION_HANDLERS
from twin.domain import DRAFT_PLATFORMS, Conflict, RunStatus, TwinError

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
            "stopped": await service.resumable_runs(),
            "page": "chat",
        }
        return Template(template_name="chat.html", context=context)

    @post("/chat/resume/{run_id:str}", name="chat_resume")
    async def resume(self, request: Request, service: TwinService, run_id: str) -> Template:
        """A Resume button: check the run can continue, then open its panel like a new chat's."""
        from agents.run import can_resume

        run = service.db.get_run(run_id)
        if run.status is not RunStatus.failed or not await can_resume(service.checkpointer, run_id):
            raise Conflict(f"Run {run_id} cannot be resumed: it finished, is running, or has no checkpoint.")
        free_run_slot(service)
        chat = DraftRequest.model_validate(run.request)
        key = request.app.state.pending_chats.park(ResumeRun(run_id=run_id, request=chat))
        return Template(template_name="partials/chat_run.html", context={"key": key, "chat": chat, "resumed": True})

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
        parked = request.app.state.pending_chats.take(key)
        engine = request.app.template_engine
        return ServerSentEvent(_events(service, engine, parked))


def _render(engine: TemplateEngineProtocol, name: str, **context: Any) -> str:
    return engine.get_template(name).render(**context)


def _message(event: str, data: str) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=event, data=data)


async def _events(
    service: TwinService, engine: TemplateEngineProtocol, parked: DraftRequest | ResumeRun | None
) -> AsyncIterator[ServerSentEventMessage]:
    from agents.run import resume_run, run_agent

    if parked is None:
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
    draft_request = parked.request if isinstance(parked, ResumeRun) else parked
    async with slot:
        try:
            with contextlib.ExitStack() as stack:
                if isinstance(parked, ResumeRun):
                    stack.enter_context(service.resuming(parked.run_id))
                    events = resume_run(service.agent_deps(), parked.run_id)
                else:
                    events = run_agent(service.agent_deps(), draft_request)
                async for event in events:
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
