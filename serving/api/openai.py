"""An OpenAI-compatible face of the twin: `POST /v1/chat/completions` with model `twin:<author>`.

The last user message is the brief (links in it are the request's links); a system message may name the
platform (`platform: x`). The agent runs as for `/api/chat` with one draft, and its final draft is the
assistant's answer, streamed as `chat.completion.chunk` events when `stream` is true.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from litestar import Controller, get, post
from litestar.response import ServerSentEvent
from litestar.types import SSEData
from pydantic import BaseModel, ConfigDict, Field

from agents.schemas import DraftRequest
from serving.api.chat import run_chat, stream_chat
from serving.service import TwinService
from twin.domain import Platform, TwinError

MODEL_PREFIX = "twin:"
URL_PATTERN = re.compile(r"https?://[^\s<>\"')\]]+")
PLATFORM_PATTERN = re.compile(r"platform\s*[:=]\s*(\w+)", re.IGNORECASE)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(part.get("text", "") for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # clients send many optional OpenAI fields

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


def to_draft_request(body: ChatCompletionRequest) -> DraftRequest:
    if not body.model.startswith(MODEL_PREFIX) or not body.model.removeprefix(MODEL_PREFIX):
        raise TwinError(f"Unknown model {body.model!r}: use `twin:<author>` (see GET /v1/models).")
    users = [m.text for m in body.messages if m.role == "user" and m.text.strip()]
    if not users:
        raise TwinError("The conversation has no user message to answer.")
    prompt = users[-1]
    platform = Platform.linkedin
    for message in body.messages:
        if message.role in ("system", "developer") and (match := PLATFORM_PATTERN.search(message.text)):
            try:
                platform = Platform(match.group(1).lower())
            except ValueError as exc:
                raise TwinError(f"Unknown platform {match.group(1)!r}.") from exc
    links = list(dict.fromkeys(URL_PATTERN.findall(prompt)))
    return DraftRequest(author=body.model.removeprefix(MODEL_PREFIX), prompt=prompt, links=links,
                        platform=platform, drafts=1)


def _chunk(completion_id: str, model: str, delta: dict[str, Any], finish: str | None = None) -> SSEData:
    payload = {
        "id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    import json

    return {"data": json.dumps(payload)}


class OpenAIController(Controller):
    path = "/v1"
    tags = ["openai"]

    @get("/models", operation_id="listModels")
    async def models(self, service: TwinService) -> dict[str, Any]:
        return {"object": "list", "data": [
            {"id": f"{MODEL_PREFIX}{a.name}", "object": "model", "created": int(a.created_at.timestamp()),
             "owned_by": "llm-twin"} for a in service.db.list_authors()]}

    @post("/chat/completions", operation_id="chatCompletions", status_code=200)
    async def completions(self, service: TwinService, data: ChatCompletionRequest) -> Any:
        request = to_draft_request(data)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        if data.stream:
            events = await stream_chat(service, request)

            async def chunks() -> AsyncIterator[SSEData]:
                yield _chunk(completion_id, data.model, {"role": "assistant", "content": ""})
                async for event in events:
                    if event.get("event") == "draft":
                        import json

                        text = json.loads(event["data"])["data"]["text"]
                        for piece in re.findall(r"\S+\s*|\s+", text):
                            yield _chunk(completion_id, data.model, {"content": piece})
                    elif event.get("event") == "error":
                        yield _chunk(completion_id, data.model, {}, finish="error")
                        return
                yield _chunk(completion_id, data.model, {}, finish="stop")
                yield {"data": "[DONE]"}

            return ServerSentEvent(chunks())
        result = await run_chat(service, request)
        text = result.drafts[0].text if result.drafts else ""
        return {
            "id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": data.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": len(text.split()), "total_tokens": len(text.split())},
            "twin": {"run_id": result.run_id, "base_model_only": result.base_model_only,
                     "scores": result.drafts[0].scores if result.drafts else {}},
        }


ROUTE_HANDLERS = [OpenAIController]
