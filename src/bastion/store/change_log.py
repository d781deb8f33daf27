"""The bank change log, and how every process follows it to keep its indexes fresh.

Writers
-------
Every change that affects matching writes one ``bank_changes`` row **in the same
transaction** as the change itself (:func:`record_change`): an entry added, enabled,
disabled, updated or deleted; a bank created, enabled, disabled, deleted or updated
(thresholds, label, name). The row carries the object's state after the change (for a
deletion: before), so a follower never has to look the object up.

Readers
-------
A process loads a :class:`Snapshot` once (:func:`load_snapshot` or
:func:`read_snapshot`), builds its indexes, then calls :meth:`ChangeFollower.poll` about
every 0.2-1 s and applies the returned :class:`Change` objects in place. How a consumer
applies them (the contract the matcher relies on):

* keep bank state per ``bank_id`` (from ``Snapshot.banks`` and every ``bank_*`` change);
* ``entry_added`` / ``entry_enabled`` / ``entry_updated`` with ``entry.enabled``: upsert
  the entry by id if its bank is known and enabled, else ignore it;
* ``entry_disabled``, ``entry_deleted`` (or ``entry_updated`` with ``enabled`` false):
  remove the entry by id if present (a no-op otherwise);
* ``bank_created`` / ``bank_updated``: store the bank's new settings (thresholds, label);
* ``bank_disabled`` / ``bank_deleted``: remove every entry of that bank;
* ``bank_enabled``: the change carries ``bank_entries``, the bank's enabled entries read in
  the same snapshot as the poll: upsert them all.

Every operation is an idempotent "set state", so applying a change twice is harmless.
Changes to one object (a bank or an entry) arrive in the order they committed, because the
change row is written after the object's row is locked. Changes to different objects may
arrive in a different order than they committed (see below); the rules above give the
same final state in any such order.

Why "everything after the last sequence number I saw" is wrong, and what is done instead
------------------------------------------------------------------------------------------
On PostgreSQL, a transaction takes its ``seq`` from a sequence at insert time but becomes
visible only at commit: writer A takes seq 7, writer B takes seq 8 and commits, a follower
reads 8 and moves its cursor past it, then A commits 7, which the follower never reads.

**PostgreSQL: transaction ids and snapshot xmin.** Each change row also stores its
writing transaction's id (``xid``, ``pg_current_xact_id()``). A follower polls inside one
``REPEATABLE READ`` snapshot S and reads ``xmin(S)`` (``pg_snapshot_xmin``): every
transaction with an id below ``xmin(S)`` has finished, committed or rolled back, so no row
with such an id can still appear. The cursor is ``(xmin of the previous poll, the seqs
already delivered whose xid is at or above it)``. A poll reads the rows with
``xid >= cursor.xmin``, delivers those not yet delivered, and keeps as the new cursor
``xmin(S)`` and the delivered seqs with ``xid >= xmin(S)``. A row invisible at one poll
belonged to a transaction still running then, so its xid is at or above that poll's xmin
and the next poll reads it: nothing is missed, nothing is delivered twice, and a rolled
back transaction's rows simply never appear (no grace period is needed).
*Cost:* each poll re-reads the changes committed since the oldest transaction that was
still writing at the previous poll began (one index range scan on ``xid``); a long bank
import makes polls re-read the other writers' changes of that period, and the cursor
holds their seqs (a few bytes each), until the import finishes. Writers never wait for
each other on the log.

**SQLite** has one writer at a time, holding the write lock from its first write (here:
from ``BEGIN IMMEDIATE``) to its commit, and ``bank_changes`` uses ``AUTOINCREMENT`` (so a
purged number is never reused): sequence order is commit order, and the cursor is simply
the last ``seq`` delivered.

Retention: :func:`purge_changes` deletes old rows and records the purge horizon; a
follower whose cursor lies behind it gets :class:`SnapshotRequired` and must reload. On
SQLite the horizon is the last purged ``seq`` (exact). On PostgreSQL it is the purge's
time cut-off: a follower whose last poll began less than :data:`PURGE_MARGIN_S` after
the cut-off may have missed a purged row and must reload (transaction ids cannot be used:
snapshot xmin is cluster-wide and may lag far behind the ids of rows already delivered).
This assumes no transaction writing bank changes stays open longer than the margin.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from bastion.errors import InvalidInput, NotReady
from bastion.store.database import Database
from bastion.store.models import BANK_CHANGES, Bank, BankChange, BankEntry, StoreMeta
from bastion.store.records import BankRecord, EntryRecord
from bastion.store.types import utcnow

ChangeKind = Literal[
    "entry_added",
    "entry_enabled",
    "entry_disabled",
    "entry_updated",
    "entry_deleted",
    "bank_created",
    "bank_updated",
    "bank_enabled",
    "bank_disabled",
    "bank_deleted",
]

ENTRY_KINDS: Final = frozenset(
    {"entry_added", "entry_enabled", "entry_disabled", "entry_updated", "entry_deleted"}
)
BANK_KINDS: Final = frozenset(
    {"bank_created", "bank_updated", "bank_enabled", "bank_disabled", "bank_deleted"}
)

#: Rows read per batch when loading a snapshot.
SNAPSHOT_BATCH = 50_000

_PURGED_SEQ_KEY = "bank_changes.purged_through_seq"
_PURGED_BEFORE_KEY = "bank_changes.purged_before"

#: Seconds after a purge's cut-off before which a PostgreSQL follower's last poll must not
#: have begun (the longest a transaction writing bank changes may stay open).
PURGE_MARGIN_S = 3600.0


class SnapshotRequired(NotReady):
    """The follower's cursor lies behind the change log's purge horizon (or is from
    another database): reload a snapshot and start a new follower."""

    code = "snapshot-required"


@dataclass(frozen=True, slots=True)
class Change:
    """One change from the log (see the module docstring for how to apply it).

    ``entry`` is set for ``entry_*`` kinds (the entry's state after the change; before it
    for ``entry_deleted``); ``bank`` for ``bank_*`` kinds (after the change).
    ``bank_entries`` is set only for ``bank_enabled``: the bank's enabled entries as of the
    poll that returned this change. ``at`` is when the change was written (UTC).
    """

    seq: int
    kind: ChangeKind
    bank_id: int
    at: datetime
    entry: EntryRecord | None = None
    bank: BankRecord | None = None
    bank_entries: tuple[EntryRecord, ...] | None = None


@dataclass(frozen=True, slots=True)
class ChangeCursor:
    """Where a follower stands in the log.

    SQLite: ``seq`` is the last sequence number delivered. PostgreSQL: ``xmin`` is the
    snapshot xmin of the last poll and ``seen`` the sequence numbers already delivered
    whose transaction id is at or above it. :meth:`dumps` / :meth:`loads` give a compact
    string to persist next to an index snapshot.
    """

    dialect: str
    seq: int = 0
    xmin: int = 0
    seen: frozenset[int] = field(default_factory=frozenset)
    #: When the poll (or snapshot) that produced this cursor began, Unix seconds.
    polled_at: float = 0.0

    def dumps(self) -> str:
        """A JSON string for this cursor."""
        return json.dumps(
            {
                "d": self.dialect,
                "seq": self.seq,
                "xmin": self.xmin,
                "seen": sorted(self.seen),
                "t": self.polled_at,
            },
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, raw: str) -> ChangeCursor:
        """Inverse of :meth:`dumps`. Raises :class:`InvalidInput` for a malformed cursor."""
        try:
            obj = json.loads(raw)
            return cls(
                dialect=str(obj["d"]),
                seq=int(obj["seq"]),
                xmin=int(obj["xmin"]),
                seen=frozenset(int(s) for s in obj["seen"]),
                polled_at=float(obj.get("t", 0.0)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"malformed change-log cursor: {exc}") from None


@dataclass(slots=True)
class Snapshot:
    """Everything matching needs at start-up, consistent with :attr:`cursor`.

    ``banks``: every bank (enabled or not) by id. ``entries``: the enabled entries of
    enabled banks. Follow on with ``ChangeFollower(db, snapshot.cursor)``.
    """

    banks: dict[int, BankRecord]
    entries: list[EntryRecord]
    cursor: ChangeCursor


def record_change(
    session: Session,
    kind: ChangeKind,
    *,
    bank: Bank | BankRecord,
    entry: BankEntry | EntryRecord | None = None,
) -> None:
    """Append one change-log row to ``session``'s transaction.

    Call it **after** the changed row has been written or locked in this transaction (the
    function flushes pending ORM changes first, which takes the row lock), so that changes
    to one object get sequence numbers in commit order. Raises :class:`ValueError` when an
    ``entry_*`` change lacks its entry.
    """
    if kind in ENTRY_KINDS and entry is None:
        raise ValueError(f"{kind} needs the entry")
    session.flush()
    bank_rec = bank if isinstance(bank, BankRecord) else BankRecord.from_row(bank)
    payload: dict[str, Any]
    entry_id: int | None = None
    if entry is not None:
        entry_rec = entry if isinstance(entry, EntryRecord) else EntryRecord.from_row(entry)
        payload = {"entry": entry_rec.to_json()}
        entry_id = entry_rec.id
    else:
        payload = {"bank": bank_rec.to_json()}
    session.execute(
        insert(BankChange).values(
            kind=kind,
            bank_id=bank_rec.id,
            entry_id=entry_id,
            payload=payload,
            created_at=utcnow(),
        )
    )


def record_entry_changes(
    session: Session, kind: ChangeKind, bank: Bank, entries: Sequence[EntryRecord]
) -> None:
    """Append one ``kind`` row per entry (bulk insert; same rules as :func:`record_change`)."""
    if not entries:
        return
    session.flush()
    now = utcnow()
    session.connection().execute(
        insert(BANK_CHANGES),
        [
            {
                "kind": kind,
                "bank_id": bank.id,
                "entry_id": e.id,
                "payload": {"entry": e.to_json()},
                "created_at": now,
            }
            for e in entries
        ],
    )


def _change_from_row(row: BankChange) -> Change:
    payload = row.payload or {}
    entry = EntryRecord.from_json(payload["entry"]) if "entry" in payload else None
    bank = BankRecord.from_json(payload["bank"]) if "bank" in payload else None
    return Change(
        seq=row.seq,
        kind=row.kind,  # type: ignore[arg-type]
        bank_id=row.bank_id,
        at=row.created_at,
        entry=entry,
        bank=bank,
    )


def _snapshot_xmin(session: Session) -> int:
    value = session.execute(
        text("SELECT (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint")
    ).scalar_one()
    return int(value)


def _meta_int(session: Session, key: str) -> int | None:
    raw = session.get(StoreMeta, key)
    return None if raw is None else int(raw.value)


_ENTRY_COLUMNS = (
    "id",
    "bank_id",
    "signal_type",
    "value",
    "variant",
    "item_key",
    "classification",
    "enabled",
    "disabled_until",
    "source",
    "external_id",
    "source_date",
    "note",
    "fp_votes",
    "created_at",
    "options",
)


def _iter_entries(
    session: Session,
    bank_id: int | None,
    batch_size: int,
    signal_types: Collection[str] | None = None,
) -> Any:
    """Enabled entries of enabled banks (of ``bank_id`` only, when given; of
    ``signal_types`` only, when given) as lists of :class:`EntryRecord`, ascending id;
    plain column rows, no ORM objects (fast loads)."""
    cols = [getattr(BankEntry, c) for c in _ENTRY_COLUMNS]
    last = 0
    while True:
        q = (
            select(*cols)
            .join(Bank, Bank.id == BankEntry.bank_id)
            .where(Bank.enabled.is_(True), BankEntry.enabled.is_(True), BankEntry.id > last)
            .order_by(BankEntry.id)
            .limit(batch_size)
        )
        if bank_id is not None:
            q = q.where(BankEntry.bank_id == bank_id)
        if signal_types is not None:
            q = q.where(BankEntry.signal_type.in_(sorted(signal_types)))
        rows = session.execute(q).all()
        if not rows:
            return
        yield [EntryRecord(*row) for row in rows]
        last = rows[-1][0]


def _cursor_now(db: Database, session: Session) -> ChangeCursor:
    started = time.time()
    if db.is_postgresql:
        xmin = _snapshot_xmin(session)
        seen = frozenset(
            session.execute(select(BankChange.seq).where(BankChange.xid >= xmin)).scalars()
        )
        return ChangeCursor("postgresql", xmin=xmin, seen=seen, polled_at=started)
    last = session.execute(select(func.max(BankChange.seq))).scalar_one_or_none()
    return ChangeCursor("sqlite", seq=int(last or 0), polled_at=started)


def read_snapshot(
    db: Database,
    on_batch: Callable[[list[EntryRecord]], None],
    *,
    batch_size: int = SNAPSHOT_BATCH,
    signal_types: Collection[str] | None = None,
) -> tuple[dict[int, BankRecord], ChangeCursor]:
    """Stream the enabled entries of enabled banks (of ``signal_types`` only, when given)
    to ``on_batch`` (lists of up to ``batch_size``, ascending id), all read in one snapshot,
    and return ``(banks, cursor)`` consistent with that snapshot. Use this to build large
    indexes without holding every :class:`EntryRecord` at once."""
    with db.read() as session:
        cursor = _cursor_now(db, session)
        banks = {
            b.id: BankRecord.from_row(b) for b in session.execute(select(Bank)).scalars()
        }
        for batch in _iter_entries(session, None, batch_size, signal_types):
            on_batch(batch)
    return banks, cursor


def load_snapshot(db: Database) -> Snapshot:
    """All banks, the enabled entries of enabled banks, and a consistent cursor."""
    entries: list[EntryRecord] = []
    banks, cursor = read_snapshot(db, entries.extend)
    return Snapshot(banks=banks, entries=entries, cursor=cursor)


def current_cursor(db: Database) -> ChangeCursor:
    """A cursor at the current end of the log (for a follower that needs only changes
    from now on, e.g. a retro-hunt worker watching for new entries)."""
    with db.read() as session:
        return _cursor_now(db, session)


class ChangeFollower:
    """Follows the bank change log from ``cursor`` (from a :class:`Snapshot`, or
    :func:`current_cursor`); one per process, used from one thread.

    >>> snap = load_snapshot(db)                       # doctest: +SKIP
    >>> follower = ChangeFollower(db, snap.cursor)     # doctest: +SKIP
    >>> for change in follower.poll(): apply(change)   # every ~0.5 s   # doctest: +SKIP

    ``poll()`` costs one short read transaction (plus one query per ``bank_enabled``
    change); it never blocks writers. See the module docstring for the guarantees.
    """

    def __init__(self, db: Database, cursor: ChangeCursor, *, max_batch: int = 100_000) -> None:
        if cursor.dialect != db.dialect:
            raise SnapshotRequired(
                f"cursor is for {cursor.dialect}, this store is {db.dialect}: reload a snapshot"
            )
        self.db = db
        self.cursor = cursor
        self.max_batch = max_batch

    def poll(self) -> list[Change]:
        """Return the changes committed since the last poll, each exactly once, ascending
        ``seq`` within the batch. Raises :class:`SnapshotRequired` when the log was purged
        past this follower's cursor."""
        started = time.time()
        with self.db.read() as session:
            if self.db.is_postgresql:
                changes = self._poll_postgresql(session, started)
            else:
                changes = self._poll_sqlite(session, started)
            return [self._complete(session, c) for c in changes]

    def _poll_sqlite(self, session: Session, started: float) -> list[Change]:
        purged = _meta_int(session, _PURGED_SEQ_KEY)
        if purged is not None and self.cursor.seq < purged:
            raise SnapshotRequired("the bank change log was purged past this follower's cursor")
        rows = (
            session.execute(
                select(BankChange)
                .where(BankChange.seq > self.cursor.seq)
                .order_by(BankChange.seq)
                .limit(self.max_batch)
            )
            .scalars()
            .all()
        )
        last = rows[-1].seq if rows else self.cursor.seq
        self.cursor = ChangeCursor("sqlite", seq=last, polled_at=started)
        return [_change_from_row(r) for r in rows]

    def _poll_postgresql(self, session: Session, started: float) -> list[Change]:
        xmin = _snapshot_xmin(session)
        purged = session.get(StoreMeta, _PURGED_BEFORE_KEY)
        if purged is not None:
            cut = datetime.fromisoformat(purged.value).timestamp()
            if self.cursor.polled_at < cut + PURGE_MARGIN_S:
                raise SnapshotRequired(
                    "the bank change log was purged past this follower's cursor"
                )
        rows = session.execute(
            select(BankChange.seq, BankChange.xid)
            .where(BankChange.xid >= self.cursor.xmin)
            .order_by(BankChange.seq)
        ).all()
        new_seqs = [seq for seq, _ in rows if seq not in self.cursor.seen]
        complete = len(new_seqs) <= self.max_batch
        new_seqs = new_seqs[: self.max_batch]
        delivered = set(new_seqs)
        if complete:
            # Everything visible below the new xmin is final: forget those seqs.
            # Every row read is now delivered; keep those a later poll reads again.
            seen = frozenset(seq for seq, xid in rows if xid is not None and xid >= xmin)
            self.cursor = ChangeCursor("postgresql", xmin=xmin, seen=seen, polled_at=started)
        else:
            # Partial batch: keep the old xmin so the rest is read next time.
            self.cursor = ChangeCursor(
                "postgresql",
                xmin=self.cursor.xmin,
                seen=self.cursor.seen | delivered,
                polled_at=self.cursor.polled_at,
            )
        out: list[Change] = []
        for start in range(0, len(new_seqs), 10_000):
            chunk = new_seqs[start : start + 10_000]
            got = session.execute(
                select(BankChange).where(BankChange.seq.in_(chunk)).order_by(BankChange.seq)
            ).scalars()
            out.extend(_change_from_row(r) for r in got)
        return out

    def _complete(self, session: Session, change: Change) -> Change:
        if change.kind != "bank_enabled":
            return change
        entries: list[EntryRecord] = []
        for batch in _iter_entries(session, change.bank_id, SNAPSHOT_BATCH):
            entries.extend(batch)
        return Change(
            seq=change.seq,
            kind=change.kind,
            bank_id=change.bank_id,
            at=change.at,
            entry=change.entry,
            bank=change.bank,
            bank_entries=tuple(entries),
        )


def purge_changes(session: Session, *, older_than: datetime) -> int:
    """Delete change-log rows written before ``older_than`` (aware UTC) and record the purge
    horizon, so that followers behind it get :class:`SnapshotRequired` instead of silently
    missing changes. Returns the number of rows deleted."""
    q = select(func.max(BankChange.seq)).where(BankChange.created_at < older_than)
    max_seq = session.execute(q).scalar_one_or_none()
    if max_seq is None:
        return 0
    result = session.execute(delete(BankChange).where(BankChange.created_at < older_than))
    seq_row = session.get(StoreMeta, _PURGED_SEQ_KEY)
    if seq_row is None:
        session.add(StoreMeta(key=_PURGED_SEQ_KEY, value=str(max_seq)))
    else:
        seq_row.value = str(max(int(seq_row.value), int(max_seq)))
    time_row = session.get(StoreMeta, _PURGED_BEFORE_KEY)
    if time_row is None:
        session.add(StoreMeta(key=_PURGED_BEFORE_KEY, value=older_than.isoformat()))
    elif datetime.fromisoformat(time_row.value) < older_than:
        time_row.value = older_than.isoformat()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
