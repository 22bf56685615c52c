"""Scheduled drafts: schedules in the project database, fires at their time, survive a restart, run a
missed fire once on start, run each fire once across processes, and put the agent's drafts in the inbox.

Fast tests use schedules with nothing to draft about (the fire is claimed, recorded and skipped); the slow
one drafts with the real model through the agent.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import postgres_schema
from serving.scheduler import ScheduleCreate, Scheduler, cron_trigger, open_schedule_book, start_scheduler
from serving.service import TwinService
from twin.domain import Conflict, NotFound, Platform
from twin.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]


def cron_at(moment: datetime) -> str:
    """A daily 6-field cron (seconds first) that fires at `moment` (UTC)."""
    return f"{moment.second} {moment.minute} {moment.hour} * * *"


def soon(seconds: float) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


@pytest.fixture
def schedule_settings(settings: Settings) -> Settings:
    settings.schedule.timezone = "UTC"
    settings.schedule.poll_s = 0.5
    return settings


@pytest.fixture
async def service(schedule_settings: Settings):
    svc = TwinService(schedule_settings)
    await svc.start(with_model=False)
    svc.db.add_author("tova")
    yield svc
    await svc.stop()


async def wait_for_runs(scheduler: Scheduler, schedule_id: str, count: int, timeout_s: float = 30.0) -> list:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = scheduler.book.runs(schedule_id)
        if len(runs) >= count and all(r.status != "running" for r in runs):
            return runs
        await asyncio.sleep(0.2)
    raise AssertionError(f"schedule {schedule_id}: {len(scheduler.book.runs(schedule_id))} run(s), wanted {count}")


def test_crontab_weekdays_mean_what_cron_means():
    # APScheduler 3 counts 0 as Monday; a crontab's 1 is Monday and 0 or 7 Sunday.
    start = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday
    assert cron_trigger("0 9 * * 1", "UTC").get_next_fire_time(None, start).strftime("%a %H:%M") == "Mon 09:00"
    assert cron_trigger("0 9 * * 0", "UTC").get_next_fire_time(None, start).strftime("%a") == "Sun"
    assert cron_trigger("0 9 * * 7", "UTC").get_next_fire_time(None, start).strftime("%a") == "Sun"
    assert cron_trigger("0 9 * * MON", "UTC").get_next_fire_time(None, start).strftime("%a") == "Mon"
    assert cron_trigger("0 9 * * 1-5", "UTC").get_next_fire_time(None, start).strftime("%a") == "Thu"
    with pytest.raises(ValueError, match="not a crontab"):
        ScheduleCreate(author="tova", cron="0 9 * *")
    with pytest.raises(ValueError):
        ScheduleCreate(author="tova", cron="0 25 * * *")


async def test_fire_is_claimed_recorded_and_skipped_when_nothing_to_draft(service: TwinService):
    scheduler = start_scheduler(service)
    try:
        fire_at = soon(2)
        schedule = scheduler.add(ScheduleCreate(author="tova", cron=cron_at(fire_at), collect=False))
        assert schedule.next_run_time == fire_at
        [run] = await wait_for_runs(scheduler, schedule.id, 1)
        assert run.fire_time == fire_at
        assert run.status == "skipped"
        assert "no standing topics" in (run.error or "")
        # The next fire is a day later, not again now.
        assert scheduler.get(schedule.id).next_run_time == fire_at + timedelta(days=1)
        with pytest.raises(NotFound):
            scheduler.add(ScheduleCreate(author="nobody"))
    finally:
        await scheduler.stop()


async def test_schedules_survive_restart_and_a_missed_fire_runs_once_on_start(service: TwinService):
    first = start_scheduler(service)
    fire_at = soon(2)
    schedule = first.add(ScheduleCreate(author="tova", cron=cron_at(fire_at), collect=False,
                                        platforms=[Platform.x, Platform.linkedin], topics=[]))
    await first.stop()  # the service goes down before the fire time ...
    await asyncio.sleep((fire_at - datetime.now(UTC)).total_seconds() + 1.5)
    assert first.book.runs(schedule.id) == []  # ... so nothing ran

    second = start_scheduler(service)  # ... and comes back: same schedule, missed fire runs once
    try:
        restored = second.get(schedule.id)
        assert (restored.cron, restored.platforms) == (schedule.cron, [Platform.x, Platform.linkedin])
        [run] = await wait_for_runs(second, schedule.id, 1)
        assert run.fire_time == fire_at
        await asyncio.sleep(1.0)
        assert len(second.book.runs(schedule.id)) == 1
        assert second.get(schedule.id).next_run_time == fire_at + timedelta(days=1)
    finally:
        await second.stop()


async def test_a_fire_missed_beyond_the_grace_time_is_not_run(service: TwinService):
    service.settings.schedule.misfire_grace_s = 1
    first = start_scheduler(service)
    fire_at = soon(1)
    schedule = first.add(ScheduleCreate(author="tova", cron=cron_at(fire_at), collect=False))
    await first.stop()
    await asyncio.sleep((fire_at - datetime.now(UTC)).total_seconds() + 3)
    second = start_scheduler(service)
    try:
        await asyncio.sleep(1.5)
        assert second.book.runs(schedule.id) == []
        assert second.get(schedule.id).next_run_time == fire_at + timedelta(days=1)
    finally:
        await second.stop()


async def test_run_now_and_remove(service: TwinService):
    scheduler = start_scheduler(service)
    try:
        schedule = scheduler.add(ScheduleCreate(author="tova", collect=False))
        run = scheduler.run_now(schedule.id)
        assert run.status == "running"
        [done] = await wait_for_runs(scheduler, schedule.id, 1)
        assert done.id == run.id and done.status == "skipped"
        scheduler.remove(schedule.id)
        assert scheduler.list() == []
        with pytest.raises(NotFound):
            scheduler.run_now(schedule.id)
    finally:
        await scheduler.stop()


async def test_claims_are_exclusive_across_connections(service: TwinService, schedule_settings: Settings):
    """Two stores (two engines, as two processes have) claim the same fire: exactly one wins."""
    other, close = open_schedule_book(schedule_settings)
    scheduler = start_scheduler(service)
    try:
        fire_at = datetime.now(UTC).replace(microsecond=0)
        results = await asyncio.gather(
            *(asyncio.to_thread(book.claim, "abc", fire_at) for book in (scheduler.book, other) * 4)
        )
        assert sum(r is not None for r in results) == 1
    finally:
        await scheduler.stop()
        close()


SECOND_PROCESS = """
import asyncio, logging, sys
from serving.scheduler import start_scheduler
from serving.service import TwinService
from twin.settings import Settings

logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s %(message)s")

async def main() -> None:
    service = TwinService(Settings(_env_file=None))
    await service.start(with_model=False)
    scheduler = start_scheduler(service)
    print("READY", flush=True)
    await asyncio.to_thread(sys.stdin.read)  # runs until the test closes its stdin
    await scheduler.stop()
    await service.stop()

asyncio.run(main())
"""


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The database URL for the test: None for the settings' SQLite file, or a throwaway PostgreSQL schema."""
    if request.param == "postgres":
        with postgres_schema("twin_sched") as (url, _):
            yield url
    else:
        yield None


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
async def test_two_service_processes_run_each_fire_once(schedule_settings: Settings, tmp_path: Path,
                                                        database: str | None):
    if database:
        schedule_settings.database_url = database
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "TWIN_DATA_DIR": str(tmp_path / "second"),  # its own Qdrant folder: one client per path
        "TWIN_DATABASE_URL": schedule_settings.resolved_database_url,
        "TWIN_MODELS_PATH": str(schedule_settings.models_dir),
        "TWIN_SCHEDULE__TIMEZONE": "UTC",
        "TWIN_SCHEDULE__POLL_S": "0.5",
    }
    service = TwinService(schedule_settings)
    await service.start(with_model=False)
    service.db.add_author("tova")
    second = subprocess.Popen([sys.executable, "-c", SECOND_PROCESS], cwd=tmp_path, env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    scheduler = start_scheduler(service)
    try:
        assert second.stdout is not None

        def wait_ready() -> None:
            for line in second.stdout:
                if line.strip() == "READY":
                    return
            raise AssertionError("the second service exited before it was ready")

        await asyncio.wait_for(asyncio.to_thread(wait_ready), 120)
        fire_times = [soon(3 + offset) for offset in range(3)]
        schedules = [scheduler.add(ScheduleCreate(author="tova", cron=cron_at(t), collect=False)) for t in fire_times]
        for schedule, fire_at in zip(schedules, fire_times, strict=True):
            runs = await wait_for_runs(scheduler, schedule.id, 1)
            assert [r.fire_time for r in runs] == [fire_at]
        await asyncio.sleep(2.0)  # a late duplicate would show up by now
        for schedule in schedules:
            assert len(scheduler.book.runs(schedule.id)) == 1
    finally:
        await scheduler.stop()
        output = (await asyncio.to_thread(second.communicate, "", 60))[0]
        await service.stop()
    assert second.returncode == 0, output


def test_cli_schedules_without_a_service(schedule_settings: Settings, monkeypatch: pytest.MonkeyPatch):
    """`twin schedule ...` with no service running reads and writes the database directly."""
    import json

    from typer.testing import CliRunner

    from cli import app
    from twin.settings import get_settings

    monkeypatch.setenv("TWIN_DATA_DIR", str(schedule_settings.data_dir))
    monkeypatch.setenv("TWIN_MODELS_PATH", str(schedule_settings.models_dir))
    monkeypatch.setenv("TWIN_SERVE__PORT", "1")  # nothing listens there: no service
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["author", "add", "tova"]).exit_code == 0
        added = runner.invoke(app, ["schedule", "add", "tova", "--cron", "0 9 * * MON", "--platform", "x",
                                    "--platform", "linkedin", "--drafts", "2", "--topic", "on-call", "--json"])
        assert added.exit_code == 0, added.output
        schedule = json.loads(added.stdout)
        assert (schedule["platforms"], schedule["drafts"], schedule["topics"]) == (["x", "linkedin"], 2, ["on-call"])
        listed = json.loads(runner.invoke(app, ["schedule", "list", "--json"]).stdout)
        assert [s["id"] for s in listed] == [schedule["id"]]
        assert runner.invoke(app, ["schedule", "add", "nobody"]).exit_code == 2
        bad = runner.invoke(app, ["schedule", "add", "tova", "--cron", "every monday"])
        assert bad.exit_code != 0 and "crontab" in bad.output
        assert runner.invoke(app, ["schedule", "remove", schedule["id"]]).exit_code == 0
        assert json.loads(runner.invoke(app, ["schedule", "list", "--json"]).stdout) == []
        assert runner.invoke(app, ["schedule", "remove", schedule["id"]]).exit_code == 2
        assert "No service" in runner.invoke(app, ["schedule", "run", schedule["id"]]).output
    finally:
        get_settings.cache_clear()


async def test_run_now_refuses_a_second_concurrent_run(service: TwinService):
    scheduler = start_scheduler(service)
    try:
        schedule = scheduler.add(ScheduleCreate(author="tova", collect=False))
        with service.db.engine.begin() as conn:  # a run in progress (as another process would have)
            from twin import schema as t

            conn.execute(t.schedule_runs.insert().values(
                schedule_id=schedule.id, fire_time=datetime.now(UTC), claimed_by="elsewhere:1", status="running",
                detail={}, started_at=datetime.now(UTC)))
        with pytest.raises(Conflict):
            scheduler.run_now(schedule.id)
    finally:
        await scheduler.stop()


async def test_a_run_left_by_a_killed_process_is_marked_failed_on_start(service: TwinService):
    from twin import schema as t

    scheduler = start_scheduler(service)
    schedule = scheduler.add(ScheduleCreate(author="tova", collect=False))
    await scheduler.stop()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    with service.db.engine.begin() as conn:
        for claimed_by in (f"{socket.gethostname()}:{dead_pid}", f"{socket.gethostname()}:{os.getpid()}",
                           "another-machine:1"):
            conn.execute(t.schedule_runs.insert().values(
                schedule_id=schedule.id, fire_time=datetime.now(UTC) - timedelta(seconds=len(claimed_by)),
                claimed_by=claimed_by, status="running", detail={}, started_at=datetime.now(UTC)))
    restarted = start_scheduler(service)
    try:
        statuses = {r.claimed_by: (r.status, r.error) for r in restarted.book.runs(schedule.id)}
        assert statuses[f"{socket.gethostname()}:{dead_pid}"] == ("failed", "The service stopped during this run.")
        assert statuses[f"{socket.gethostname()}:{os.getpid()}"][0] == "running"  # alive: not ours to judge
        assert statuses["another-machine:1"][0] == "running"
    finally:
        await restarted.stop()


@pytest.mark.slow
async def test_a_fire_collects_what_is_new_and_drafts_into_the_inbox(schedule_settings: Settings, tmp_path: Path):
    """The real thing: at its time the schedule collects the author's feed, and the agent (real SmolLM2 on
    a local Ray Serve) drafts about the new articles; the drafts and the schedule survive a restart."""
    from web_support import demo_site

    from twin.domain import DraftStatus

    schedule_settings.serve.max_new_tokens = 48
    schedule_settings.agent.max_revisions = 0
    with demo_site(tmp_path / "demo") as demo:
        service = TwinService(schedule_settings)
        await service.start(with_model=True)
        try:
            author = service.db.add_author("tova")
            service.db.add_source(author, demo.feed_url, Platform.blog)
            deadline = time.monotonic() + 900
            while service.model_client is None:
                assert service.model_error is None, service.model_error
                assert time.monotonic() < deadline, "the model did not start"
                await asyncio.sleep(1)
            scheduler = start_scheduler(service)
            fire_at = soon(3)
            schedule = scheduler.add(ScheduleCreate(author="tova", cron=cron_at(fire_at), platforms=[Platform.x]))
            [run] = await wait_for_runs(scheduler, schedule.id, 1, timeout_s=900)
            assert run.status == "succeeded", run
            assert run.fire_time == fire_at
            assert run.detail["new_documents"] == demo.inventory.blog_articles  # collected by this fire
            drafts = service.db.list_drafts(author=author)
            assert [d.id for d in drafts] == run.detail["draft_ids"] and len(drafts) == 1
            [draft] = drafts
            assert (draft.platform, draft.status) == (Platform.x, DraftStatus.new)
            assert service.db.get_run(draft.run_id).origin == "schedule"
            assert draft.text.strip() and draft.sources
            await scheduler.stop()
        finally:
            await service.stop()

        # A restart: the schedule and its drafts are still there, the next fire is tomorrow.
        again = TwinService(schedule_settings)
        await again.start(with_model=False)
        try:
            restarted = start_scheduler(again)
            assert restarted.get(schedule.id).next_run_time == fire_at + timedelta(days=1)
            assert [d.id for d in again.db.list_drafts(author=again.author("tova"))] == [draft.id]
            await restarted.stop()
        finally:
            await again.stop()
    assert draft.origin == "schedule"  # the inbox tells scheduled drafts from chat ones
