"""Preservation of reported items: preserved items, legal holds, evidence exports.

Revision ID: 0005_preservation
Revises: 0004_actions
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bastion.store.types import UtcDateTime

revision: str = "0005_preservation"
down_revision: str | None = "0004_actions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "preserved_items",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("content_id", sa.String(255), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("report_id", sa.BigInteger(), nullable=True),
        sa.Column("evidence_id", sa.BigInteger(), nullable=True),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("preserved_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("content_id", name="uq_preserved_items_content_id"),
    )
    op.create_index("ix_preserved_items_expires", "preserved_items", ["expires_at"])
    op.create_table(
        "legal_holds",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("item_id", sa.BigInteger(),
                  sa.ForeignKey("preserved_items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("until", UtcDateTime(), nullable=True),
        sa.Column("released_at", UtcDateTime(), nullable=True),
        sa.Column("released_by", sa.String(200), nullable=True),
    )
    op.create_index("ix_legal_holds_item", "legal_holds", ["item_id"])
    op.create_table(
        "evidence_exports",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("item_ids", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.BigInteger(), nullable=False),
        sa.Column("requested_at", UtcDateTime(), nullable=False),
        sa.Column("approved_by", sa.BigInteger(), nullable=True),
        sa.Column("approved_at", UtcDateTime(), nullable=True),
        sa.Column("archive_name", sa.String(100), nullable=True),
        sa.Column("archive_sha256", sa.String(64), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("evidence_exports")
    op.drop_index("ix_legal_holds_item", table_name="legal_holds")
    op.drop_table("legal_holds")
    op.drop_index("ix_preserved_items_expires", table_name="preserved_items")
    op.drop_table("preserved_items")
