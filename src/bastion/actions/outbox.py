"""The actions outbox: actions written with the decision that caused them, delivered later.

An action (hide, takedown, restore, suspend, preserve, report, share) is enqueued with
:func:`enqueue` in the caller's unit of work, the same database transaction as the verdict
or decision, so it exists exactly when its cause does. Workers (:mod:`bastion.actions.worker`)
then deliver it:

1. :func:`claim_due` takes up to ``limit`` due actions in one short transaction and leases
   them to a worker (``claimed_by``, ``claimed_until``). On PostgreSQL the candidate rows are
   locked with ``SELECT ... FOR UPDATE SKIP LOCKED``, so concurrent workers never take the
   same row; on SQLite the unit of work holds the single write lock (``BEGIN IMMEDIATE``).
   An action is due when it is pending, its ``next_attempt_at`` has come, no live lease holds
   it, and no *earlier* pending action has the same ``ordering_key`` (one content item's
   platform actions are delivered in order of creation). Bastion's own duties
   (:data:`INTERNAL_KINDS`: ``preserve`` and ``report``, which the law wants done as soon
   as reasonably possible) each get a lane of their own, so they never wait behind a
   platform webhook (a takedown retried for hours) of the same item.
2. The worker calls the platform outside any transaction.
3. :func:`record_delivered` or :func:`record_failed` stores the outcome if the worker still
   holds the lease. A failure is retried after ``backoff * 2**(attempts-1)`` seconds (capped
   at ``Settings.actions_backoff_max_s``) until ``deadline_at`` (creation plus
   ``Settings.actions_max_age_s``); then the action is ``dead`` (the dead-letter list:
   :func:`list_actions` with ``state="dead"``; :func:`retry` puts it back). A failure that
   no retry can cure (:attr:`bastion.actions.webhooks.DeliveryFailed.permanent`: no
   webhook endpoint configured for the kind) is recorded at once as ``blocked``
   (:func:`record_blocked`), listed with the dead ones (``failed=True``) and alerted on;
   once the operator fixes the configuration, :func:`retry` delivers it.

Delivery is at least once: a worker killed after the platform accepted a call but before
the outcome was stored leaves a lease that expires, and the action is sent again with the
same ``idempotency_key`` so the platform can drop the duplicate. A dead action does not hold
back later actions of the same content item (they would otherwise wait forever); retrying it
afterwards can therefore deliver it after them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import Session, aliased

from bastion.config import Settings
from bastion.errors import Conflict, InvalidInput, NotFound
from bastion.store.models_actions import ActionRow
from bastion.store.types import utcnow

ActionKind = Literal["hide", "takedown", "restore", "suspend", "preserve", "report", "share"]
ACTION_KINDS: tuple[str, ...] = get_args(ActionKind)
ActionState = Literal["pending", "delivered", "dead", "blocked"]
#: Every state, in the order ``counts`` reports them.
ACTION_STATES: tuple[str, ...] = get_args(ActionState)
#: States an operator must act on (the failed list): past the maximum age, or blocked by
#: a configuration error.
FAILED_STATES: tuple[str, ...] = ("dead", "blocked")
#: Kinds that are Bastion's own duties (preservation of evidence, the CyberTipline report),
#: not platform enforcement: they never wait behind a platform action of the same item.
INTERNAL_KINDS: frozenset[str] = frozenset({"preserve", "report"})

#: Seconds a claim lasts; a worker that has not finished by then is presumed dead.
LEASE_S = 300.0
#: Longest ``last_error`` kept, characters.
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Action:
    """One action as workers, the CLI and the API see it (times aware UTC)."""

    id: int
    kind: str
    content_id: str | None
    user_id: str | None
    case_id: str | None
    idempotency_key: str
    payload: dict[str, Any]
    state: str
    attempts: int
    created_at: datetime
    deadline_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        """The action as JSON (times ISO 8601) for ``bastion actions list --json``."""
        return {
            "id": self.id, "kind": self.kind, "content_id": self.content_id,
            "user_id": self.user_id, "case_id": self.case_id,
            "idempotency_key": self.idempotency_key, "payload": self.payload,
            "state": self.state, "attempts": self.attempts,
            "created_at": self.created_at.isoformat(),
            "deadline_at": self.deadline_at.isoformat(),
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "delivered_at": None if self.delivered_at is None else self.delivered_at.isoformat(),
            "last_error": self.last_error,
        }


def _view(row: ActionRow) -> Action:
    return Action(row.id, row.kind, row.content_id, row.user_id, row.case_id,
                  row.idempotency_key, dict(row.payload), row.state, row.attempts,
                  row.created_at, row.deadline_at, row.next_attempt_at, row.delivered_at,
                  row.last_error)


def enqueue(
    session: Session,
    *,
    kind: str,
    settings: Settings,
    content_id: str | None = None,
    user_id: str | None = None,
    case_id: str | None = None,
    payload: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Action:
    """Add one action to ``session``'s transaction (commit it with the decision).

    ``kind`` is one of :data:`ACTION_KINDS`; ``payload`` is JSON sent to the platform (ids
    and hashes only, never content). Actions of one ``content_id`` (else one ``user_id``)
    are delivered in order, except :data:`INTERNAL_KINDS`, each in a lane of its own
    (``<kind>:content:<id>``). ``idempotency_key`` defaults to a random 32-hex key; an existing
    key raises :class:`Conflict`. Raises :class:`InvalidInput` for an unknown kind.
    """
    if kind not in ACTION_KINDS:
        raise InvalidInput(f"unknown action kind {kind!r}; expected one of {ACTION_KINDS}")
    at = now or utcnow()
    key = idempotency_key or secrets.token_hex(16)
    if len(key) > 100:
        raise InvalidInput("idempotency_key longer than 100 characters")
    if session.execute(select(ActionRow.id).where(ActionRow.idempotency_key == key)).first():
        raise Conflict(f"an action with idempotency key {key} exists already")
    if content_id is not None:
        ordering = f"content:{content_id}"
    elif user_id is not None:
        ordering = f"user:{user_id}"
    else:
        ordering = f"key:{key}"
    if kind in INTERNAL_KINDS:
        ordering = f"{kind}:{ordering}"
    row = ActionRow(
        kind=kind, content_id=content_id, user_id=user_id, case_id=case_id,
        ordering_key=ordering, idempotency_key=key, payload=dict(payload or {}),
        state="pending", attempts=0, created_at=at,
        deadline_at=at + timedelta(seconds=settings.actions_max_age_s), next_attempt_at=at,
    )
    session.add(row)
    session.flush()
    return _view(row)


def claim_due(session: Session, *, worker: str, limit: int = 20,
              now: datetime | None = None, lease_s: float = LEASE_S) -> list[Action]:
    """Lease up to ``limit`` due actions to ``worker`` (see the module docstring), oldest
    first, and return them. Run it in its own short unit of work (``db.write()``)."""
    at = now or utcnow()
    earlier = aliased(ActionRow)
    internal = tuple(sorted(INTERNAL_KINDS))
    # Bastion's own duties are never held back, nor hold back a platform action, whatever
    # ordering key an older row was written with.
    blocked = exists().where(and_(
        earlier.ordering_key == ActionRow.ordering_key,
        earlier.id < ActionRow.id,
        earlier.state == "pending",
        earlier.kind.not_in(internal),
        ActionRow.kind.not_in(internal),
    ))
    q = (
        select(ActionRow)
        .where(ActionRow.state == "pending", ActionRow.next_attempt_at <= at,
               (ActionRow.claimed_until.is_(None)) | (ActionRow.claimed_until < at),
               ~blocked)
        .order_by(ActionRow.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True, of=ActionRow)
    rows = list(session.execute(q).scalars())
    until = at + timedelta(seconds=lease_s)
    for row in rows:
        row.claimed_by = worker[:100]
        row.claimed_until = until
    session.flush()
    return [_view(r) for r in rows]


def _claimed(session: Session, action_id: int, worker: str) -> ActionRow | None:
    row = session.get(ActionRow, action_id, with_for_update=True)
    if row is None or row.state != "pending" or row.claimed_by != worker:
        return None
    return row


def record_delivered(session: Session, action_id: int, *, worker: str,
                     now: datetime | None = None) -> bool:
    """Mark the action delivered if ``worker`` still holds it; False when the lease was lost
    (another worker took it over: it will deliver again, which the key makes harmless)."""
    row = _claimed(session, action_id, worker)
    if row is None:
        return False
    at = _end_attempt(row, now, None)
    row.state = "delivered"
    row.delivered_at = at
    return True


def _end_attempt(row: ActionRow, now: datetime | None, error: str | None) -> datetime:
    """Count one attempt of ``row`` ending now (or at ``now``) with ``error`` (None: it
    succeeded) and release the worker's lease; returns the attempt's time."""
    at = now or utcnow()
    row.attempts += 1
    row.last_attempt_at = at
    row.last_error = None if error is None else error[:MAX_ERROR_CHARS]
    row.claimed_by = None
    row.claimed_until = None
    return at


def backoff_s(attempts: int, settings: Settings) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1, 2, ...):
    ``actions_backoff_s * 2**(attempts-1)``, capped at ``actions_backoff_max_s``."""
    exp = min(max(attempts - 1, 0), 60)
    return float(min(settings.actions_backoff_s * (2 ** exp), settings.actions_backoff_max_s))


def record_failed(session: Session, action_id: int, *, worker: str, error: str,
                  settings: Settings, now: datetime | None = None) -> str | None:
    """Record a failed attempt if ``worker`` still holds the action: schedule the next
    attempt with exponential backoff, or dead-letter it when the next attempt would fall
    past ``deadline_at``. Returns the new state (``pending`` or ``dead``), or None when the
    lease was lost."""
    row = _claimed(session, action_id, worker)
    if row is None:
        return None
    at = _end_attempt(row, now, error)
    nxt = at + timedelta(seconds=backoff_s(row.attempts, settings))
    if nxt > row.deadline_at:
        if at >= row.deadline_at:
            row.state = "dead"
        else:
            row.next_attempt_at = row.deadline_at  # one last attempt at the deadline
    else:
        row.next_attempt_at = nxt
    return row.state


def record_blocked(session: Session, action_id: int, *, worker: str, error: str,
                   now: datetime | None = None) -> bool:
    """Record an attempt that failed for a reason no retry cures (a configuration error
    such as no webhook endpoint for the kind): the action becomes ``blocked`` at once,
    with ``error`` as its reason, until :func:`retry`. False when the lease was lost."""
    row = _claimed(session, action_id, worker)
    if row is None:
        return False
    _end_attempt(row, now, error)
    row.state = "blocked"
    return True


def list_actions(session: Session, *, state: str | None = None, content_id: str | None = None,
                 failed: bool = False, limit: int = 100) -> list[Action]:
    """Actions, newest first, optionally of one ``state`` (``dead`` is the dead-letter list),
    only the failed ones (``failed``: :data:`FAILED_STATES`, dead or blocked) or one
    ``content_id``; at most ``limit``."""
    q = select(ActionRow).order_by(ActionRow.id.desc()).limit(max(1, min(limit, 10_000)))
    if state is not None:
        q = q.where(ActionRow.state == state)
    if failed:
        q = q.where(ActionRow.state.in_(FAILED_STATES))
    if content_id is not None:
        q = q.where(ActionRow.content_id == content_id)
    return [_view(r) for r in session.execute(q).scalars()]


def get(session: Session, action_id: int) -> Action:
    """One action; raises :class:`NotFound`."""
    row = session.get(ActionRow, action_id)
    if row is None:
        raise NotFound(f"no action {action_id}")
    return _view(row)


def retry(session: Session, action_id: int, *, settings: Settings,
          now: datetime | None = None) -> Action:
    """Put a dead or blocked action back in the queue with a fresh maximum age (same
    idempotency key). Raises :class:`NotFound`, or :class:`Conflict` unless the action is
    ``dead`` or ``blocked``."""
    row = session.get(ActionRow, action_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no action {action_id}")
    if row.state not in FAILED_STATES:
        raise Conflict(f"action {action_id} is {row.state}; only dead or blocked actions "
                       "retry")
    at = now or utcnow()
    row.state = "pending"
    row.next_attempt_at = at
    row.deadline_at = at + timedelta(seconds=settings.actions_max_age_s)
    row.claimed_by = None
    row.claimed_until = None
    session.flush()
    return _view(row)


def retry_all_dead(session: Session, *, settings: Settings, now: datetime | None = None) -> int:
    """Retry every dead or blocked action; returns how many."""
    at = now or utcnow()
    res = session.execute(
        update(ActionRow).where(ActionRow.state.in_(FAILED_STATES)).values(
            state="pending", next_attempt_at=at, claimed_by=None, claimed_until=None,
            deadline_at=at + timedelta(seconds=settings.actions_max_age_s)))
    return int(getattr(res, "rowcount", 0) or 0)


def counts(session: Session) -> dict[str, int]:
    """Actions per state, every state present: ``{"pending": n, "delivered": n, "dead": n,
    "blocked": n}`` (for ``/metrics``: alert on ``dead`` or ``blocked`` > 0)."""
    from sqlalchemy import func

    out = dict.fromkeys(ACTION_STATES, 0)
    q = select(ActionRow.state, func.count()).group_by(ActionRow.state)
    for state, n in session.execute(q).all():
        out[str(state)] = int(n)
    return out
