"""Schema migrations: Alembic revisions under `versions/`, applied on start by `DocumentStore.migrate()`.

A schema change is an edit of `twin/schema.py` plus a revision written by autogenerate
(``python -m twin.migrations revision "what changed"``), reviewed by hand; a test checks that the
revisions and `twin.schema` agree. Databases made before Alembic (the hand-written ``_migrations``
ledger) are recognised by what their tables look like, stamped with the matching revision and upgraded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from twin import schema as t

HERE = Path(__file__).parent

# Tables in our database that other libraries create and migrate themselves: APScheduler's job store
# and LangGraph's checkpointers (Postgres and SQLite). Autogenerate must neither drop nor alter them.
FOREIGN_TABLES = frozenset(
    {"apscheduler_jobs", "checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations", "writes"}
)

# Any 32-bit constant shared by every process that migrates this database (Postgres advisory lock).
_PG_LOCK = 0x7417_0001


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table":
        return name not in FOREIGN_TABLES
    table = getattr(obj, "table", None)
    return table is None or table.name not in FOREIGN_TABLES


def alembic_config(connection: sa.Connection | None = None, url: str | None = None) -> Config:
    """The configuration `alembic.command` needs, built in code: no alembic.ini at run time."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("file_template", "%%(rev)s")  # revision ids carry their slug: 0003_job_owner
    if url:
        config.set_main_option("sqlalchemy.url", url)
    config.attributes["connection"] = connection
    return config


def _has_column(table: str, column: str) -> Callable[[set[str], sa.Inspector], bool]:
    return lambda tables, inspector: table in tables and column in {c["name"] for c in inspector.get_columns(table)}


# What each revision left in a database made by the hand-written migrations (m001..m007), in order.
_BASELINE_TABLES = {
    "authors", "sources", "documents", "document_versions", "adapters", "jobs", "runs", "drafts",
    "schedule_runs", "page_validators",
}
LEGACY_MARKS: list[tuple[str, Callable[[set[str], sa.Inspector], bool]]] = [
    ("0001_baseline", lambda tables, _: _BASELINE_TABLES <= tables),  # m001..m005: the release at c00b0ca
    ("0002_feedback_pairs", lambda tables, _: "feedback_pairs" in tables),  # m006
    ("0003_job_owner", _has_column("jobs", "owner_host")),  # m007
]


def legacy_revision(connection: sa.Connection) -> str | None:
    """The revision a database made before Alembic is at: the last of an unbroken run of marks it shows.
    None when it shows none (empty, or older than the baseline: the baseline adds its missing tables)."""
    inspector = sa.inspect(connection)
    tables = set(inspector.get_table_names())
    found = None
    for revision, present in LEGACY_MARKS:
        if not present(tables, inspector):
            break
        found = revision
    return found


def _scope_to_schema(connection: sa.Connection) -> None:
    """An engine that maps the default schema elsewhere (``schema_translate_map``, as the Postgres tests
    do) must be inspected and altered there too: Alembic's inspector and its plain DDL follow the
    search_path, not the map."""
    schema = connection.get_execution_options().get("schema_translate_map", {}).get(None)
    if schema and connection.dialect.name == "postgresql":
        quoted = connection.dialect.identifier_preparer.quote_schema(schema)
        connection.exec_driver_sql(f"SET LOCAL search_path TO {quoted}")


def upgrade(engine: sa.Engine, revision: str = "head") -> list[str]:
    """Bring the database to `revision`, stamping a pre-Alembic database first; returns the revisions
    applied now, oldest first."""
    applied: list[str] = []
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # A batch migration copies a table and drops the old one; with foreign keys on, that drop
            # would cascade to every child row. Off for the migration, checked at the end.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                if engine.dialect.name == "postgresql":
                    # two processes starting at once: the second waits, then finds nothing to do
                    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
                _scope_to_schema(connection)
                unversioned = MigrationContext.configure(connection).get_current_revision() is None
                if unversioned and (found := legacy_revision(connection)) is not None:
                    command.stamp(alembic_config(connection), found)
                config = alembic_config(connection)
                config.attributes["applied"] = applied
                command.upgrade(config, revision)
                if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all()):
                    raise RuntimeError(f"migration left rows whose parent is missing: {broken[:5]}")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
    return applied


def differences(connection: sa.Connection) -> list[Any]:
    """What autogenerate would change to make this database match `twin.schema`: empty when they agree."""
    context = MigrationContext.configure(
        connection, opts={"include_object": include_object, "target_metadata": t.metadata}
    )
    return compare_metadata(context, t.metadata)
