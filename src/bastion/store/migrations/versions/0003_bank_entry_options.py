"""Per-entry matching options of bank entries (URL and keyword lists).

``bank_entries.options`` holds a JSON object of the options an entry of signal type ``url``
(``match``, ``scheme``, ``query_order``) or ``keyword`` (``match``, ``language``,
``collapse_repeats``) was imported with; NULL for every other signal type (and for URL or
keyword entries stored before this revision, which then match with the defaults).

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bank_entries") as batch:
        batch.add_column(sa.Column("options", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bank_entries") as batch:
        batch.drop_column("options")
