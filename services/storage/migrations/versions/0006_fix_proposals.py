"""Fix proposals: a change in QuickBooks proposed, approved and applied once.

Revision ID: 0006
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fix_proposals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("invoice", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("fix", sa.String(), nullable=False),
        sa.Column("proposed_by", sa.String(length=64), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=False),
        sa.Column("message_ts", sa.String(length=32), nullable=True),
        sa.Column("open_key", sa.String(length=80), nullable=True),
        sa.Column("result", sa.String(), nullable=True),
        sa.Column("detail", sa.String(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("open_key"),
    )
    op.create_index("ix_fix_proposals_invoice", "fix_proposals", ["invoice"])
    op.create_index("ix_fix_proposals_state", "fix_proposals", ["state"])


def downgrade() -> None:
    op.drop_index("ix_fix_proposals_state", table_name="fix_proposals")
    op.drop_index("ix_fix_proposals_invoice", table_name="fix_proposals")
    op.drop_table("fix_proposals")
