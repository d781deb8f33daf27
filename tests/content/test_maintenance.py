"""The in-process worker: a picture submitted before its hash was in any bank is reported
by retro-hunt once the hash is added; due entries are re-enabled."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from pathlib import Path

from bastion.banks import service as banks
from bastion.banks.schemas import BankCreate
from bastion.config import load_settings
from bastion.content.maintenance import Maintenance, run_round
from bastion.content.schemas import ContentMeta
from bastion.content.service import ContentService
from bastion.scan.service import MatchService
from bastion.store.content_log import list_retrohunt_matches
from bastion.store.database import Database
from bastion.store.types import utcnow


def test_retrohunt_runs_in_the_background(db: Database, tmp_path: Path) -> None:
    settings = load_settings(environ={}, home=tmp_path, decode_workers=0)
    matcher = MatchService(db)
    matcher.start(background=False, follow=False)
    svc = ContentService(db=db, matcher=matcher, settings=settings, pool=None)
    data = b"bytes that no bank knows yet"
    v = svc.submit_bytes(data, ContentMeta(content_id="early"), actor="t")
    assert v.status == "not_scanned" and v.matches == []
    worker = Maintenance(db, settings, retrohunt_interval_s=0.05)
    worker.start()
    try:
        with db.write() as s:
            banks.create(s, data=BankCreate(name="late"))
            banks.add_entry(s, name="late", fields={
                "signal_type": "md5", "value": hashlib.md5(data).hexdigest()})
        deadline = time.monotonic() + 10
        found = []
        while time.monotonic() < deadline and not found:
            with db.read() as s:
                found, _ = list_retrohunt_matches(s)
            time.sleep(0.05)
    finally:
        worker.close()
    assert [(r.content_id, r.bank, r.distance) for r in found] == [("early", "late", 0)]
    assert [h["event"] for h in svc.get("early").history or []] == [
        "submitted", "retrohunt_match"]


def test_due_entries_are_released(db: Database, tmp_path: Path) -> None:
    settings = load_settings(environ={}, home=tmp_path)
    with db.write() as s:
        banks.create(s, data=BankCreate(name="b"))
        entry, _ = banks.add_entry(s, name="b", fields={"signal_type": "md5",
                                                        "value": "1" * 32})
        banks.set_entry_enabled(s, name="b", entry_id=entry.id, enabled=False,
                                until=utcnow() + timedelta(milliseconds=50))
    time.sleep(0.1)
    assert run_round(db, settings).released == 1
