"""SQLAlchemy models of preservation: reported items kept for law enforcement.

Tables (created by migration ``0005_preservation``; :mod:`bastion.store.models` imports
this module so that ``Base.metadata`` holds them too):

``preserved_items``     one reported content item under the preservation clock: the vault
                        items holding its bytes (``evidence_id``, the case's media) and its
                        metadata record (``record_id``, JSON sealed in the vault), when the
                        clock ends (``expires_at``). See :mod:`bastion.evidence.preservation`.
``legal_holds``         holds on a preserved item (``kind`` ``legal_hold`` or
                        ``preservation_request``, 18 U.S.C. 2703(f)) with their reference
                        and who placed and released them
``evidence_exports``    disclosures under legal process: requested by one admin, approved
                        (and the encrypted archive written) by a second

Nothing here holds content bytes or the metadata itself (both are in the vault, encrypted):
only ids, the platform's ``content_id`` (an opaque id, needed to find the item) and times.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bastion.store.models import Base, BigId
from bastion.store.types import UtcDateTime, utcnow


class PreservedItem(Base):
    """One reported item under preservation (``content_id`` unique). ``evidence_id``: the
    vault item of its bytes (None for hash-only cases); ``record_id``: the vault item of
    its metadata JSON. ``expires_at``: end of the preservation clock (an active hold
    keeps it past that)."""

    __tablename__ = "preserved_items"
    __table_args__ = (
        UniqueConstraint("content_id", name="uq_preserved_items_content_id"),
        Index("ix_preserved_items_expires", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    content_id: Mapped[str] = mapped_column(String(255))
    case_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    report_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    evidence_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    record_id: Mapped[int] = mapped_column(BigInteger)
    preserved_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LegalHold(Base):
    """A hold on a preserved item: active while ``released_at`` is NULL and ``until`` (if
    set) has not passed. ``reference``: the legal matter or the preservation request's
    number."""

    __tablename__ = "legal_holds"
    __table_args__ = (Index("ix_legal_holds_item", "item_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("preserved_items.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    released_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class EvidenceExport(Base):
    """A disclosure of preserved items under legal process (``reference``). ``state``:
    ``requested`` -> ``approved`` (by a second admin; the archive ``archive_name`` is then
    written under ``$home/exports``, its SHA-256 in ``archive_sha256``)."""

    __tablename__ = "evidence_exports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    item_ids: Mapped[list[int]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[int] = mapped_column(BigInteger)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    approved_by: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    archive_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    archive_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
