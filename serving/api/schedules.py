"""Scheduled drafts: create, list, remove, run now, and each schedule's run history."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.di import Provide

from serving.scheduler import Schedule, ScheduleCreate, Scheduler, ScheduleRun
from twin.domain import Unavailable


def provide_scheduler(state: State) -> Scheduler:
    scheduler = getattr(state, "scheduler", None)
    if scheduler is None:
        raise Unavailable("The scheduler is not running (TWIN_SCHEDULE__ENABLED is off, or the service is starting).")
    return scheduler


class ScheduleController(Controller):
    path = "/api/schedules"
    tags = ["schedules"]
    dependencies = {"scheduler": Provide(provide_scheduler, sync_to_thread=False)}

    @get("/", operation_id="listSchedules")
    async def list_schedules(self, scheduler: Scheduler, author: str | None = None) -> list[Schedule]:
        return scheduler.list(author)

    @post("/", operation_id="createSchedule")
    async def create_schedule(self, scheduler: Scheduler, data: ScheduleCreate) -> Schedule:
        return scheduler.add(data)

    @get("/{schedule_id:str}", operation_id="getSchedule")
    async def get_schedule(self, scheduler: Scheduler, schedule_id: str) -> Schedule:
        return scheduler.get(schedule_id)

    @delete("/{schedule_id:str}", operation_id="removeSchedule", status_code=200)
    async def remove_schedule(self, scheduler: Scheduler, schedule_id: str) -> dict[str, str]:
        scheduler.remove(schedule_id)
        return {"removed": schedule_id}

    @post("/{schedule_id:str}/run", operation_id="runSchedule", status_code=202)
    async def run_schedule(self, scheduler: Scheduler, schedule_id: str) -> ScheduleRun:
        return scheduler.run_now(schedule_id)

    @get("/{schedule_id:str}/runs", operation_id="listScheduleRuns")
    async def list_runs(self, scheduler: Scheduler, schedule_id: str) -> list[ScheduleRun]:
        return scheduler.runs(schedule_id)

    @get("/runs/{run_id:int}", operation_id="getScheduleRun")
    async def get_run(self, scheduler: Scheduler, run_id: int) -> ScheduleRun:
        return scheduler.book.get_run(run_id)


ROUTE_HANDLERS = [ScheduleController]
