"""`retrieve`: hybrid search over the author's own chunks (LlamaIndex over Qdrant, filtered to the author),
and over the pages this run's links became (reference material, quoted as link passages)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from tools.options import ToolOptions
from tools.prompts import format_passages_for_model
from tools.schemas import Passage
from twin.domain import Author, Platform

if TYPE_CHECKING:
    from agents.deps import AgentDeps
    from tools.ingest import RunLinks


class RetrieveInput(BaseModel):
    query: str = Field(min_length=1, description="What to look for in the author's own writing.")
    platform: Platform | None = Field(default=None, description="Only texts from this platform.")
    k: int | None = Field(default=None, ge=1, le=50, description="How many passages.")


def make_retrieve(deps: AgentDeps, author: Author, options: ToolOptions, run_links: RunLinks | None = None) -> BaseTool:
    async def retrieve(query: str, platform: Platform | None = None, k: int | None = None) -> tuple[str, list[Passage]]:
        vectors = deps.ingestion.vectors
        hits = [("retrieved", hit) for hit in await asyncio.to_thread(
            vectors.search, author, query, k or options.retrieve_k, platform)]
        if run_links is not None and run_links.reference_ids:
            hits += [("link", hit) for hit in await asyncio.to_thread(
                vectors.search_references, author, query, sorted(run_links.reference_ids), k or options.retrieve_k)]
        passages = [
            Passage(
                origin=origin,
                url=hit.url,
                title=hit.title or None,
                text=hit.text,
                document_id=hit.document_id,
                chunk_id=hit.chunk_id,
                score=hit.score,
            )
            for origin, hit in hits
        ]
        return format_passages_for_model(passages), passages

    return StructuredTool.from_function(
        coroutine=retrieve,
        name="retrieve",
        description="Search the author's own past writing (and the pages linked in this request) for passages "
                    "relevant to a query.",
        args_schema=RetrieveInput,
        response_format="content_and_artifact",
    )
