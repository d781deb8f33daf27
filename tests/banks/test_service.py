"""The banks service: bank life cycle, entry validation, hashing files into a bank, sample."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bastion.banks import service
from bastion.banks.sample import SAMPLE_BANK, create_sample_bank, sample_bank_csv
from bastion.banks.schemas import BankCreate, BankUpdate
from bastion.banks.values import check_entry, check_thresholds, check_value
from bastion.errors import Conflict, InvalidInput, NotFound
from bastion.signals.exact import exact_digests
from bastion.signals.pdq import pdq_hash
from bastion.store.change_log import ChangeFollower, current_cursor
from bastion.store.database import Database

REPO = Path(__file__).resolve().parents[2]
GOOD = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"


def test_bank_life_cycle(db: Database) -> None:
    follower = ChangeFollower(db, current_cursor(db))
    with db.write() as s:
        made = service.create(s, data=BankCreate(name="ncmec", label="CSAM",
                                                  thresholds={"PDQ": 20}))
    assert (made.label, made.thresholds, made.exportable, made.auto_action) == (
        "csam", {"pdq": 20}, False, False)
    with pytest.raises(Conflict), db.write() as s:
        service.create(s, data=BankCreate(name="ncmec"))
    for bad in ({"name": "has space"}, {"name": "x", "label": "Bad Label!"},
                {"name": "x", "thresholds": {"md5": 1}}, {"name": "x", "thresholds": {"pdq": 300}},
                {"name": "x", "thresholds": {"nope": 1}}):
        with pytest.raises(InvalidInput), db.write() as s:
            service.create(s, data=BankCreate(**bad))  # type: ignore[arg-type]
    with db.write() as s:
        service.add_entry(s, name="ncmec", fields={"signal_type": "pdq", "value": GOOD})
        entry, created = service.add_entry(
            s, name="ncmec", fields={"signal_type": "PDQ", "signal": GOOD.upper()})
        assert not created
        service.set_threshold(s, name="ncmec", signal_type="pdq", value=25)
        service.rename(s, name="ncmec", new_name="hotline")
        service.set_enabled(s, name="hotline", enabled=False)
        service.set_entry_enabled(s, name="hotline", entry_id=entry.id, enabled=False)
    with db.read() as s:
        shown = service.get(s, name="hotline")
        assert [b.name for b in service.get_all(s)] == ["hotline"]
    assert (shown.entries, shown.enabled_entries, shown.enabled, shown.thresholds) == (
        1, 0, False, {"pdq": 25})
    with pytest.raises(NotFound), db.read() as s:
        service.get(s, name="ncmec")
    with db.write() as s:
        service.update(s, name="hotline", data=BankUpdate(enabled=True, exportable=True))
        gone = service.delete(s, name="hotline")
    assert gone.entries == 1
    kinds = [c.kind for c in follower.poll()]
    assert kinds == ["bank_created", "entry_added", "bank_updated", "bank_updated",
                     "bank_disabled", "entry_disabled", "bank_enabled", "bank_updated",
                     "bank_deleted"]


def test_value_rules() -> None:
    assert check_value("pdq", f"  {GOOD.upper()}\t").value == GOOD
    sparse = check_value("pdq", "1" + "0" * 63)
    assert sparse.warnings and "bits" in sparse.warnings[0]
    empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    for st, v, why in [("pdq", "0" * 64, "all zeros"), ("pdq", "F" * 64, "all ones"),
                       ("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709", "empty file"),
                       ("sha256", empty_sha256, "empty file"),
                       ("md5", "x" * 32, "hex"), ("nope", "ab", "unknown signal type"),
                       ("vpdq", "[]", "non-empty"), ("pdq", "", "missing")]:
        with pytest.raises(InvalidInput, match=why):
            check_value(st, v)
    entry, _ = check_entry({"signal_type": "md5", "value": "9e107d9d372bb6826bd81d3542a419d6",
                            "enabled": "false", "disabled_until": "2031-02-03",
                            "source_date": "2024-01-01T10:00:00+02:00", "classification": "b1"})
    assert not entry.enabled and entry.classification == "B1"
    assert entry.source_date is not None and entry.source_date.hour == 8
    with pytest.raises(InvalidInput, match="disabled_until"):
        check_entry({"signal_type": "md5", "value": "9e107d9d372bb6826bd81d3542a419d6",
                     "disabled_until": "2031-02-03"})
    assert check_thresholds({"vpdq": "31"}) == {"vpdq": 31}


def test_sample_bank_holds_the_bridge_photo_hashes(db: Database) -> None:
    """The shipped data equals the hashes recomputed from samples/bridge.jpg."""
    photo = REPO / "samples" / "bridge.jpg"
    data = photo.read_bytes()
    with Image.open(photo) as im:
        expected = {"pdq": pdq_hash(np.asarray(im.convert("RGB"))).value, **exact_digests(data)}
    rows = list(csv.DictReader(io.StringIO(sample_bank_csv().decode())))
    assert {r["signal_type"]: r["value"] for r in rows} == expected
    with db.write() as s:
        bank, created = create_sample_bank(s)
    with db.write() as s:
        again, created_again = create_sample_bank(s)
    assert created and not created_again
    assert (bank.name, bank.label, bank.auto_action, bank.exportable, bank.entries) == (
        SAMPLE_BANK, "sample", False, False, 4)
    assert again.entries == 4


def test_add_files_ties_signals_to_one_item(db: Database, tmp_path: Path) -> None:
    photo = REPO / "samples" / "bridge.jpg"
    flat = tmp_path / "flat.png"
    Image.new("RGB", (64, 64), (120, 120, 120)).save(flat)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with db.write() as s:
        service.create(s, data=BankCreate(name="own"))
        report = service.add_files(s, name="own", paths=[photo, flat, empty],
                                   provenance={"classification": "A2", "source": "review"})
    added = report.added[str(photo)]
    assert sorted(e.signal_type for e in added if e.signal_type != "pdq") == [
        "md5", "sha1", "sha256"]
    pdq_kinds = {(e.variant or {}).get("kind") for e in added if e.signal_type == "pdq"}
    assert pdq_kinds == {"stored", "crop", "band"}  # the bank side's robustness variants
    assert len({e.item for e in added}) == 1 and added[0].item is not None
    assert {e.classification for e in added} == {"A2"}
    assert [e.signal_type for e in report.added[str(flat)]] == ["md5", "sha1", "sha256"]
    reasons = [(i.line, i.kind, i.reason) for i in report.issues]
    assert any(line == 2 and kind == "skipped" and "quality" in why
               for line, kind, why in reasons)
    assert [kind for line, kind, _ in reasons if line == 3].count("skipped") == 3
