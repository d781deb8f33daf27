"""Index snapshots: a restart loads the saved indexes and replays only the change log's
tail; a snapshot of another database is never used."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bastion.banks import service as banks
from bastion.banks.schemas import BankCreate
from bastion.scan.entry_table import EntryTable
from bastion.scan.service import MatchService
from bastion.signals.base import Signal
from bastion.store.database import Database, migrate


def _random_pdq(rng: np.random.Generator) -> str:
    bits = np.zeros(256, dtype=np.uint8)
    bits[rng.choice(256, 128, replace=False)] = 1
    return np.packbits(bits).tobytes().hex()


def test_restart_uses_snapshot_and_replays_tail(db: Database, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    values = [_random_pdq(rng) for _ in range(50)]
    with db.write() as session:
        banks.create(session, data=BankCreate(name="b", label="csam"))
        for v in values[:40]:
            banks.add_entry(session, name="b", fields={"signal_type": "pdq", "value": v,
                                                       "classification": "A2"})
        banks.add_entry(session, name="b", fields={"signal_type": "md5",
                                                   "value": "0" * 31 + "1"})
    snap_dir = tmp_path / "index"
    first = MatchService(db, snapshot_dir=snap_dir, snapshot_min_entries=1)
    first.start(background=False, follow=False)
    assert first.loaded_from == "store" and (snap_dir / "manifest.json").is_file()
    # Changes after the snapshot: 10 more entries, one deleted, the md5 disabled.
    with db.write() as session:
        for v in values[40:]:
            banks.add_entry(session, name="b", fields={"signal_type": "pdq", "value": v})
        gone = banks.list_entries(session, name="b", limit=1)[0]
        banks.delete_entry(session, name="b", entry_id=gone.id)
    second = MatchService(db, snapshot_dir=snap_dir)
    second.start(background=False, follow=False)
    assert second.loaded_from == "snapshot"
    for i, v in enumerate(values):
        hits = second.match_signals([Signal("pdq", v, 100)])
        if i == 0:
            assert hits == [], "deleted after the snapshot"
        else:
            assert len(hits) == 1 and hits[0].distance == 0, i
    assert second.match_signals([Signal("pdq", values[1], 100)])[0].classification == "A2"
    assert len(second.match_signals([Signal("md5", "0" * 31 + "1")])) == 1


def test_snapshot_of_another_database_is_ignored(db: Database, tmp_path: Path) -> None:
    with db.write() as session:
        banks.create(session, data=BankCreate(name="b"))
        banks.add_entry(session, name="b", fields={"signal_type": "md5", "value": "1" * 32})
    snap_dir = tmp_path / "index"
    MatchService(db, snapshot_dir=snap_dir, snapshot_min_entries=1).start(
        background=False, follow=False
    )
    other = Database(f"sqlite:///{tmp_path / 'other.db'}")
    migrate(other)
    svc = MatchService(other, snapshot_dir=snap_dir)
    svc.start(background=False, follow=False)
    assert svc.loaded_from == "store"
    assert svc.match_signals([Signal("md5", "1" * 32)]) == []


def test_entry_table_round_trip_and_size(tmp_path: Path) -> None:
    t = EntryTable()
    t.set(5, 2, "pdq", "whole", "B1", None)
    t.set(900_000, 3, "md5", "md5", None, None)
    t.set(7, 2, "pdq", "crop", None, {"kind": "crop", "index": 1, "detail": "centre-94"})
    assert t.get(6) is None and t.live == 3
    t.save(tmp_path / "t.npz")
    u = EntryTable.load(tmp_path / "t.npz")
    assert u.get(5) == (2, "pdq", "whole", "B1", None)
    assert u.get(7) == (2, "pdq", "crop", None, {"kind": "crop", "index": 1, "detail": "centre-94"})
    assert u.get(900_000) == (3, "md5", "md5", None, None)
    assert u.clear(5) == ("pdq", "whole") and u.get(5) is None and u.live == 2
    assert t.nbytes() <= 8 * 2_000_000  # 8 bytes per id slot
