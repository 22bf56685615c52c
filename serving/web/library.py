"""Authors, their sources, collection, what was collected, training and adapters; live job panels."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.htmx import ClientRedirect, HTMXTemplate
from litestar.response import Redirect, Template

from serving.service import IngestRequest, SourceCreate, TrainRequest, TwinService
from serving.uploads import receive_upload
from serving.web.forms import AuthorForm, CollectForm, RemoveSourceForm, SourceForm, TrainForm, lines
from serving.web.plugin import PAGE_EXCEPTION_HANDLERS
from twin.domain import SOURCE_PLATFORMS, Author, Job, JobStatus, Platform

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
DOCUMENTS_SHOWN = 100
JOBS_SHOWN = 5


def _sources(service: TwinService, author: Author) -> dict[str, Any]:
    return {"author": author, "sources": service.db.list_sources(author), "platforms": SOURCE_PLATFORMS}


def _documents(service: TwinService, author: Author, platform: Platform | None) -> dict[str, Any]:
    documents = service.db.list_documents(author, platform=platform)
    documents.sort(key=lambda d: d.fetched_at, reverse=True)
    return {
        "author": author,
        "stats": service.db.stats(author),
        "documents": documents[:DOCUMENTS_SHOWN],
        "hidden": max(0, len(documents) - DOCUMENTS_SHOWN),
        "platform": platform,
    }


def _adapters(service: TwinService, author: Author) -> dict[str, Any]:
    adapters = sorted(service.db.list_adapters(author), key=lambda a: a.version, reverse=True)
    active = next((a.version for a in adapters if a.active), None)
    return {"author": author, "adapters": adapters, "active_version": active}


def _job_panel(job: Job) -> dict[str, Any]:
    return {"job": job, "running": job.status in (JobStatus.running, JobStatus.queued)}


class LibraryPages(Controller):
    tags = ["pages"]
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTION_HANDLERS

    @get("/", name="home")
    async def home(self, service: TwinService) -> Template:
        authors = [
            {"author": a, "stats": service.db.stats(a), "adapter": service.db.active_adapter(a),
             "drafts": len(service.db.list_drafts(author=a))}
            for a in service.db.list_authors()
        ]
        return Template(template_name="home.html", context={"authors": authors, "page": "authors"})

    @post("/authors", name="create_author")
    async def create_author(
        self, request: Request, service: TwinService, data: Annotated[AuthorForm, Form]
    ) -> ClientRedirect | Redirect:
        author = service.db.add_author(data.name)
        target = "/authors/" + quote(author.name, safe="")
        return ClientRedirect(target) if request.headers.get("hx-request") else Redirect(target, status_code=303)

    @get("/authors/{author:str}", name="author")
    async def author_page(self, service: TwinService, author: str) -> Template:
        person = service.author(author)
        jobs = service.db.list_jobs(author=person)
        running = [j for j in jobs if j.status == JobStatus.running]
        finished = [j for j in reversed(jobs) if j.status != JobStatus.running][:JOBS_SHOWN]
        context = {
            **_sources(service, person),
            **_documents(service, person, None),
            **_adapters(service, person),
            "running_jobs": running,
            "recent_jobs": finished,
            "page": "authors",
        }
        return Template(template_name="author.html", context=context)

    @get("/authors/{author:str}/sources", name="sources")
    async def sources(self, service: TwinService, author: str) -> Template:
        return Template(template_name="partials/sources.html", context=_sources(service, service.author(author)))

    @post("/authors/{author:str}/sources", name="add_source")
    async def add_source(self, service: TwinService, author: str, data: Annotated[SourceForm, Form]) -> Template:
        service.add_source(author, SourceCreate(url=data.url.strip(), platform=data.platform,
                                                render_js=data.render_js))
        return HTMXTemplate(template_name="partials/sources.html", context=_sources(service, service.author(author)))

    @post("/authors/{author:str}/sources/remove", name="remove_source")
    async def remove_source(
        self, service: TwinService, author: str, data: Annotated[RemoveSourceForm, Form]
    ) -> Template:
        await service.remove_source(author, data.url)
        return HTMXTemplate(template_name="partials/sources.html", context=_sources(service, service.author(author)),
                            trigger_event="library-changed", after="settle")

    @post("/authors/{author:str}/collect", name="collect")
    async def collect(self, service: TwinService, author: str, data: Annotated[CollectForm, Form]) -> Template:
        job = service.start_ingest(author, IngestRequest(urls=lines(data.urls), render_js=data.render_js))
        return Template(template_name="partials/job.html", context=_job_panel(job))

    @post("/authors/{author:str}/import", name="import_export", request_max_body_size=None)
    async def import_export(self, request: Request, service: TwinService, author: str) -> Template:
        service.author(author)
        upload = await receive_upload(request, service.uploads_dir, service.settings.serve.max_upload_bytes)
        job = await service.start_import(author, upload.path, upload.filename)
        return Template(template_name="partials/job.html", context=_job_panel(job))

    @get("/authors/{author:str}/documents", name="documents")
    async def documents(self, service: TwinService, author: str, platform: Platform | None = None) -> Template:
        return Template(template_name="partials/documents.html",
                        context=_documents(service, service.author(author), platform))

    @post("/authors/{author:str}/documents/{document_id:int}/promote", name="promote_document")
    async def promote_document(self, service: TwinService, author: str, document_id: int) -> Template:
        person = service.author(author)
        await service.promote_document(author, document_id)
        return Template(template_name="partials/documents.html", context=_documents(service, person, None))

    @post("/authors/{author:str}/train", name="train")
    async def train(self, service: TwinService, author: str, data: Annotated[TrainForm, Form]) -> Template:
        job = service.start_training(author, TrainRequest(workers=data.workers, max_steps=data.max_steps,
                                                          dpo=data.dpo))
        return Template(template_name="partials/job.html", context=_job_panel(job))

    @get("/authors/{author:str}/adapters", name="adapters")
    async def adapters(self, service: TwinService, author: str) -> Template:
        return Template(template_name="partials/adapters.html", context=_adapters(service, service.author(author)))

    @post("/authors/{author:str}/adapters/{version:int}/activate", name="activate_adapter")
    async def activate(self, service: TwinService, author: str, version: int) -> Template:
        person = service.author(author)
        service.db.activate_adapter(person, version)
        return Template(template_name="partials/adapters.html", context=_adapters(service, person))


class JobPages(Controller):
    tags = ["pages"]
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTION_HANDLERS

    @get("/jobs/{job_id:str}", name="job")
    async def job(self, request: Request, service: TwinService, job_id: str) -> Template:
        """A job's panel; while it runs the panel polls this every second, and when a poll finds it done
        the page is told (`job-finished`) so the documents and adapters refresh."""
        job = service.job(job_id)
        context = _job_panel(job)
        if not context["running"] and request.headers.get("hx-trigger") == f"job-{job.id}":
            return HTMXTemplate(template_name="partials/job.html", context=context, trigger_event="job-finished",
                                params={"kind": job.kind}, after="settle")
        return Template(template_name="partials/job.html", context=context)
