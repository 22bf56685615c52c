"""The adapter registry: versions per author, one active."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from twin import schema as t
from twin.domain import (
    Adapter,
    Author,
    NotFound,
)
from twin.stores.base import StoreBase, _row


class AdapterRecords(StoreBase):
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
