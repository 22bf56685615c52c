"""The twin answers: `POST /api/chat` (JSON), `POST /api/chat/stream` (server-sent events), runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from litestar import Controller, get, post
from litestar.response import ServerSentEvent
from litestar.types import SSEData

from agents.schemas import DraftRequest, RunResult
from serving.service import TwinService
from twin.domain import Run, TooBusy, Unavailable


def admit_run(service: TwinService, request: DraftRequest) -> asyncio.Semaphore:
    """Refuse early what the run would refuse: limits (422), unknown author (404), model down (503), every
    run slot taken (429). Returns the run slot to hold while running (API and page alike)."""
    request.check_limits(service.settings.serve)
    service.author(request.author)
    return free_run_slot(service)


def free_run_slot(service: TwinService) -> asyncio.Semaphore:
    """The run slot to hold, once the model is up (503) and a slot is free (429)."""
    service.require_model()
    slot = service.run_slot()
    if slot.locked():
        raise TooBusy(f"{service.settings.serve.max_concurrent_runs} runs are in progress; retry shortly.")
    return slot


async def run_chat(service: TwinService, request: DraftRequest, origin: str = "chat") -> RunResult:
    from agents.run import run_to_completion

    slot = admit_run(service, request)
    async with slot:
        try:
            return await asyncio.wait_for(
                run_to_completion(service.agent_deps(), request, origin=origin),
                timeout=service.settings.serve.request_timeout_s,
            )
        except TimeoutError as exc:
            raise Unavailable(
                f"The twin did not finish within {service.settings.serve.request_timeout_s:.0f} s; "
                "retry, or ask for fewer drafts."
            ) from exc


async def resume_chat(service: TwinService, run_id: str) -> RunResult:
    """Continue a stopped run from its last checkpoint, to the end (its finished steps are not run again)."""
    from agents.run import resume_to_completion

    service.db.get_run(run_id)  # 404 first
    slot = free_run_slot(service)
    async with slot:
        with service.resuming(run_id):
            try:
                return await asyncio.wait_for(resume_to_completion(service.agent_deps(), run_id),
                                              timeout=service.settings.serve.request_timeout_s)
            except TimeoutError as exc:
                raise Unavailable(
                    f"The run did not finish within {service.settings.serve.request_timeout_s:.0f} s; resume it "
                    "again to continue from where it got to."
                ) from exc


async def stream_chat(service: TwinService, request: DraftRequest) -> AsyncIterator[SSEData]:
    """Agent events as SSE: `step`, `token`, `draft`, then `done` (or `error`)."""
    from agents.run import run_agent

    slot = admit_run(service, request)

    async def events() -> AsyncIterator[SSEData]:
        async with slot:
            async for event in run_agent(service.agent_deps(), request):
                yield {"event": event.type, "data": event.model_dump_json()}

    return events()


class ChatController(Controller):
    path = "/api"
    tags = ["chat"]

    @post("/chat", operation_id="chat", status_code=200)
    async def chat(self, service: TwinService, data: DraftRequest) -> RunResult:
        """Drafts in the author's voice, each with scores and the sources it stands on, plus the run id."""
        return await run_chat(service, data)

    @post("/chat/stream", operation_id="chatStream", status_code=200)
    async def chat_stream(self, service: TwinService, data: DraftRequest) -> ServerSentEvent:
        """The same run, streamed: the agent's steps and tokens as server-sent events."""
        return ServerSentEvent(await stream_chat(service, data))

    @get("/runs/{run_id:str}", operation_id="getRun")
    async def get_run(self, service: TwinService, run_id: str) -> Run:
        """A run's request, plan, tool calls, drafts, critiques and scores."""
        return service.db.get_run(run_id)

    @post("/runs/{run_id:str}/resume", operation_id="resumeRun", status_code=200)
    async def resume_run(self, service: TwinService, run_id: str) -> RunResult:
        """Continue a run that stopped part-way (its client went away, the model was down) from its last
        checkpoint: the steps it finished are not run again, its drafts are stored once. 409 when it
        finished already, is running, or has no checkpoint to continue from."""
        return await resume_chat(service, run_id)


ROUTE_HANDLERS = [ChatController]
