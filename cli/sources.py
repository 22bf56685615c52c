"""`twin source ...`: where an author's writing is collected from."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.context import console, open_ingestion, open_store, print_json, service_client, user_errors
from twin.domain import Platform

app = typer.Typer(help="Add, list and remove an author's sources (profiles, feeds, articles, repos).",
                  no_args_is_help=True)


@app.command("add")
def add(
    author: str,
    url: str = typer.Argument(..., help="Medium/Substack/blog/feed/sitemap/article URL, GitHub user or repo."),
    platform: Platform | None = typer.Option(None, help="Override the platform detected from the URL."),
    js: bool = typer.Option(False, "--js", help="Pages need JavaScript: fetch them with Chromium."),
) -> None:
    """Register a source for an author (collect it with `twin ingest`)."""
    from ingestion.collectors import detect_platform
    from ingestion.pipeline import validate_source_url

    with user_errors(), open_store() as store:
        validate_source_url(url)
        source = store.add_source(store.get_author(author), url, platform or detect_platform(url), render_js=js)
    console.print(f"Added {source.platform.value} source {source.url} for {author}.")


@app.command("list")
def list_sources(author: str, as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List an author's sources."""
    with user_errors(), open_store() as store:
        sources = store.list_sources(store.get_author(author))
    if as_json:
        print_json([s.model_dump(mode="json") for s in sources])
        return
    table = Table("platform", "url", "js", "last collected")
    for s in sources:
        table.add_row(s.platform.value, s.url, "yes" if s.render_js else "", str(s.last_ingested_at or "never"))
    console.print(table)


@app.command("remove")
def remove(author: str, url: str) -> None:
    """Remove a source together with its documents and their chunks."""
    from ingestion.pipeline import remove_source

    client = service_client()
    with user_errors():
        if client is not None:
            with client:
                removed = client.check(client.delete(f"/api/authors/{author}/sources", params={"url": url}))[
                    "removed_documents"]
        else:
            with open_ingestion() as deps:
                removed = remove_source(deps, deps.store.get_author(author), url)
    console.print(f"Removed {url} and {removed} documents.")
