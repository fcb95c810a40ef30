"""The incremental digest: what a complete digest leaves for the next one to read again,
and whether it was a full scan.

Revision ID: 0008
Revises: 0006 (re-chained after merging main; 0005 when branched)
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("digest_runs") as batch:
        batch.add_column(sa.Column("carried", sa.Text(), nullable=True))
        batch.add_column(sa.Column("full_scan", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("digest_runs") as batch:
        batch.drop_column("full_scan")
        batch.drop_column("carried")
