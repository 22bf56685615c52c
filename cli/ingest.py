"""`twin ingest` and `twin import`: collect an author's writing into the stores."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.context import ServiceClient, console, open_ingestion, print_json, service_client, user_errors
from twin.domain import IngestReport


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
    url: list[str] = typer.Option([], "--url", help="Collect just these links (repeatable) instead of all sources."),
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
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="LinkedIn, X, Substack or Medium export ZIP."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Import a platform's data export (the ZIP it lets you download)."""
    from ingestion.pipeline import ProgressEvent, import_export

    client = service_client()
    if client is not None:
        with user_errors(), client, file.open("rb") as fh:
            job = client.check(client.post(f"/api/authors/{author}/import", files={"data": (file.name, fh)}))
            report = IngestReport(**_follow(client, job["id"], f"importing {file.name}"))
        print_json(report) if as_json else print_report(report)
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
