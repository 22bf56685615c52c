"""`generate_draft`: the twin model on Ray Serve (the author's active adapter) writes or revises a draft.

The prompt carries a style card and a few of the author's own posts for the platform (computed once per
tool set from the corpus), the passages as quoted data, and the brief. Tokens stream to the graph's
custom stream as ``{"token": ...}`` while the model writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from langchain_core.tools import BaseTool, InjectedToolCallId, StructuredTool
from pydantic import BaseModel, Field

from agents.prompts import STOP_AT_QUOTE_MARKER, draft_messages, revise_messages, strip_quote_markers
from agents.schemas import Passage
from agents.style import StyleCard, build_style_card, pick_examples
from tools.options import ToolOptions
from twin.domain import Author, Platform

if TYPE_CHECKING:
    from agents.deps import AgentDeps


class GenerateDraftInput(BaseModel):
    brief: str = Field(min_length=1, description="What the post is about (the user's prompt).")
    tool_call_id: Annotated[str, InjectedToolCallId]
    """Tags the streamed tokens, so concurrent drafts can be told apart (not shown to a chat model)."""
    platform: Platform
    passages: list[Passage] = Field(default_factory=list, description="Facts to draw on (quoted in the prompt).")
    previous_draft: str | None = Field(default=None, description="Set to revise this draft.")
    problems: list[str] = Field(default_factory=list, description="What the revision must fix.")


class DraftGeneration(BaseModel):
    text: str
    completion_tokens: int
    prompt_tokens: int | None = None
    base_model_only: bool
    adapter_version: int | None = None


class AuthorMaterial(BaseModel):
    """Style card and example posts for one platform."""

    card: StyleCard | None
    examples: list[str]


def _token_writer() -> Callable[[Any], None]:
    """The graph's custom stream writer when running inside a graph, else a no-op."""
    from langgraph.config import get_stream_writer

    try:
        return get_stream_writer()
    except RuntimeError:
        return lambda _chunk: None


def make_generate_draft(
    deps: AgentDeps, author: Author, options: ToolOptions, exclude_urls: Sequence[str] = ()
) -> BaseTool:
    from serving.model_client import SamplingParams, adapter_for_author

    materials: dict[Platform, AuthorMaterial] = {}
    excluded = set(exclude_urls)

    def material_for(platform: Platform) -> AuthorMaterial:
        if platform not in materials:
            # The request's own links were just stored under the author; they are not the author's voice.
            documents = [d for d in deps.store.list_documents(author) if d.url not in excluded]
            examples = pick_examples(documents, platform, options.few_shot_examples)
            materials[platform] = AuthorMaterial(
                card=build_style_card(documents, platform), examples=[d.clean_text for d in examples]
            )
        return materials[platform]

    async def generate_draft(
        brief: str,
        tool_call_id: str,
        platform: Platform,
        passages: list[Passage] | None = None,
        previous_draft: str | None = None,
        problems: list[str] | None = None,
    ) -> tuple[str, DraftGeneration]:
        material = await asyncio.to_thread(material_for, platform)
        common = dict(
            author=author.name,
            platform=platform,
            brief=brief,
            card=material.card,
            examples=material.examples,
            passages=[Passage.model_validate(p) for p in passages or []],
        )
        if previous_draft:
            messages = revise_messages(**common, previous=previous_draft, problems=problems or [])
        else:
            messages = draft_messages(**common)
        adapter = await asyncio.to_thread(adapter_for_author, deps.store, author.name)
        params = SamplingParams(
            max_new_tokens=options.max_new_tokens, temperature=options.temperature, top_p=options.top_p,
            stop=STOP_AT_QUOTE_MARKER,
        )
        write = _token_writer()
        pieces: list[str] = []
        finished = None
        async for chunk in deps.model.stream_chunks(adapter, messages, params):
            if chunk.text:
                pieces.append(chunk.text)
                write({"token": chunk.text, "call": tool_call_id})
            if chunk.final is not None:
                finished = chunk.final
        text = strip_quote_markers(finished.text if finished else "".join(pieces))
        generation = DraftGeneration(
            text=text,
            completion_tokens=finished.completion_tokens if finished else len(pieces),
            prompt_tokens=finished.prompt_tokens if finished else None,
            base_model_only=finished.base_model_only if finished else adapter is None,
            adapter_version=adapter.version if adapter is not None else None,
        )
        return text, generation

    return StructuredTool.from_function(
        coroutine=generate_draft,
        name="generate_draft",
        description="Write (or, given previous_draft and problems, revise) a post in the author's voice.",
        args_schema=GenerateDraftInput,
        response_format="content_and_artifact",
    )
