"""Drop ``_migrations``, the hand-written migrations' ledger: ``alembic_version`` records the schema now.

Revision ID: 0004_retire_migrations_ledger
Revises: 0003_job_owner
Create Date: 2026-12-02 05:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_retire_migrations_ledger"
down_revision: str | None = "0003_job_owner"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("_migrations"):
        op.drop_table("_migrations")


def downgrade() -> None:
    pass  # a database going back to a pre-Alembic build is recognised by its tables, not by the ledger
