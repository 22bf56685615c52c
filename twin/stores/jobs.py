"""Background jobs (ingest, import, training) with their owner process, progress and result."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from twin import schema as t
from twin.domain import (
    Author,
    Conflict,
    Job,
    JobOwner,
    JobStatus,
    NotFound,
)
from twin.stores.base import StoreBase, _job


class JobRecords(StoreBase):
    # jobs ------------------------------------------------------------------------------------
    def create_job(
        self,
        author: Author,
        kind: str,
        job_id: str | None = None,
        progress: dict[str, Any] | None = None,
        owner: JobOwner | None = None,
    ) -> Job:
        """A running job owned by ``owner`` (default: this process, which runs it)."""
        import uuid

        now = t.utcnow()
        job_id = job_id or uuid.uuid4().hex
        owner = owner or JobOwner.current()
        with self.engine.begin() as conn:
            conn.execute(
                t.jobs.insert().values(
                    id=job_id,
                    author_id=author.id,
                    kind=kind,
                    status=JobStatus.running.value,
                    progress=progress or {},
                    created_at=now,
                    updated_at=now,
                    owner_host=owner.host,
                    owner_pid=owner.pid,
                    owner_started=owner.started,
                )
            )
        return self.get_job(job_id)

    def claim_job(self, job: Job, owner: JobOwner | None = None) -> Job:
        """Make ``owner`` (default: this process) the owner of ``job`` and mark it running again, provided
        its owner is still the one read in ``job`` (of two processes resuming it, one wins)."""
        owner = owner or JobOwner.current()
        previous = job.owner
        matches = (
            [t.jobs.c.owner_host == previous.host, t.jobs.c.owner_pid == previous.pid,
             t.jobs.c.owner_started == previous.started]
            if previous is not None else [t.jobs.c.owner_pid.is_(None)]
        )
        with self.engine.begin() as conn:
            claimed = conn.execute(
                t.jobs.update()
                .where(t.jobs.c.id == job.id, *matches)
                .values(owner_host=owner.host, owner_pid=owner.pid, owner_started=owner.started,
                        status=JobStatus.running.value, error=None, updated_at=t.utcnow())
            ).rowcount
        if not claimed:
            raise Conflict(f"Job {job.id} was taken over by another process.")
        return self.get_job(job.id)

    def update_job(
        self,
        job_id: str,
        status: JobStatus | None = None,
        progress: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> Job:
        values: dict[str, Any] = {"updated_at": t.utcnow()}
        if status is not None:
            values["status"] = status.value
        if progress is not None:
            values["progress"] = progress
        if result is not None:
            values["result"] = result
        if error is not None:
            values["error"] = error
        with self.engine.begin() as conn:
            updated = conn.execute(t.jobs.update().where(t.jobs.c.id == job_id).values(**values)).rowcount
        if not updated:
            raise NotFound(f"No job with id {job_id}.")
        return self.get_job(job_id)

    def get_job(self, job_id: str) -> Job:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.jobs).where(t.jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"No job with id {job_id}.")
        return _job(row)

    def list_jobs(
        self, author: Author | None = None, kind: str | None = None, status: JobStatus | None = None
    ) -> list[Job]:
        query = sa.select(t.jobs)
        if author is not None:
            query = query.where(t.jobs.c.author_id == author.id)
        if kind is not None:
            query = query.where(t.jobs.c.kind == kind)
        if status is not None:
            query = query.where(t.jobs.c.status == status.value)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.jobs.c.created_at, t.jobs.c.id)).all()
        return [_job(r) for r in rows]
