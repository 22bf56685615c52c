"""The feature pipeline: collect -> clean -> store (versioned) -> chunk -> embed.

Idempotent and resumable by construction: a document whose cleaned text hash is unchanged stores nothing;
chunk ids are derived from (document, version, index), and a document counts as embedded only after its
chunks are in Qdrant (``documents.embedded_version``). A run killed half-way and run again therefore
re-embeds exactly the documents whose chunks never landed, and nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from typing import Literal

from pydantic import BaseModel

from ingestion.chunk import HFTokenCounter, chunk_document
from ingestion.clean import clean_text
from ingestion.types import Problem, Unchanged
from twin.domain import (
    Author,
    Conflict,
    Document,
    IngestReport,
    Kind,
    NotFound,
    Platform,
    RawDocument,
    Source,
    TwinError,
    UrlProblem,
)
from twin.models import resolve_embed_model
from twin.settings import Settings
from twin.store import DocumentStore
from twin.vectors import VectorStore

EXPORT_PREFIX = "export:"


class ProgressEvent(BaseModel):
    """What the pipeline tells a progress display (CLI bar, web page) as it goes."""

    kind: Literal["source", "document", "problem", "embedded", "done"]
    url: str = ""
    status: str = ""
    message: str = ""
    total: int | None = None


ProgressCallback = Callable[[ProgressEvent], None]


def _no_progress(_: ProgressEvent) -> None:
    return None


@dataclass
class IngestionDeps:
    """What the pipeline needs, injected (the service owns one of each)."""

    settings: Settings
    store: DocumentStore
    vectors: VectorStore
    token_counter: HFTokenCounter = field(init=False)

    def __post_init__(self) -> None:
        self.token_counter = HFTokenCounter(resolve_embed_model(self.settings) / "tokenizer.json")
        adopt_legacy_vectors(self)


def adopt_legacy_vectors(deps: IngestionDeps) -> None:
    """Move chunks from collections named by the old author-name slug into the id-keyed ones (once, on the
    first open after the upgrade). Chunks that cannot be moved are embedded again from the stored text
    at the author's next ingest."""
    failed = deps.vectors.adopt_legacy_collections({a.name: a.id for a in deps.store.list_authors()})
    for author_id in failed:
        for document in deps.store.list_documents(deps.store.get_author_by_id(author_id)):
            deps.store.mark_embedded(document.id, 0)


class _Embedder:
    """Buffers stored documents and embeds them in batches (embedding is the slow, CPU-bound step)."""

    def __init__(self, deps: IngestionDeps, author: Author, report: IngestReport, progress: ProgressCallback):
        self.deps, self.author, self.report, self.progress = deps, author, report, progress
        self.pending: list[Document] = []
        self.batch_chunks = 64

    async def add(self, document: Document) -> None:
        if document.embedded_version == document.version:
            return
        self.pending.append(document)
        if len(self.pending) >= 8:
            await self.flush()

    async def flush(self) -> None:
        if not self.pending:
            return
        documents, self.pending = self.pending, []
        await asyncio.to_thread(self._embed, documents)

    def _embed(self, documents: Sequence[Document]) -> None:
        deps = self.deps
        for document in documents:
            chunks = chunk_document(document, self.author.name, deps.settings.chunk, deps.token_counter)
            # The previous version's chunks, in either of the author's collections (the kind may have changed).
            deps.vectors.delete_documents([document.id], self.author)
            deps.vectors.upsert_chunks(chunks)
            deps.store.mark_embedded(document.id, document.version)
            self.report.embedded_chunks += len(chunks)
            self.progress(ProgressEvent(kind="embedded", url=document.url, status=str(len(chunks))))


async def _store_items(
    deps: IngestionDeps,
    author: Author,
    source_id: int | None,
    items: Iterable[RawDocument | Problem | Unchanged] | object,
    report: IngestReport,
    embedder: _Embedder,
    progress: ProgressCallback,
    *,
    references: bool = False,
) -> None:
    """Store what a collector yields. With ``references`` the items are linked pages (``Kind.reference``),
    except a page that is already the author's own document, which stays theirs. Without, a page stored
    as a reference that one of the author's own sources lists becomes the author's writing."""
    reference_ids = set() if references else {
        d.id for d in await asyncio.to_thread(deps.store.list_documents, author, kind=Kind.reference)}

    async def consume(item: RawDocument | Problem | Unchanged) -> None:
        if isinstance(item, Unchanged):  # the page was not even extracted again
            if item.document_id in reference_ids:
                document = await asyncio.to_thread(deps.store.get_document, item.document_id)
                await embedder.add(await asyncio.to_thread(
                    deps.store.set_document_kind, document.id, promoted_kind(document)))
            report.fetched += 1
            report.unchanged += 1
            report.not_modified += item.not_modified
            report.document_ids.append(item.document_id)
            progress(ProgressEvent(kind="document", url=item.url, status="unchanged"))
            return
        if isinstance(item, Problem):
            problem = UrlProblem(url=item.url, reason=item.reason)
            (report.refused if item.refused else report.failed).append(problem)
            progress(ProgressEvent(kind="problem", url=item.url, status="refused" if item.refused else "failed",
                                   message=item.reason))
            return
        report.fetched += 1
        cleaned = clean_text(item)
        if not cleaned.strip():
            report.failed.append(UrlProblem(url=item.url, reason="no text left after cleaning"))
            progress(ProgressEvent(kind="problem", url=item.url, status="failed", message="empty after cleaning"))
            return
        if references and (stored := await asyncio.to_thread(deps.store.find_document, author, item.url)):
            item.kind = stored.kind
        document, status = await asyncio.to_thread(deps.store.upsert_document, author, source_id, item, cleaned)
        if document.kind is Kind.reference and item.kind is not Kind.reference:
            document = await asyncio.to_thread(deps.store.set_document_kind, document.id, item.kind)
        setattr(report, status, getattr(report, status) + 1)
        report.document_ids.append(document.id)
        progress(ProgressEvent(kind="document", url=item.url, status=status, message=document.title or ""))
        await embedder.add(document)

    if hasattr(items, "__aiter__"):
        async for item in items:  # type: ignore[attr-defined]
            await consume(item)
    else:
        for item in items:  # type: ignore[union-attr]
            await consume(item)


async def resume_embedding(deps: IngestionDeps, author: Author, progress: ProgressCallback = _no_progress) -> int:
    """Embed every stored document whose current version has no chunks yet (after a crash, say)."""
    report = IngestReport(author=author.name)
    embedder = _Embedder(deps, author, report, progress)
    for document in deps.store.documents_needing_embedding(author):
        await embedder.add(document)
    await embedder.flush()
    return report.embedded_chunks


async def ingest_urls(
    deps: IngestionDeps,
    author: Author,
    urls: Sequence[str] | None = None,
    *,
    render_js: bool = False,
    refresh: bool = False,
    progress: ProgressCallback = _no_progress,
) -> IngestReport:
    """Collect the author's registered sources (or just `urls`) and store what they hold.

    Of `urls`, one of the author's sources is collected as such (its feed, sitemap, archive); any other
    link is reference material: exactly that page, stored as ``Kind.reference`` (see `collect_reference`).
    Pages stored before are fetched with a conditional GET and skipped when unchanged; ``refresh``
    fetches and extracts every page again (after an extractor or cleaning change, say).
    """
    from ingestion.collectors import collect_reference, collect_source, detect_platform
    from ingestion.fetch import WebFetcher
    from ingestion.urlguard import UrlGuard

    report = IngestReport(author=author.name)
    report.embedded_chunks += await resume_embedding(deps, author, progress)
    targets: list[tuple[str, Platform | None, bool, Source | None]]
    if urls:
        targets = [(url, None, render_js, deps.store.find_source(author, url)) for url in urls]
    else:
        targets = [
            (s.url, s.platform, s.render_js, s)
            for s in deps.store.list_sources(author)
            if not s.url.startswith(EXPORT_PREFIX)
        ]
    guard = UrlGuard(deps.settings.allowed_hosts)
    known_pages = {} if refresh else await asyncio.to_thread(deps.store.known_pages, author)
    embedder = _Embedder(deps, author, report, progress)
    async with WebFetcher(deps.settings, guard) as fetcher:
        for position, (url, platform, needs_js, source) in enumerate(targets):
            progress(ProgressEvent(kind="source", url=url, status=f"{position + 1}/{len(targets)}", total=len(targets)))
            try:
                if source is None:
                    items = collect_reference(url, detect_platform(url), render_js=needs_js, fetcher=fetcher,
                                              settings=deps.settings, known_pages=known_pages)
                else:
                    items = collect_source(
                        url,
                        platform or source.platform,
                        render_js=needs_js or source.render_js,
                        fetcher=fetcher,
                        settings=deps.settings,
                        guard=guard,
                        known_pages=known_pages,
                    )
                await _store_items(deps, author, source.id if source else None, items, report, embedder, progress,
                                   references=source is None)
            except TwinError as exc:  # a bad source never aborts the batch
                report.failed.append(UrlProblem(url=url, reason=str(exc)))
                progress(ProgressEvent(kind="problem", url=url, status="failed", message=str(exc)))
            await embedder.flush()
            if source:
                deps.store.mark_source_ingested(source.id)
    await embedder.flush()
    progress(ProgressEvent(kind="done", message=report.model_dump_json(include={"new", "updated", "unchanged"})))
    return report


async def import_export(
    deps: IngestionDeps, author: Author, path: Path, progress: ProgressCallback = _no_progress
) -> IngestReport:
    """Import a platform's data export (LinkedIn, X, Substack, Medium ZIP) through the same store path."""
    from ingestion.exports import read_export

    contents = await asyncio.to_thread(read_export, path)
    source_url = f"{EXPORT_PREFIX}{contents.platform.value}:{path.name}"
    source = deps.store.find_source(author, source_url) or deps.store.add_source(author, source_url, contents.platform)
    report = IngestReport(author=author.name)
    report.embedded_chunks += await resume_embedding(deps, author, progress)
    embedder = _Embedder(deps, author, report, progress)
    progress(ProgressEvent(kind="source", url=source_url, total=len(contents.documents)))
    await _store_items(deps, author, source.id, contents.documents, report, embedder, progress)
    await embedder.flush()
    deps.store.mark_source_ingested(source.id)
    progress(ProgressEvent(kind="done"))
    return report


def validate_source_url(url: str) -> str:
    """Reject what can never be collected before it is stored (the URL guard checks addresses at fetch time)."""
    parsed = urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise TwinError(f"{url!r} is not an http(s) URL. Exports (ZIP files) go through `twin import`.")
    return url.strip()


def remove_source(deps: IngestionDeps, author: Author, url: str) -> int:
    """Remove a source with its documents and their chunks; returns how many documents went."""
    # Chunks first: if the process dies in between, the documents are still listed and can be removed again.
    deps.vectors.delete_documents(deps.store.source_document_ids(author, url), author)
    return len(deps.store.remove_source(author, url))


def promoted_kind(document: Document) -> Kind:
    """The kind a reference page takes when it becomes the author's writing (as a collector would file it)."""
    from ingestion.collectors import NOTE_MAX_WORDS

    if document.platform in (Platform.linkedin, Platform.x):
        return Kind.article if "/pulse/" in document.url else Kind.post
    return Kind.note if document.word_count < NOTE_MAX_WORDS else Kind.article


async def promote_document(deps: IngestionDeps, author: Author, document_id: int) -> Document:
    """Make a reference page (a link from a chat request) part of the author's own writing, on the user's
    explicit word: from then on it is a style example, an "own writing" search hit and training data."""
    document = deps.store.get_document(document_id)
    if document.author_id != author.id:
        raise NotFound(f"{author.name} has no document with id {document_id}.")
    if document.kind is not Kind.reference:
        raise Conflict(f"Document {document_id} is already {author.name}'s own writing ({document.kind.value}).")
    promoted = deps.store.set_document_kind(document.id, promoted_kind(document))
    report = IngestReport(author=author.name)
    embedder = _Embedder(deps, author, report, _no_progress)
    await embedder.add(promoted)
    await embedder.flush()
    return deps.store.get_document(document.id)
