"""Helpers for the agent and tool tests: a corpus world (store + embedded Qdrant), a scripted model for
routing tests, and a scripted OpenAI-compatible chat endpoint on 127.0.0.1 for the planner path."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks.corpus_site import store_corpus_posts
from conftest import MODELS_CACHE
from ingestion.pipeline import IngestionDeps, resume_embedding
from twin.domain import Author, Platform
from twin.settings import Settings
from twin.store import DocumentStore
from twin.vectors import Embedder, VectorStore


@dataclass
class World:
    settings: Settings
    store: DocumentStore
    ingestion: IngestionDeps
    author: Author

    def close(self) -> None:
        self.ingestion.vectors.close()


def build_world(settings: Settings, store: DocumentStore, corpus: str = "brandur_leach_atoms", limit: int = 24,
                author_name: str = "brandur", platform: Platform = Platform.x) -> World:
    """An author whose posts (from ../shared/corpora) are stored, with a real local Qdrant (not embedded yet)."""
    vectors = VectorStore(settings, Embedder(settings))
    ingestion = IngestionDeps(settings=settings, store=store, vectors=vectors)
    author = store.add_author(author_name)
    store_corpus_posts(store, author, corpus, limit, platform)
    return World(settings=settings, store=store, ingestion=ingestion, author=author)


async def embedded_world(settings: Settings, store: DocumentStore, **kw: Any) -> World:
    """`build_world`, then chunk and embed the stored posts."""
    world = build_world(settings, store, **kw)
    await resume_embedding(world.ingestion, world.author)
    return world


def world_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings like the `settings` fixture's, for fixtures wider than one test."""
    MODELS_CACHE.mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "data_dir": data_dir, "models_path": MODELS_CACHE, "allowed_hosts": ["127.0.0.1", "localhost"],
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@contextmanager
def shared_world(data_dir: Path, **kw: Any) -> Iterator[World]:
    """A world for a whole test module (embedding is the slow part of setting one up)."""
    import asyncio

    settings = world_settings(data_dir)
    settings.ensure_dirs()
    store = DocumentStore.from_url(settings.resolved_database_url)
    world = asyncio.run(embedded_world(settings, store, **kw))
    try:
        yield world
    finally:
        world.close()
        store.close()


class ScriptedModel:
    """Stands in for `ModelClient` in routing tests (STYLE house rule 5): replies from a script, in order
    (the last one repeats), and records every prompt it was given."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.prompts: list[list[dict[str, str]]] = []
        self.params: list[Any] = []

    async def stream_chunks(self, adapter: Any, messages: list[dict[str, str]], params: Any) -> AsyncIterator[Any]:
        from serving.model_client import Generation, StreamChunk

        self.prompts.append(messages)
        self.params.append(params)
        reply = self.replies[min(len(self.prompts) - 1, len(self.replies) - 1)]
        words = reply.split(" ")
        for i, word in enumerate(words):
            yield StreamChunk(text=word if i == 0 else " " + word)
        yield StreamChunk(final=Generation(
            text=reply, prompt_tokens=sum(len(m["content"].split()) for m in messages), completion_tokens=len(words),
            finish_reason="stop", adapter=None, base_model_only=adapter is None, base_model="scripted",
        ))

    async def generate(self, adapter: Any, messages: list[dict[str, str]], params: Any) -> Any:
        final = None
        async for chunk in self.stream_chunks(adapter, messages, params):
            final = chunk.final or final
        return final

    async def stream(self, adapter: Any, messages: list[dict[str, str]], params: Any) -> AsyncIterator[str]:
        async for chunk in self.stream_chunks(adapter, messages, params):
            if chunk.text:
                yield chunk.text


Responder = Callable[[dict[str, Any]], dict[str, Any]]


def tool_call_reply(name: str, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
    ]}


def text_reply(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


@dataclass
class ChatEndpoint:
    """An OpenAI-compatible `/v1/chat/completions` on 127.0.0.1 whose answers a test scripts."""

    responder: Responder
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


@contextmanager
def scripted_chat_endpoint(responder: Responder) -> Iterator[ChatEndpoint]:
    endpoint = ChatEndpoint(responder=responder)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            endpoint.requests.append(body)
            message = endpoint.responder(body)
            payload = json.dumps({
                "id": f"chatcmpl-{len(endpoint.requests)}", "object": "chat.completion", "created": 0,
                "model": body.get("model", "scripted"),
                "choices": [{"index": 0, "message": message,
                             "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
