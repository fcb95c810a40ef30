"""Initial schema: tokens, audit log, resync jobs, digest runs, leases.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def when(name: str, *, nullable: bool = True) -> sa.Column[object]:
    """A UTC timestamp (``tables.UtcDateTime`` in the models)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "oauth_tokens",
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("access_token", sa.String(), nullable=False),
        when("access_token_expires_at", nullable=False),
        sa.Column("refresh_token", sa.String(), nullable=False),
        when("refresh_token_expires_at"),
        when("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("connection"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        when("at", nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "resync_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("record_type", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("invoice", sa.String(length=64), nullable=True),
        sa.Column("integration_id", sa.String(length=64), nullable=True),
        sa.Column("sync_from", sa.Date(), nullable=True),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=False),
        sa.Column("progress_ts", sa.String(length=32), nullable=True),
        sa.Column("root_ts", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("portal_ref", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("detail", sa.String(), nullable=True),
        sa.Column("active_key", sa.String(length=120), nullable=True),
        when("portal_requested_at"),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        when("lease_until"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        when("created_at", nullable=False),
        when("updated_at", nullable=False),
        when("finished_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("active_key"),
    )
    op.create_index("ix_resync_jobs_state", "resync_jobs", ["state"])
    op.create_table(
        "digest_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        when("started_at", nullable=False),
        when("finished_at"),
        sa.Column("open_invoices", sa.Integer(), nullable=True),
        sa.Column("discrepancies", sa.Integer(), nullable=True),
        sa.Column("skipped_recent", sa.Integer(), nullable=True),
        sa.Column("amount_at_stake", sa.String(length=32), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("message_ts", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_digest_runs_day", "digest_runs", ["day"])
    op.create_index("ix_digest_runs_state", "digest_runs", ["state"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        when("expires_at", nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_index("ix_digest_runs_state", table_name="digest_runs")
    op.drop_index("ix_digest_runs_day", table_name="digest_runs")
    op.drop_table("digest_runs")
    op.drop_index("ix_resync_jobs_state", table_name="resync_jobs")
    op.drop_table("resync_jobs")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("oauth_tokens")
