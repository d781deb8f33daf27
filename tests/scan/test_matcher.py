"""The matcher against a real store: loading, per-bank thresholds, variants, freshness."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from bastion.banks import service as banks
from bastion.banks.schemas import BankCreate
from bastion.errors import NotReady
from bastion.scan.matcher import Matcher
from bastion.scan.service import MatchService
from bastion.signals.base import Signal
from bastion.signals.compute import hash_bytes, hash_file
from bastion.store.database import Database

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "images"
ORIG = DATA / "bridge-mods" / "aaa-orig.jpg"


def _pdq(result_signals: list[object]) -> Signal:
    for s in result_signals:
        if isinstance(s, Signal) and s.signal_type == "pdq" and s.variant.kind == "stored":
            return s
    raise AssertionError("no stored pdq")


def _bank(db: Database, name: str = "b", **kw: object) -> None:
    with db.write() as session:
        banks.create(session, data=BankCreate(name=name, label="csam", **kw))  # type: ignore[arg-type]


def _add(db: Database, bank: str, signal_type: str, value: str) -> int:
    with db.write() as session:
        entry, _ = banks.add_entry(
            session, name=bank, fields={"signal_type": signal_type, "value": value}
        )
        return entry.id


def test_not_ready_refuses() -> None:
    with pytest.raises(NotReady):
        Matcher().match([])


def test_bank_of_one_hash_matches_file_and_q70_reencode(db: Database) -> None:
    original = hash_file(ORIG)
    pdq = _pdq(original.signals)
    _bank(db)
    _add(db, "b", "pdq", pdq.value)
    svc = MatchService(db)
    svc.start(background=False, follow=False)
    same = svc.scan_result(original)
    assert same.status == "match"
    assert same.matches[0].distance == 0 and same.matches[0].transform == "original"
    buf = io.BytesIO()
    Image.open(ORIG).convert("RGB").save(buf, "JPEG", quality=70)
    reenc = svc.scan_result(hash_bytes(buf.getvalue()))
    assert reenc.status == "match"
    assert 0 <= reenc.matches[0].distance <= 31
    assert isinstance(reenc.matches[0].distance, int)


def test_rotated_copy_matches_with_transform(db: Database) -> None:
    _bank(db)
    _add(db, "b", "pdq", _pdq(hash_file(ORIG).signals).value)
    svc = MatchService(db)
    svc.start(background=False, follow=False)
    rotated = svc.scan_result(hash_file(DATA / "reg-test-input" / "dih" / "bridge-2-rotate-90.jpg"))
    assert rotated.status == "match"
    assert rotated.matches[0].transform != "original"


def test_exact_hash_of_undecodable_file_still_matches(db: Database) -> None:
    data = ORIG.read_bytes()[:5000]
    result = hash_bytes(data)
    assert result.status == "not_scanned"
    md5 = next(s for s in result.signals if isinstance(s, Signal) and s.signal_type == "md5")
    _bank(db)
    _add(db, "b", "md5", md5.value)
    svc = MatchService(db)
    svc.start(background=False, follow=False)
    scanned = svc.scan_result(result)
    assert scanned.status == "match"
    assert scanned.reason is not None
    other = svc.scan_result(hash_bytes(ORIG.read_bytes()[:4000]))
    assert other.status == "not_scanned"


def test_per_bank_threshold_and_disabled_bank(db: Database) -> None:
    pdq = _pdq(hash_file(ORIG).signals).value
    flipped = f"{int(pdq, 16) ^ ((1 << 20) - 1):064x}"  # 20 bits away
    _bank(db, "strict", thresholds={"pdq": 10})
    _bank(db, "loose")
    _add(db, "strict", "pdq", flipped)
    _add(db, "loose", "pdq", flipped)
    svc = MatchService(db)
    svc.start(background=False, follow=False)
    got = svc.match_signals([Signal("pdq", pdq, 100)])
    assert {m.bank for m in got} == {"loose"}
    assert got[0].distance == 20
    with db.write() as session:
        banks.set_enabled(session, name="loose", enabled=False)
    svc.poll_once()
    assert svc.match_signals([Signal("pdq", pdq, 100)]) == []


def test_low_quality_never_matches(db: Database) -> None:
    pdq = _pdq(hash_file(ORIG).signals).value
    _bank(db)
    _add(db, "b", "pdq", pdq)
    svc = MatchService(db)
    svc.start(background=False, follow=False)
    assert svc.match_signals([Signal("pdq", pdq, 49)]) == []
    assert len(svc.match_signals([Signal("pdq", pdq, 50)])) == 1


def test_changes_apply_in_place(db: Database) -> None:
    pdq = _pdq(hash_file(ORIG).signals).value
    _bank(db)
    svc = MatchService(db)
    svc.start(background=False, follow=False)
    q = [Signal("pdq", pdq, 100)]
    assert svc.match_signals(q) == []
    entry_id = _add(db, "b", "pdq", pdq)
    assert svc.poll_once() >= 1
    assert [m.entry_id for m in svc.match_signals(q)] == [entry_id]
    with db.write() as session:
        banks.set_entry_enabled(session, name="b", entry_id=entry_id, enabled=False)
    svc.poll_once()
    assert svc.match_signals(q) == []
    with db.write() as session:
        banks.set_entry_enabled(session, name="b", entry_id=entry_id, enabled=True)
    svc.poll_once()
    assert len(svc.match_signals(q)) == 1
    with db.write() as session:
        banks.delete_entry(session, name="b", entry_id=entry_id)
    svc.poll_once()
    assert svc.match_signals(q) == []


def test_match_each_attributes_batched_matches_to_their_signal(db: Database) -> None:
    pdq = _pdq(hash_file(ORIG).signals).value
    near = f"{int(pdq, 16) ^ 0b111:064x}"  # 3 bits away
    _bank(db)
    entry_id = _add(db, "b", "pdq", pdq)
    md5_id = _add(db, "b", "md5", "1" * 32)
    svc = MatchService(db)
    svc.start(background=False, follow=False)
    unrelated = "f" * 32 + "0" * 32
    got = svc.match_each([
        Signal("pdq", unrelated, 100), Signal("pdq", near, 100),
        Signal("md5", "1" * 32), Signal("pdq", pdq, 100),
    ])
    assert [[(m.entry_id, m.distance) for m in ms] for ms in got] == [
        [], [(entry_id, 3)], [(md5_id, 0)], [(entry_id, 0)],
    ]
