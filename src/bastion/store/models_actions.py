"""SQLAlchemy models of the actions outbox and of CyberTipline reports.

Tables (created by migration ``0004``; :mod:`bastion.store.models` imports this module):

``actions``              the outbox: one action (hide, takedown, restore, suspend, preserve,
                         report, share) to deliver to the platform, written in the same
                         transaction as the verdict or decision that caused it
``cybertip_reports``     one CyberTipline report per incident: its state, the typed incident
                         (JSON), the validated report XML, NCMEC's report id
``cybertip_report_files`` one file of a report: where its bytes are (a locator, never the
                         bytes), NCMEC's file id and MD5, and which steps are done

Workers claim rows with a lease (``claimed_by``, ``claimed_until``): a crashed worker's claim
simply expires and another worker takes the row over.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bastion.store.models import Base, BigId
from bastion.store.types import UtcDateTime, utcnow


class ActionRow(Base):
    """One outbox action. ``state``: ``pending`` (waiting or being retried), ``delivered``,
    ``dead`` (past its maximum age: the dead-letter list). ``ordering_key`` (e.g.
    ``content:<id>``) serialises delivery: an action waits until every earlier pending action
    with the same key is delivered. ``idempotency_key`` is sent with every attempt."""

    __tablename__ = "actions"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_actions_idempotency_key"),
        Index("ix_actions_due", "state", "next_attempt_at"),
        Index("ix_actions_ordering", "ordering_key", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    content_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    case_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ordering_key: Mapped[str] = mapped_column(String(300))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    #: Delivery is given up (dead-lettered) after this time; a retry moves it.
    deadline_at: Mapped[datetime] = mapped_column(UtcDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class CyberTipReportRow(Base):
    """One CyberTipline report (see :mod:`bastion.reporting.service` for the states).
    ``incident_key`` is unique: one report per incident. ``ncmec_report_id`` is NCMEC's id
    from ``/submit``; ``submit_started_at`` is written before ``/submit`` is called."""

    __tablename__ = "cybertip_reports"
    __table_args__ = (
        UniqueConstraint("incident_key", name="uq_cybertip_reports_incident_key"),
        Index("ix_cybertip_reports_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_key: Mapped[str] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(32), default="draft")
    incident: Mapped[dict[str, Any]] = mapped_column(JSON)
    report_xml: Mapped[str] = mapped_column(Text)
    ncmec_report_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    environment: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    approved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    submit_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    retracted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class CyberTipReportFileRow(Base):
    """One file of a report, in ``position`` order. ``locator`` names the bytes for a
    :class:`bastion.reporting.files.FileProvider`; ``ncmec_file_id`` / ``ncmec_md5`` come
    from ``/upload``; ``fileinfo_at`` is set once ``/fileinfo`` accepted its fileDetails."""

    __tablename__ = "cybertip_report_files"
    __table_args__ = (
        UniqueConstraint("report_id", "position", name="uq_cybertip_report_files_position"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    report_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("cybertip_reports.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    locator: Mapped[str] = mapped_column(String(500))
    file_name: Mapped[str] = mapped_column(String(255))
    ncmec_file_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ncmec_md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    uploaded_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    fileinfo_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
