"""Versioned documents (content hash, page validators for conditional GETs), reference pages and their
embedding state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from twin import schema as t
from twin.domain import (
    Author,
    Document,
    Kind,
    NotFound,
    PageValidators,
    Platform,
    RawDocument,
    content_hash,
)
from twin.stores.base import StoreBase, _row

UpsertStatus = Literal["new", "updated", "unchanged"]


class DocumentRecords(StoreBase):
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
