"""The document store against a real SQLite file and the real PostgreSQL (the scale path)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from conftest import POSTGRES_URL, postgres_schema

from twin.domain import Conflict, Kind, NotFound, Platform, RawDocument
from twin.migrations import alembic_config
from twin.store import DocumentStore, create_db_engine


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, store: DocumentStore) -> Iterator[DocumentStore]:
    if request.param == "sqlite":
        yield store
    else:
        with postgres_schema() as (_, schema):
            engine = create_db_engine(POSTGRES_URL).execution_options(schema_translate_map={None: schema})
            postgres = DocumentStore(engine)
            postgres.migrate()
            try:
                yield postgres
            finally:
                postgres.close()


def test_migrations_on_empty_database_create_exact_columns(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    store = DocumentStore(engine)
    revisions = ScriptDirectory.from_config(alembic_config()).walk_revisions()
    assert store.migrate() == [script.revision for script in reversed(list(revisions))]
    assert store.migrate() == []  # idempotent
    inspector = sa.inspect(engine)
    assert [c["name"] for c in inspector.get_columns("documents")] == [
        "id", "author_id", "source_id", "url", "platform", "kind", "title", "published_at", "version",
        "content_hash", "embedded_version", "created_at", "fetched_at",
    ]
    assert [c["name"] for c in inspector.get_columns("document_versions")] == [
        "document_id", "version", "content_hash", "raw_text", "clean_text", "title", "fetched_at",
    ]
    assert {"authors", "sources", "adapters", "jobs", "runs", "drafts", "alembic_version"} <= set(
        inspector.get_table_names()
    )


def _raw(url: str, text: str) -> RawDocument:
    return RawDocument(url=url, platform=Platform.blog, kind=Kind.article, title="T", text=text)


def test_versions_and_source_removal(any_store: DocumentStore):
    author = any_store.add_author("ada")
    with pytest.raises(Conflict):
        any_store.add_author("ada")
    source = any_store.add_source(author, "https://example.org/feed.xml", Platform.blog)

    first, status = any_store.upsert_document(author, source.id, _raw("https://example.org/a", "one"), "one")
    assert (status, first.version) == ("new", 1)
    again, status = any_store.upsert_document(author, source.id, _raw("https://example.org/a", "one"), "one")
    assert (status, again.version, again.id) == ("unchanged", 1, first.id)
    changed, status = any_store.upsert_document(author, source.id, _raw("https://example.org/a", "two"), "two")
    assert (status, changed.version, changed.clean_text) == ("updated", 2, "two")
    assert [v["clean_text"] for v in any_store.document_versions(first.id)] == ["one", "two"]  # nothing lost

    assert [d.id for d in any_store.documents_needing_embedding(author)] == [first.id]
    any_store.mark_embedded(first.id, 2)
    assert any_store.documents_needing_embedding(author) == []

    other, _ = any_store.upsert_document(author, None, _raw("https://elsewhere.org/b", "three"), "three")
    assert any_store.remove_source(author, source.url) == [first.id]
    assert [d.id for d in any_store.list_documents(author)] == [other.id]
    with pytest.raises(NotFound):
        any_store.remove_source(author, source.url)


def test_adapter_registry_activate_and_rollback(any_store: DocumentStore):
    author = any_store.add_author("bo")
    v1 = any_store.register_adapter(author, "/a/v1", "base", "h1", {"r": 16}, {"ppl": 3.0})
    v2 = any_store.register_adapter(author, "/a/v2", "base", "h2", {"r": 16}, {"ppl": 2.5})
    assert any_store.active_adapter(author).version == v2.version == 2
    any_store.activate_adapter(author, v1.version)
    assert any_store.active_adapter(author).path == "/a/v1"
    with pytest.raises(NotFound):
        any_store.activate_adapter(author, 9)
