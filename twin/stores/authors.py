"""Authors and their configured sources."""

from __future__ import annotations


import sqlalchemy as sa

from twin import schema as t
from twin.domain import (
    Author,
    Conflict,
    NotFound,
    Platform,
    Source,
    validate_author_name,
)
from twin.stores.base import StoreBase, _row


class AuthorRecords(StoreBase):
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
