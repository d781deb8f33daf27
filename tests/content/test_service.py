"""The content service: idempotent on content_id (also under concurrent first submits),
conflicts on different content, history, and one stored record per item."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bastion.config import load_settings
from bastion.content.schemas import ContentMeta
from bastion.content.service import ContentService
from bastion.content.signal_input import SignalInputError, signals_from_json
from bastion.errors import Conflict, NotReady
from bastion.scan.service import MatchService
from bastion.store.database import Database
from bastion.store.models import ContentItem
from bastion.store.models_api import ContentVerdict, ContentVerdictEvent

BRIDGE = Path(__file__).resolve().parents[2].parent / "shared/data/images/bridge-mods/aaa-orig.jpg"


def _svc(db: Database, tmp_path: Path, ready: bool = True) -> ContentService:
    matcher = MatchService(db)
    if ready:
        matcher.start(background=False, follow=False)
    settings = load_settings(environ={}, home=tmp_path, decode_workers=0)
    return ContentService(db=db, matcher=matcher, settings=settings, pool=None)


def _count(db: Database, model: type) -> int:
    with db.read() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def test_concurrent_first_submissions_store_one_record(db: Database, tmp_path: Path) -> None:
    svc = _svc(db, tmp_path)
    data = BRIDGE.read_bytes()
    results: list[object] = []

    def submit() -> None:
        try:
            results.append(svc.submit_bytes(data, ContentMeta(content_id="same"), actor="t"))
        except Exception as exc:  # pragma: no cover - reported below
            results.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(not isinstance(r, Exception) for r in results), results
    assert _count(db, ContentVerdict) == 1
    assert _count(db, ContentVerdictEvent) == 1
    assert _count(db, ContentItem) == 1  # one content-log item
    assert sorted(r.replayed for r in results) == [False, True, True, True]  # type: ignore[attr-defined]


def test_different_content_under_one_id_conflicts(db: Database, tmp_path: Path) -> None:
    svc = _svc(db, tmp_path)
    svc.submit_bytes(b"first", ContentMeta(content_id="c"), actor="t")
    with pytest.raises(Conflict):
        svc.submit_bytes(b"second", ContentMeta(content_id="c"), actor="t")
    sigs = signals_from_json([{"type": "md5", "value": "1" * 32}])
    with pytest.raises(Conflict):
        svc.submit_signals(sigs, ContentMeta(content_id="c"), actor="t")
    v = svc.get("c")
    assert v.status == "not_scanned" and v.history is not None
    assert v.history[0]["event"] == "submitted"


def test_nothing_is_stored_while_loading(db: Database, tmp_path: Path) -> None:
    svc = _svc(db, tmp_path, ready=False)
    with pytest.raises(NotReady):
        svc.submit_bytes(b"x", ContentMeta(content_id="c"), actor="t")
    with pytest.raises(NotReady):
        svc.submit_signals(signals_from_json([{"type": "md5", "value": "1" * 32}]),
                           ContentMeta(content_id="c"), actor="t")
    assert _count(db, ContentVerdict) == 0


def test_text_is_not_stored_only_its_digest(db: Database, tmp_path: Path) -> None:
    svc = _svc(db, tmp_path)
    meta = ContentMeta(content_id="t1", text="a caption that must not be stored",
                       links=["https://example.com/x"], ip="2001:db8::1")
    svc.submit_bytes(b"abc", meta, actor="t")
    with db.read() as s:
        stored = s.execute(select(ContentVerdict.meta)).scalar_one()
    assert "text" not in stored and len(stored["text_sha256"]) == 64
    # Links are submitted content too: only their digest and count (the text and links of
    # items that match are kept encrypted, tests/content/test_kept_text.py).
    assert "links" not in stored and stored["links_count"] == 1
    assert len(stored["links_sha256"]) == 64
    assert stored["ip"] == "2001:db8::1"


def test_signal_input_names_fields() -> None:
    with pytest.raises(SignalInputError) as e:
        signals_from_json([{"type": "md5", "value": "1" * 32}, {"type": "pdq", "value": 5}])
    assert e.value.field == "signals[1].value"
    with pytest.raises(SignalInputError) as e:
        signals_from_json([{"type": "vpdq", "frames": [{"value": "x"}]}])
    assert e.value.field == "signals[0].frames[0].value"
    with pytest.raises(SignalInputError) as e:
        signals_from_json([{"type": "url", "value": "x"}])
    assert e.value.field == "signals[0].signal_type"
    (pdq,) = signals_from_json([{"type": "PDQ", "value": "D8F8F0CEE0F4A84F0637022A078F67F0"
                                 "B36E2ED596621E1D33E6339C4E9C9B22"}])
    assert pdq.signal_type == "pdq" and pdq.dihedral is not None  # type: ignore[union-attr]
    assert len(pdq.dihedral) == 8  # type: ignore[union-attr]
