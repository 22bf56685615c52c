"""`ingest_links`: collect the request's links through the ingestion pipeline (URL guard included)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from tools.options import ToolOptions
from tools.prompts import format_passages_for_model
from tools.schemas import Passage
from twin.domain import Author, Document, IngestReport, Kind, UrlProblem

if TYPE_CHECKING:
    from agents.deps import AgentDeps


@dataclass
class RunLinks:
    """What one run's links became. `retrieve` searches these reference pages and no others: a linked
    page grounds the run that linked it, and is never the author's own writing."""

    reference_ids: set[int] = field(default_factory=set)


class IngestLinksInput(BaseModel):
    links: list[str] = Field(description="The user's links to read (only links from the user's request).")


class IngestLinksResult(BaseModel):
    report: IngestReport
    not_allowed: list[UrlProblem] = Field(default_factory=list)
    """Links refused before any fetch because the user's request did not contain them."""
    passages: list[Passage] = Field(default_factory=list)
    """An excerpt of each page read."""

    def summary(self) -> str:
        """One line: pages read, then every link not read and why."""
        problems = [f"{p.url} ({p.reason})" for p in [*self.not_allowed, *self.report.refused, *self.report.failed]]
        line = f"{len(self.passages)} page(s) read"
        return line + (f"; not read: {'; '.join(problems)}" if problems else "")


def excerpt(document: Document, max_words: int) -> str:
    """The first paragraphs of a document, up to about `max_words` words."""
    taken: list[str] = []
    count = 0
    for paragraph in document.clean_text.split("\n\n"):
        n = len(paragraph.split())
        if taken and count + n > max_words:
            break
        taken.append(paragraph.strip())
        count += n
    return "\n\n".join(taken)


def make_ingest_links(
    deps: AgentDeps, author: Author, allowed_links: Sequence[str], options: ToolOptions,
    run_links: RunLinks | None = None,
) -> BaseTool:
    from ingestion.pipeline import ingest_urls

    allowed = set(allowed_links)

    async def ingest_links(links: list[str]) -> tuple[str, IngestLinksResult]:
        # Links come only from the user's request: anything else (say, a URL a page asked for) is refused
        # here, before the pipeline, so it is never fetched.
        wanted = [link for link in dict.fromkeys(links) if link in allowed]
        refused = [
            UrlProblem(url=link, reason="not one of the links in the user's request")
            for link in dict.fromkeys(links)
            if link not in allowed
        ]
        report = IngestReport(author=author.name)
        if wanted:
            async with deps.ingest_lock:
                report = await ingest_urls(deps.ingestion, author, wanted)
        documents = deps.store.list_documents(author, ids=report.document_ids) if report.document_ids else []
        if run_links is not None:
            run_links.reference_ids.update(d.id for d in documents if d.kind is Kind.reference)
        passages = [
            Passage(origin="link", url=d.url, title=d.title, text=excerpt(d, options.link_excerpt_words), document_id=d.id)
            for d in documents
        ]
        result = IngestLinksResult(report=report, not_allowed=refused, passages=passages)
        content = result.summary()
        if passages:
            content += "\n\n" + format_passages_for_model(passages)
        return content, result

    return StructuredTool.from_function(
        coroutine=ingest_links,
        name="ingest_links",
        description="Read the pages behind the user's links (each page only, as reference material) and "
                    "return an excerpt of each.",
        args_schema=IngestLinksInput,
        response_format="content_and_artifact",
    )
