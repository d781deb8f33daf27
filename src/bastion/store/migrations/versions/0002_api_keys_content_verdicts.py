"""API keys, content verdicts and their history.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bastion.store.types import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(24), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.UniqueConstraint("digest", name="uq_api_keys_digest"),
    )

    op.create_table(
        "content_verdicts",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("content_id", sa.String(255), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("verdict", sa.JSON(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("log_item_id", sa.BigInteger(), nullable=True),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("content_id", name="uq_content_verdicts_content_id"),
    )
    op.create_index("ix_content_verdicts_user_id", "content_verdicts", ["user_id"])
    op.create_index("ix_content_verdicts_created_at", "content_verdicts", ["created_at"])

    op.create_table(
        "content_verdict_events",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column(
            "verdict_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "content_verdicts.id", ondelete="CASCADE", name="fk_content_verdict_events_verdict"
            ),
            nullable=False,
        ),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_content_verdict_events_verdict", "content_verdict_events", ["verdict_id", "id"]
    )


def downgrade() -> None:
    for table in ("content_verdict_events", "content_verdicts", "api_keys"):
        op.drop_table(table)
