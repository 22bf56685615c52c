"""`twin author ...`: the people whose writing the twin learns."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.context import console, open_store, print_json, user_errors

app = typer.Typer(help="Add and list authors (the people a twin learns to write like).", no_args_is_help=True)


@app.command("add")
def add(name: str = typer.Argument(..., help="A short name, e.g. `juno`.")) -> None:
    """Create an author."""
    with user_errors(), open_store() as store:
        author = store.add_author(name)
    console.print(f"Added author [bold]{author.name}[/bold]. Next: `twin source add {author.name} URL`.")


@app.command("list")
def list_authors(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List authors with their document counts."""
    with user_errors(), open_store() as store:
        rows = [(a, store.stats(a)) for a in store.list_authors()]
    if as_json:
        print_json([{"name": a.name, "created_at": a.created_at, "documents": stats} for a, stats in rows])
        return
    table = Table("author", "documents", "by platform")
    for author, stats in rows:
        table.add_row(author.name, str(sum(stats.values())), ", ".join(f"{k}: {v}" for k, v in stats.items()))
    console.print(table)
