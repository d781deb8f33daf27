"""Evidence items say what they hold: ``media`` (a case's bytes), ``record`` (a preservation
metadata record) or ``text`` (an item's submitted text, kept encrypted for review).

Revision ID: 0008_evidence_kind
Revises: 0007_case_report_annotations
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_evidence_kind"
down_revision: str | None = "0007_case_report_annotations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("evidence_items", sa.Column("kind", sa.String(16), nullable=False,
                                              server_default="media"))
    op.execute("UPDATE evidence_items SET kind = 'record' "
               "WHERE id IN (SELECT record_id FROM preserved_items)")


def downgrade() -> None:
    with op.batch_alter_table("evidence_items") as batch:
        batch.drop_column("kind")
