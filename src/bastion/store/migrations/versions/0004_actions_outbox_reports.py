"""The actions outbox and CyberTipline reports (with their files).

Revision ID: 0004_actions
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bastion.store.types import UtcDateTime

revision: str = "0004_actions"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "actions",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("content_id", sa.String(255), nullable=True),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("ordering_key", sa.String(300), nullable=False),
        sa.Column("idempotency_key", sa.String(100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("deadline_at", UtcDateTime(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("last_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        sa.Column("claimed_until", UtcDateTime(), nullable=True),
        sa.UniqueConstraint("idempotency_key", name="uq_actions_idempotency_key"),
    )
    op.create_index("ix_actions_due", "actions", ["state", "next_attempt_at"])
    op.create_index("ix_actions_ordering", "actions", ["ordering_key", "id"])

    op.create_table(
        "cybertip_reports",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("incident_key", sa.String(300), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("incident", sa.JSON(), nullable=False),
        sa.Column("report_xml", sa.Text(), nullable=False),
        sa.Column("ncmec_report_id", sa.BigInteger(), nullable=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("approved_at", UtcDateTime(), nullable=True),
        sa.Column("approved_by", sa.String(200), nullable=True),
        sa.Column("submit_started_at", UtcDateTime(), nullable=True),
        sa.Column("submitted_at", UtcDateTime(), nullable=True),
        sa.Column("retracted_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        sa.Column("claimed_until", UtcDateTime(), nullable=True),
        sa.UniqueConstraint("incident_key", name="uq_cybertip_reports_incident_key"),
    )
    op.create_index("ix_cybertip_reports_due", "cybertip_reports", ["state", "next_attempt_at"])

    op.create_table(
        "cybertip_report_files",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("report_id", sa.BigInteger(),
                  sa.ForeignKey("cybertip_reports.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("locator", sa.String(500), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("ncmec_file_id", sa.String(100), nullable=True),
        sa.Column("ncmec_md5", sa.String(32), nullable=True),
        sa.Column("uploaded_at", UtcDateTime(), nullable=True),
        sa.Column("fileinfo_at", UtcDateTime(), nullable=True),
        sa.UniqueConstraint("report_id", "position", name="uq_cybertip_report_files_position"),
    )


def downgrade() -> None:
    op.drop_table("cybertip_report_files")
    op.drop_index("ix_cybertip_reports_due", "cybertip_reports")
    op.drop_table("cybertip_reports")
    op.drop_index("ix_actions_ordering", "actions")
    op.drop_index("ix_actions_due", "actions")
    op.drop_table("actions")
