"""The bank change log: nothing missed, nothing twice, even when writers commit out of order."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bastion.store import bank_repository as repo
from bastion.store.change_log import (
    ChangeCursor,
    ChangeFollower,
    SnapshotRequired,
    current_cursor,
    load_snapshot,
    purge_changes,
)
from bastion.store.database import Database
from bastion.store.models import BankChange
from bastion.store.types import utcnow

PDQ = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"


def _hex(i: int) -> str:
    return f"{i:064x}"


def _make_bank(db: Database, name: str = "b") -> int:
    with db.write() as s:
        return repo.create_bank(s, name=name, label="test").id


def _add(db: Database, bank: str, *values: str) -> list[int]:
    with db.write() as s:
        b = repo.get_bank(s, bank)
        stored, _ = repo.add_entries(s, b, [repo.NewEntry("sha256", v) for v in values])
        return [e.id for e in stored]


def test_swapped_commit_order_is_not_missed(db: Database) -> None:
    """Writer A begins first and takes the lower sequence number but commits last."""
    _make_bank(db)
    follower = ChangeFollower(db, current_cursor(db))
    a_wrote = threading.Event()
    b_done = threading.Event()
    release_a = threading.Event()
    errors: list[BaseException] = []

    def writer_a() -> None:
        try:
            with db.write() as s:
                b = repo.get_bank(s, "b")
                repo.add_entries(s, b, [repo.NewEntry("sha256", _hex(1))])
                a_wrote.set()
                # PostgreSQL: B commits while A is open. SQLite: B waits for our lock.
                if db.is_postgresql:
                    release_a.wait(timeout=10.0)
                else:
                    b_done.wait(timeout=0.5)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            a_wrote.set()

    ta = threading.Thread(target=writer_a)
    ta.start()
    assert a_wrote.wait(10)
    tb_ids: list[int] = []

    def writer_b() -> None:
        tb_ids.extend(_add(db, "b", _hex(2)))
        b_done.set()

    tb = threading.Thread(target=writer_b)
    tb.start()
    if db.is_postgresql:
        # B commits first, although A took its sequence number first.
        assert b_done.wait(10)
        first = follower.poll()
        assert [c.entry.value for c in first if c.entry] == [_hex(2)]
        seq_b = first[0].seq
        release_a.set()
        ta.join(10)
        with db.read() as s:
            seq_a = s.execute(
                select(BankChange.seq).where(BankChange.kind == "entry_added")
                .order_by(BankChange.seq)
            ).scalars().first()
            # The naive follower ("everything after the last seq I saw") misses A:
            naive = s.execute(select(BankChange.seq).where(BankChange.seq > seq_b)).all()
        assert seq_a is not None and seq_a < seq_b
        assert naive == []
        second = follower.poll()
        assert [c.entry.value for c in second if c.entry] == [_hex(1)]
        assert second[0].seq == seq_a
    else:
        ta.join(10)
        tb.join(10)
        got = follower.poll()
        assert [c.entry.value for c in got if c.entry] == [_hex(1), _hex(2)]
    tb.join(10)
    assert not errors
    assert follower.poll() == []


def test_concurrent_writers_with_rollbacks_nothing_missed(db: Database) -> None:
    """Several writers commit and roll back at random while a follower polls."""
    _make_bank(db)
    follower = ChangeFollower(db, current_cursor(db))
    committed: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    delivered: list[str] = []
    errors: list[BaseException] = []
    n_writers, per_writer = 4, 12

    def writer(w: int) -> None:
        rnd = random.Random(w)
        try:
            for k in range(per_writer):
                value = _hex(1000 * (w + 1) + k)
                rollback = rnd.random() < 0.25
                try:
                    with db.write() as s:
                        b = repo.get_bank(s, "b")
                        repo.add_entries(s, b, [repo.NewEntry("sha256", value)])
                        time.sleep(rnd.uniform(0, 0.02))
                        if rollback:
                            raise _Rollback
                except _Rollback:
                    continue
                with lock:
                    committed.add(value)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def follow() -> None:
        try:
            while not stop.is_set():
                delivered.extend(c.entry.value for c in follower.poll() if c.entry)
                time.sleep(0.005)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    tf = threading.Thread(target=follow)
    tf.start()
    writers = [threading.Thread(target=writer, args=(w,)) for w in range(n_writers)]
    for t in writers:
        t.start()
    for t in writers:
        t.join(60)
    stop.set()
    tf.join(10)
    delivered.extend(c.entry.value for c in follower.poll() if c.entry)
    assert not errors
    assert len(committed) > n_writers * per_writer // 2
    assert sorted(delivered) == sorted(committed)  # each committed change exactly once


class _Rollback(Exception):
    pass


def test_snapshot_then_follow(db: Database) -> None:
    """A snapshot taken while a writer is open is completed by the follower."""
    _make_bank(db, "x")
    _add(db, "x", _hex(10), _hex(11))
    if db.is_postgresql:
        with db.write() as s:
            b = repo.get_bank(s, "x")
            repo.add_entries(s, b, [repo.NewEntry("sha256", _hex(12))])
            snap = load_snapshot(db)  # taken while this transaction is open
        assert sorted(e.value for e in snap.entries) == [_hex(10), _hex(11)]
    else:
        snap = load_snapshot(db)
        _add(db, "x", _hex(12))
        assert sorted(e.value for e in snap.entries) == [_hex(10), _hex(11)]
    follower = ChangeFollower(db, ChangeCursor.loads(snap.cursor.dumps()))
    got = follower.poll()
    assert [(c.kind, c.entry.value) for c in got if c.entry] == [("entry_added", _hex(12))]
    assert {b.name for b in snap.banks.values()} == {"x"}


def test_every_kind_is_logged_in_order(db: Database) -> None:
    follower = ChangeFollower(db, current_cursor(db))
    _make_bank(db, "k")
    (eid,) = _add(db, "k", _hex(5))
    with db.write() as s:
        b = repo.get_bank(s, "k")
        e = repo.get_entry(s, eid)
        repo.set_entry_enabled(s, b, e, False, until=utcnow() + timedelta(days=1))
    with db.write() as s:
        b = repo.get_bank(s, "k")
        e = repo.get_entry(s, eid)
        repo.set_entry_enabled(s, b, e, True)
        repo.update_entry(s, b, e, classification="A1")
    with db.write() as s:
        b = repo.get_bank(s, "k")
        repo.update_bank(s, b, thresholds={"pdq": 20})
        repo.update_bank(s, b, enabled=False)
    with db.write() as s:
        b = repo.get_bank(s, "k")
        repo.update_bank(s, b, enabled=True)
    with db.write() as s:
        b = repo.get_bank(s, "k")
        repo.delete_entry(s, b, repo.get_entry(s, eid))
        repo.delete_bank(s, b)
    kinds = [c.kind for c in follower.poll()]
    assert kinds == [
        "bank_created",
        "entry_added",
        "entry_disabled",
        "entry_enabled",
        "entry_updated",
        "bank_updated",
        "bank_disabled",
        "bank_enabled",
        "entry_deleted",
        "bank_deleted",
    ]


def test_bank_enabled_carries_entries_and_rolled_back_changes_never_appear(db: Database) -> None:
    _make_bank(db, "e")
    _add(db, "e", _hex(1), _hex(2))
    with db.write() as s:
        repo.update_bank(s, repo.get_bank(s, "e"), enabled=False)
    follower = ChangeFollower(db, current_cursor(db))
    with pytest.raises(_Rollback), db.write() as s:
        repo.update_bank(s, repo.get_bank(s, "e"), enabled=True)
        raise _Rollback
    assert follower.poll() == []
    with db.write() as s:
        repo.update_bank(s, repo.get_bank(s, "e"), enabled=True)
    (change,) = follower.poll()
    assert change.kind == "bank_enabled"
    assert change.bank is not None and change.bank.enabled
    assert sorted(e.value for e in change.bank_entries or ()) == [_hex(1), _hex(2)]


def test_purge_past_cursor_requires_snapshot(db: Database) -> None:
    _make_bank(db, "p")
    _add(db, "p", _hex(1))
    with db.write() as s:  # make both rows ten days old
        s.execute(update(BankChange).values(created_at=utcnow() - timedelta(days=10)))
    # A follower whose last poll was 30 days ago, and one that is current.
    old = ChangeFollower(db, ChangeCursor(db.dialect, polled_at=time.time() - 30 * 86400))
    fresh = ChangeFollower(db, current_cursor(db))
    with db.write() as s:
        deleted = purge_changes(s, older_than=utcnow() - timedelta(days=7))
    assert deleted == 2
    with pytest.raises(SnapshotRequired):
        old.poll()
    _add(db, "p", _hex(2))
    assert [c.entry.value for c in fresh.poll() if c.entry] == [_hex(2)]


def test_cursor_for_another_dialect_is_refused(db: Database) -> None:
    other = "sqlite" if db.is_postgresql else "postgresql"
    with pytest.raises(SnapshotRequired):
        ChangeFollower(db, ChangeCursor(other))
