"""Retro-hunt: scan, then add the hash, then the earlier item is reported."""

from __future__ import annotations

import io
import time
from pathlib import Path

from PIL import Image

from bastion.banks import service as banks
from bastion.banks.schemas import BankCreate
from bastion.scan.content_log import RetrohuntFollower, log_scan
from bastion.scan.service import MatchService
from bastion.signals.base import Signal
from bastion.signals.compute import hash_bytes, hash_file
from bastion.store import content_log as store_log
from bastion.store.database import Database

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "images"
ORIG = DATA / "bridge-mods" / "aaa-orig.jpg"


def _scan_and_log(db: Database, svc: MatchService, data: bytes, content_id: str) -> None:
    result = svc.scan_result(hash_bytes(data, variants="query"), content_id=content_id)
    assert result.status in ("no_match", "not_scanned")
    log_scan(db, result, retention_days=365)


def test_item_scanned_before_its_hash_was_known_is_found(db: Database) -> None:
    with db.write() as session:
        banks.create(session, data=BankCreate(name="hotline", label="csam"))
    svc = MatchService(db)
    svc.start(background=False, follow=False)
    rotated = Image.open(ORIG).convert("RGB").rotate(90, expand=True)
    buf = io.BytesIO()
    rotated.save(buf, "JPEG", quality=80)
    _scan_and_log(db, svc, buf.getvalue(), "upload-rotated")
    _scan_and_log(db, svc, (DATA / "misc-images" / "c.png").read_bytes(), "upload-other")
    _scan_and_log(db, svc, ORIG.read_bytes()[:6000], "upload-truncated")

    follower = RetrohuntFollower(db)
    first = follower.run_once()  # nothing in the bank yet
    assert first.found == 0

    original = hash_file(ORIG)
    pdq = next(s for s in original.signals if isinstance(s, Signal) and s.signal_type == "pdq")
    md5_truncated = next(
        s.value for s in hash_bytes(ORIG.read_bytes()[:6000]).signals
        if isinstance(s, Signal) and s.signal_type == "md5"
    )
    with db.write() as session:
        banks.add_entry(session, name="hotline", fields={"signal_type": "pdq", "value": pdq.value})
        banks.add_entry(session, name="hotline",
                        fields={"signal_type": "md5", "value": md5_truncated})
    run = follower.run_once()
    found = {(m.signal.content_id, m.entry.signal_type) for m in run.matches}
    assert found == {("upload-rotated", "pdq"), ("upload-truncated", "md5")}
    pdq_match = next(m for m in run.matches if m.entry.signal_type == "pdq")
    assert pdq_match.transform != "original" and pdq_match.distance <= 31
    assert run.new == 2
    assert follower.run_once().found == 0  # the cursor moved on

    # On PostgreSQL a result is listed once every transaction older than it has finished
    # (so a cursor never skips a late commit); other tests' transactions may delay that.
    deadline = time.monotonic() + 60
    while True:
        with db.read() as session:
            listed, cursor = store_log.list_retrohunt_matches(session)
        if listed or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {r.content_id for r in listed} == {"upload-rotated", "upload-truncated"}
    assert cursor is not None


def test_a_confirmed_item_is_not_found_again_by_its_own_entries(db: Database) -> None:
    """Confirming an item adds its signals to the confirmed bank (source ``review:case:N``);
    the retro-hunt then finds earlier copies of it, not the item itself again."""
    from bastion.cases import service as cases

    svc = MatchService(db)
    svc.start(background=False, follow=False)
    data = (DATA / "misc-images" / "c.png").read_bytes()
    _scan_and_log(db, svc, data, "upload-confirmed")
    _scan_and_log(db, svc, data, "upload-other-copy")
    follower = RetrohuntFollower(db)
    assert follower.run_once().found == 0
    hashed = hash_bytes(data)
    with db.write() as session:
        case = cases.open_case(session, content_id="upload-confirmed", user_id="u",
                               verdict_id=None, source="flag", rule="flag", base_priority=50,
                               hide=False, matches=[], media="none", actor="t")
        banks.create(session, data=BankCreate(name="confirmed", label="csam"))
        for s in hashed.signals:
            if isinstance(s, Signal) and s.signal_type in ("md5", "sha256"):
                banks.add_entry(session, name="confirmed", fields={
                    "signal_type": s.signal_type, "value": s.value,
                    "source": f"review:case:{case.id}"})
    run = follower.run_once()
    assert {m.signal.content_id for m in run.matches} == {"upload-other-copy"}
    assert run.new == 2  # md5 and sha256 of the other copy
