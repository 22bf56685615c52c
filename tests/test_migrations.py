"""Alembic migrations: a database the previous release made (tests/fixtures/schema_c00b0ca.py, its
schema module verbatim, run the way it ran) is upgraded with every row kept, on SQLite and PostgreSQL;
the revisions and `twin.schema` agree."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from conftest import postgres_schema

from twin import schema as t
from twin.domain import JobStatus
from twin.migrations import alembic_config, differences, include_object, legacy_revision
from twin.store import DocumentStore, create_db_engine

FIXTURES = Path(__file__).parent / "fixtures"
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
WHEN = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


def _release_schema() -> ModuleType:
    spec = importlib.util.spec_from_file_location("schema_c00b0ca", FIXTURES / "schema_c00b0ca.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'twin.db'}"
    else:
        with postgres_schema("twin_migrate") as (url, _):
            yield url


def _make_release_database(url: str) -> dict[str, list[dict]]:
    """What the previous release left on disk: its migrations run, then a little of everything written.
    Returns every row of every table, to compare after the upgrade."""
    old = _release_schema()
    engine = create_db_engine(url)
    assert old.migrate(engine) == [name for name, _ in old.MIGRATIONS]
    with engine.begin() as conn:
        conn.execute(old.authors.insert(), [
            {"id": 1, "name": "ada", "created_at": WHEN}, {"id": 2, "name": "grace", "created_at": WHEN},
        ])
        conn.execute(old.sources.insert().values(
            id=1, author_id=1, url="https://ada.example/feed.xml", platform="blog", render_js=False,
            created_at=WHEN, last_ingested_at=WHEN))
        conn.execute(old.documents.insert().values(
            id=1, author_id=1, source_id=1, url="https://ada.example/engines", platform="blog", kind="article",
            title="On engines", published_at=WHEN, version=2, content_hash="b" * 64, embedded_version=2,
            created_at=WHEN, fetched_at=WHEN))
        conn.execute(old.document_versions.insert(), [
            {"document_id": 1, "version": v, "content_hash": h * 64, "raw_text": f"<p>v{v}</p>",
             "clean_text": f"The engine, version {v}.", "title": "On engines", "fetched_at": WHEN}
            for v, h in ((1, "a"), (2, "b"))
        ])
        conn.execute(old.page_validators.insert().values(
            document_id=1, etag='"abc"', last_modified="Sat, 01 Mar 2025 12:30:00 GMT", body_hash="c" * 64,
            checked_at=WHEN))
        conn.execute(old.adapters.insert().values(
            id=1, author_id=1, version=1, path="/data/adapters/ada/v1", base_model="smollm2-135m",
            dataset_hash="d" * 64, params={"lora_r": 8}, metrics={"eval_loss": 2.5}, active=True,
            created_at=WHEN))
        conn.execute(old.jobs.insert(), [
            {"id": "job-done", "author_id": 1, "kind": "train", "status": "succeeded",
             "progress": {"step": 40, "of": 40}, "result": {"adapter": 1}, "error": None,
             "created_at": WHEN, "updated_at": WHEN},
            {"id": "job-running", "author_id": 2, "kind": "ingest", "status": "running",
             "progress": {"done": 3}, "result": None, "error": None, "created_at": WHEN, "updated_at": WHEN},
        ])
        conn.execute(old.runs.insert().values(
            id="run-1", author_id=1, request={"brief": "engines for everyone", "platforms": ["linkedin"]},
            status="succeeded", plan={"steps": ["retrieve", "draft"]}, steps=[{"node": "draft"}], error=None,
            origin="chat", created_at=WHEN, updated_at=WHEN))
        conn.execute(old.drafts.insert(), [
            {"id": 1, "run_id": "run-1", "author_id": 1, "platform": "linkedin", "text": "Engines, for all.",
             "scores": {"style": 0.8}, "critique": {"ok": True}, "sources": [{"url": "https://ada.example/engines"}],
             "status": "approved", "origin": "agent", "created_at": WHEN, "updated_at": WHEN},
            {"id": 2, "run_id": "run-1", "author_id": 1, "platform": "linkedin", "text": "An engine post.",
             "scores": {}, "critique": {}, "sources": [], "status": "discarded", "origin": "agent",
             "created_at": WHEN, "updated_at": WHEN},
        ])
        conn.execute(old.schedule_runs.insert().values(
            id=1, schedule_id="weekly-ada", fire_time=WHEN, claimed_by="host:1", status="succeeded",
            detail={"drafts": 2}, error=None, started_at=WHEN, finished_at=WHEN))
    rows = _all_rows(engine, old.metadata)
    engine.dispose()
    assert all(rows[name] for name in ("authors", "documents", "document_versions", "jobs", "runs", "drafts"))
    return rows


def _all_rows(engine: sa.Engine, metadata: sa.MetaData) -> dict[str, list[dict]]:
    """Every row of each table of `metadata`, only the columns it defines, in primary-key order."""
    out: dict[str, list[dict]] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name == "_migrations":
                continue
            query = sa.select(*table.c).order_by(*table.primary_key.columns)
            out[table.name] = [_normalised(dict(row._mapping)) for row in conn.execute(query)]
    return out


def _normalised(row: dict) -> dict:
    # SQLite hands back naive datetimes: compare instants
    return {k: v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v for k, v in row.items()}


def test_a_release_database_is_upgraded_with_every_row_kept(db_url: str) -> None:
    before = _make_release_database(db_url)

    store = DocumentStore.from_url(db_url)  # recognises the release's schema, stamps it, upgrades
    try:
        after = _all_rows(store.engine, _release_schema().metadata)
        for table, rows in before.items():
            assert after[table] == rows, f"rows of {table} changed in the upgrade"

        with store.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == HEAD
            inspector = sa.inspect(conn)
            assert {"owner_host", "owner_pid", "owner_started"} <= {c["name"] for c in inspector.get_columns("jobs")}
            assert "feedback_pairs" in inspector.get_table_names()
            assert "_migrations" not in inspector.get_table_names()
            assert differences(conn) == []

        # the store reads old rows through the new schema and writes the new columns and table
        running = store.get_job("job-running")
        assert (running.status, running.progress, running.owner) == (JobStatus.running, {"done": 3}, None)
        ada = store.get_author("ada")
        assert [d.title for d in store.list_documents(ada)] == ["On engines"]
        assert [d.text for d in store.get_run("run-1").drafts] == ["Engines, for all.", "An engine post."]
        assert store.list_feedback_pairs(ada) == []
        store.update_draft(1, text="Engines, for everyone.")
        assert [(p.kind, p.chosen, p.rejected) for p in store.list_feedback_pairs(ada)] == [
            ("edit", "Engines, for everyone.", "Engines, for all.")
        ]
        assert store.create_job(ada, "ingest").owner is not None
        assert store.migrate() == []
    finally:
        store.close()


def test_a_database_at_each_hand_written_step_is_stamped_where_it_stands(tmp_path: Path) -> None:
    """m006 ran but not m007 (a build between the release and Alembic): stamped 0002, upgraded from there."""
    url = f"sqlite:///{tmp_path / 'twin.db'}"
    _make_release_database(url)
    engine = create_db_engine(url)
    with engine.begin() as conn:
        assert legacy_revision(conn) == "0001_baseline"
        t.feedback_pairs.create(conn)
        conn.execute(sa.text("insert into _migrations (name, applied_at) values ('m006_feedback_pairs', :at)"),
                     {"at": WHEN})
        assert legacy_revision(conn) == "0002_feedback_pairs"
    store = DocumentStore(engine)
    assert store.migrate() == ["0003_job_owner", "0004_retire_migrations_ledger"]
    store.close()


def test_a_database_older_than_the_release_gets_its_missing_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'twin.db'}"
    before = _make_release_database(url)
    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("drop table page_validators"))
        conn.execute(sa.text("drop table schedule_runs"))
        assert legacy_revision(conn) is None
    store = DocumentStore(engine)
    assert store.migrate()[0] == "0001_baseline"
    after = _all_rows(engine, _release_schema().metadata)
    assert after["page_validators"] == after["schedule_runs"] == []
    assert {k: v for k, v in after.items() if k not in {"page_validators", "schedule_runs"}} == {
        k: v for k, v in before.items() if k not in {"page_validators", "schedule_runs"}
    }
    with engine.connect() as conn:
        assert differences(conn) == []
    store.close()


def test_a_new_database_matches_the_models_and_can_go_down_and_up_again(db_url: str) -> None:
    store = DocumentStore.from_url(db_url)
    try:
        with store.engine.connect() as conn:
            assert differences(conn) == []
        with store.engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        with store.engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
        assert store.migrate()[-1] == HEAD
        with store.engine.connect() as conn:
            assert differences(conn) == []
    finally:
        store.close()


def test_a_model_change_without_a_revision_is_caught(tmp_path: Path) -> None:
    store = DocumentStore.from_url(f"sqlite:///{tmp_path / 'twin.db'}")
    changed = sa.MetaData()
    for table in t.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["drafts"].append_column(sa.Column("language", sa.String(8), nullable=True))
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": include_object, "target_metadata": changed}
        )
        diff = compare_metadata(context, changed)
    store.close()
    assert [(op[0], op[2], op[3].name) for op in diff] == [("add_column", "drafts", "language")]


@pytest.mark.postgres
def test_the_tables_other_libraries_own_are_left_alone() -> None:
    """APScheduler's job table and LangGraph's checkpoint tables live in the same database; autogenerate
    neither drops nor alters them."""
    with postgres_schema("twin_migrate") as (url, _):
        store = DocumentStore.from_url(url)
        try:
            with store.engine.begin() as conn:
                conn.execute(sa.text("create table apscheduler_jobs (id varchar(191) primary key, "
                                     "next_run_time double precision, job_state bytea not null)"))
                conn.execute(sa.text("create table checkpoints (thread_id text primary key)"))
            with store.engine.connect() as conn:
                assert differences(conn) == []
            assert store.migrate() == []
        finally:
            store.close()

