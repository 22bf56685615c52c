"""Alembic's environment: compares and migrates against `twin.schema.metadata`.

`twin.migrations.upgrade` runs it in-process with its connection in ``config.attributes``; the
`python -m twin.migrations` commands (and a plain `alembic` with ``sqlalchemy.url`` set) open their own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from twin.migrations import include_object
from twin.schema import metadata


def _configure(**kwargs: object) -> None:
    applied: list[str] | None = context.config.attributes.get("applied")
    context.configure(
        target_metadata=metadata,
        include_object=include_object,
        # SQLite alters a table by copying it: autogenerate writes batch operations that work on both.
        render_as_batch=True,
        on_version_apply=(lambda *, step, **_: applied.append(step.up_revision_id)) if applied is not None else None,
        **kwargs,
    )


def _run(connection: sa.Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _configure(url=context.config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := context.config.attributes.get("connection")) is not None:
    _run(given)
else:
    engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as connection:
        _run(connection)
    engine.dispose()
