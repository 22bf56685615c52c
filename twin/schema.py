"""Database tables (SQLAlchemy Core): the live definition every store module reads and writes.

A change here needs an Alembic revision in `twin/migrations/versions/` (``python -m twin.migrations
revision "what changed"``); tests/test_migrations.py fails while the two disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

metadata = sa.MetaData()


def utcnow() -> datetime:
    return datetime.now(UTC)


_ts = sa.DateTime(timezone=True)

authors = sa.Table(
    "authors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", _ts, nullable=False),
)

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("authors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("platform", sa.String(32), nullable=False),
    sa.Column("render_js", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("last_ingested_at", _ts, nullable=True),
    sa.UniqueConstraint("author_id", "url", name="uq_sources_author_url"),
)

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("authors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id", ondelete="SET NULL"), nullable=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("platform", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("title", sa.Text, nullable=True),
    sa.Column("published_at", _ts, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("embedded_version", sa.Integer, nullable=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("fetched_at", _ts, nullable=False),
    sa.UniqueConstraint("author_id", "url", name="uq_documents_author_url"),
)

document_versions = sa.Table(
    "document_versions",
    metadata,
    sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("raw_text", sa.Text, nullable=False),
    sa.Column("clean_text", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=True),
    sa.Column("fetched_at", _ts, nullable=False),
)

adapters = sa.Table(
    "adapters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("authors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("base_model", sa.Text, nullable=False),
    sa.Column("dataset_hash", sa.String(64), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", _ts, nullable=False),
    sa.UniqueConstraint("author_id", "version", name="uq_adapters_author_version"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("authors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("progress", sa.JSON, nullable=False),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
    # The process that runs the job (revision 0003): a starting service fails only jobs whose owner is gone.
    sa.Column("owner_host", sa.String(255), nullable=True),
    sa.Column("owner_pid", sa.Integer, nullable=True),
    sa.Column("owner_started", sa.Float, nullable=True),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("authors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("plan", sa.JSON, nullable=True),
    sa.Column("steps", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("origin", sa.String(32), nullable=False, default="chat"),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
)

drafts = sa.Table(
    "drafts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=True),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("authors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("platform", sa.String(32), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("scores", sa.JSON, nullable=False),
    sa.Column("critique", sa.JSON, nullable=False),
    sa.Column("sources", sa.JSON, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("origin", sa.String(32), nullable=False),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
)


schedule_runs = sa.Table(
    "schedule_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("schedule_id", sa.String(64), nullable=False),
    sa.Column("fire_time", _ts, nullable=False),
    sa.Column("claimed_by", sa.String(200), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("started_at", _ts, nullable=False),
    sa.Column("finished_at", _ts, nullable=True),
    # The claim: of all processes whose scheduler fires this job at this time, one insert wins.
    sa.UniqueConstraint("schedule_id", "fire_time", name="uq_schedule_runs_fire"),
)


page_validators = sa.Table(
    "page_validators",
    metadata,
    sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("etag", sa.Text, nullable=True),
    sa.Column("last_modified", sa.Text, nullable=True),
    sa.Column("body_hash", sa.String(64), nullable=True),
    sa.Column("checked_at", _ts, nullable=False),
)


feedback_pairs = sa.Table(
    "feedback_pairs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("authors.id", ondelete="CASCADE"), nullable=False),
    # "edit": the edited draft over the twin's original (chosen and rejected draft are the same draft);
    # "choice": an approved draft over a discarded one of the same run and platform (the same brief).
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("platform", sa.String(32), nullable=False),
    sa.Column("brief", sa.Text, nullable=True),
    sa.Column("chosen_draft_id", sa.Integer, sa.ForeignKey("drafts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("rejected_draft_id", sa.Integer, sa.ForeignKey("drafts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("chosen", sa.Text, nullable=False),
    sa.Column("rejected", sa.Text, nullable=False),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
    sa.UniqueConstraint("kind", "chosen_draft_id", "rejected_draft_id", name="uq_feedback_pairs_drafts"),
)
