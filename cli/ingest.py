"""`twin ingest` and `twin import`: collect an author's writing into the stores."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from cli.context import (
    ServiceClient,
    console,
    open_ingestion,
    open_store,
    print_json,
    service_client,
    user_errors,
)
from twin.domain import IngestReport, TwinError


def _progress_display() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _follow(client: ServiceClient, job_id: str, label: str) -> dict:
    with _progress_display() as bar:
        task = bar.add_task(label, total=None)

        def on_progress(job: dict) -> None:
            progress = job.get("progress") or {}
            bar.update(task, completed=progress.get("done", 0), description=f"{label} {progress.get('current', '')}")

        return client.wait_for_job(job_id, on_progress)["result"]


class _ReadProgress(io.RawIOBase):
    """The file as httpx reads it for the multipart body, advancing a progress bar per block."""

    def __init__(self, raw: BinaryIO, advance: Callable[[int], None]) -> None:
        self.raw, self.advance = raw, advance

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:  # httpx sizes the body from it (Content-Length)
        return self.raw.fileno()

    def read(self, size: int = -1) -> bytes:
        block = self.raw.read(size)
        self.advance(len(block))
        return block


def _upload(client: ServiceClient, path: str, file: Path, params: dict[str, str]) -> dict:
    """Stream ``file`` to the service (read in blocks, never whole) with a progress bar of the bytes sent."""
    import httpx

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar, file.open("rb") as raw:
        task = bar.add_task(f"uploading {file.name}", total=file.stat().st_size)
        body = _ReadProgress(raw, lambda n: bar.advance(task, n))
        try:
            response = client.post(path, params=params, files={"data": (file.name, body)},
                                   timeout=httpx.Timeout(30.0, read=300.0))
        except (httpx.WriteError, httpx.RemoteProtocolError) as exc:
            # The service answers 413 and closes while a too-large body is still being sent.
            raise TwinError(f"The service stopped the upload of {file.name} ({exc}); is the file larger than "
                            "its TWIN_SERVE__MAX_UPLOAD_BYTES?") from exc
    return client.check(response)


def print_report(report: IngestReport) -> None:
    table = Table(title=f"Ingest report for {report.author}")
    for column in ("fetched", "new", "updated", "unchanged", "refused", "failed", "chunks embedded"):
        table.add_column(column, justify="right")
    table.add_row(*(str(n) for n in (report.fetched, report.new, report.updated, report.unchanged,
                                     len(report.refused), len(report.failed), report.embedded_chunks)))
    console.print(table)
    for label, problems in (("refused", report.refused), ("failed", report.failed)):
        for problem in problems:
            console.print(f"  [yellow]{label}[/yellow] {problem.url}: {problem.reason}")


def ingest(
    author: str,
    url: list[str] = typer.Option([], "--url", help="Collect just these links (repeatable) instead of all sources. A link that is not one of the author's sources is stored as reference material (exactly that page; never style or training data until `twin promote`)."),
    js: bool = typer.Option(False, "--js", help="Fetch --url links with Chromium (pages that need JavaScript)."),
    refresh: bool = typer.Option(False, "--refresh", help="Fetch and extract every page again, even unchanged "
                                 "ones (pages stored before are otherwise skipped when the server says unchanged)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Collect an author's sources (or the given links): fetch, clean, version, chunk and embed."""
    from ingestion.pipeline import ProgressEvent, ingest_urls

    client = service_client()
    if client is not None:  # the running service owns the stores: let it do the work
        with user_errors(), client:
            job = client.check(client.post(f"/api/authors/{author}/ingest", json={"urls": url, "render_js": js, "refresh": refresh}))
            report = IngestReport(**_follow(client, job["id"], "collecting"))
        print_json(report) if as_json else print_report(report)
        return
    with user_errors(), open_ingestion() as deps:
        person = deps.store.get_author(author)
        with _progress_display() as bar:
            task = bar.add_task("collecting", total=None)

            def on_progress(event: ProgressEvent) -> None:
                if event.kind == "source":
                    bar.update(task, description=f"source {event.status} {event.url}")
                elif event.kind in ("document", "problem"):
                    bar.advance(task)

            report = asyncio.run(ingest_urls(deps, person, url or None, render_js=js, refresh=refresh,
                                             progress=on_progress))
    print_json(report) if as_json else print_report(report)


def import_file(
    author: str,
    file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="LinkedIn, X, Substack or Medium export ZIP; with --private a WhatsApp chat "
                                "(.txt or its ZIP) or a Telegram result.json."),
    private: bool = typer.Option(False, "--private", help="Import private messages (WhatsApp, Telegram): only "
                                 "your own lines become answers, other people's names, numbers and emails are "
                                 "scrubbed, and nothing of it is ever retrieved or shown for public drafts."),
    me: str | None = typer.Option(None, "--me", help="With --private: your name as the chat shows it (when it "
                                  "cannot be told from the export)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Import a platform's data export (the ZIP it lets you download), or with --private a chat export."""
    from ingestion.pipeline import ProgressEvent, import_export

    client = service_client()
    if client is not None:
        params = {"private": "true", **({"me": me} if me else {})} if private else {}
        with user_errors(), client:
            job = _upload(client, f"/api/authors/{author}/import", file, params)
            report = IngestReport(**_follow(client, job["id"], f"importing {file.name}"))
        print_json(report) if as_json else print_report(report)
        return
    if private:
        from ingestion.chats import import_chat_export

        with user_errors(), open_store() as store:
            result = import_chat_export(store, store.get_author(author), file, me=me)
        if as_json:
            print_json(result)
            return
        print_report(result.report)
        console.print(f"Private source [bold]{result.source_url}[/bold]: {result.report.fetched} conversations "
                      f"from {result.chats} chat(s), not embedded; remove it with everything derived from it: "
                      f"`twin private remove {author} {result.source_url}`.")
        return
    with user_errors(), open_ingestion() as deps:
        person = deps.store.get_author(author)
        with _progress_display() as bar:
            task = bar.add_task(f"importing {file.name}", total=None)

            def on_progress(event: ProgressEvent) -> None:
                if event.kind == "source":
                    bar.update(task, total=event.total)
                elif event.kind in ("document", "problem"):
                    bar.advance(task)

            report = asyncio.run(import_export(deps, person, file, progress=on_progress))
    print_json(report) if as_json else print_report(report)


private_app = typer.Typer(help="An author's private chat imports: list them, or remove one with everything "
                          "derived from it.", no_args_is_help=True)


@private_app.command("list")
def list_private(author: str, as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List AUTHOR's private chat sources and the adapters trained on each."""
    from ingestion.chats import private_sources

    client = service_client()
    with user_errors():
        if client is not None:
            with client:
                rows = client.check(client.get(f"/api/authors/{author}/private"))
        else:
            with open_store() as store:
                rows = private_sources(store, store.get_author(author))
    if as_json:
        print_json(rows)
        return
    table = Table("source", "conversations", "imported", "adapters trained on it")
    for row in rows:
        table.add_row(row["url"], str(row["conversations"]), str(row["imported_at"] or ""),
                      ", ".join(f"v{v}" for v in row["adapters"]) or "none")
    console.print(table)


@private_app.command("remove")
def remove_private(author: str, url: str = typer.Argument(..., help="The source, as `twin private list` shows it.")) -> None:
    """Remove a private chat import with everything derived from it: conversations, chunks, dataset snapshots."""
    from ingestion.chats import PrivateRemoval, forget_private_source

    client = service_client()
    with user_errors():
        if client is not None:
            with client:
                removal = PrivateRemoval(**client.check(
                    client.delete(f"/api/authors/{author}/private", params={"url": url})))
        else:
            with open_ingestion() as deps:
                removal = forget_private_source(deps.store, deps.store.get_author(author), url,
                                                deps.settings.datasets_dir, deps.vectors)
    console.print(f"Removed {url}: {removal.documents} conversations, {len(removal.datasets)} dataset snapshots.")
    if removal.adapters:
        versions = ", ".join(f"v{v}" for v in removal.adapters)
        console.print(f"[yellow]Adapters trained on it: {versions}.[/yellow] They still carry what they learned; "
                      f"train a new one (`twin train {author}`) and delete those folders if that matters.")
