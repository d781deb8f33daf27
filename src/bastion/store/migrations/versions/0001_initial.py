"""Banks, entries, the bank change log, the content log, retro-hunt results, audit events.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bastion.store.types import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _xid_column() -> sa.Column[int]:
    """The writing transaction's id on PostgreSQL (``pg_current_xact_id``), NULL on SQLite."""
    default = None
    if op.get_bind().dialect.name == "postgresql":
        default = sa.text("(pg_current_xact_id()::text)::bigint")
    return sa.Column("xid", sa.BigInteger(), nullable=True, server_default=default)


def upgrade() -> None:
    op.create_table(
        "banks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("label", sa.String(50), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("auto_action", sa.Boolean(), nullable=False),
        sa.Column("exportable", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("name", name="uq_banks_name"),
    )
    op.create_table(
        "bank_entries",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column(
            "bank_id",
            sa.Integer(),
            sa.ForeignKey("banks.id", ondelete="CASCADE", name="fk_bank_entries_bank"),
            nullable=False,
        ),
        sa.Column("signal_type", sa.String(32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("value_key", sa.String(80), nullable=False),
        sa.Column("value_bin", sa.LargeBinary(), nullable=True),
        sa.Column("variant", sa.JSON(), nullable=True),
        sa.Column("item_key", sa.String(100), nullable=True),
        sa.Column("source", sa.String(200), nullable=True),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("source_date", UtcDateTime(), nullable=True),
        sa.Column("classification", sa.String(2), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_until", UtcDateTime(), nullable=True),
        sa.Column("fp_votes", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("bank_id", "signal_type", "value_key", name="uq_bank_entries_value"),
    )
    op.create_index("ix_bank_entries_bank_id", "bank_entries", ["bank_id"])
    op.create_index("ix_bank_entries_item_key", "bank_entries", ["item_key"])
    op.create_index("ix_bank_entries_type_value", "bank_entries", ["signal_type", "value_key"])

    op.create_table(
        "bank_changes",
        sa.Column("seq", _BIG_ID, primary_key=True, autoincrement=True),
        _xid_column(),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_bank_changes_xid", "bank_changes", ["xid"])
    op.create_index("ix_bank_changes_created_at", "bank_changes", ["created_at"])

    op.create_table(
        "content_items",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("content_id", sa.String(255), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("media_type", sa.String(16), nullable=True),
        sa.Column("scanned_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_content_items_content_id", "content_items", ["content_id"])
    op.create_index("ix_content_items_scanned_at", "content_items", ["scanned_at"])

    op.create_table(
        "content_signals",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column(
            "item_id",
            sa.BigInteger(),
            sa.ForeignKey("content_items.id", ondelete="CASCADE", name="fk_content_signals_item"),
            nullable=False,
        ),
        sa.Column("signal_type", sa.String(32), nullable=False),
        sa.Column("value_key", sa.String(80), nullable=False),
        sa.Column("value_bin", sa.LargeBinary(), nullable=True),
        sa.Column("dihedral_bin", sa.LargeBinary(), nullable=True),
        sa.Column("quality", sa.Integer(), nullable=True),
        sa.Column("variant", sa.JSON(), nullable=True),
    )
    op.create_index("ix_content_signals_item_id", "content_signals", ["item_id"])
    op.create_index(
        "ix_content_signals_type_value", "content_signals", ["signal_type", "value_key"]
    )

    op.create_table(
        "retrohunt_matches",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        _xid_column(),
        sa.Column("found_at", UtcDateTime(), nullable=False),
        sa.Column(
            "content_item_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "content_items.id", ondelete="SET NULL", name="fk_retrohunt_matches_item"
            ),
            nullable=True,
        ),
        sa.Column("content_id", sa.String(255), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("scanned_at", UtcDateTime(), nullable=True),
        sa.Column("bank_id", sa.Integer(), nullable=True),
        sa.Column("bank_name", sa.String(100), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("signal_type", sa.String(32), nullable=False),
        sa.Column("content_value", sa.Text(), nullable=False),
        sa.Column("entry_value", sa.Text(), nullable=False),
        sa.Column("distance", sa.Integer(), nullable=False),
        sa.Column("transform", sa.String(16), nullable=True),
        sa.Column("query_variant", sa.JSON(), nullable=True),
        sa.UniqueConstraint("content_item_id", "entry_id", name="uq_retrohunt_item_entry"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_retrohunt_matches_xid", "retrohunt_matches", ["xid"])

    op.create_table(
        "audit_events",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("object_type", sa.String(50), nullable=False),
        sa.Column("object_id", sa.String(200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])

    op.create_table(
        "store_meta",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "store_meta",
        "audit_events",
        "retrohunt_matches",
        "content_signals",
        "content_items",
        "bank_changes",
        "bank_entries",
        "banks",
    ):
        op.drop_table(table)
