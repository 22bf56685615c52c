"""The service core: owns the embedded stores and the model deployment, runs long work as jobs.

Controllers stay thin and call these methods; rules (caps, validation, job bookkeeping) live here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from training.config import TrainConfig
from twin.domain import (
    Author,
    Conflict,
    Document,
    IngestReport,
    Job,
    JobStatus,
    Kind,
    Platform,
    Run,
    RunStatus,
    SearchHit,
    Source,
    TwinError,
    Unavailable,
)
from twin.settings import Settings
from twin.store import DocumentStore

log = logging.getLogger("twin.service")


class SourceCreate(BaseModel):
    url: str
    platform: Platform | None = None
    render_js: bool = False


class IngestRequest(BaseModel):
    urls: list[str] = Field(default_factory=list, description="One-off links; empty collects every source.")
    render_js: bool = False
    refresh: bool = Field(default=False, description="Fetch and extract every page again, even unchanged ones.")


class TrainRequest(BaseModel):
    """`twin train`'s options; unset ones come from the settings (``TWIN_TRAIN__*``)."""

    workers: int | None = Field(default=None, ge=1, le=64)
    max_steps: int | None = Field(default=None, ge=-1)
    dpo: bool | None = None
    dpo_max_steps: int | None = Field(default=None, ge=-1)
    dpo_max_pairs: int | None = Field(default=None, ge=0)
    epochs: float | None = Field(default=None, gt=0)
    max_minutes: float | None = Field(
        default=None, ge=0, description="Wall-clock budget of the job in minutes (0: none, the step caps alone)."
    )
    use_gpu: bool | None = None
    feedback_only: bool | None = Field(
        default=None, description="A short DPO-only run on the inbox's preference pairs, on top of the active adapter."
    )
    activate: bool = True
    config: TrainConfig | None = Field(
        default=None, description="A whole training config (what `twin train` sends); the fields above then do not apply."
    )


class TwinService:
    """One per process. `start()` opens the stores; the model deployment comes up in the background."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: DocumentStore | None = None
        self.ingestion: Any = None
        self.model_client: Any = None
        self.model_error: str | None = None
        self._model_task: asyncio.Task[None] | None = None
        self._started_ray = False
        self._ray_up = False
        self._ray_lock = asyncio.Lock()
        self._jobs: dict[str, asyncio.Task[Any]] = {}
        self._runs = asyncio.Semaphore(settings.serve.max_concurrent_runs)
        self._ingest_lock = asyncio.Lock()  # one writer of the vector store at a time
        self._exit_stack = contextlib.AsyncExitStack()
        self.checkpointer: Any = None
        self._agent_deps: Any = None
        self._resuming: set[str] = set()

    # lifecycle -------------------------------------------------------------------------------
    async def start(self, *, with_model: bool = True) -> None:
        from ingestion.pipeline import IngestionDeps
        from twin.vectors import Embedder, VectorStore

        self.settings.ensure_dirs()
        self.store = DocumentStore.from_url(self.settings.resolved_database_url)
        to_resume = self._recover_jobs()
        embedder = await asyncio.to_thread(Embedder, self.settings)
        vectors = await asyncio.to_thread(VectorStore, self.settings, embedder)
        self.ingestion = IngestionDeps(settings=self.settings, store=self.store, vectors=vectors)
        from agents.checkpoint import open_checkpointer

        self.checkpointer = await self._exit_stack.enter_async_context(
            open_checkpointer(self.settings.resolved_database_url)
        )
        if with_model:
            self._model_task = asyncio.create_task(self._start_model())
        for job in to_resume:
            try:
                self.resume_training(job.id)
                log.info("resuming training job %s from its last checkpoint", job.id)
            except TwinError as exc:
                self.db.update_job(job.id, status=JobStatus.failed, error=f"interrupted; not resumed: {exc}")

    def _recover_jobs(self) -> list[Job]:
        """Jobs whose process is gone: training jobs to resume (``train.resume_on_start``); the others are
        marked failed. Jobs of live processes (a `twin train` beside this service, another service on the
        same database) are left alone."""
        from training.job import INTERRUPTED_ERRORS, TRAIN_JOB_KIND, is_resumable

        resume: list[Job] = []
        for job in self.db.list_jobs(status=JobStatus.running):
            if job.owner is not None and not job.owner.is_gone():
                continue
            if self.settings.train.resume_on_start and is_resumable(job):
                resume.append(job)
            else:
                self.db.update_job(job.id, status=JobStatus.failed, error="interrupted (its process exited)")
        if self.settings.train.resume_on_start:
            # a training job this service's previous run stopped (cancelled on shutdown), if it is its
            # author's latest
            latest: dict[int, Job] = {}
            for job in self.db.list_jobs(kind=TRAIN_JOB_KIND):
                latest[job.author_id] = job
            resume += [job for job in latest.values() if job.status == JobStatus.failed
                       and (job.error or "").startswith(INTERRUPTED_ERRORS) and is_resumable(job)
                       and (job.owner is None or job.owner.is_gone())]
        return resume

    async def _ensure_ray(self) -> None:
        """Start (or attach to) the one Ray this service uses for the model and for training."""
        from serving.model import start_ray_and_serve

        async with self._ray_lock:
            serve_settings = self.settings.serve
            if not self._ray_up and serve_settings.ray_num_cpus is None:
                from twin.ray_cluster import ray_address

                if ray_address(self.settings) is None:
                    # The local Ray hosts the model replica and training workers side by side: give it
                    # enough logical CPUs for both (training would otherwise wait for the replica's CPU).
                    serve_settings.ray_num_cpus = max(
                        os.cpu_count() or 1, math.ceil(serve_settings.model_num_cpus) + self.settings.train.workers
                    )
            if await asyncio.to_thread(start_ray_and_serve, self.settings):
                self._started_ray = True  # ours to stop (see stop_local_ray)
            self._ray_up = True

    async def _start_model(self, attempts: int = 3) -> None:
        """Bring the model deployment up in the background, retrying a failed start (Ray can time out
        starting on a loaded machine); chat answers 503 with a retry hint meanwhile."""
        from serving.model import run_model_app
        from serving.model_client import ModelClient

        for attempt in range(1, attempts + 1):
            try:
                await self._ensure_ray()
                handle = await asyncio.to_thread(run_model_app, self.settings)
                self.model_client = ModelClient(handle)
                self.model_error = None
                log.info("model deployment ready")
                return
            except Exception as exc:  # noqa: BLE001 - reported through /api/health and 503s
                log.exception("model deployment failed (attempt %d of %d)", attempt, attempts)
                self.model_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(5 * attempt)

    async def stop(self) -> None:
        jobs = list(self._jobs.values())
        for task in jobs:
            task.cancel()
        if self._model_task:
            self._model_task.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)  # each records how it ended before the store closes
        if self._started_ray:
            from serving.model import stop_local_ray

            self.model_client = None
            await asyncio.to_thread(stop_local_ray)
        await self._exit_stack.aclose()
        if self.ingestion is not None:
            self.ingestion.vectors.close()
        if self.store is not None:
            self.store.close()

    def require_model(self) -> Any:
        if self.model_client is None:
            if self.model_error:
                raise Unavailable(f"The model deployment failed to start: {self.model_error}")
            raise Unavailable("The model is still starting; retry in a few seconds.")
        return self.model_client

    def agent_deps(self) -> Any:
        """The agent's dependencies, sharing this service's stores, model and ingest lock."""
        from agents.deps import AgentDeps

        model = self.require_model()
        if self._agent_deps is None or self._agent_deps.model is not model:
            self._agent_deps = AgentDeps(
                settings=self.settings,
                store=self.db,
                ingestion=self.ingestion,
                model=model,
                checkpointer=self.checkpointer,
                ingest_lock=self._ingest_lock,
            )
        return self._agent_deps

    @property
    def db(self) -> DocumentStore:
        assert self.store is not None, "TwinService.start() was not called"
        return self.store

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "model": "ready" if self.model_client else ("failed" if self.model_error else "starting"),
            "model_error": self.model_error,
            "running_jobs": [job_id for job_id, task in self._jobs.items() if not task.done()],
        }

    # authors and sources ---------------------------------------------------------------------
    def author(self, name: str) -> Author:
        return self.db.get_author(name)

    def add_source(self, author_name: str, body: SourceCreate) -> Source:
        from ingestion.collectors import detect_platform
        from ingestion.pipeline import validate_source_url

        url = validate_source_url(body.url)
        return self.db.add_source(self.author(author_name), url, body.platform or detect_platform(url), body.render_js)

    async def remove_source(self, author_name: str, url: str) -> int:
        from ingestion.pipeline import remove_source

        async with self._ingest_lock:
            return await asyncio.to_thread(remove_source, self.ingestion, self.author(author_name), url)

    def search(
        self, author_name: str, query: str, k: int = 5, platform: Platform | None = None, kind: Kind | None = None
    ) -> list[SearchHit]:
        return self.ingestion.vectors.search(self.author(author_name), query, k=k, platform=platform, kind=kind)

    async def promote_document(self, author_name: str, document_id: int) -> Document:
        """Make a page linked in a chat request (reference material) part of the author's own writing."""
        from ingestion.pipeline import promote_document

        author = self.author(author_name)
        async with self._ingest_lock:
            return await promote_document(self.ingestion, author, document_id)

    # jobs ------------------------------------------------------------------------------------
    def _spawn(self, job: Job, work: Callable[[Callable[[dict[str, Any]], None]], Awaitable[BaseModel]]) -> Job:
        # Job rows are written from a thread: a synchronous SQLite write on the event loop can wait on the
        # lock held by the checkpointer's aiosqlite connection, whose commit needs the event loop (a deadlock).
        progress = _ProgressWriter(self.db, job.id)

        async def finish(**fields: Any) -> None:
            await progress.drain()
            await asyncio.to_thread(self.db.update_job, job.id, **fields)

        async def runner() -> None:
            try:
                result = await work(progress)
                await finish(status=JobStatus.succeeded, result=result.model_dump(mode="json"))
            except asyncio.CancelledError:
                await finish(status=JobStatus.failed, error="cancelled (service stopping)")
                raise
            except Exception as exc:  # noqa: BLE001 - the job records every failure for the user
                log.exception("job %s failed", job.id)
                await finish(status=JobStatus.failed, error=str(exc) or type(exc).__name__)
            finally:
                self._jobs.pop(job.id, None)

        self._jobs[job.id] = asyncio.create_task(runner())
        return job

    def _busy(self, author: Author, kind: str) -> None:
        for job in self.db.list_jobs(author=author, kind=kind, status=JobStatus.running):
            if job.id in self._jobs:
                raise Conflict(f"A {kind} job ({job.id}) is already running for {author.name}.")

    def start_ingest(self, author_name: str, body: IngestRequest) -> Job:
        from ingestion.pipeline import ProgressEvent, ingest_urls, validate_source_url

        author = self.author(author_name)
        urls = [validate_source_url(u) for u in body.urls]
        if len(urls) > self.settings.serve.max_links:
            raise TwinError(f"At most {self.settings.serve.max_links} links per request (got {len(urls)}).")
        self._busy(author, "ingest")
        job = self.db.create_job(author, "ingest", progress={"done": 0, "current": "", "problems": []})

        async def work(report_progress: Callable[[dict[str, Any]], None]) -> IngestReport:
            state: dict[str, Any] = {"done": 0, "current": "", "problems": [], "documents": []}

            def on_event(event: ProgressEvent) -> None:
                if event.kind == "source":
                    state["current"] = event.url
                elif event.kind == "document":
                    state["done"] += 1
                    state["documents"] = (state["documents"] + [{"url": event.url, "status": event.status}])[-20:]
                elif event.kind == "problem":
                    state["done"] += 1
                    state["problems"].append({"url": event.url, "status": event.status, "reason": event.message})
                else:
                    return
                report_progress(dict(state))

            async with self._ingest_lock:
                return await ingest_urls(self.ingestion, author, urls or None, render_js=body.render_js,
                                         refresh=body.refresh, progress=on_event)

        return self._spawn(job, work)

    @property
    def uploads_dir(self) -> Path:
        return self.settings.data_dir / "uploads"

    async def start_import(
        self, author_name: str, upload: Path, filename: str, *, private: bool = False, me: str | None = None
    ) -> Job:
        """Import an uploaded file (already on disk under `uploads_dir`, which this takes over): a platform
        export, or with ``private`` a chat export (`ingestion.chats`: scrubbed, never embedded)."""
        from ingestion.chats import import_chat_export
        from ingestion.pipeline import import_export

        path = Path(upload)
        try:
            author = self.author(author_name)
            if path.stat().st_size == 0:
                raise TwinError("The uploaded file is empty.")
            safe_name = Path(filename or "export.zip").name or "export.zip"
            job = await asyncio.to_thread(self.db.create_job, author, "import", progress={"file": safe_name})
        except BaseException:
            path.unlink(missing_ok=True)
            raise

        async def work(report_progress: Callable[[dict[str, Any]], None]) -> IngestReport:
            async with self._ingest_lock:
                target = path.with_name(safe_name)
                path.replace(target)  # the source is named after the file the user uploaded
                try:
                    if private:
                        result = await asyncio.to_thread(import_chat_export, self.db, author, target, me=me)
                        return result.report
                    return await import_export(self.ingestion, author, target)
                finally:
                    # what it held is in the store now; an archive can be gigabytes, and nobody's private
                    # messages stay in the uploads folder
                    target.unlink(missing_ok=True)

        return self._spawn(job, work)

    async def forget_private_source(self, author_name: str, url: str) -> Any:
        from ingestion.chats import forget_private_source

        async with self._ingest_lock:
            return await asyncio.to_thread(forget_private_source, self.db, self.author(author_name), url,
                                           self.settings.datasets_dir, self.ingestion.vectors)

    def start_training(self, author_name: str, body: TrainRequest) -> Job:
        """Validate now (clear 4xx), then train in the background on this service's Ray; the job reports
        each stage."""
        from training.job import check_training_request, create_training_job

        config = body.config or TrainConfig.from_settings(
            self.settings, **body.model_dump(exclude={"activate", "config"}, exclude_none=True)
        )
        check_training_request(self.db, author_name, self.settings, config)
        for job in self.db.list_jobs(author=self.author(author_name), kind="train", status=JobStatus.running):
            raise Conflict(f"A training job ({job.id}) is already running for {author_name}.")
        job = create_training_job(self.db, self.author(author_name), config, body.activate)
        return self._run_training(job, author_name, config, body.activate)

    def resume_training(self, job_id: str, *, force: bool = False) -> Job:
        """Take over a training job whose process died and continue it from its last checkpoint."""
        from training.job import claim_for_resume

        job, state = claim_for_resume(self.db, job_id, force=force)
        assert state.config is not None
        return self._run_training(job, self.db.get_author_by_id(job.author_id).name, state.config, state.activate)

    def _run_training(self, job: Job, author_name: str, config: Any, activate: bool) -> Job:
        from training.job import train

        async def work(_: Callable[[dict[str, Any]], None]) -> BaseModel:
            await self._ensure_ray()  # one Ray per machine: training joins the service's, never its own
            return await asyncio.to_thread(
                train, self.db, author_name, self.settings, config, activate=activate, job_id=job.id
            )

        return self._spawn(job, work)

    def job(self, job_id: str) -> Job:
        return self.db.get_job(job_id)

    async def wait_for_job(self, job_id: str, timeout_s: float | None = None) -> Job:
        task = self._jobs.get(job_id)
        if task is not None:
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        return self.db.get_job(job_id)

    # runs ------------------------------------------------------------------------------------
    def run_slot(self) -> asyncio.Semaphore:
        """Concurrent agent runs are capped; callers fail fast with 429 when none is free."""
        return self._runs

    @contextlib.contextmanager
    def resuming(self, run_id: str) -> Iterator[None]:
        """One resume of a run at a time (two would continue one checkpoint twice and store its drafts twice)."""
        if run_id in self._resuming:
            raise Conflict(f"Run {run_id} is being resumed already.")
        self._resuming.add(run_id)
        try:
            yield
        finally:
            self._resuming.discard(run_id)

    async def resumable_runs(self, limit: int = 10) -> list[Run]:
        """Recent runs that stopped part-way and have a checkpoint to continue from, newest first."""
        from agents.graph import build_graph
        from agents.run import can_resume

        if self.checkpointer is None:
            return []
        runs = await asyncio.to_thread(self.db.list_runs, None, 50)
        graph = build_graph(self.checkpointer)
        found: list[Run] = []
        for run in runs:
            if len(found) == limit:
                break
            if run.status is RunStatus.failed and run.id not in self._resuming and await can_resume(
                self.checkpointer, run.id, graph
            ):
                found.append(run)
        return found


class _ProgressWriter:
    """A job's progress, written from a thread with the latest value winning: the callers (ingestion
    callbacks on the event loop) never wait on the database."""

    def __init__(self, store: DocumentStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id
        self._latest: dict[str, Any] | None = None
        self._writer: asyncio.Task[None] | None = None

    def __call__(self, progress: dict[str, Any]) -> None:
        self._latest = progress
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        while self._latest is not None:
            progress, self._latest = self._latest, None
            try:
                await asyncio.to_thread(self.store.update_job, self.job_id, progress=progress)
            except Exception:  # noqa: BLE001 - a lost progress note must not fail the job
                log.exception("job %s: progress not recorded", self.job_id)

    async def drain(self) -> None:
        """Wait for the last progress written (before the job's final state is)."""
        if self._writer is not None:
            await asyncio.shield(self._writer)
