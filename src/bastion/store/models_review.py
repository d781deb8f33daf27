"""SQLAlchemy models of review: cases, users, sessions, encrypted case media.

Tables (created by migration ``0004``; :mod:`bastion.store.models` imports this module so
that ``Base.metadata`` holds them too):

``cases``           one unit of human review: one content item, one decision
                    (see :mod:`bastion.cases.service`)
``case_events``     a case's history: opened, flagged, claimed, decided (ids only)
``users``           people who sign in to the review UI: name, role, Argon2id password hash
``user_sessions``   signed-in sessions: SHA-256 digest of the cookie token (never the
                    token), CSRF token, expiry, and exposure counters (reveals, seconds)
``evidence_items``  case media encrypted at rest (AES-256-GCM): the wrapped per-item data
                    key, nonce, SHA-256 of the plaintext and the ciphertext file's name
                    (see :mod:`bastion.evidence.vault`)
``reveal_tokens``   single-use URLs that show one unblurred item to one user

Nothing here holds content bytes or free text from platforms: reviewers' notes are the
platform's own staff's words about a case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bastion.store.models import Base, BigId
from bastion.store.types import UtcDateTime, utcnow


class Case(Base):
    """One case: the review of one content item (``content_id``, unique).

    ``state``: ``open``, ``in_review``, ``decided``, ``escalated``, ``closed``.
    ``priority``: 0-100, higher first. ``source``: ``match``, ``flag`` or ``not_scanned``.
    ``claimed_by``/``claim_expires_at``: the reviewer holding it, until then.
    ``decision``: see :data:`bastion.cases.schemas.DECISIONS`; ``classification`` the
    industry class (A1, A2, B1, B2) of a ``csam`` decision. ``media``: ``stored`` (bytes in
    the vault), ``hashes_only`` (the platform sent signals only) or ``none``.
    """

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("content_id", name="uq_cases_content_id"),
        Index("ix_cases_state_priority", "state", "priority"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    content_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    verdict_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    source: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    media: Mapped[str] = mapped_column(String(16))
    #: Bank names and labels of the case's matches (for queue filters), e.g. ``["sample"]``.
    banks: Mapped[list[str]] = mapped_column(JSON)
    matches: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    claimed_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    claim_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    decision: Mapped[str | None] = mapped_column(String(32), nullable=True)
    classification: Mapped[str | None] = mapped_column(String(2), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    #: A ``csam`` decision waiting for a second reviewer (policy ``second_review``).
    second_review: Mapped[bool] = mapped_column(Boolean, default=False)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    #: CyberTipline ``fileAnnotations`` names the deciding reviewer ticked (None: none).
    file_annotations: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    #: CyberTipline ``reportAnnotations`` names the deciding reviewer ticked (None: none).
    report_annotations: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    #: Why the reviewer marked the case urgent (``escalateToHighPriority``); None if not.
    urgent_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class CaseEvent(Base):
    """One event in a case's history (``kind``: opened, flagged, claimed, decided ...)."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("cases.id", ondelete="CASCADE")
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class User(Base):
    """A person who signs in to the review UI. ``role``: ``admin``, ``reviewer`` or
    ``auditor``. ``password_hash``: Argon2id (PHC string). ``blur``: preview blur radius
    (pixels of a 512-pixel preview) this reviewer chose."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("name", name="uq_users_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    blur: Mapped[int] = mapped_column(Integer, default=24)


class UserSession(Base):
    """A signed-in session. ``digest``: SHA-256 (64 hex) of the cookie's token."""

    __tablename__ = "user_sessions"
    __table_args__ = (UniqueConstraint("digest", name="uq_user_sessions_digest"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    reveals: Mapped[int] = mapped_column(Integer, default=0)
    review_seconds: Mapped[int] = mapped_column(Integer, default=0)


class EvidenceItem(Base):
    """One item's bytes, encrypted (AES-256-GCM) in a file under ``$home/evidence``.

    ``wrapped_key``: the item's 256-bit data key encrypted with the master key (12-byte
    nonce + ciphertext + 16-byte tag); NULL once destroyed (the item is then unreadable
    everywhere, backups included). ``master_key_id``: first 16 hex of the SHA-256 of the
    master key that wrapped it. ``sha256``: of the plaintext, checked on every read.
    ``kind``: ``media`` (a case's bytes), ``record`` (a preservation metadata record) or
    ``text`` (an item's submitted text, title and links as JSON; :mod:`bastion.evidence.texts`).
    """

    __tablename__ = "evidence_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    content_id: Mapped[str] = mapped_column(String(255), index=True)
    file_name: Mapped[str] = mapped_column(String(100))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    master_key_id: Mapped[str] = mapped_column(String(16))
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    delete_after: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="media", server_default="media")


class RevealToken(Base):
    """A single-use URL token (stored as its SHA-256 digest) letting ``user_id`` see the
    unblurred ``evidence_id`` once before ``expires_at``."""

    __tablename__ = "reveal_tokens"
    __table_args__ = (UniqueConstraint("digest", name="uq_reveal_tokens_digest"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(Integer)
    evidence_id: Mapped[int] = mapped_column(BigInteger)
    case_id: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
