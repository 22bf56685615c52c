"""LangGraph's SQL checkpointers on the project's database: SQLite (aiosqlite) or PostgreSQL (psycopg pool).

Checkpoints live next to the project's own tables (LangGraph's table names do not clash), so a run
survives a restart and its steps can be read back with `aget_state_history`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from twin.domain import TwinError


def state_types() -> list[type]:
    """Every non-builtin type the graph state holds (what a checkpoint may revive)."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    from agents.schemas import DraftOut, DraftRequest, Plan, ScoredDraft, SourceRef, ToolCallRecord
    from tools.schemas import Critique, Passage
    from twin.domain import Platform

    return [
        DraftRequest, Plan, Passage, ScoredDraft, Critique, ToolCallRecord, DraftOut, SourceRef, Platform,
        AIMessage, HumanMessage, SystemMessage, ToolMessage,
    ]


def _strict_serde() -> JsonPlusSerializer:
    # Strict msgpack: a checkpoint revives LangGraph's safe types and the state's own types, nothing else
    # (a tampered checkpoint cannot name an arbitrary class), and nothing warns about "unregistered" types.
    return JsonPlusSerializer(allowed_msgpack_modules=[(t.__module__, t.__name__) for t in state_types()])


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///...`` SQLAlchemy URL."""
    for prefix in ("sqlite+pysqlite:///", "sqlite:///"):
        if url.startswith(prefix):
            path = url.removeprefix(prefix).split("?", 1)[0]
            return path or ":memory:"
    raise TwinError(f"Not a SQLite URL: {url}")


def postgres_conninfo(url: str) -> str:
    """A libpq URL from a SQLAlchemy Postgres URL (``postgresql+psycopg://`` -> ``postgresql://``)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


@asynccontextmanager
async def open_checkpointer(database_url: str) -> AsyncIterator[BaseCheckpointSaver]:
    """A ready checkpointer for the database (tables created on first use); closed on exit."""
    if database_url.startswith("sqlite"):
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with aiosqlite.connect(sqlite_path(database_url), timeout=30) as conn:
            saver = AsyncSqliteSaver(conn, serde=_strict_serde())
            await saver.setup()
            yield saver
        return
    if database_url.startswith("postgres"):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        pool = AsyncConnectionPool(
            conninfo=postgres_conninfo(database_url),
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            max_size=8,
            open=False,
        )
        await pool.open(wait=True, timeout=10)
        try:
            saver = AsyncPostgresSaver(pool, serde=_strict_serde())
            await saver.setup()
            yield saver
        finally:
            await pool.close()
        return
    raise TwinError(f"No checkpointer for database URL {database_url!r} (SQLite or PostgreSQL expected).")
