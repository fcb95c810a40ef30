"""The QuickBooks watch's claims: events claimed by one replica at a time (with how many
times acting on them failed), re-checks claimed until their alert has gone out, and the
last change that marked a re-check.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("qbo_events") as batch:
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("watch_rechecks") as batch:
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("watch_rechecks") as batch:
        batch.drop_column("changed_at")
        batch.drop_column("claimed_until")
    with op.batch_alter_table("qbo_events") as batch:
        batch.drop_column("attempts")
        batch.drop_column("claimed_until")
