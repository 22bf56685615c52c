"""What the agent needs from the rest of the system, injected (the service owns one of each)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twin.settings import Settings
from twin.store import DocumentStore

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from ingestion.pipeline import IngestionDeps
    from serving.model_client import ModelClient


@dataclass
class AgentDeps:
    settings: Settings
    store: DocumentStore
    ingestion: IngestionDeps
    model: ModelClient
    """Client of the Ray Serve model deployment (base model plus per-author adapters)."""
    checkpointer: BaseCheckpointSaver | None = None
    """LangGraph checkpointer (`agents.checkpoint.open_checkpointer`); None keeps runs in memory only."""
    chat_model: BaseChatModel | None = None
    """Tool-calling planner; default: built from ``settings.agent.chat_model_url`` when that is set."""
    ingest_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while links are ingested: one writer of the vector store at a time (share the service's)."""
    opik_client: Any = None
    """An `opik.Opik` client for tracing; default: built from the settings when Opik is configured."""
    evaluators: dict[str, Any] = field(default_factory=dict)
    """Per-author metric state (style classifier, profile, copy detector), built once and reused."""

    def __post_init__(self) -> None:
        if self.chat_model is None and self.settings.agent.chat_model_url:
            self.chat_model = build_chat_model(self.settings)
        if self.opik_client is None and self.settings.opik_enabled:
            import opik

            self.opik_client = opik.Opik(
                project_name=self.settings.opik_project,
                host=self.settings.opik_url,
                api_key=self.settings.opik_api_key,
            )


def build_chat_model(settings: Settings) -> BaseChatModel:
    """The OpenAI-compatible chat model configured for planning (``TWIN_AGENT__CHAT_MODEL_URL``)."""
    from langchain_openai import ChatOpenAI

    agent = settings.agent
    return ChatOpenAI(
        base_url=agent.chat_model_url,
        model=agent.chat_model_name or "default",
        api_key=agent.chat_model_api_key or "not-needed",
        temperature=0,
        timeout=settings.serve.request_timeout_s,
        max_retries=1,
    )
