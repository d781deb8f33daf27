"""SQLAlchemy 2 models: Bastion's tables.

Tables (the schema itself is created only by the Alembic migrations in
``bastion/store/migrations``; these classes must agree with them, and a test checks it):

``banks``            one bank: name, label, thresholds, ``auto_action``, ``exportable``, enabled
``bank_entries``     one known signal in one bank, with provenance and classification
``bank_changes``     the bank change log: one row per change that affects matching, written
                     in the same transaction as the change (see :mod:`bastion.store.change_log`)
``content_items``    the content log: one scanned item (content id, source, time) ...
``content_signals``  ... and its signals (never bytes), for retro-hunt
``retrohunt_matches`` matches found later by retro-hunt, read with a cursor
``audit_events``     append-only who-did-what, hash-chained (:mod:`bastion.store.audit`)
``store_meta``       small key/value facts about the store (change-log purge horizon)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bastion.store.types import UtcDateTime, utcnow

#: 64-bit ids on PostgreSQL; SQLite needs ``INTEGER PRIMARY KEY`` for a rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of Bastion's models."""



class Bank(Base):
    """A named collection of known signals (DESIGN.md "bank")."""

    __tablename__ = "banks"
    __table_args__ = (UniqueConstraint("name", name="uq_banks_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    label: Mapped[str] = mapped_column(String(50), default="")
    #: ``{signal_type: max distance}`` overriding the signal type's default threshold.
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    auto_action: Mapped[bool] = mapped_column(Boolean, default=False)
    exportable: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class BankEntry(Base):
    """One known signal in one bank.

    ``value`` is canonical (``SignalType.parse``); ``value_key`` is the value itself when it
    is at most 80 characters (every hash) and ``"sha256:" + digest`` otherwise (vPDQ frame
    lists), so that equality lookups and the per-bank uniqueness use a short indexed column.
    ``value_bin`` holds the raw bytes of hex hashes (32 bytes for PDQ) for fast index loads.
    """

    __tablename__ = "bank_entries"
    __table_args__ = (
        UniqueConstraint("bank_id", "signal_type", "value_key", name="uq_bank_entries_value"),
        Index("ix_bank_entries_type_value", "signal_type", "value_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    bank_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("banks.id", ondelete="CASCADE"), index=True
    )
    signal_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)
    value_key: Mapped[str] = mapped_column(String(80))
    value_bin: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    variant: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: How a ``url`` or ``keyword`` entry matches (``{"match": "prefix", ...}``, see
    #: :func:`bastion.banks.values.check_entry`); None for other signal types.
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    item_key: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    source: Mapped[str | None] = mapped_column(String(200), nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source_date: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    classification: Mapped[str | None] = mapped_column(String(2), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    fp_votes: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class BankChange(Base):
    """One row of the bank change log.

    ``seq`` orders changes of one object (bank or entry) as they committed, because the row
    is written after the object's row is locked. ``xid`` is the writing transaction's id on
    PostgreSQL (``pg_current_xact_id()``, a server default), NULL on SQLite; the follower
    uses it with snapshot ``xmin`` so that a late commit is never skipped.
    ``payload`` holds the object's state after the change (for deletions: before).
    """

    __tablename__ = "bank_changes"
    __table_args__ = ({"sqlite_autoincrement": True},)

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    xid: Mapped[int | None] = mapped_column(
        BigInteger, nullable=True, server_default=FetchedValue(), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    bank_id: Mapped[int] = mapped_column(Integer)
    entry_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)


class ContentItem(Base):
    """One scanned item in the content log (its signals are in :class:`ContentSignal`)."""

    __tablename__ = "content_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    content_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    source: Mapped[str | None] = mapped_column(Text, nullable=True)
    media_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    scanned_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)


class ContentSignal(Base):
    """One signal of a logged item: never bytes of content, only the fingerprint.

    PDQ (and each vPDQ frame, ``signal_type="vpdq"``) keeps its 32 raw bytes in
    ``value_bin`` and optionally the 8 dihedral hashes (256 bytes, ``DIHEDRAL_TRANSFORMS``
    order) in ``dihedral_bin``; exact hashes are found by ``(signal_type, value_key)``.
    """

    __tablename__ = "content_signals"
    __table_args__ = (Index("ix_content_signals_type_value", "signal_type", "value_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("content_items.id", ondelete="CASCADE"), index=True
    )
    signal_type: Mapped[str] = mapped_column(String(32))
    value_key: Mapped[str] = mapped_column(String(80))
    value_bin: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    dihedral_bin: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    quality: Mapped[int | None] = mapped_column(Integer, nullable=True)
    variant: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class RetrohuntMatch(Base):
    """A match found later: logged content that a bank entry added afterwards matches."""

    __tablename__ = "retrohunt_matches"
    __table_args__ = (
        UniqueConstraint("content_item_id", "entry_id", name="uq_retrohunt_item_entry"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    xid: Mapped[int | None] = mapped_column(
        BigInteger, nullable=True, server_default=FetchedValue(), index=True
    )
    found_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    content_item_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("content_items.id", ondelete="SET NULL"), nullable=True
    )
    content_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    source: Mapped[str | None] = mapped_column(Text, nullable=True)
    scanned_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    bank_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bank_name: Mapped[str] = mapped_column(String(100))
    entry_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    signal_type: Mapped[str] = mapped_column(String(32))
    content_value: Mapped[str] = mapped_column(Text)
    entry_value: Mapped[str] = mapped_column(Text)
    distance: Mapped[int] = mapped_column(Integer)
    transform: Mapped[str | None] = mapped_column(String(16), nullable=True)
    query_variant: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class AuditEvent(Base):
    """An append-only record of who did what, when (``object_id`` as text)."""

    __tablename__ = "audit_events"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: The request (or CLI run) that caused it; the hash chain (see :mod:`.audit`).
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class StoreMeta(Base):
    """Small key/value facts about the store itself."""

    __tablename__ = "store_meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# The service's tables (API keys, content verdicts) live in their own module; importing it
# here puts them in ``Base.metadata`` for Alembic and the schema test.
from bastion.store import models_actions as _models_actions  # noqa: E402, F401
from bastion.store import models_ads as _models_ads  # noqa: E402, F401
from bastion.store import models_api as _models_api  # noqa: E402, F401
from bastion.store import models_preservation as _models_preservation  # noqa: E402, F401
from bastion.store import models_review as _models_review  # noqa: E402, F401

#: Core tables, for bulk statements (executemany with one cached compiled statement).
BANK_ENTRIES = cast(Table, BankEntry.__table__)
BANK_CHANGES = cast(Table, BankChange.__table__)
CONTENT_ITEMS = cast(Table, ContentItem.__table__)
CONTENT_SIGNALS = cast(Table, ContentSignal.__table__)
RETROHUNT_MATCHES = cast(Table, RetrohuntMatch.__table__)
