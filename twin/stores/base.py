"""What every part of the store shares: the engine and row conversion."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from twin.domain import (
    Job,
    JobOwner,
)


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


class StoreBase:
    """Holds the engine; each entity's records (`twin.stores.*`) add their reads and writes on top."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

