"""`generate_draft`: the twin model on Ray Serve (the author's active adapter) writes N alternative drafts.

The prompt has the shape of the model's training data (see `tools.prompts.draft_messages`): for the adapter
the training instruction alone (brief as title, topics as training's key phrases found them), for the bare
base model the author's own posts as earlier conversation turns. N candidates go to the deployment at once
(it batches them), each with its own seed, repetition controls and a token budget from the author's usual
length on the platform; each comes back cleaned (`evals.hygiene.clean_draft`). The first candidate's tokens
stream to the graph's custom stream as ``{"token": ...}`` while the model writes.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from langchain_core.tools import BaseTool, InjectedToolCallId, StructuredTool
from pydantic import BaseModel, ConfigDict, Field

from evals.hygiene import allowed_urls_text, clean_draft, urls_in
from evals.rules import PLATFORM_LIMITS, has_title_or_headings
from evals.text import paragraphs
from tools.options import ToolOptions
from tools.prompts import (
    STOP_AT_QUOTE_MARKER,
    brief_instruction,
    brief_title,
    draft_messages,
    strip_quote_markers,
)
from tools.schemas import Passage
from tools.style import StyleCard, build_style_card, pick_examples
from twin.domain import Author, Platform

if TYPE_CHECKING:
    from agents.deps import AgentDeps


class GenerateDraftInput(BaseModel):
    brief: str = Field(min_length=1, description="What the post is about (the user's prompt).")
    tool_call_id: Annotated[str, InjectedToolCallId]
    """Tags the streamed tokens, so concurrent drafts can be told apart (not shown to a chat model)."""
    platform: Platform
    passages: list[Passage] = Field(default_factory=list, description="Facts to draw on (quoted in the prompt).")
    candidates: int = Field(default=1, ge=1, le=8, description="How many alternative texts to write at once.")


class Candidate(BaseModel):
    text: str
    """The cleaned text (see `evals.hygiene.clean_draft`)."""
    removed: list[str] = Field(default_factory=list)
    completion_tokens: int = 0
    finish_reason: str = "stop"


class DraftGeneration(BaseModel):
    text: str
    """The first candidate's text."""
    completion_tokens: int
    """All candidates together."""
    candidates: list[Candidate] = Field(default_factory=list)
    prompt: str = ""
    """The prompt's text (instruction, examples, sources), for the critique's echo check."""
    prompt_tokens: int | None = None
    base_model_only: bool
    adapter_version: int | None = None


class AuthorMaterial(BaseModel):
    """What drafting for one platform needs from the author's corpus, computed once per tool set."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    card: StyleCard | None
    examples: list[tuple[str, str]]
    """(instruction, text) pairs of the author's own posts, shown to the base model as earlier turns."""
    key_phrases: Any = None
    """`training.dataset.KeyPhrases` fitted on the author's corpus: the brief's topics, as training found them."""

    def topics(self, text: str) -> list[str]:
        return self.key_phrases.top(text) if self.key_phrases is not None and text.strip() else []

    def token_budget(self, cap: int) -> int:
        """New tokens for one draft: the author's usual length on this platform, within the cap."""
        if self.card is None:
            return cap
        return max(48, min(cap, round(self.card.words_high * TOKENS_PER_WORD)))


TOKENS_PER_WORD = 1.6
EXAMPLE_WORDS = 160


def _token_writer() -> Callable[[Any], None]:
    """The graph's custom stream writer when running inside a graph, else a no-op."""
    from langgraph.config import get_stream_writer

    try:
        return get_stream_writer()
    except (RuntimeError, KeyError):  # KeyError: called as a runnable (a config exists) but outside a graph
        return lambda _chunk: None


def _opening(text: str, max_words: int) -> str:
    """The first paragraphs of a post, up to about ``max_words`` (whole paragraphs; at least one)."""
    kept: list[str] = []
    count = 0
    for block in paragraphs(text):
        n = len(block.split())
        if kept and count + n > max_words:
            break
        kept.append(block)
        count += n
    return "\n\n".join(kept)


def with_title(text: str, platform: Platform, brief: str) -> str:
    """An article platform wants a title line; the brief's title is the one the user asked for."""
    title, _ = brief_title(brief)
    limits = PLATFORM_LIMITS.get(platform.value)
    if not text or title is None or limits is None or not limits.needs_heading or has_title_or_headings(text):
        return text
    return f"# {title}\n\n{text}"


def _candidate_seed(call_id: str, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{call_id}:{index}".encode()).digest()[:6], "big")


def make_generate_draft(
    deps: AgentDeps, author: Author, options: ToolOptions, exclude_urls: Sequence[str] = ()
) -> BaseTool:
    from serving.model_client import SamplingParams, adapter_for_author

    materials: dict[Platform, AuthorMaterial] = {}
    excluded = set(exclude_urls)

    def material_for(platform: Platform) -> AuthorMaterial:
        from training.dataset import KeyPhrases, extractive_instruction, usable_documents

        if platform not in materials:
            # The request's own links were just stored under the author; they are not the author's voice.
            documents = [d for d in deps.store.list_documents(author) if d.url not in excluded]
            prose = usable_documents(documents)
            key_phrases = KeyPhrases([d.clean_text for d in prose]) if len(prose) >= 2 else None
            examples = []
            for doc in pick_examples(documents, platform, options.few_shot_examples):
                phrases = key_phrases.top(doc.clean_text) if key_phrases is not None else []
                examples.append((extractive_instruction(doc, phrases, 0, 1), _opening(doc.clean_text, EXAMPLE_WORDS)))
            materials[platform] = AuthorMaterial(
                card=build_style_card(documents, platform), examples=examples, key_phrases=key_phrases
            )
        return materials[platform]

    async def generate_draft(
        brief: str,
        tool_call_id: str,
        platform: Platform,
        passages: list[Passage] | None = None,
        candidates: int = 1,
    ) -> tuple[str, DraftGeneration]:
        material = await asyncio.to_thread(material_for, platform)
        adapter = await asyncio.to_thread(adapter_for_author, deps.store, author.name)
        given = [Passage.model_validate(p) for p in passages or []]
        # The adapter was tuned on instruction -> post; it sees only what the user handed it (link excerpts).
        # The base model also gets the author's retrieved passages, as material beside the example turns.
        shown = [p for p in given if p.origin == "link"] if adapter is not None else given
        shown = shown[: options.prompt_passages]
        link_text = " ".join(p.text for p in given if p.origin == "link")
        topics = await asyncio.to_thread(material.topics, f"{brief} {link_text}".strip())
        instruction = brief_instruction(platform, brief, topics)
        messages = draft_messages(
            author=author.name, platform=platform, instruction=instruction,
            examples=material.examples if adapter is None else [], passages=shown, adapter=adapter is not None,
        )
        budget = material.token_budget(options.max_new_tokens)
        allowed = allowed_urls_text(brief, [p.text for p in given] + [p.url for p in given])
        # With no address in front of the model, none can be written: a link it could only make up (the
        # post-check would cut it) is never sampled.
        no_links = not urls_in(allowed_urls_text(brief, [p.text for p in shown] + [p.url for p in shown]))

        def params(index: int) -> SamplingParams:
            return SamplingParams(
                max_new_tokens=budget, temperature=options.temperature, top_p=options.top_p,
                repetition_penalty=options.repetition_penalty, no_repeat_ngram_size=options.no_repeat_ngram_size,
                seed=_candidate_seed(tool_call_id, index), stop=STOP_AT_QUOTE_MARKER, siblings=candidates,
                no_links=no_links,
            )

        write = _token_writer()

        async def streamed() -> Any:
            finished = None
            async for chunk in deps.model.stream_chunks(adapter, messages, params(0)):
                if chunk.text:
                    write({"token": chunk.text, "call": tool_call_id})
                if chunk.final is not None:
                    finished = chunk.final
            return finished

        # Concurrent requests: the deployment batches them, so N candidates cost little more than one.
        results = await asyncio.gather(
            streamed(), *(deps.model.generate(adapter, messages, params(i)) for i in range(1, candidates))
        )
        written: list[Candidate] = []
        for result in results:
            if result is None:
                continue
            cleaned = clean_draft(strip_quote_markers(result.text), allowed, truncated=result.finish_reason == "length")
            written.append(Candidate(text=with_title(cleaned.text, platform, brief), removed=cleaned.removed,
                                     completion_tokens=result.completion_tokens, finish_reason=result.finish_reason))
        first = results[0]
        generation = DraftGeneration(
            text=written[0].text if written else "",
            completion_tokens=sum(c.completion_tokens for c in written),
            candidates=written,
            prompt="\n\n".join(m["content"] for m in messages),
            prompt_tokens=first.prompt_tokens if first is not None else None,
            base_model_only=adapter is None,
            adapter_version=adapter.version if adapter is not None else None,
        )
        return generation.text, generation

    return StructuredTool.from_function(
        coroutine=generate_draft,
        name="generate_draft",
        description="Write one or more alternative posts in the author's voice.",
        args_schema=GenerateDraftInput,
        response_format="content_and_artifact",
    )
