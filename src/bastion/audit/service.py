"""The audit service: read and verify the hash-chained audit log.

Appending is :func:`bastion.store.audit.record_audit_event`, called inside the unit of
work of the action it records; this module reads: listing events for the UI and the CLI
and verifying the chain (``bastion audit verify``). Nothing here, nor anywhere in
Bastion, edits or deletes an event::

    with db.read() as session:
        check = verify(session)        # ChainCheck(ok, checked, broken_id, reason)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bastion.store.audit import ChainCheck, list_audit_events, verify_chain
from bastion.store.models import AuditEvent


def verify(session: Session) -> ChainCheck:
    """Verify the whole chain (see :func:`bastion.store.audit.verify_chain`)."""
    return verify_chain(session)


def event_json(ev: AuditEvent) -> dict[str, Any]:
    """One event as JSON: id, at (RFC 3339 UTC), actor, action, object_type, object_id,
    detail, request_id, hash."""
    return {
        "id": ev.id, "at": ev.at.isoformat().replace("+00:00", "Z"), "actor": ev.actor,
        "action": ev.action, "object_type": ev.object_type, "object_id": ev.object_id,
        "detail": ev.detail, "request_id": ev.request_id, "hash": ev.hash,
    }


def recent(
    session: Session, *, limit: int = 100, action: str | None = None,
    object_id: str | None = None, before_id: int | None = None,
) -> list[dict[str, Any]]:
    """The newest events first as :func:`event_json` objects (``limit`` 1-1000)."""
    limit = max(1, min(limit, 1000))
    return [event_json(e) for e in list_audit_events(
        session, action=action, limit=limit, object_id=object_id, before_id=before_id)]
