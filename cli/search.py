"""`twin search`, `twin documents` and `twin promote`: look at what was collected."""

from __future__ import annotations

import typer
from rich.table import Table

from urllib.parse import quote

from cli.context import console, open_ingestion, open_store, print_json, service_client, user_errors
from twin.domain import Kind, Platform, SearchHit


def search(
    author: str,
    query: str,
    platform: Platform | None = typer.Option(None, help="Only this platform."),
    kind: Kind | None = typer.Option(None, help="Only this kind of document."),
    k: int = typer.Option(5, "-k", min=1, max=50, help="How many passages."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Hybrid (meaning + keyword) search over an author's own writing."""
    client = service_client()
    with user_errors():
        if client is not None:
            params = {"q": query, "k": k, **({"platform": platform.value} if platform else {}),
                      **({"kind": kind.value} if kind else {})}
            with client:
                hits = [SearchHit(**h) for h in client.check(client.get(f"/api/authors/{quote(author, safe='')}/search",
                                                                         params=params))]
        else:
            with open_ingestion() as deps:
                hits = deps.vectors.search(deps.store.get_author(author), query, k=k, platform=platform, kind=kind)
    if as_json:
        print_json([h.model_dump(mode="json") for h in hits])
        return
    if not hits:
        console.print("No matching passages.")
    for rank, hit in enumerate(hits, 1):
        console.rule(f"{rank}. {hit.title or hit.url}  [dim]{hit.platform.value}/{hit.kind.value} {hit.score:.3f}[/dim]")
        console.print(hit.url, style="dim")
        console.print(hit.text[:600] + ("..." if len(hit.text) > 600 else ""))


def documents(
    author: str,
    platform: Platform | None = typer.Option(None, help="Only this platform."),
    kind: Kind | None = typer.Option(None, help="Only this kind of document."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (includes the text)."),
) -> None:
    """List an author's stored documents (current versions)."""
    with user_errors(), open_store() as store:
        docs = store.list_documents(store.get_author(author), platform=platform, kind=kind)
    if as_json:
        print_json([d.model_dump(mode="json") for d in docs])
        return
    table = Table("id", "platform", "kind", "title", "words", "v", "published")
    for d in docs:
        table.add_row(str(d.id), d.platform.value, d.kind.value, (d.title or d.url)[:60], str(d.word_count),
                      str(d.version), d.published_at.date().isoformat() if d.published_at else "")
    console.print(table)
    console.print(f"{len(docs)} documents")


def promote(
    author: str,
    document_id: int = typer.Argument(..., help="The document's id (`twin documents AUTHOR --kind reference`)."),
) -> None:
    """Count a page linked in a chat (stored as reference material) as the author's own writing.

    Linked pages ground the drafts of the chat that linked them and are otherwise kept apart: they are
    never style examples, own-writing search hits or training data. Promote one only if the author wrote it.
    """
    client = service_client()
    with user_errors():
        if client is not None:
            with client:
                document = client.check(client.post(f"/api/authors/{quote(author, safe='')}/documents/{document_id}/promote"))
            kind = document["kind"]
        else:
            import asyncio

            from ingestion.pipeline import promote_document

            with open_ingestion() as deps:
                kind = asyncio.run(promote_document(deps, deps.store.get_author(author), document_id)).kind.value
    console.print(f"Document {document_id} is now {author}'s own writing ({kind}).")
