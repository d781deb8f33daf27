"""The content log: logging, exact and PDQ retro-hunt queries, purge by age, results cursor."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select, text

from bastion.errors import InvalidInput
from bastion.signals.base import Signal, Variant, VideoFrame, VideoSignal
from bastion.signals.pdq import DIHEDRAL_TRANSFORMS, hamming, pdq_dihedral
from bastion.store import bank_repository as repo
from bastion.store.content_log import (
    RetrohuntMatchIn,
    RetrohuntResult,
    find_exact,
    find_pdq_near,
    iter_pdq_batches,
    list_retrohunt_matches,
    log_item,
    purge_content_log,
    record_retrohunt_matches,
)
from bastion.store.database import Database
from bastion.store.models import ContentItem, ContentSignal
from bastion.store.records import EntryRecord
from bastion.store.types import utcnow

MD5 = "9e107d9d372bb6826bd81d3542a419d6"


def _picture(seed: int) -> np.ndarray:
    """A smooth random picture (benign, generated), 96 x 128 RGB."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(6, 8, 3)).astype(np.float64)
    big = np.kron(small, np.ones((16, 16, 1)))
    return np.clip(big + rng.normal(0, 8, big.shape), 0, 255).astype(np.uint8)


def _pdq_signal(seed: int) -> Signal:
    hashes, quality = pdq_dihedral(_picture(seed))
    values = tuple(hashes[t] for t in DIHEDRAL_TRANSFORMS)
    return Signal("pdq", values[0], quality, Variant(), dihedral=values)


def _results(db: Database, n: int) -> list[RetrohuntResult]:
    """The first ``n`` retro-hunt results. On PostgreSQL a result is listed only once every
    older writing transaction in the cluster has ended (parallel test workers' included),
    so wait for them (bounded)."""
    deadline = time.monotonic() + 60
    while True:
        with db.read() as s:
            page, _ = list_retrohunt_matches(s)
        if len(page) >= n or time.monotonic() > deadline:
            return page
        time.sleep(0.05)


def test_log_and_find_exact_and_pdq(db: Database) -> None:
    photo = _pdq_signal(1)
    other = _pdq_signal(2)
    assert hamming(photo.value, other.value) > 31
    video = VideoSignal((VideoFrame(0, 0.0, other.value, 90), VideoFrame(1, 1.0, photo.value, 20)))
    with db.write() as s:
        a = log_item(s, content_id="c-1", source="up/1.jpg", media_type="image",
                     signals=[Signal("md5", MD5), photo])
        b = log_item(s, content_id="c-2", signals=[video], media_type="video")
    with db.read() as s:
        exact = find_exact(s, "md5", [MD5, "0" * 32])
        assert [(e.item_id, e.content_id, e.source) for e in exact] == [(a, "c-1", "up/1.jpg")]
        # The rot90 copy of the picture is found through the logged dihedral hashes.
        rot = photo.dihedral[1] if photo.dihedral else ""
        hits = find_pdq_near(s, [rot])
        assert [(h.signal.item_id, h.distance, h.transform) for h in hits] == [(a, 0, "rot90")]
        assert find_pdq_near(s, [rot], use_dihedral=False) == []
        # vPDQ frames are logged per frame; the low-quality frame is left out by default.
        hits = find_pdq_near(s, [other.value, photo.value])
        assert sorted((h.signal.item_id, h.signal.signal_type, h.query) for h in hits) == [
            (a, "pdq", photo.value), (b, "vpdq", other.value)]
        assert len(find_pdq_near(s, [photo.value], min_quality=0)) == 2
        batches = list(iter_pdq_batches(s, batch_size=2))
        assert [len(x) for x in batches] == [2, 1]
        assert batches[0].hashes[0].tobytes().hex() == photo.value
        assert batches[0].has_dihedral.tolist() == [True, False]


def test_retrohunt_scan_then_add_then_found(db: Database) -> None:
    """The picture logged before its hash was known is found when the hash is banked."""
    photo = _pdq_signal(3)
    with db.write() as s:
        item = log_item(s, content_id="early", signals=[photo, Signal("md5", MD5)])
        bank = repo.create_bank(s, name="late")
        stored, _ = repo.add_entries(s, bank, [repo.NewEntry("pdq", photo.value)])
    with db.write() as s:
        hits = find_pdq_near(s, [e.value for e in stored])
        assert [h.signal.item_id for h in hits] == [item]
        new = record_retrohunt_matches(
            s, [RetrohuntMatchIn(h.signal, stored[0], "late", h.distance, h.transform)
                for h in hits])
        again = record_retrohunt_matches(
            s, [RetrohuntMatchIn(hits[0].signal, stored[0], "late", 0, "original")])
    assert (new, again) == (1, 0)
    page = _results(db, 1)
    assert [(r.content_id, r.bank, r.distance) for r in page] == [("early", "late", 0)]
    with db.read() as s:
        _, cursor = list_retrohunt_matches(s, cursor=None, limit=1)
        assert list_retrohunt_matches(s, cursor=cursor) == ([], cursor)


def test_purge_by_age_keeps_recent_and_results(db: Database) -> None:
    now = utcnow()
    with db.write() as s:
        old = log_item(s, content_id="old", signals=[Signal("md5", MD5), _pdq_signal(4)],
                       scanned_at=now - timedelta(days=400))
        mid = log_item(s, content_id="mid", signals=[Signal("md5", MD5)],
                       scanned_at=now - timedelta(days=364))
        log_item(s, content_id="new", signals=[Signal("md5", MD5)], scanned_at=now)
        (sig,) = find_exact(s, "md5", [MD5], since=now - timedelta(days=500))[:1]
        entry = EntryRecord(id=99, bank_id=1, signal_type="md5", value=MD5)
        record_retrohunt_matches(s, [RetrohuntMatchIn(sig, entry, "b", 0)])
    with db.write() as s:
        assert purge_content_log(s, days=365, now=now, batch_size=1) == 1
    with db.read() as s:
        ids = sorted(s.execute(select(ContentItem.id)).scalars())
        left = set(s.execute(select(ContentSignal.item_id)).scalars())
    page = _results(db, 1)
    assert old not in ids and mid in ids and len(ids) == 2
    assert old not in left and mid in left
    assert [(r.content_id, r.content_item_id) for r in page] == [("old", None)]


def test_results_cursor_never_skips_a_late_commit(db: Database) -> None:
    """Writer A inserts first and commits last; B, started meanwhile, must neither be listed
    before A nor make the cursor skip A."""
    with db.write() as s:
        items = [log_item(s, content_id=f"c{i}", signals=[Signal("md5", f"{i:032x}")])
                 for i in (1, 2)]
        sigs = find_exact(s, "md5", [f"{i:032x}" for i in (1, 2)])
    entry = EntryRecord(id=7, bank_id=1, signal_type="md5", value="x")
    cursor: str | None = None
    seen: list[str | None] = []
    a_wrote, release, b_done = threading.Event(), threading.Event(), threading.Event()

    def writer_a() -> None:
        with db.write() as s:
            record_retrohunt_matches(s, [RetrohuntMatchIn(sigs[0], entry, "b", 0)])
            a_wrote.set()
            release.wait(10)

    def writer_b() -> None:
        with db.write() as s:
            record_retrohunt_matches(s, [RetrohuntMatchIn(sigs[1], entry, "b", 0)])
        b_done.set()

    a = threading.Thread(target=writer_a)
    a.start()
    assert a_wrote.wait(10)
    b = threading.Thread(target=writer_b)
    b.start()
    assert not b_done.wait(0.3), "B committed results while A's were uncommitted"
    with db.read() as s:
        page, cursor = list_retrohunt_matches(s, cursor=cursor)
    assert page == [] and cursor is None
    release.set()
    a.join(10)
    b.join(10)
    assert b_done.is_set()
    while True:
        with db.read() as s:
            page, cursor = list_retrohunt_matches(s, cursor=cursor, limit=1)
        if not page:
            break
        seen += [r.content_id for r in page]
    assert seen == ["c1", "c2"] and len(items) == 2


def test_results_are_listed_at_once_despite_an_older_open_transaction(db: Database) -> None:
    """A long transaction elsewhere (here: one that wrote something and stays open) must not
    hold back results that have committed."""
    with db.write() as s:
        log_item(s, content_id="c1", signals=[Signal("md5", f"{1:032x}")])
        sigs = find_exact(s, "md5", [f"{1:032x}"])
    entry = EntryRecord(id=7, bank_id=1, signal_type="md5", value="x")
    with db.engine.connect() as other:
        if db.is_postgresql:
            other.execute(text("CREATE TEMPORARY TABLE t_open (x int)"))
            other.execute(text("INSERT INTO t_open VALUES (1)"))  # holds a transaction id
        else:  # SQLite allows one writer: the open transaction here can only read
            other.execute(text("SELECT count(*) FROM content_items"))
        with db.write() as s:
            record_retrohunt_matches(s, [RetrohuntMatchIn(sigs[0], entry, "b", 0)])
        with db.read() as s:
            page, cursor = list_retrohunt_matches(s)
        other.rollback()
    assert [r.content_id for r in page] == ["c1"]
    assert cursor is not None and cursor.startswith("r2.")


def test_cursor_of_the_earlier_format_is_read_by_its_id(db: Database) -> None:
    with db.write() as s:
        log_item(s, content_id="c1", signals=[Signal("md5", f"{1:032x}")])
        sigs = find_exact(s, "md5", [f"{1:032x}"])
        record_retrohunt_matches(s, [RetrohuntMatchIn(
            sigs[0], EntryRecord(id=7, bank_id=1, signal_type="md5", value="x"), "b", 0)])
    with db.read() as s:
        page, cursor = list_retrohunt_matches(s)
        assert len(page) == 1 and cursor == f"r2.{page[0].id}"
        assert list_retrohunt_matches(s, cursor=f"r1.12345.{page[0].id}")[0] == []
        assert len(list_retrohunt_matches(s, cursor="r1.99999999.0")[0]) == 1
        for bad in ("r2", "r2.x", "r3.1", "r2.-1", "r1.1", f"r2.{2**63}"):
            with pytest.raises(InvalidInput):
                list_retrohunt_matches(s, cursor=bad)
