"""Content log writes and retro-hunt: the picture uploaded before its hash was known is
still found.

Every scanned item's signals (never its bytes) go into the content log
(:func:`log_scan`, :mod:`bastion.store.content_log`). When entries are added to a bank (or
enabled again), :func:`retrohunt_entries` searches the log for them with the same rules as
live matching: exact hashes by equality; PDQ within the bank's threshold, trying the logged
pictures' 8 dihedral hashes, and comparing only variant pairs that show the same part of a
picture (:func:`bastion.signals.robust.pair_threshold`). New matches are stored (once per
logged item and entry) and listed by ``GET /v1/retrohunt`` and ``bastion retrohunt``.

:class:`RetrohuntFollower` follows the bank change log from a cursor persisted in the store
(``store_meta`` key :data:`CURSOR_KEY`), so each run retro-hunts exactly the entries added
or enabled since the previous run; with no cursor yet it retro-hunts every enabled entry.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.scan.matcher import EXACT_NAMES
from bastion.scan.service import ScanResult
from bastion.signals.base import Variant
from bastion.signals.pdq import PDQ_THRESHOLD
from bastion.signals.robust import pair_threshold
from bastion.store import content_log as store_log
from bastion.store.change_log import (
    ChangeCursor,
    ChangeFollower,
    SnapshotRequired,
    current_cursor,
    load_snapshot,
)
from bastion.store.database import Database
from bastion.store.models import StoreMeta
from bastion.store.records import BankRecord, EntryRecord
from bastion.store.types import utcnow

#: Where the retro-hunt follower keeps its change-log cursor.
CURSOR_KEY = "retrohunt.cursor"


def log_scan(
    db: Database, result: ScanResult, *, retention_days: int, content_id: str | None = None
) -> int:
    """Record one scanned item's signals in the content log (its own unit of work) and
    return its log id. ``retention_days`` is only checked here (purging is
    :func:`purge`'s job)."""
    if retention_days <= 0:
        raise ValueError("retention_days must be positive")
    with db.write() as session:
        return store_log.log_item(
            session,
            signals=result.signals,
            content_id=content_id or result.content_id,
            source=result.path,
            media_type=result.media_type,
        )


def log_scans(db: Database, results: Sequence[ScanResult]) -> list[int]:
    """Record several scanned items in one unit of work (what ``bastion scan`` does every
    :data:`LOG_BATCH` files); returns their log ids in order."""
    if not results:
        return []
    with db.write() as session:
        return [
            store_log.log_item(
                session, signals=r.signals, content_id=r.content_id, source=r.path,
                media_type=r.media_type,
            )
            for r in results
        ]


#: Scanned items written to the content log per transaction by ``bastion scan``.
LOG_BATCH = 200


def purge(db: Database, *, retention_days: int) -> int:
    """Delete content-log items older than ``retention_days``; returns how many."""
    with db.write() as session:
        return store_log.purge_content_log(session, days=retention_days)


def _variant(obj: dict[str, object] | None) -> Variant:
    try:
        return Variant.from_json(obj)
    except Exception:
        return Variant("stored")


def find_matches(
    session: Session,
    entries: Sequence[EntryRecord],
    banks: dict[int, BankRecord],
    *,
    since_days: int | None = None,
) -> list[store_log.RetrohuntMatchIn]:
    """Logged signals matching ``entries`` (enabled entries of enabled banks), as
    :class:`~bastion.store.content_log.RetrohuntMatchIn` rows, not yet stored."""
    since = None if since_days is None else utcnow() - timedelta(days=since_days)
    out: list[store_log.RetrohuntMatchIn] = []
    live = [e for e in entries if e.enabled and banks.get(e.bank_id) is not None
            and banks[e.bank_id].enabled]
    for name in EXACT_NAMES:
        group = [e for e in live if e.signal_type == name]
        if not group:
            continue
        by_value: dict[str, list[EntryRecord]] = {}
        for e in group:
            by_value.setdefault(e.value, []).append(e)
        for logged in store_log.find_exact(session, name, list(by_value), since=since):
            for e in by_value.get(logged.value, []):
                out.append(store_log.RetrohuntMatchIn(logged, e, banks[e.bank_id].name, 0))
    pdq = [e for e in live if e.signal_type == "pdq"]
    if pdq:
        limit = max(banks[e.bank_id].threshold_for("pdq", PDQ_THRESHOLD) for e in pdq)
        by_value = {}
        for e in pdq:
            by_value.setdefault(e.value, []).append(e)
        hits = store_log.find_pdq_near(
            session, list(by_value), threshold=limit, since=since
        )
        best: dict[tuple[int, int], store_log.RetrohuntMatchIn] = {}
        for hit in hits:
            for e in by_value[hit.query]:
                bank = banks[e.bank_id]
                query_variant = _variant(hit.signal.variant)
                if hit.signal.signal_type == "vpdq":
                    query_variant = Variant("frame", query_variant.index,
                                            query_variant.timestamp_s)
                t = pair_threshold(
                    query_variant, _variant(e.variant), bank.threshold_for("pdq", PDQ_THRESHOLD)
                )
                if t is None or hit.distance > t:
                    continue
                m = store_log.RetrohuntMatchIn(
                    hit.signal, e, bank.name, hit.distance, hit.transform
                )
                key = (hit.signal.item_id, e.id)
                if key not in best or m.distance < best[key].distance:
                    best[key] = m
        out.extend(best.values())
    return out


@dataclass(frozen=True, slots=True)
class RetrohuntRun:
    """What one retro-hunt run did: entries searched for, matches found (``matches``), of
    which ``new`` were not stored before."""

    entries: int
    found: int
    new: int
    matches: tuple[store_log.RetrohuntMatchIn, ...] = ()


def retrohunt_entries(
    db: Database, entries: Sequence[EntryRecord], banks: dict[int, BankRecord]
) -> RetrohuntRun:
    """Search the content log for ``entries`` and store the new matches (one unit of
    work). Returns counts."""
    with db.write() as session:
        found = _without_own_item(session, find_matches(session, entries, banks))
        new = store_log.record_retrohunt_matches(session, found)
    return RetrohuntRun(len(entries), len(found), new, tuple(found))


#: An entry's ``source`` when a reviewer's decision added it (the confirmed bank).
_REVIEW_SOURCE = re.compile(r"^review:case:(\d{1,19})$")


def _without_own_item(
    session: Session, found: list[store_log.RetrohuntMatchIn]
) -> list[store_log.RetrohuntMatchIn]:
    """``found`` without the matches of an item against the entries its own review added
    (source ``review:case:N``: the case's ``content_id``): confirming an item must find
    its earlier copies, not report the item itself again."""
    cases = {int(m.group(1)) for r in found
             if (m := _REVIEW_SOURCE.match(r.entry.source or "")) is not None}
    if not cases:
        return found
    from bastion.store.models_review import Case

    content_of = dict(session.execute(
        select(Case.id, Case.content_id).where(Case.id.in_(cases))).tuples().all())

    def own(r: store_log.RetrohuntMatchIn) -> bool:
        m = _REVIEW_SOURCE.match(r.entry.source or "")
        return (m is not None and r.signal.content_id is not None
                and content_of.get(int(m.group(1))) == r.signal.content_id)

    return [r for r in found if not own(r)]


class RetrohuntFollower:
    """Retro-hunts the entries added or enabled since the last run (cursor in the store)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _cursor(self) -> ChangeCursor | None:
        with self.db.read() as session:
            row = session.get(StoreMeta, CURSOR_KEY)
            return None if row is None else ChangeCursor.loads(row.value)

    def _save(self, session: Session, cursor: ChangeCursor) -> None:
        row = session.get(StoreMeta, CURSOR_KEY)
        if row is None:
            session.add(StoreMeta(key=CURSOR_KEY, value=cursor.dumps()))
        else:
            row.value = cursor.dumps()

    def run_once(self) -> RetrohuntRun:
        """One run: new entries since the cursor (all enabled entries the first time, or
        after the change log was purged past the cursor)."""
        cursor = self._cursor()
        entries: list[EntryRecord] = []
        banks: dict[int, BankRecord]
        try:
            if cursor is None:
                raise SnapshotRequired("first run")
            follower = ChangeFollower(self.db, cursor)
            snap_banks = load_snapshot_banks(self.db)
            changes = follower.poll()
            banks = snap_banks
            for ch in changes:
                if ch.bank is not None:
                    banks[ch.bank_id] = ch.bank
                if ch.kind in ("entry_added", "entry_enabled", "entry_updated") and ch.entry:
                    entries.append(ch.entry)
                elif ch.kind == "bank_enabled":
                    entries.extend(ch.bank_entries or ())
            new_cursor = follower.cursor
        except SnapshotRequired:
            new_cursor = current_cursor(self.db)
            if _log_is_empty(self.db):
                # Nothing was logged before this cursor: no entry can match earlier content.
                with self.db.write() as session:
                    self._save(session, new_cursor)
                return RetrohuntRun(0, 0, 0)
            snap = load_snapshot(self.db)
            banks, entries = snap.banks, list(snap.entries)
        run = retrohunt_entries(self.db, entries, banks)
        with self.db.write() as session:
            self._save(session, new_cursor)
        return run


def _log_is_empty(db: Database) -> bool:
    from sqlalchemy import select

    from bastion.store.models import ContentItem

    with db.read() as session:
        return session.execute(select(ContentItem.id).limit(1)).first() is None


def load_snapshot_banks(db: Database) -> dict[int, BankRecord]:
    """Every bank's current settings, by id."""
    from bastion.store import bank_repository as repo

    with db.read() as session:
        return {b.id: BankRecord.from_row(b) for b in repo.list_banks(session)}
