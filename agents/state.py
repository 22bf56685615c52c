"""Graph state: a narrow input (the request) and the full state the nodes fill in."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

from agents.schemas import DraftOut, DraftRequest, Plan, ScoredDraft, ToolCallRecord
from tools.schemas import Passage


class InputState(TypedDict):
    """What a caller gives the graph."""

    request: DraftRequest
    """The validated request: author, brief, links, platform, number of drafts."""


class State(InputState, total=False):
    """Everything a run accumulates; each node returns the keys it changes."""

    plan: Plan
    """What to retrieve, which links to collect, how many drafts for which platform."""
    messages: Annotated[list[AnyMessage], add_messages]
    """The chat-model planner's conversation (its tool calls and their results); empty otherwise."""
    ingest: dict[str, Any]
    """Summary of the link ingestion (documents stored, refused and failed URLs)."""
    passages: list[Passage]
    """Text the drafts may stand on: excerpts of the request's links, then retrieved passages."""
    drafts: list[list[ScoredDraft]]
    """Per draft slot, every version written so far (first draft, then each revision)."""
    revision_round: int
    """Revision rounds done (0 after the first critique)."""
    tool_calls: Annotated[list[ToolCallRecord], operator.add]
    """Every tool call of the run, in order."""
    base_model_only: bool
    """True when the author has no active adapter and the base model wrote the drafts."""
    adapter_version: int | None
    """The adapter version that wrote the drafts."""
    final: list[DraftOut]
    """The best version of each draft slot, with its scores, critique and sources."""
