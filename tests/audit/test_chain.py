"""The audit log's hash chain: appended events verify; a changed, removed or truncated
event is found and named (on SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools

from sqlalchemy import delete, text, update

from bastion.store.audit import GENESIS_HASH, list_audit_events, record_audit_event, verify_chain
from bastion.store.database import Database
from bastion.store.models import AuditEvent


def _append(db: Database, n: int) -> list[int]:
    ids = []
    with db.write() as s:
        for i in range(n):
            ev = record_audit_event(s, actor="user:1", action="case.view", object_type="case",
                                    object_id=str(i), detail={"n": i}, request_id=f"r{i}")
            ids.append(ev.id)
    return ids


def test_chain_verifies_and_links(db: Database) -> None:
    ids = _append(db, 5)
    with db.read() as s:
        check = verify_chain(s)
        events = [(e.id, e.prev_hash, e.hash) for e in reversed(list_audit_events(s, limit=10))]
    assert check.ok and check.checked == 5
    assert events[0][1] == GENESIS_HASH
    for a, b in itertools.pairwise(events):
        assert b[1] == a[2]
    assert [e[0] for e in events] == ids


def test_changed_event_is_named(db: Database) -> None:
    ids = _append(db, 5)
    with db.write() as s:
        s.execute(update(AuditEvent).where(AuditEvent.id == ids[2]).values(actor="user:9"))
    with db.read() as s:
        check = verify_chain(s)
    assert not check.ok and check.broken_id == ids[2] and "changed" in (check.reason or "")


def test_removed_event_breaks_the_next_link(db: Database) -> None:
    ids = _append(db, 5)
    with db.write() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.id == ids[1]))
    with db.read() as s:
        check = verify_chain(s)
    assert not check.ok and check.broken_id == ids[2]


def test_removed_tail_is_found_by_the_head(db: Database) -> None:
    ids = _append(db, 3)
    with db.write() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.id == ids[2]))
    with db.read() as s:
        check = verify_chain(s)
    assert not check.ok and check.broken_id == ids[2]


def test_detail_tampered_in_raw_sql(db: Database) -> None:
    ids = _append(db, 2)
    with db.write() as s:
        s.execute(text("UPDATE audit_events SET detail = :d WHERE id = :i"),
                  {"d": '{"n": 7}', "i": ids[0]})
    with db.read() as s:
        check = verify_chain(s)
    assert not check.ok and check.broken_id == ids[0]


def test_events_from_before_the_chain_are_chained_by_the_migration(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bastion.store.database import migrate

    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrate(database, "0003")
        with database.engine.begin() as conn:
            for i in range(3):
                conn.execute(text(
                    "INSERT INTO audit_events (at, actor, action, object_type, object_id, detail)"
                    " VALUES ('2025-01-01 00:00:0' || :i, 'cli', 'bank.create', 'bank', :i,"
                    " '{\"k\": 1}')"), {"i": i})
        migrate(database)
        ids = _append(database, 1)
        with database.read() as s:
            check = verify_chain(s)
        assert check.ok and check.checked == 4 and ids[0] == 4
    finally:
        database.dispose()
