"""jobs.owner_*: the process that runs a job, so a starting service fails only orphans (hand-written m007).

Revision ID: 0003_job_owner
Revises: 0002_feedback_pairs
Create Date: 2026-12-02 05:16:47.106968
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_job_owner"
down_revision: str | None = "0002_feedback_pairs"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_host", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("owner_pid", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("owner_started", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("owner_started")
        batch_op.drop_column("owner_pid")
        batch_op.drop_column("owner_host")
