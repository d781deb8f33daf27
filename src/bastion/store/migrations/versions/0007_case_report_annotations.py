"""Review decisions record what a CyberTipline report says about each item: the
``fileAnnotations`` and ``reportAnnotations`` names a reviewer ticked (JSON lists, NULL for
none) and the reason a reviewer marked the case urgent (``escalateToHighPriority``).

Revision ID: 0007_case_report_annotations
Revises: 0006_ads
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_case_report_annotations"
down_revision: str | None = "0006_ads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("file_annotations", sa.JSON(), nullable=True))
    op.add_column("cases", sa.Column("report_annotations", sa.JSON(), nullable=True))
    op.add_column("cases", sa.Column("urgent_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("urgent_reason")
        batch.drop_column("report_annotations")
        batch.drop_column("file_annotations")
