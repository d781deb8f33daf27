"""Issue 3, end to end through the pipeline: a bank of ``chair-orig-22-sd-bar.mp4`` and
``pattern-hd-no-bar.mp4`` added as files (every frame, bars trimmed, halves), and every
sample clip scanned as an upload at one frame per second."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.banks import service as banks
from bastion.banks.schemas import BankCreate
from bastion.scan.service import MatchService
from bastion.signals.compute import hash_file
from bastion.store.database import Database, migrate

VIDEO = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "video"
BANK = ("chair-orig-22-sd-bar.mp4", "pattern-hd-no-bar.mp4")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> MatchService:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('video') / 'bastion.db'}")
    migrate(db)
    with db.write() as session:
        banks.create(session, data=BankCreate(name="videos", label="csam"))
        banks.add_files(session, name="videos", paths=[VIDEO / name for name in BANK])
    svc = MatchService(db)
    svc.start(background=False, follow=False)
    return svc


def _item_of(svc: MatchService, entry_id: int) -> str:
    with svc.db.read() as session:
        from bastion.store.models import BankEntry

        entry = session.get(BankEntry, entry_id)
        assert entry is not None and entry.item_key is not None
        return entry.item_key


@pytest.mark.slow
@pytest.mark.parametrize("clip", sorted(p.name for p in VIDEO.glob("*.mp4")))
def test_each_clip_matches_its_original_and_nothing_else(service: MatchService, clip: str) -> None:
    result = service.scan_result(hash_file(VIDEO / clip, variants="query"))
    items = {_item_of(service, m.entry_id) for m in result.matches if m.signal_type == "vpdq"}
    bank_items = {
        name: _item_of(service, next(
            m.entry_id for m in service.scan_result(hash_file(VIDEO / name)).matches
            if m.signal_type == "sha256"
        ))
        for name in BANK
    }
    if clip.startswith("chair"):
        assert items == {bank_items["chair-orig-22-sd-bar.mp4"]}, result.matches
    elif clip.startswith("pattern"):
        assert items == {bank_items["pattern-hd-no-bar.mp4"]}, result.matches
    else:  # doorknob, test-padded-dimensions: unrelated
        assert result.status == "no_match", [m.to_json() for m in result.matches]
    for m in result.matches:
        if m.signal_type == "vpdq":
            assert max(m.query_match_pct or 0, m.compared_match_pct or 0) >= 80
