"""The document store: authors, sources, versioned documents, adapters, jobs, runs, drafts and inbox
preferences. SQLAlchemy Core over SQLite by default; a Postgres URL works unchanged.

Each entity's reads and writes live in its own module under `twin/stores/`; `DocumentStore` is the one
object the rest of the system is handed.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from twin import migrations
from twin.stores.adapters import AdapterRecords
from twin.stores.authors import AuthorRecords
from twin.stores.documents import DocumentRecords, UpsertStatus
from twin.stores.jobs import JobRecords
from twin.stores.runs import RunRecords

__all__ = ["DocumentStore", "UpsertStatus", "create_db_engine"]


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


class DocumentStore(AuthorRecords, DocumentRecords, AdapterRecords, JobRecords, RunRecords):
    """Every read and write of the relational store goes through here."""

    @classmethod
    def from_url(cls, url: str) -> DocumentStore:
        store = cls(create_db_engine(url))
        store.migrate()
        return store

    def migrate(self) -> list[str]:
        """Upgrade the database to the newest Alembic revision; returns the revisions applied now."""
        return migrations.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()
