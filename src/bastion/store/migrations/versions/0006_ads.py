"""Classified-ad analysis: the ads kept for network linking (issue 8).

Revision ID: 0006_ads
Revises: 0005_preservation
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bastion.store.types import UtcDateTime

revision: str = "0006_ads"
down_revision: str | None = "0005_preservation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ads",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("ad_id", sa.String(256), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("location", sa.String(256), nullable=True),
        sa.Column("posted_at", UtcDateTime(), nullable=True),
        sa.Column("pdq", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("ad_id", name="uq_ads_ad_id"),
    )


def downgrade() -> None:
    op.drop_table("ads")
