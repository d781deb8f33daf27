"""Review: cases, users, sessions, encrypted case media, and the audit hash chain.

``audit_events`` gains ``request_id``, ``prev_hash`` and ``hash`` (see
:mod:`bastion.store.audit`); events written before this revision are chained here, in id
order, so that ``bastion audit verify`` covers them too. ``store_meta`` row
``audit_head`` holds ``<id>:<hash>`` of the newest event (appenders lock it).

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bastion.store.types import UtcDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    from bastion.store.audit import GENESIS_HASH, event_hash

    # Plain ADD COLUMN (not a batch table copy, which would drop SQLite's AUTOINCREMENT).
    op.add_column("audit_events", sa.Column("request_id", sa.String(64), nullable=True))
    op.add_column("audit_events", sa.Column("prev_hash", sa.String(64), nullable=True))
    op.add_column("audit_events", sa.Column("hash", sa.String(64), nullable=True))
    conn = op.get_bind()
    prev = GENESIS_HASH
    last_id = 0
    rows = conn.execute(sa.text(
        "SELECT id, at, actor, action, object_type, object_id, detail FROM audit_events "
        "ORDER BY id"
    )).fetchall()
    at_type = UtcDateTime()
    for row in rows:
        at = at_type.process_result_value(row[1], conn.dialect)
        detail = row[6]
        if isinstance(detail, str):
            detail = json.loads(detail)
        assert at is not None
        h = event_hash(prev, at=at, actor=row[2], action=row[3], object_type=row[4],
                       object_id=row[5], detail=detail, request_id=None)
        conn.execute(sa.text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE id = :i"),
                     {"p": prev, "h": h, "i": row[0]})
        prev, last_id = h, int(row[0])
    conn.execute(sa.text("INSERT INTO store_meta (key, value) VALUES ('audit_head', :v)"),
                 {"v": f"{last_id}:{prev}"})

    op.create_table(
        "cases",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("content_id", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("verdict_id", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("media", sa.String(16), nullable=False),
        sa.Column("banks", sa.JSON(), nullable=False),
        sa.Column("matches", sa.JSON(), nullable=False),
        sa.Column("opened_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("claimed_by", sa.Integer(), nullable=True),
        sa.Column("claim_expires_at", UtcDateTime(), nullable=True),
        sa.Column("decision", sa.String(32), nullable=True),
        sa.Column("classification", sa.String(2), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", UtcDateTime(), nullable=True),
        sa.Column("second_review", sa.Boolean(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.UniqueConstraint("content_id", name="uq_cases_content_id"),
    )
    op.create_index("ix_cases_state_priority", "cases", ["state", "priority"])
    op.create_index("ix_cases_user_id", "cases", ["user_id"])
    op.create_index("ix_cases_opened_at", "cases", ["opened_at"])

    op.create_table(
        "case_events",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("case_id", sa.BigInteger(),
                  sa.ForeignKey("cases.id", ondelete="CASCADE", name="fk_case_events_case"),
                  nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
    )
    op.create_index("ix_case_events_case", "case_events", ["case_id", "id"])

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("disabled_at", UtcDateTime(), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
        sa.Column("blur", sa.Integer(), nullable=False),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )

    op.create_table(
        "user_sessions",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(),
                  sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_user_sessions_user"),
                  nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("reveals", sa.Integer(), nullable=False),
        sa.Column("review_seconds", sa.Integer(), nullable=False),
        sa.UniqueConstraint("digest", name="uq_user_sessions_digest"),
    )

    op.create_table(
        "evidence_items",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("content_id", sa.String(255), nullable=False),
        sa.Column("file_name", sa.String(100), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("master_key_id", sa.String(16), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("delete_after", UtcDateTime(), nullable=True),
        sa.Column("deleted_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_evidence_items_case_id", "evidence_items", ["case_id"])
    op.create_index("ix_evidence_items_content_id", "evidence_items", ["content_id"])

    op.create_table(
        "reveal_tokens",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("evidence_id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True),
        sa.UniqueConstraint("digest", name="uq_reveal_tokens_digest"),
    )


def downgrade() -> None:
    for table in ("reveal_tokens", "evidence_items", "user_sessions", "users", "case_events",
                  "cases"):
        op.drop_table(table)
    op.execute("DELETE FROM store_meta WHERE key = 'audit_head'")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
        batch.drop_column("request_id")
