"""The document store: authors, sources, versioned documents (and, for later stages, adapters, jobs,
runs and drafts). SQLAlchemy Core over SQLite by default; a Postgres URL works unchanged."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from twin import schema as t
from twin.domain import (
    Adapter,
    Author,
    Conflict,
    Document,
    Draft,
    DraftStatus,
    FeedbackPair,
    Job,
    JobOwner,
    JobStatus,
    Kind,
    NotFound,
    PageValidators,
    Platform,
    RawDocument,
    Run,
    RunStatus,
    Source,
    content_hash,
    validate_author_name,
)

UpsertStatus = Literal["new", "updated", "unchanged"]


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _row(row: sa.Row[Any]) -> dict[str, Any]:
    data = dict(row._mapping)
    for key, value in data.items():
        if isinstance(value, datetime):
            data[key] = _aware(value)
    return data


def _job(row: sa.Row[Any]) -> Job:
    data = _row(row)
    host, pid, started = data.pop("owner_host"), data.pop("owner_pid"), data.pop("owner_started")
    owner = JobOwner(host=host, pid=pid, started=started) if host is not None and pid is not None else None
    return Job(**data, owner=owner)


def create_db_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, pool_pre_ping=True)


class DocumentStore:
    """Every read and write of the relational store goes through here."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> DocumentStore:
        store = cls(create_db_engine(url))
        store.migrate()
        return store

    def migrate(self) -> list[str]:
        return t.migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # authors ---------------------------------------------------------------------------------
    def add_author(self, name: str) -> Author:
        name = validate_author_name(name)
        with self.engine.begin() as conn:
            if conn.execute(sa.select(t.authors.c.id).where(t.authors.c.name == name)).first():
                raise Conflict(f"Author {name!r} already exists.")
            author_id = conn.execute(
                t.authors.insert().values(name=name, created_at=t.utcnow())
            ).inserted_primary_key[0]
        return self.get_author_by_id(author_id)

    def get_author(self, name: str) -> Author:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.authors).where(t.authors.c.name == name)).first()
        if row is None:
            raise NotFound(f"No author named {name!r}. Create it with `twin author add {name}`.")
        return Author(**_row(row))

    def get_author_by_id(self, author_id: int) -> Author:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.authors).where(t.authors.c.id == author_id)).first()
        if row is None:
            raise NotFound(f"No author with id {author_id}.")
        return Author(**_row(row))

    def list_authors(self) -> list[Author]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.authors).order_by(t.authors.c.name)).all()
        return [Author(**_row(r)) for r in rows]

    # sources ---------------------------------------------------------------------------------
    def add_source(self, author: Author, url: str, platform: Platform, render_js: bool = False) -> Source:
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(t.sources.c.id).where(t.sources.c.author_id == author.id, t.sources.c.url == url)
            ).first()
            if exists:
                raise Conflict(f"{author.name} already has the source {url}.")
            source_id = conn.execute(
                t.sources.insert().values(
                    author_id=author.id,
                    url=url,
                    platform=platform.value,
                    render_js=render_js,
                    created_at=t.utcnow(),
                )
            ).inserted_primary_key[0]
        return self.get_source(source_id)

    def get_source(self, source_id: int) -> Source:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.sources).where(t.sources.c.id == source_id)).first()
        if row is None:
            raise NotFound(f"No source with id {source_id}.")
        return Source(**_row(row))

    def find_source(self, author: Author, url: str) -> Source | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.sources).where(t.sources.c.author_id == author.id, t.sources.c.url == url)
            ).first()
        return Source(**_row(row)) if row else None

    def list_sources(self, author: Author) -> list[Source]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.sources).where(t.sources.c.author_id == author.id).order_by(t.sources.c.id)
            ).all()
        return [Source(**_row(r)) for r in rows]

    def mark_source_ingested(self, source_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                t.sources.update().where(t.sources.c.id == source_id).values(last_ingested_at=t.utcnow())
            )

    def source_document_ids(self, author: Author, url: str) -> list[int]:
        source = self.find_source(author, url)
        if source is None:
            raise NotFound(f"{author.name} has no source {url}.")
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(t.documents.c.id).where(t.documents.c.source_id == source.id)))

    def remove_source(self, author: Author, url: str) -> list[int]:
        """Delete the source and its documents; returns the removed document ids (their chunks are the
        caller's to delete from the vector store)."""
        with self.engine.begin() as conn:
            source_id = conn.scalar(
                sa.select(t.sources.c.id).where(t.sources.c.author_id == author.id, t.sources.c.url == url)
            )
            if source_id is None:
                raise NotFound(f"{author.name} has no source {url}.")
            doc_ids = list(conn.scalars(sa.select(t.documents.c.id).where(t.documents.c.source_id == source_id)))
            self._delete_documents(conn, doc_ids)
            conn.execute(t.sources.delete().where(t.sources.c.id == source_id))
        return doc_ids

    # documents -------------------------------------------------------------------------------
    def upsert_document(
        self, author: Author, source_id: int | None, raw: RawDocument, clean_text: str
    ) -> tuple[Document, UpsertStatus]:
        """Store a document; unchanged text stores nothing, changed text becomes a new version."""
        digest = content_hash(clean_text)
        now = t.utcnow()
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(t.documents).where(t.documents.c.author_id == author.id, t.documents.c.url == raw.url)
            ).first()
            if row is None:
                doc_id = conn.execute(
                    t.documents.insert().values(
                        author_id=author.id,
                        source_id=source_id,
                        url=raw.url,
                        platform=raw.platform.value,
                        kind=raw.kind.value,
                        title=raw.title,
                        published_at=raw.published_at,
                        version=1,
                        content_hash=digest,
                        created_at=now,
                        fetched_at=now,
                    )
                ).inserted_primary_key[0]
                version, status = 1, "new"
            elif row.content_hash == digest:
                self._save_page(conn, row.id, raw.page, now)
                return self.get_document(row.id), "unchanged"
            else:
                doc_id, version, status = row.id, row.version + 1, "updated"
                conn.execute(
                    t.documents.update()
                    .where(t.documents.c.id == doc_id)
                    .values(
                        version=version,
                        content_hash=digest,
                        title=raw.title or row.title,
                        published_at=raw.published_at or row.published_at,
                        kind=raw.kind.value,
                        fetched_at=now,
                    )
                )
            conn.execute(
                t.document_versions.insert().values(
                    document_id=doc_id,
                    version=version,
                    content_hash=digest,
                    raw_text=raw.text,
                    clean_text=clean_text,
                    title=raw.title,
                    fetched_at=now,
                )
            )
            self._save_page(conn, doc_id, raw.page, now)
        return self.get_document(doc_id), status

    @staticmethod
    def _save_page(conn: sa.Connection, document_id: int, page: PageValidators | None, now: datetime) -> None:
        conn.execute(t.page_validators.delete().where(t.page_validators.c.document_id == document_id))
        if page is not None:
            conn.execute(t.page_validators.insert().values(
                document_id=document_id, etag=page.etag, last_modified=page.last_modified,
                body_hash=page.body_hash, checked_at=now,
            ))

    def known_pages(self, author: Author) -> dict[str, PageValidators]:
        """Document URL -> what we stored of its page, for the author's documents that came from the web
        and whose current version is embedded (a page not yet embedded must be processed again)."""
        d, p = t.documents, t.page_validators
        query = (
            sa.select(d.c.url, p.c.document_id, p.c.etag, p.c.last_modified, p.c.body_hash)
            .join(p, p.c.document_id == d.c.id)
            .where(d.c.author_id == author.id, d.c.embedded_version == d.c.version)
        )
        with self.engine.connect() as conn:
            return {row.url: PageValidators(document_id=row.document_id, etag=row.etag,
                                            last_modified=row.last_modified, body_hash=row.body_hash)
                    for row in conn.execute(query)}

    def _documents_query(self) -> sa.Select[Any]:
        d, v = t.documents, t.document_versions
        return sa.select(
            d.c.id,
            d.c.author_id,
            d.c.source_id,
            d.c.url,
            d.c.platform,
            d.c.kind,
            d.c.title,
            d.c.published_at,
            d.c.version,
            d.c.content_hash,
            d.c.fetched_at,
            d.c.embedded_version,
            v.c.raw_text,
            v.c.clean_text,
        ).join(v, sa.and_(v.c.document_id == d.c.id, v.c.version == d.c.version))

    def get_document(self, document_id: int) -> Document:
        with self.engine.connect() as conn:
            row = conn.execute(self._documents_query().where(t.documents.c.id == document_id)).first()
        if row is None:
            raise NotFound(f"No document with id {document_id}.")
        return Document(**_row(row))

    def list_documents(
        self,
        author: Author,
        platform: Platform | None = None,
        kind: Kind | None = None,
        ids: Iterable[int] | None = None,
        since: datetime | None = None,
    ) -> list[Document]:
        query = self._documents_query().where(t.documents.c.author_id == author.id)
        if platform:
            query = query.where(t.documents.c.platform == platform.value)
        if kind:
            query = query.where(t.documents.c.kind == kind.value)
        if ids is not None:
            query = query.where(t.documents.c.id.in_(list(ids)))
        if since is not None:
            query = query.where(t.documents.c.fetched_at >= since)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.documents.c.id)).all()
        return [Document(**_row(r)) for r in rows]

    def document_versions(self, document_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.document_versions)
                .where(t.document_versions.c.document_id == document_id)
                .order_by(t.document_versions.c.version)
            ).all()
        return [_row(r) for r in rows]

    def documents_needing_embedding(self, author: Author) -> list[Document]:
        d = t.documents
        query = self._documents_query().where(
            d.c.author_id == author.id, sa.or_(d.c.embedded_version.is_(None), d.c.embedded_version != d.c.version)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(d.c.id)).all()
        return [Document(**_row(r)) for r in rows]

    def mark_embedded(self, document_id: int, version: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.documents.update().where(t.documents.c.id == document_id).values(embedded_version=version))

    def delete_documents(self, document_ids: Sequence[int]) -> None:
        with self.engine.begin() as conn:
            self._delete_documents(conn, document_ids)

    @staticmethod
    def _delete_documents(conn: sa.Connection, document_ids: Sequence[int]) -> None:
        if not document_ids:
            return
        ids = list(document_ids)
        conn.execute(t.page_validators.delete().where(t.page_validators.c.document_id.in_(ids)))
        conn.execute(t.document_versions.delete().where(t.document_versions.c.document_id.in_(ids)))
        conn.execute(t.documents.delete().where(t.documents.c.id.in_(ids)))

    def stats(self, author: Author) -> dict[str, int]:
        d = t.documents
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(d.c.platform, sa.func.count()).where(d.c.author_id == author.id).group_by(d.c.platform)
            ).all()
        return {platform: count for platform, count in rows}

    # adapters --------------------------------------------------------------------------------
    def register_adapter(
        self,
        author: Author,
        path: str,
        base_model: str,
        dataset_hash: str,
        params: dict[str, Any],
        metrics: dict[str, Any],
        activate: bool = True,
    ) -> Adapter:
        with self.engine.begin() as conn:
            latest = conn.scalar(sa.select(sa.func.max(t.adapters.c.version)).where(t.adapters.c.author_id == author.id))
            version = (latest or 0) + 1
            if activate:
                conn.execute(t.adapters.update().where(t.adapters.c.author_id == author.id).values(active=False))
            adapter_id = conn.execute(
                t.adapters.insert().values(
                    author_id=author.id,
                    version=version,
                    path=path,
                    base_model=base_model,
                    dataset_hash=dataset_hash,
                    params=params,
                    metrics=metrics,
                    active=activate,
                    created_at=t.utcnow(),
                )
            ).inserted_primary_key[0]
            row = conn.execute(sa.select(t.adapters).where(t.adapters.c.id == adapter_id)).one()
        return Adapter(**_row(row))

    def list_adapters(self, author: Author) -> list[Adapter]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.adapters).where(t.adapters.c.author_id == author.id).order_by(t.adapters.c.version)
            ).all()
        return [Adapter(**_row(r)) for r in rows]

    def active_adapter(self, author: Author) -> Adapter | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.adapters).where(t.adapters.c.author_id == author.id, t.adapters.c.active.is_(True))
            ).first()
        return Adapter(**_row(row)) if row else None

    def activate_adapter(self, author: Author, version: int) -> Adapter:
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(t.adapters).where(t.adapters.c.author_id == author.id, t.adapters.c.version == version)
            ).first()
            if row is None:
                raise NotFound(f"{author.name} has no adapter version {version}.")
            conn.execute(t.adapters.update().where(t.adapters.c.author_id == author.id).values(active=False))
            conn.execute(t.adapters.update().where(t.adapters.c.id == row.id).values(active=True))
            row = conn.execute(sa.select(t.adapters).where(t.adapters.c.id == row.id)).one()
        return Adapter(**_row(row))

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

    # runs and drafts -------------------------------------------------------------------------
    def create_run(
        self, author: Author, request: dict[str, Any], run_id: str | None = None, origin: str = "chat"
    ) -> Run:
        import uuid

        now = t.utcnow()
        run_id = run_id or uuid.uuid4().hex
        with self.engine.begin() as conn:
            if conn.execute(sa.select(t.runs.c.id).where(t.runs.c.id == run_id)).first():
                raise Conflict(f"A run with id {run_id} already exists.")
            conn.execute(
                t.runs.insert().values(
                    id=run_id,
                    author_id=author.id,
                    request=request,
                    status=RunStatus.running.value,
                    plan=None,
                    steps=[],
                    origin=origin,
                    created_at=now,
                    updated_at=now,
                )
            )
        return self.get_run(run_id)

    def update_run(
        self,
        run_id: str,
        status: RunStatus | None = None,
        plan: dict[str, Any] | None = None,
        steps: list[dict[str, Any]] | None = None,
        error: str | None = None,
    ) -> Run:
        """Set the given fields; ``steps`` replaces the whole list (see `add_run_steps` to append)."""
        values: dict[str, Any] = {"updated_at": t.utcnow()}
        if status is not None:
            values["status"] = status.value
        if plan is not None:
            values["plan"] = plan
        if steps is not None:
            values["steps"] = steps
        if error is not None:
            values["error"] = error
        with self.engine.begin() as conn:
            updated = conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(**values)).rowcount
        if not updated:
            raise NotFound(f"No run with id {run_id}.")
        return self.get_run(run_id)

    def add_run_steps(self, run_id: str, steps: Sequence[dict[str, Any]]) -> None:
        """Append step records (node summaries, tool calls) to a run, in one transaction."""
        if not steps:
            return
        with self.engine.begin() as conn:
            current = conn.scalar(sa.select(t.runs.c.steps).where(t.runs.c.id == run_id).with_for_update())
            if current is None:
                raise NotFound(f"No run with id {run_id}.")
            conn.execute(
                t.runs.update()
                .where(t.runs.c.id == run_id)
                .values(steps=[*current, *steps], updated_at=t.utcnow())
            )

    def _runs_query(self) -> sa.Select[Any]:
        return sa.select(t.runs, t.authors.c.name.label("author")).join(t.authors, t.authors.c.id == t.runs.c.author_id)

    def get_run(self, run_id: str) -> Run:
        """The run with its drafts (oldest first)."""
        with self.engine.connect() as conn:
            row = conn.execute(self._runs_query().where(t.runs.c.id == run_id)).first()
            if row is None:
                raise NotFound(f"No run with id {run_id}.")
            drafts = conn.execute(
                sa.select(t.drafts).where(t.drafts.c.run_id == run_id).order_by(t.drafts.c.id)
            ).all()
        return Run(**_row(row), drafts=[Draft(**_row(d)) for d in drafts])

    def list_runs(self, author: Author | None = None, limit: int = 50) -> list[Run]:
        """Most recent first, without their drafts."""
        query = self._runs_query()
        if author is not None:
            query = query.where(t.runs.c.author_id == author.id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.runs.c.created_at.desc(), t.runs.c.id).limit(limit)).all()
        return [Run(**_row(r)) for r in rows]

    def add_draft(
        self,
        author: Author,
        platform: Platform,
        text: str,
        *,
        scores: dict[str, Any] | None = None,
        critique: dict[str, Any] | None = None,
        sources: list[dict[str, Any]] | None = None,
        run_id: str | None = None,
        origin: str = "agent",
        status: DraftStatus = DraftStatus.new,
    ) -> Draft:
        now = t.utcnow()
        with self.engine.begin() as conn:
            draft_id = conn.execute(
                t.drafts.insert().values(
                    run_id=run_id,
                    author_id=author.id,
                    platform=platform.value,
                    text=text,
                    scores=scores or {},
                    critique=critique or {},
                    sources=sources or [],
                    status=status.value,
                    origin=origin,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
        return self.get_draft(draft_id)

    def get_draft(self, draft_id: int) -> Draft:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.drafts).where(t.drafts.c.id == draft_id)).first()
        if row is None:
            raise NotFound(f"No draft with id {draft_id}.")
        return Draft(**_row(row))

    def list_drafts(
        self,
        author: Author | None = None,
        status: DraftStatus | None = None,
        platform: Platform | None = None,
        run_id: str | None = None,
    ) -> list[Draft]:
        """Newest first."""
        query = sa.select(t.drafts)
        if author is not None:
            query = query.where(t.drafts.c.author_id == author.id)
        if status is not None:
            query = query.where(t.drafts.c.status == status.value)
        if platform is not None:
            query = query.where(t.drafts.c.platform == platform.value)
        if run_id is not None:
            query = query.where(t.drafts.c.run_id == run_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.drafts.c.created_at.desc(), t.drafts.c.id.desc())).all()
        return [Draft(**_row(r)) for r in rows]

    def update_draft(self, draft_id: int, text: str | None = None, status: DraftStatus | None = None) -> Draft:
        """Edit, approve or discard a draft; each is also recorded as a preference (`feedback_pairs`)."""
        values: dict[str, Any] = {"updated_at": t.utcnow()}
        if text is not None:
            if not text.strip():
                raise ValueError("A draft's text cannot be empty.")
            values["text"] = text
        if status is not None:
            values["status"] = status.value
        with self.engine.begin() as conn:
            before = conn.execute(sa.select(t.drafts).where(t.drafts.c.id == draft_id)).first()
            if before is None:
                raise NotFound(f"No draft with id {draft_id}.")
            conn.execute(t.drafts.update().where(t.drafts.c.id == draft_id).values(**values))
            if text is not None and text.strip() != before.text.strip():
                self._record_edit(conn, before, text)
            if status is not None and status.value != before.status:
                self._record_choices(conn, draft_id)
        return self.get_draft(draft_id)

    # reference pages -------------------------------------------------------------------------
    def find_document(self, author: Author, url: str) -> Document | None:
        with self.engine.connect() as conn:
            row = conn.execute(self._documents_query().where(
                t.documents.c.author_id == author.id, t.documents.c.url == url)).first()
        return Document(**_row(row)) if row else None

    def set_document_kind(self, document_id: int, kind: Kind) -> Document:
        """Change a document's kind (promoting a reference page to the author's writing, say); its chunks
        must be embedded again, as the kind decides where they live."""
        with self.engine.begin() as conn:
            updated = conn.execute(t.documents.update().where(t.documents.c.id == document_id)
                                   .values(kind=kind.value, embedded_version=None)).rowcount
        if not updated:
            raise NotFound(f"No document with id {document_id}.")
        return self.get_document(document_id)

    # feedback pairs (the inbox as preferences) --------------------------------------------------
    @staticmethod
    def _brief(conn: sa.Connection, run_id: str | None) -> str | None:
        if run_id is None:
            return None
        request = conn.scalar(sa.select(t.runs.c.request).where(t.runs.c.id == run_id))
        brief = (request or {}).get("prompt") if isinstance(request, dict) else None
        return str(brief) if brief else None

    def _record_edit(self, conn: sa.Connection, before: sa.Row[Any], text: str) -> None:
        """The edited text is chosen over the twin's original (kept from the first edit on)."""
        f = t.feedback_pairs
        now = t.utcnow()
        existing = conn.execute(sa.select(f.c.id, f.c.rejected).where(
            f.c.kind == "edit", f.c.chosen_draft_id == before.id, f.c.rejected_draft_id == before.id)).first()
        if existing is None:
            conn.execute(f.insert().values(
                author_id=before.author_id, kind="edit", platform=before.platform,
                brief=self._brief(conn, before.run_id), chosen_draft_id=before.id, rejected_draft_id=before.id,
                chosen=text, rejected=before.text, created_at=now, updated_at=now,
            ))
        elif existing.rejected.strip() == text.strip():  # edited back to what the twin wrote: no preference
            conn.execute(f.delete().where(f.c.id == existing.id))
        else:
            conn.execute(f.update().where(f.c.id == existing.id).values(chosen=text, updated_at=now))
        # An approved draft's choice pairs carry its current text.
        conn.execute(f.update().where(f.c.kind == "choice", f.c.chosen_draft_id == before.id)
                     .values(chosen=text, updated_at=now))

    def _record_choices(self, conn: sa.Connection, draft_id: int) -> None:
        """Approved drafts are chosen over discarded ones of the same run and platform (the same brief)."""
        f, d = t.feedback_pairs, t.drafts
        conn.execute(f.delete().where(f.c.kind == "choice", sa.or_(
            f.c.chosen_draft_id == draft_id, f.c.rejected_draft_id == draft_id)))
        draft = conn.execute(sa.select(d).where(d.c.id == draft_id)).one()
        if draft.run_id is None or draft.status not in (DraftStatus.approved.value, DraftStatus.discarded.value):
            return
        wanted = DraftStatus.discarded if draft.status == DraftStatus.approved.value else DraftStatus.approved
        others = conn.execute(sa.select(d).where(
            d.c.run_id == draft.run_id, d.c.platform == draft.platform, d.c.id != draft.id,
            d.c.status == wanted.value)).all()
        now = t.utcnow()
        brief = self._brief(conn, draft.run_id)
        for other in others:
            chosen, rejected = (draft, other) if wanted is DraftStatus.discarded else (other, draft)
            conn.execute(f.insert().values(
                author_id=draft.author_id, kind="choice", platform=draft.platform, brief=brief,
                chosen_draft_id=chosen.id, rejected_draft_id=rejected.id, chosen=chosen.text,
                rejected=rejected.text, created_at=now, updated_at=now,
            ))

    def list_feedback_pairs(self, author: Author, platform: Platform | None = None) -> list[FeedbackPair]:
        """The author's inbox preferences, oldest first."""
        f = t.feedback_pairs
        query = sa.select(f).where(f.c.author_id == author.id)
        if platform is not None:
            query = query.where(f.c.platform == platform.value)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(f.c.id)).all()
        return [FeedbackPair(**_row(r)) for r in rows]

    def count_feedback_pairs(self, author: Author) -> dict[str, int]:
        """How many preference pairs of each kind (``edit``, ``choice``) the author's inbox holds."""
        f = t.feedback_pairs
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(f.c.kind, sa.func.count()).where(f.c.author_id == author.id)
                                .group_by(f.c.kind)).all()
        return {"edit": 0, "choice": 0, **{kind: count for kind, count in rows}}
