"""Scheduled drafts: per author a cron schedule that has the agent draft posts into the inbox.

APScheduler 3 keeps the schedules (jobs with a cron trigger and a `ScheduleSpec` as kwargs) in the project
database through `SQLAlchemyJobStore`, so they survive restarts; a run missed while the service was down
runs once on start (``coalesce=True``, ``misfire_grace_time`` from ``settings.schedule``).

APScheduler 3 does not lock across processes: two services on one database both fire the same job. Each
fire therefore first claims ``(schedule id, fire time)`` by inserting a `schedule_runs` row under a unique
constraint; the process whose insert fails skips the run.

A fire: collect the author's configured sources (an ingest job), take the documents that are new since
the schedule's last successful run, and ask the agent for N drafts per platform on the brief
`agents.briefs.scheduled_brief` makes of them (with nothing new, the schedule's standing topics in turn). The drafts land in the inbox with ``origin="schedule"``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, Field, field_validator

from twin import schema as t
from twin.domain import Conflict, DraftPlatform, NotFound, Platform, TwinError, Unavailable
from twin.settings import Settings

if TYPE_CHECKING:
    from agents.schemas import DraftRequest, RunResult
    from serving.service import TwinService

log = logging.getLogger("twin.scheduler")

JOBS_TABLE = "apscheduler_jobs"
ORIGIN = "schedule"
MAX_TOPICS = 20
MODEL_POLL_S = 2.0

Drafter = Callable[["DraftRequest", str], Awaitable["RunResult"]]
"""Runs the agent for one request with the given origin and returns its result."""


# schemas ---------------------------------------------------------------------------------------
class ScheduleCreate(BaseModel):
    """What a schedule does and when."""

    author: str = Field(min_length=1, max_length=200)
    cron: str = Field(default="0 9 * * MON", description="Crontab (5 fields; 6 with seconds first).")
    platforms: list[DraftPlatform] = Field(default_factory=lambda: [Platform.linkedin], min_length=1)
    drafts: int = Field(default=1, ge=1, le=5, description="Drafts per platform per run.")
    topics: list[str] = Field(default_factory=list, max_length=MAX_TOPICS,
                              description="Standing topics, used in turn when nothing new was collected.")
    collect: bool = Field(default=True, description="Collect the author's configured sources first.")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        value = " ".join(value.split())
        cron_trigger(value, None)  # raises ValueError with APScheduler's reason
        return value

    @field_validator("topics")
    @classmethod
    def _clean_topics(cls, topics: list[str]) -> list[str]:
        cleaned = [topic.strip() for topic in topics if topic.strip()]
        if any(len(topic) > 500 for topic in cleaned):
            raise ValueError("a topic is at most 500 characters")
        return cleaned

    @field_validator("platforms")
    @classmethod
    def _unique_platforms(cls, platforms: list[Platform]) -> list[Platform]:
        return list(dict.fromkeys(platforms))


class Schedule(ScheduleCreate):
    id: str
    created_at: datetime
    next_run_time: datetime | None = Field(description="None while paused.")
    last_run: ScheduleRun | None = None


class ScheduleRun(BaseModel):
    """One fire of a schedule: who claimed it, what it collected and drafted, how it ended."""

    id: int
    schedule_id: str
    fire_time: datetime
    claimed_by: str
    status: str = Field(description="running | succeeded | skipped | failed")
    detail: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    started_at: datetime
    finished_at: datetime | None = None


Schedule.model_rebuild()


def cron_trigger(cron: str, timezone: str | None) -> CronTrigger:
    """A 5-field crontab (``0 9 * * MON``) or a 6-field one with seconds first (``30 0 9 * * MON``)."""
    fields = cron.split()
    if len(fields) in (5, 6):
        second = fields.pop(0) if len(fields) == 6 else "0"
        minute, hour, day, month, day_of_week = fields
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                           day_of_week=_crontab_weekdays(day_of_week), timezone=timezone)
    raise ValueError(f"{cron!r} is not a crontab: give 5 fields (minute hour day month weekday) or 6 (seconds first).")


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _crontab_weekdays(field: str) -> str:
    """Crontab weekday numbers (0 or 7 = Sunday) as names: APScheduler 3 counts 0 as Monday."""
    names: list[str] = []
    for item in field.split(","):
        base, _, step = item.partition("/")
        start, _, end = base.partition("-")
        if not (start.isdigit() and (not end or end.isdigit())):
            names.append(item)  # names, `*` and `*/n` mean the same in both
            continue
        last = int(end) if end else (6 if step else int(start))
        days = range(int(start), last + 1, int(step or 1))
        if any(day > 7 for day in days):
            raise ValueError(f"weekday {item!r} is out of range 0-7")
        names.extend(_WEEKDAYS[day % 7] for day in days)
    return ",".join(dict.fromkeys(names))


def scheduled_drafts(**spec: Any) -> None:
    """The job function named in the job store. Fires go through `ScheduleExecutor`, which hands them to
    the process's `Scheduler` (the running service) instead of calling this."""
    raise RuntimeError("Scheduled drafts run inside the service's Scheduler, not on their own.")


class ScheduleExecutor(AsyncIOExecutor):
    """Hands each fire (job id and its scheduled time, which is the claim key) to `fire`."""

    def __init__(self, fire: Callable[[str, datetime], Awaitable[None]]) -> None:
        super().__init__()
        self._fire = fire

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        async def run() -> list[JobExecutionEvent]:
            events = []
            for run_time in run_times:
                if job.misfire_grace_time is not None and (
                    datetime.now(UTC) - run_time > timedelta(seconds=job.misfire_grace_time)
                ):
                    log.warning("schedule %s: the run due at %s was missed by more than the grace time",
                                job.id, run_time)
                    events.append(JobExecutionEvent(EVENT_JOB_MISSED, job.id, job._jobstore_alias, run_time))
                    continue
                try:
                    await self._fire(job.id, run_time)
                except Exception as exc:  # noqa: BLE001 - recorded in schedule_runs; the scheduler goes on
                    events.append(JobExecutionEvent(EVENT_JOB_ERROR, job.id, job._jobstore_alias, run_time,
                                                    exception=exc))
                else:
                    events.append(JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, run_time))
            return events

        def done(future: asyncio.Future[list[JobExecutionEvent]]) -> None:
            self._pending_futures.discard(future)
            try:
                events = future.result()
            except BaseException:  # noqa: BLE001 - cancelled on shutdown
                self._run_job_error(job.id, *sys.exc_info()[1:])
            else:
                self._run_job_success(job.id, events)

        future = self._eventloop.create_task(run())
        future.add_done_callback(done)
        self._pending_futures.add(future)


# the schedule book: CRUD over any APScheduler scheduler on the job store --------------------------
class ScheduleBook:
    """Schedules and their run history in the database, through a started (possibly paused) scheduler."""

    def __init__(self, scheduler: BaseScheduler, engine: sa.Engine, settings: Settings) -> None:
        self.scheduler = scheduler
        self.engine = engine
        self.settings = settings

    def _to_schedule(self, job: Any) -> Schedule:
        spec = dict(job.kwargs)
        created_at = datetime.fromisoformat(spec.pop("created_at"))
        return Schedule(id=job.id, created_at=created_at, next_run_time=job.next_run_time,
                        last_run=self.last_run(job.id), **spec)

    def add(self, body: ScheduleCreate) -> Schedule:
        grace = self.settings.schedule.misfire_grace_s
        job = self.scheduler.add_job(
            scheduled_drafts,
            trigger=cron_trigger(body.cron, self.settings.schedule.timezone),
            id=uuid.uuid4().hex[:10],
            name=f"{body.author}: {', '.join(p.value for p in body.platforms)}",
            kwargs={**body.model_dump(mode="json"), "created_at": datetime.now(UTC).isoformat()},
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(grace, 1) if grace is not None else None,
            replace_existing=False,
        )
        return self.get(job.id)

    def get(self, schedule_id: str) -> Schedule:
        job = self.scheduler.get_job(schedule_id)
        if job is None:
            raise NotFound(f"No schedule with id {schedule_id}.")
        return self._to_schedule(job)

    def list(self, author: str | None = None) -> list[Schedule]:
        schedules = [self._to_schedule(job) for job in self.scheduler.get_jobs()]
        schedules = [s for s in schedules if author is None or s.author == author]
        return sorted(schedules, key=lambda s: (s.author, s.created_at))

    def remove(self, schedule_id: str) -> None:
        try:
            self.scheduler.remove_job(schedule_id)
        except JobLookupError as exc:
            raise NotFound(f"No schedule with id {schedule_id}.") from exc

    # run history and claims ------------------------------------------------------------------
    def claim(self, schedule_id: str, fire_time: datetime) -> ScheduleRun | None:
        """Insert the run row for this fire; None when another process got there first."""
        now = t.utcnow()
        try:
            with self.engine.begin() as conn:
                run_id = conn.execute(
                    t.schedule_runs.insert().values(
                        schedule_id=schedule_id, fire_time=fire_time, claimed_by=worker_name(),
                        status="running", detail={}, started_at=now,
                    )
                ).inserted_primary_key[0]
        except sa.exc.IntegrityError:
            return None
        return self.get_run(run_id)

    def finish(self, run_id: int, status: str, detail: dict[str, Any], error: str | None = None) -> ScheduleRun:
        with self.engine.begin() as conn:
            conn.execute(
                t.schedule_runs.update().where(t.schedule_runs.c.id == run_id).values(
                    status=status, detail=detail, error=error, finished_at=t.utcnow()
                )
            )
        return self.get_run(run_id)

    def get_run(self, run_id: int) -> ScheduleRun:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.schedule_runs).where(t.schedule_runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"No schedule run with id {run_id}.")
        return _schedule_run(row)

    def runs(self, schedule_id: str, limit: int = 20) -> list[ScheduleRun]:
        """Newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.schedule_runs).where(t.schedule_runs.c.schedule_id == schedule_id)
                .order_by(t.schedule_runs.c.fire_time.desc(), t.schedule_runs.c.id.desc()).limit(limit)
            ).all()
        return [_schedule_run(r) for r in rows]

    def last_run(self, schedule_id: str, status: str | None = None) -> ScheduleRun | None:
        query = sa.select(t.schedule_runs).where(t.schedule_runs.c.schedule_id == schedule_id)
        if status is not None:
            query = query.where(t.schedule_runs.c.status == status)
        with self.engine.connect() as conn:
            row = conn.execute(
                query.order_by(t.schedule_runs.c.fire_time.desc(), t.schedule_runs.c.id.desc()).limit(1)
            ).first()
        return _schedule_run(row) if row else None

    def fail_orphaned_runs(self) -> int:
        """Runs this machine started in a process that is gone (killed mid-run) are marked failed, so the
        schedule can run again; runs of live processes and of other machines are left alone."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.schedule_runs.c.id, t.schedule_runs.c.claimed_by)
                                .where(t.schedule_runs.c.status == "running")).all()
        orphaned = [row.id for row in rows if _process_gone(row.claimed_by)]
        for run_id in orphaned:
            self.finish(run_id, "failed", self.get_run(run_id).detail, "The service stopped during this run.")
        return len(orphaned)

    def count_runs(self, schedule_id: str, status: str) -> int:
        with self.engine.connect() as conn:
            return conn.scalar(
                sa.select(sa.func.count()).select_from(t.schedule_runs).where(
                    t.schedule_runs.c.schedule_id == schedule_id, t.schedule_runs.c.status == status
                )
            ) or 0


def _schedule_run(row: sa.Row[Any]) -> ScheduleRun:
    data = dict(row._mapping)
    for key in ("fire_time", "started_at", "finished_at"):
        if isinstance(data[key], datetime) and data[key].tzinfo is None:
            data[key] = data[key].replace(tzinfo=UTC)
    return ScheduleRun(**data)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_gone(claimed_by: str) -> bool:
    host, _, pid = claimed_by.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def job_store(engine: sa.Engine) -> SQLAlchemyJobStore:
    # The store's own engine (psycopg driver for Postgres URLs, WAL and timeouts for SQLite).
    return SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)


# the service's scheduler -------------------------------------------------------------------------
class Scheduler:
    """The scheduler inside the service: fires schedules, claims each fire, runs the agent."""

    def __init__(self, service: TwinService, drafter: Drafter | None = None) -> None:
        self.service = service
        self.settings = service.settings
        self._drafter = drafter or agent_drafter(service)
        self._scheduler = AsyncIOScheduler(
            jobstores={"default": job_store(service.db.engine)},
            executors={"default": ScheduleExecutor(self._fire)},
            timezone=self.settings.schedule.timezone or _local_timezone(),
        )
        self.book = ScheduleBook(self._scheduler, service.db.engine, self.settings)
        self._active: set[asyncio.Task[Any]] = set()
        """Runs in progress (fired or run now), awaited on stop so each records how it ended."""
        self._poller: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Call inside the service's event loop (e.g. the app's lifespan)."""
        self.book.fail_orphaned_runs()
        self._scheduler.start()
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        # APScheduler sleeps until the next job it knows of; a job another process added is only seen
        # when it looks at the store again.
        while True:
            await asyncio.sleep(self.settings.schedule.poll_s)
            self._scheduler.wakeup()

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        self._scheduler.shutdown(wait=False)  # cancels fired runs; they record that in _execute
        running = list(self._active)
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    @property
    def running(self) -> bool:
        return self._scheduler.running

    # CRUD -------------------------------------------------------------------------------------
    def add(self, body: ScheduleCreate) -> Schedule:
        self.service.author(body.author)
        schedule = self.book.add(body)
        self._scheduler.wakeup()
        return schedule

    def list(self, author: str | None = None) -> list[Schedule]:
        return self.book.list(author)

    def get(self, schedule_id: str) -> Schedule:
        return self.book.get(schedule_id)

    def remove(self, schedule_id: str) -> None:
        self.book.remove(schedule_id)

    def runs(self, schedule_id: str) -> list[ScheduleRun]:
        self.book.get(schedule_id)
        return self.book.runs(schedule_id)

    def run_now(self, schedule_id: str) -> ScheduleRun:
        """Claim a run for now and start it in the background; returns its record (status running)."""
        schedule = self.book.get(schedule_id)
        running = self.book.last_run(schedule_id)
        if running is not None and running.status == "running":
            raise Conflict(f"Schedule {schedule_id} is running already (since {running.started_at:%H:%M:%S}).")
        claim = self.book.claim(schedule_id, datetime.now(UTC))
        if claim is None:
            raise Conflict(f"Schedule {schedule_id} was just started by another process.")
        asyncio.get_running_loop().create_task(self._execute(schedule, claim))
        return claim

    # fires --------------------------------------------------------------------------------------
    # Claims and run records are written from a thread: a synchronous SQLite write on the event loop can wait
    # on the lock held by the checkpointer's aiosqlite connection, whose commit needs the loop (a deadlock).
    async def _fire(self, job_id: str, fire_time: datetime) -> None:
        claim = await asyncio.to_thread(self.book.claim, job_id, fire_time)
        if claim is None:
            log.info("schedule %s at %s: claimed by another process, skipping", job_id, fire_time)
            return
        try:
            schedule = self.book.get(job_id)
        except NotFound:  # removed between fire and claim
            await asyncio.to_thread(self.book.finish, claim.id, "skipped", {}, "The schedule was removed.")
            return
        await self._execute(schedule, claim)

    async def _execute(self, schedule: Schedule, claim: ScheduleRun) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._active.add(task)
        detail: dict[str, Any] = {"run_ids": [], "draft_ids": [], "new_documents": 0}
        finish = self.book.finish
        try:
            status = await self._draft(schedule, claim, detail)
        except asyncio.CancelledError:
            await asyncio.to_thread(finish, claim.id, "failed", detail, "The service stopped during this run.")
            raise
        except Exception as exc:  # noqa: BLE001 - the run record tells the user what went wrong
            log.exception("schedule %s failed", schedule.id)
            await asyncio.to_thread(finish, claim.id, "failed", detail, str(exc) or type(exc).__name__)
            raise
        finally:
            self._active.discard(task)
        log.info("schedule %s at %s: %s", schedule.id, claim.fire_time, status)
        await asyncio.to_thread(finish, claim.id, status, detail, detail.pop("reason", None))

    async def _draft(self, schedule: Schedule, claim: ScheduleRun, detail: dict[str, Any]) -> str:
        from agents.briefs import scheduled_brief
        from agents.schemas import DraftRequest

        author = self.service.author(schedule.author)
        db = self.service.db
        if schedule.collect and db.list_sources(author):
            detail["ingest_job"] = await self._collect(schedule.author)
        previous = self.book.last_run(schedule.id, status="succeeded")
        since = previous.started_at if previous else claim.started_at - timedelta(
            days=self.settings.schedule.lookback_days)
        planned = scheduled_brief(
            db.list_documents(author, since=since), schedule.topics, self.book.count_runs(schedule.id, "succeeded")
        )
        detail["new_documents"] = planned.new_documents
        detail["since"] = since.isoformat()
        if planned.brief is None:
            detail["reason"] = planned.reason
            return "skipped"
        brief = planned.brief
        detail["brief"] = brief
        await self._wait_for_model()
        for platform in schedule.platforms:
            request = DraftRequest(author=schedule.author, prompt=brief, platform=platform, drafts=schedule.drafts)
            async with self.service.run_slot():
                result = await self._drafter(request, ORIGIN)
            detail["run_ids"].append(result.run_id)
            detail["draft_ids"].extend(d.draft_id for d in result.drafts if d.draft_id is not None)
        return "succeeded"

    async def _wait_for_model(self) -> None:
        """A fire due while the service was down runs right at start, when the model is still coming up."""
        deadline = time.monotonic() + self.settings.serve.model_start_timeout_s
        while True:
            try:
                self.service.require_model()
                return
            except Unavailable:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(MODEL_POLL_S)

    async def _collect(self, author: str) -> str:
        """Run an ingest job of the author's sources (or wait for the one already running)."""
        from serving.service import IngestRequest

        try:
            job = self.service.start_ingest(author, IngestRequest())
        except Conflict:
            running = self.service.db.list_jobs(author=self.service.author(author), kind="ingest")
            job = running[-1]
        finished = await self.service.wait_for_job(job.id)
        if finished.status.value == "failed":
            raise TwinError(f"Collecting {author}'s sources failed: {finished.error}")
        return job.id


def agent_drafter(service: TwinService) -> Drafter:
    """The real thing: the LangGraph agent over the service's stores and model."""

    async def draft(request: DraftRequest, origin: str) -> RunResult:
        from agents.run import run_to_completion

        return await run_to_completion(service.agent_deps(), request, origin=origin)

    return draft


def _local_timezone() -> Any:
    from tzlocal import get_localzone

    return get_localzone()


def start_scheduler(service: TwinService, drafter: Drafter | None = None) -> Scheduler:
    """Start the service's scheduler (inside its event loop); `await scheduler.stop()` on shutdown."""
    scheduler = Scheduler(service, drafter)
    scheduler.start()
    return scheduler


def open_schedule_book(settings: Settings) -> tuple[ScheduleBook, Callable[[], None]]:
    """The schedules without a running service (the CLI): a paused scheduler on the job store.
    Returns the book and a function that closes it."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from twin.store import DocumentStore

    settings.ensure_dirs()
    store = DocumentStore.from_url(settings.resolved_database_url)
    scheduler = BackgroundScheduler(jobstores={"default": job_store(store.engine)},
                                    timezone=settings.schedule.timezone or _local_timezone())
    scheduler.start(paused=True)

    def close() -> None:
        scheduler.shutdown(wait=False)
        store.close()

    return ScheduleBook(scheduler, store.engine, settings), close
