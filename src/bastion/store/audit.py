"""Audit events: an append-only record of who did or saw what, when.

For now a plain table written in the same transaction as the action it records; a later
issue chains the rows with hashes. Nothing here updates or deletes an event.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.store.models import AuditEvent
from bastion.store.types import utcnow


def record_audit_event(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event (``action`` like ``bank.export``; ``actor`` like ``cli:alice`` or
    ``api-key:3``) to ``session``'s transaction and return it. Detail holds ids and counts,
    never content."""
    event = AuditEvent(
        at=utcnow(),
        actor=actor[:200],
        action=action[:100],
        object_type=object_type[:50],
        object_id=object_id[:200],
        detail=detail,
    )
    session.add(event)
    session.flush()
    return event


def list_audit_events(
    session: Session, *, action: str | None = None, limit: int = 100
) -> list[AuditEvent]:
    """The newest events first (optionally only ``action``), at most ``limit``."""
    q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if action is not None:
        q = q.where(AuditEvent.action == action)
    return list(session.execute(q).scalars())
