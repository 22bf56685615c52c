"""`twin schedule ...`: drafts on a schedule (cron), landing in the inbox.

Through the running service when there is one (it owns the scheduler); otherwise the schedules are read
and written in the database directly, and the service picks them up when it starts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.table import Table

from cli.context import console, print_json, require_service, service_client, settings, user_errors
from twin.domain import Platform

app = typer.Typer(help="Have the twin draft posts on a schedule (e.g. every Monday at 9) into the inbox.",
                  no_args_is_help=True)


@contextmanager
def _schedule_book() -> Iterator[Any]:
    from serving.scheduler import open_schedule_book

    book, close = open_schedule_book(settings())
    try:
        yield book
    finally:
        close()


@app.command("add")
def add(
    author: str,
    cron: str = typer.Option(None, help='When, as crontab: "0 9 * * MON" is Mondays at 9:00 (the default).'),
    platform: list[Platform] = typer.Option([Platform.linkedin], help="Platform to draft for (repeatable)."),
    drafts: int = typer.Option(1, min=1, max=5, help="Drafts per platform per run."),
    topic: list[str] = typer.Option([], help="Standing topic, used in turn when nothing new was collected "
                                             "(repeatable)."),
    collect: bool = typer.Option(True, help="Collect the author's sources before drafting."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Add a schedule: collect what is new, then draft posts about it (or a standing topic)."""
    from serving.scheduler import ScheduleCreate

    config = settings()
    with user_errors():
        body = ScheduleCreate(author=author, cron=cron or config.schedule.default_cron, platforms=platform,
                              drafts=drafts, topics=topic, collect=collect)
        client = service_client()
        if client is not None:
            with client:
                schedule = client.check(client.post("/api/schedules", json=body.model_dump(mode="json")))
        else:
            from twin.store import DocumentStore

            store = DocumentStore.from_url(config.resolved_database_url)
            try:
                store.get_author(author)
            finally:
                store.close()
            with _schedule_book() as book:
                schedule = book.add(body).model_dump(mode="json")
    if as_json:
        print_json(schedule)
        return
    console.print(f"Added schedule [bold]{schedule['id']}[/bold] for {author} ({schedule['cron']}); "
                  f"next run {schedule['next_run_time']}.")


def _list(author: str | None) -> list[dict[str, Any]]:
    client = service_client()
    if client is not None:
        with client:
            params = {"author": author} if author else {}
            return client.check(client.get("/api/schedules", params=params))
    with _schedule_book() as book:
        return [s.model_dump(mode="json") for s in book.list(author)]


@app.command("list")
def list_schedules(
    author: str | None = typer.Argument(None, help="Only this author's schedules."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List schedules with their next and last runs."""
    with user_errors():
        schedules = _list(author)
    if as_json:
        print_json(schedules)
        return
    table = Table("author", "cron", "platforms", "drafts", "topics", "next run", "last run")
    table.add_column("id", no_wrap=True)
    for s in schedules:
        last = s.get("last_run") or {}
        table.add_row(s["author"], s["cron"], ", ".join(s["platforms"]), str(s["drafts"]),
                      "; ".join(s["topics"]), str(s["next_run_time"] or "paused"),
                      f"{last.get('status')} {last.get('started_at')}" if last else "never", s["id"])
    console.print(table)


@app.command("remove")
def remove(schedule_id: str) -> None:
    """Remove a schedule (drafts it made stay in the inbox)."""
    with user_errors():
        client = service_client()
        if client is not None:
            with client:
                client.check(client.delete(f"/api/schedules/{schedule_id}"))
        else:
            with _schedule_book() as book:
                book.remove(schedule_id)
    console.print(f"Removed schedule {schedule_id}.")


@app.command("run")
def run(
    schedule_id: str,
    wait: bool = typer.Option(True, help="Wait for the drafts (else return once started)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Run a schedule now (through the running service, which has the model)."""
    client = require_service()
    with user_errors(), client:
        record = client.check(client.post(f"/api/schedules/{schedule_id}/run"))
        if wait:
            with console.status(f"schedule {schedule_id} is drafting..."):
                while record["status"] == "running":
                    time.sleep(1.0)
                    record = client.check(client.get(f"/api/schedules/runs/{record['id']}"))
    if as_json:
        print_json(record)
        return
    detail = record.get("detail") or {}
    console.print(f"Run {record['id']}: {record['status']}"
                  + (f" ({record['error']})" if record.get("error") else ""))
    if detail.get("draft_ids"):
        console.print(f"Drafts {', '.join(map(str, detail['draft_ids']))} are in the inbox "
                      f"({settings().resolved_service_url}/inbox).")
    if record["status"] == "failed":
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="schedule")
