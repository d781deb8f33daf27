"""Audit events: an append-only, hash-chained record of who did or saw what, when.

Every event carries the hash of the one before it, so that changing or deleting a stored
event breaks the chain at a place :func:`verify_chain` names. An event's ``hash`` is the
SHA-256 (64 lowercase hex) of the canonical JSON (keys sorted, no spaces, ASCII) of::

    {"prev": <previous event's hash, or 64 zeros for the first>, "at": <RFC 3339 UTC with
     microseconds>, "actor": ..., "action": ..., "object_type": ..., "object_id": ...,
     "detail": {...} | null, "request_id": ... | null}

The newest event's ``<id>:<hash>`` is kept in ``store_meta`` row ``audit_head``; an
appender locks that row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writers are
serialised by ``BEGIN IMMEDIATE``), so concurrent transactions append one after the other
and the chain never forks. The head also reveals deletion of the newest events.

Events hold opaque ids only (``user:3``, ``api-key:7``, case and content ids), never
content, names or other personal data, so retention purges never need to touch them.
Nothing in Bastion updates or deletes an event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.store.models import AuditEvent, StoreMeta
from bastion.store.types import utcnow

#: ``prev_hash`` of the first event.
GENESIS_HASH = "0" * 64
#: ``store_meta`` key of the chain's head.
HEAD_KEY = "audit_head"

#: The current request's id (set by the HTTP layer for each request); events recorded
#: without an explicit ``request_id`` take it.
current_request_id: ContextVar[str | None] = ContextVar("bastion_request_id", default=None)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    prev: str, *, at: datetime, actor: str, action: str, object_type: str, object_id: str,
    detail: dict[str, Any] | None, request_id: str | None,
) -> str:
    """The chain hash of one event (see the module docstring): 64 lowercase hex."""
    doc = {
        "prev": prev, "at": _iso(at), "actor": actor, "action": action,
        "object_type": object_type, "object_id": object_id, "detail": detail,
        "request_id": request_id,
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _lock_head(session: Session) -> StoreMeta:
    head = session.execute(
        select(StoreMeta).where(StoreMeta.key == HEAD_KEY).with_for_update()
    ).scalar_one_or_none()
    if head is None:  # a store migrated before the chain's row existed: start it
        head = StoreMeta(key=HEAD_KEY, value=f"0:{GENESIS_HASH}")
        session.add(head)
        session.flush()
    return head


def record_audit_event(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> AuditEvent:
    """Append one event (``action`` like ``bank.export``; ``actor`` like ``cli``,
    ``user:3`` or ``api-key:3``) to ``session``'s transaction, chained to the newest one,
    and return it (``request_id`` defaults to :data:`current_request_id`). ``detail``
    holds ids and counts, never content or names (JSON values:
    strings, integers, booleans, lists, objects; no floats)."""
    head = _lock_head(session)
    prev = head.value.partition(":")[2] or GENESIS_HASH
    at = utcnow()
    actor, action, object_type, object_id = (
        actor[:200], action[:100], object_type[:50], object_id[:200])
    request_id = request_id if request_id is not None else current_request_id.get()
    request_id = None if request_id is None else request_id[:64]
    h = event_hash(prev, at=at, actor=actor, action=action, object_type=object_type,
                   object_id=object_id, detail=detail, request_id=request_id)
    event = AuditEvent(at=at, prev_hash=prev, hash=h, actor=actor, action=action,
                       object_type=object_type, object_id=object_id, detail=detail,
                       request_id=request_id)
    session.add(event)
    session.flush()
    head.value = f"{event.id}:{h}"
    session.flush()
    return event


def list_audit_events(
    session: Session, *, action: str | None = None, limit: int = 100,
    object_id: str | None = None, before_id: int | None = None,
) -> list[AuditEvent]:
    """The newest events first (optionally only ``action`` / ``object_id``, and only
    those with id < ``before_id``: paging), at most ``limit``."""
    q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if action is not None:
        q = q.where(AuditEvent.action == action)
    if object_id is not None:
        q = q.where(AuditEvent.object_id == object_id)
    if before_id is not None:
        q = q.where(AuditEvent.id < before_id)
    return list(session.execute(q).scalars())


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """Result of :func:`verify_chain`: ``ok``; ``checked`` events; for a broken chain the
    id of the first event at fault (``broken_id``; for a missing tail, the head's id)
    and ``reason``."""

    ok: bool
    checked: int
    broken_id: int | None = None
    reason: str | None = None


def _events(session: Session, batch: int = 1000) -> Iterator[AuditEvent]:
    last = 0
    while True:
        rows = list(session.execute(
            select(AuditEvent).where(AuditEvent.id > last).order_by(AuditEvent.id).limit(batch)
        ).scalars())
        if not rows:
            return
        yield from rows
        last = rows[-1].id


def verify_chain(session: Session) -> ChainCheck:
    """Walk every event in id order, recomputing each hash, and compare the last with the
    stored head. Returns the first broken link (an event changed, removed or inserted;
    the newest events removed)."""
    prev = GENESIS_HASH
    n = 0
    last_id = 0
    for ev in _events(session):
        if ev.prev_hash != prev:
            return ChainCheck(False, n, ev.id,
                              "prev_hash does not match the previous event's hash "
                              "(an event before it was changed or removed)")
        h = event_hash(prev, at=ev.at, actor=ev.actor, action=ev.action,
                       object_type=ev.object_type, object_id=ev.object_id,
                       detail=ev.detail, request_id=ev.request_id)
        if ev.hash != h:
            return ChainCheck(False, n, ev.id, "stored hash does not match the event's fields "
                                               "(the event was changed)")
        prev, last_id = h, ev.id
        n += 1
    head = session.execute(
        select(StoreMeta.value).where(StoreMeta.key == HEAD_KEY)
    ).scalar_one_or_none()
    if head is not None and head != f"{last_id}:{prev}":
        head_id = int(head.partition(":")[0] or 0)
        return ChainCheck(False, n, head_id,
                          f"the chain's head names event {head_id} but the last event is "
                          f"{last_id} (the newest events were removed or changed)")
    return ChainCheck(True, n)
