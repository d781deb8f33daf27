"""SQLAlchemy models of the service's own records: API keys and content verdicts.

Tables (created by migration ``0002``; :mod:`bastion.store.models` imports this module so
that ``Base.metadata`` holds them too):

``api_keys``                one API key: name, scopes, SHA-256 digest of the key (never the key),
                            expiry and revocation times
``content_verdicts``        the verdict of one submitted content item, one row per ``content_id``
                            (the platform's id): status, decision, signals, matches, metadata
``content_verdict_events``  the verdict's history: submitted, and later events (retro-hunt
                            matches, review decisions) appended by other services

Content bytes and free text are never stored here: only ids, hashes, URLs the platform
gave as metadata, and a digest of the request that produced the verdict (for idempotency).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bastion.store.models import Base, BigId
from bastion.store.types import UtcDateTime, utcnow


class ApiKey(Base):
    """An API key. ``digest`` is the SHA-256 (64 lowercase hex) of the whole key string; the
    key itself is shown once at creation and never stored. ``prefix`` is the key's first
    characters, safe to show in listings. ``scopes`` is a list of scope names."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("digest", name="uq_api_keys_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(24))
    digest: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="system")
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ContentVerdict(Base):
    """The stored verdict of one content item, keyed by the platform's ``content_id``.

    ``request_digest`` (64 hex) is the SHA-256 of what was scanned (the file's bytes, or the
    canonical JSON of the submitted signals): a retry with the same digest returns this
    verdict; a different digest under the same ``content_id`` is a conflict. ``verdict``
    holds ``signals``, ``matches``, ``reason``, ``media_type`` in DESIGN.md's shapes;
    ``meta`` the submitted metadata (user id, times, IPs, URLs, original hashes; never
    free text, only its SHA-256 and length). ``log_item_id`` is the content-log item.
    """

    __tablename__ = "content_verdicts"
    __table_args__ = (UniqueConstraint("content_id", name="uq_content_verdicts_content_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    content_id: Mapped[str] = mapped_column(String(255))
    request_digest: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[dict[str, Any]] = mapped_column(JSON)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    log_item_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    case_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ContentVerdictEvent(Base):
    """One event in a verdict's history: ``kind`` (``submitted``, ``retrohunt_match`` ...),
    when, who (``actor``, e.g. ``api-key:3``) and a JSON ``detail`` (status, decision,
    matches; ids and hashes only)."""

    __tablename__ = "content_verdict_events"
    __table_args__ = (Index("ix_content_verdict_events_verdict", "verdict_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    verdict_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("content_verdicts.id", ondelete="CASCADE")
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
