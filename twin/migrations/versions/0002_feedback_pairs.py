"""feedback_pairs: preference pairs from the author's edits and choices (hand-written m006).

Revision ID: 0002_feedback_pairs
Revises: 0001_baseline
Create Date: 2026-12-02 05:16:47.106968
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002_feedback_pairs"
down_revision: str | None = "0001_baseline"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "feedback_pairs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("brief", sa.Text(), nullable=True),
        sa.Column("chosen_draft_id", sa.Integer(), nullable=False),
        sa.Column("rejected_draft_id", sa.Integer(), nullable=False),
        sa.Column("chosen", sa.Text(), nullable=False),
        sa.Column("rejected", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["authors.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["chosen_draft_id"], ["drafts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["rejected_draft_id"], ["drafts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "chosen_draft_id", "rejected_draft_id", name="uq_feedback_pairs_drafts"),
    )


def downgrade() -> None:
    op.drop_table("feedback_pairs")
