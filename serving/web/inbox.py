"""The drafts inbox (approve, edit, discard, copy; filters) and the schedules page."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Template

from serving.scheduler import ScheduleCreate, Scheduler
from serving.service import TwinService
from serving.web.forms import DraftStatusForm, DraftTextForm, ScheduleForm, lines
from serving.web.plugin import PAGE_EXCEPTION_HANDLERS, page_or_fragment
from twin.domain import DRAFT_PLATFORMS, Draft, DraftStatus, Platform, Unavailable

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
ORIGINS = ("chat", "schedule")


def _draft_context(service: TwinService, draft: Draft, editing: bool = False) -> dict[str, Any]:
    return {"draft": draft, "author_name": service.db.get_author_by_id(draft.author_id).name, "editing": editing}


class InboxPages(Controller):
    tags = ["pages"]
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTION_HANDLERS

    @get("/inbox", name="inbox")
    async def inbox(
        self,
        request: Request,
        service: TwinService,
        author: str | None = None,
        status: str | None = None,
        platform: str | None = None,
        origin: str | None = None,
    ) -> Template:
        # Filters come from a form whose "any" option is an empty value.
        chosen_status = DraftStatus(status) if status else None
        chosen_platform = Platform(platform) if platform else None
        person = service.author(author) if author else None
        drafts = service.db.list_drafts(author=person, status=chosen_status, platform=chosen_platform)
        if origin:
            drafts = [d for d in drafts if (d.origin == "schedule") == (origin == "schedule")]
        names = {a.id: a.name for a in service.db.list_authors()}
        feedback = {"edit": 0, "choice": 0}
        for someone in [person] if person else service.db.list_authors():
            for kind, count in service.db.count_feedback_pairs(someone).items():
                feedback[kind] = feedback.get(kind, 0) + count
        context = {
            "feedback": {**feedback, "total": sum(feedback.values())},
            "drafts": [{"draft": d, "author_name": names.get(d.author_id, "?"), "editing": False} for d in drafts],
            "authors": sorted(names.values()),
            "filters": {"author": author or "", "status": status or "", "platform": platform or "",
                        "origin": origin or ""},
            "statuses": list(DraftStatus),
            "platforms": DRAFT_PLATFORMS,
            "origins": ORIGINS,
            "page": "inbox",
        }
        return page_or_fragment(request, "inbox.html", "partials/draft_list.html", context)

    @get("/drafts/{draft_id:int}", name="draft")
    async def draft(self, service: TwinService, draft_id: int) -> Template:
        return Template(template_name="partials/draft.html", context=_draft_context(service, service.db.get_draft(draft_id)))

    @get("/drafts/{draft_id:int}/edit", name="edit_draft")
    async def edit_draft(self, service: TwinService, draft_id: int) -> Template:
        return Template(template_name="partials/draft.html",
                        context=_draft_context(service, service.db.get_draft(draft_id), editing=True))

    @post("/drafts/{draft_id:int}", name="save_draft")
    async def save_draft(self, service: TwinService, draft_id: int, data: Annotated[DraftTextForm, Form]) -> Template:
        draft = service.db.update_draft(draft_id, text=data.text.replace("\r\n", "\n"))
        return Template(template_name="partials/draft.html", context=_draft_context(service, draft))

    @post("/drafts/{draft_id:int}/status", name="draft_status")
    async def set_status(
        self, service: TwinService, draft_id: int, data: Annotated[DraftStatusForm, Form]
    ) -> Template:
        draft = service.db.update_draft(draft_id, status=data.status)
        return Template(template_name="partials/draft.html", context=_draft_context(service, draft))


def _scheduler(state: State) -> Scheduler:
    scheduler = getattr(state, "scheduler", None)
    if scheduler is None:
        raise Unavailable("The scheduler is off (TWIN_SCHEDULE__ENABLED=false) or still starting.")
    return scheduler


class SchedulePages(Controller):
    tags = ["pages"]
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTION_HANDLERS

    def _context(self, service: TwinService, scheduler: Scheduler) -> dict[str, Any]:
        schedules = scheduler.list()
        return {
            "schedules": [{"schedule": s, "runs": scheduler.book.runs(s.id, limit=5)} for s in schedules],
            "authors": [a.name for a in service.db.list_authors()],
            "platforms": DRAFT_PLATFORMS,
            "default_cron": service.settings.schedule.default_cron,
            "page": "schedules",
        }

    @get("/schedules", name="schedules")
    async def schedules(self, request: Request, service: TwinService) -> Template:
        context = self._context(service, _scheduler(request.app.state))
        return page_or_fragment(request, "schedules.html", "partials/schedule_list.html", context)

    @post("/schedules", name="add_schedule")
    async def add_schedule(self, request: Request, service: TwinService, data: Annotated[ScheduleForm, Form]) -> Template:
        scheduler = _scheduler(request.app.state)
        scheduler.add(ScheduleCreate(author=data.author, cron=data.cron, platforms=data.platforms, drafts=data.drafts,
                                     topics=lines(data.topics), collect=data.collect))
        return Template(template_name="partials/schedule_list.html", context=self._context(service, scheduler))

    @post("/schedules/{schedule_id:str}/remove", name="remove_schedule")
    async def remove_schedule(self, request: Request, service: TwinService, schedule_id: str) -> Template:
        scheduler = _scheduler(request.app.state)
        scheduler.remove(schedule_id)
        return Template(template_name="partials/schedule_list.html", context=self._context(service, scheduler))

    @post("/schedules/{schedule_id:str}/run", name="run_schedule")
    async def run_schedule(self, request: Request, service: TwinService, schedule_id: str) -> Template:
        scheduler = _scheduler(request.app.state)
        scheduler.run_now(schedule_id)
        return Template(template_name="partials/schedule_list.html", context=self._context(service, scheduler))
