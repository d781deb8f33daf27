"""URL and keyword lists through the store and the match service (issue 7): the issue's
pairs, spans in the original text, confusable hosts, the change-log contract, limits, index
snapshots, and freshness in another process within 1 s (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.banks import service as banks
from bastion.banks.schemas import BankCreate, BankUpdate
from bastion.config import Limits
from bastion.errors import InvalidInput, LimitExceeded, NotReady
from bastion.scan.matcher import Match
from bastion.scan.service import MatchService
from bastion.scan.text_matcher import TextItem, TextMatcher
from bastion.store.change_log import Change, ChangeCursor, Snapshot, load_snapshot
from bastion.store.database import Database
from bastion.store.records import BankRecord, EntryRecord


def _add(db: Database, bank: str, **fields: Any) -> int:
    with db.write() as s:
        entry, _ = banks.add_entry(s, name=bank, fields=fields)
    return entry.id


def _bank(db: Database, name: str = "lists", **kw: Any) -> None:
    with db.write() as s:
        banks.create(s, data=BankCreate(name=name, label="csam", **kw))


@pytest.fixture
def svc(db: Database) -> Iterator[MatchService]:
    _bank(db)
    service = MatchService(db)
    yield service
    service.close()


def _start(svc: MatchService) -> MatchService:
    svc.start(background=False, follow=False)
    return svc


def _ids(matches: list[Match]) -> list[int]:
    return [m.entry_id for m in matches]


# -- URL lists: the pairs ----------------------------------------------------------


EQUAL_PAIRS = [
    ("HTTP://Example.COM:80", "http://example.com/"),
    ("https://x.example:443/", "https://x.example/"),
    ("http://x.example/%7Euser", "http://x.example/~user"),
    ("http://x.example/a%2fb", "http://x.example/a%2Fb"),
    ("http://bücher.example/", "http://xn--bcher-kva.example/"),
    ("http://x.example/a/./b/../c#frag", "http://x.example/a/c"),
]
UNEQUAL_PAIRS = [
    ("https://x.example:8443/", "https://x.example/"),
    ("http://x.example/a%2Fb", "http://x.example/a/b"),
    ("http://x.example/?a=1&b=2", "http://x.example/?b=2&a=1"),
    ("http://x.example/", "https://x.example/"),
    ("http://www.x.example/", "http://x.example/"),
]


@pytest.mark.parametrize(("listed", "query"), EQUAL_PAIRS + [(b, a) for a, b in EQUAL_PAIRS])
def test_equal_urls_match(db: Database, svc: MatchService, listed: str, query: str) -> None:
    entry = _add(db, "lists", signal_type="url", value=listed)
    _start(svc)
    (m,) = svc.match_text("", [query])
    assert (m.entry_id, m.kind, m.signal_type, m.distance, m.span) == (
        entry, "exact", "url", 0, None)
    assert m.matched == query


@pytest.mark.parametrize(("listed", "query"), UNEQUAL_PAIRS + [(b, a) for a, b in UNEQUAL_PAIRS])
def test_unequal_urls_do_not_match(
    db: Database, svc: MatchService, listed: str, query: str
) -> None:
    _add(db, "lists", signal_type="url", value=listed)
    _start(svc)
    assert svc.match_text(f"see {query} now", [query]) == []


def test_query_order_any_and_modes(db: Database, svc: MatchService) -> None:
    any_order = _add(db, "lists", signal_type="url", value="http://q.example/?a=1&b=2",
                     query_order="any")
    prefix = _add(db, "lists", signal_type="url", value="p.example/a", match="prefix")
    host = _add(db, "lists", signal_type="url", value="h.example", match="host",
                scheme="https")
    _start(svc)
    assert _ids(svc.match_text("", ["http://q.example/?b=2&a=1"])) == [any_order]
    assert _ids(svc.match_text("", ["https://p.example/a/b?x=1"])) == [prefix]
    assert svc.match_text("", ["https://p.example/ab"]) == []
    assert _ids(svc.match_text("", ["https://deep.sub.h.example/x"])) == [host]
    assert svc.match_text("", ["http://h.example/"]) == []  # the entry asks for https


def test_urls_found_in_text_with_spans(db: Database, svc: MatchService) -> None:
    ex = _add(db, "lists", signal_type="url", value="https://a.example/x")
    ey = _add(db, "lists", signal_type="url", value="https://a.example/y")
    wiki = _add(db, "lists", signal_type="url",
                value="https://en.wikipedia.org/wiki/Python_(programming_language)")
    bare = _add(db, "lists", signal_type="url", value="b.example/path", match="prefix")
    _start(svc)
    text = ("see https://a.example/x. then (https://a.example/y) and "
            "https://en.wikipedia.org/wiki/Python_(programming_language), "
            "also hxxps://b[.]example/path/more!")
    got = svc.match_text(text)
    assert _ids(got) == [ex, ey, wiki, bare]
    for m in got:
        assert m.span is not None and text[m.span[0]:m.span[1]] == m.matched
    assert [m.matched for m in got] == [
        "https://a.example/x", "https://a.example/y",
        "https://en.wikipedia.org/wiki/Python_(programming_language)",
        "hxxps://b[.]example/path/more"]
    assert got[3].canonical == "https://b.example/path/more" and got[3].kind == "prefix"
    assert got[3].entry == "//b.example/path"


def test_confusable_host_reported_with_both_hosts(db: Database, svc: MatchService) -> None:
    entry = _add(db, "lists", signal_type="url", value="mastodon.social", match="host")
    _start(svc)
    text = "join me at mastоdon.social/@kid"  # Cyrillic о
    (m,) = svc.match_text(text)
    assert (m.entry_id, m.kind) == (entry, "confusable")
    assert (m.host, m.listed_host) == ("mastоdon.social", "mastodon.social")
    assert m.canonical == "//xn--mastdon-djg.social/@kid"
    j = m.to_json()
    assert j["kind"] == "confusable" and j["listed_host"] == "mastodon.social"
    assert j["span"] == [11, len(text)]
    assert _ids(svc.match_text("join me at mastodon.social/@kid")) == [entry]
    assert svc.match_text("", ["https://mastodon.social/x"])[0].kind == "host"


# -- keyword lists ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written", ["ｅｘａｍｐｌｅ", "exa\u200bmple", "EXAMPLE", "e x a m p l e", "3xampl3",
                "e.x.a.m.p.l.e", "Еxample"],  # the last one starts with Cyrillic Е
)
def test_keyword_written_the_way_evaders_write(
    db: Database, svc: MatchService, written: str
) -> None:
    entry = _add(db, "lists", signal_type="keyword", value="example", classification="A2")
    _start(svc)
    text = f"look: {written}!"
    (m,) = svc.match_text(text)
    assert (m.entry_id, m.signal_type, m.kind, m.entry, m.classification) == (
        entry, "keyword", "word", "example", "A2")
    assert m.span == (6, 6 + len(written)) and m.matched == written


def test_keyword_modes_nfd_and_scripts(db: Database, svc: MatchService) -> None:
    word = _add(db, "lists", signal_type="keyword", value="example")
    prefix = _add(db, "lists", signal_type="keyword", value="exam", match="prefix")
    cafe = _add(db, "lists", signal_type="keyword", value="café")
    cjk = _add(db, "lists", signal_type="keyword", value="児童")
    collapse = _add(db, "lists", signal_type="keyword", value="pizza", collapse_repeats=True)
    _start(svc)
    assert _ids(svc.match_text("examples")) == [prefix]
    assert _ids(svc.match_text("an example")) == [prefix, word]
    assert _ids(svc.match_text("cafe\u0301 ok")) == [cafe]
    assert svc.match_text("cafe\u0301 ok")[0].span == (0, 5)
    assert _ids(svc.match_text("café")) == [cafe]
    assert _ids(svc.match_text("これは児童です")) == [cjk]
    assert _ids(svc.match_text("piiizzzzaaa")) == [collapse]
    assert svc.match_text("nothing here") == []


# -- the change-log contract -------------------------------------------------------------


def test_follows_adds_disables_updates_and_bank_changes(db: Database, svc: MatchService) -> None:
    _bank(db, "other")
    kw = _add(db, "lists", signal_type="keyword", value="forbidden")
    _start(svc)
    url = _add(db, "lists", signal_type="url", value="a.example", match="host")
    other = _add(db, "other", signal_type="keyword", value="second")
    svc.poll_once()
    assert _ids(svc.match_text("forbidden at https://a.example/ second")) == [kw, url, other]
    with db.write() as s:
        banks.set_entry_enabled(s, name="lists", entry_id=kw, enabled=False)
    svc.poll_once()
    assert _ids(svc.match_text("forbidden https://a.example/")) == [url]
    with db.write() as s:
        banks.set_entry_enabled(s, name="lists", entry_id=kw, enabled=True)
        banks.set_enabled(s, name="other", enabled=False)
    svc.poll_once()
    assert _ids(svc.match_text("forbidden second")) == [kw]
    with db.write() as s:
        banks.update(s, name="lists", data=BankUpdate(label="ncii"))
        banks.set_enabled(s, name="other", enabled=True)
    svc.poll_once()
    got = svc.match_text("forbidden second")
    assert _ids(got) == [kw, other] and got[0].label == "ncii"
    with db.write() as s:
        banks.delete_entry(s, name="lists", entry_id=url)
        banks.delete(s, name="other")
    svc.poll_once()
    assert _ids(svc.match_text("forbidden https://a.example/ second")) == [kw]
    assert svc.text_matcher.stats() == {"url": 0, "keyword": 1}


def test_apply_is_idempotent_and_updates_descriptive_fields_in_place() -> None:
    bank = BankRecord(1, "b", "csam", "", {}, False, False, True)
    rec = EntryRecord(5, 1, "keyword", "forbidden", options={"match": "word",
                      "language": None, "collapse_repeats": False})
    tm = TextMatcher()
    with pytest.raises(NotReady):
        tm.match_text("forbidden")
    tm.load_snapshot(Snapshot({1: bank}, [rec], ChangeCursor("sqlite")))
    at = rec.created_at
    updated = EntryRecord(5, 1, "keyword", "forbidden", classification="B1",
                          options=rec.options)
    changes = [Change(1, "entry_updated", 1, at, entry=updated)] * 2  # type: ignore[arg-type]
    assert tm.apply(changes) == 2
    (m,) = tm.match_text("a forbidden one")
    assert m.classification == "B1"
    legacy = EntryRecord(6, 1, "url", "//x.example/", options=None)  # stored before options
    tm.apply([Change(2, "entry_added", 1, at, entry=legacy)])  # type: ignore[arg-type]
    assert _ids(tm.match_text("x.example")) == [6]
    broken = EntryRecord(7, 1, "keyword", "y", options={"match": "sometimes"})
    tm.apply([Change(3, "entry_added", 1, at, entry=broken)])  # type: ignore[arg-type]
    assert 7 in tm.unusable and tm.match_text("y") == []


# -- limits and bad input ---------------------------------------------------------------------


def test_limits_and_bad_links(db: Database) -> None:
    _bank(db)
    _add(db, "lists", signal_type="keyword", value="forbidden")
    _add(db, "lists", signal_type="url", value="a.example", match="host")
    svc = MatchService(db, limits=Limits(max_text_chars=100, max_url_chars=40,
                                         max_urls_per_text=3))
    _start(svc)
    with pytest.raises(LimitExceeded, match="over the limit of 100"):
        svc.match_text("forbidden " * 20)
    with pytest.raises(LimitExceeded, match="4 links"):
        svc.match_text("", ["a.example"] * 4)
    with pytest.raises(LimitExceeded, match="URLs"):
        svc.match_text("a.example b.example c.example", ["a.example"])
    with pytest.raises(LimitExceeded, match="link 0 is longer"):
        svc.match_text("", ["https://a.example/" + "x" * 40])
    with pytest.raises(InvalidInput, match="link 1 is not an http"):
        svc.match_text("", ["a.example", "ftp://a.example/"])
    out = svc.match_texts([
        TextItem("forbidden"), TextItem("x" * 101), TextItem("ok", ("javascript:alert(1)",)),
        TextItem("see https://a.example/q forbidden"),
    ])
    assert [len(o.matches) for o in out] == [1, 0, 0, 2]
    assert out[0].reason is None and out[3].reason is None
    assert "over the limit" in (out[1].reason or "") and "link 0" in (out[2].reason or "")


def test_not_ready_until_loaded(db: Database) -> None:
    svc = MatchService(db)
    with pytest.raises(NotReady):
        svc.match_text("anything")
    _start(svc)
    assert svc.match_text("anything") == []


def test_snapshot_restart_loads_text_lists_and_replays_tail(db: Database, tmp_path: Path) -> None:
    _bank(db)
    kw = _add(db, "lists", signal_type="keyword", value="forbidden")
    url = _add(db, "lists", signal_type="url", value="a.example/x")
    snap_dir = tmp_path / "index"
    first = MatchService(db, snapshot_dir=snap_dir, snapshot_min_entries=1)
    first.start(background=False, follow=False)
    _add(db, "lists", signal_type="md5", value="1" * 32)  # makes the snapshot worth keeping
    first.save_snapshot()
    later = _add(db, "lists", signal_type="keyword", value="later")
    with db.write() as s:
        banks.delete_entry(s, name="lists", entry_id=url)
    second = MatchService(db, snapshot_dir=snap_dir)
    second.start(background=False, follow=False)
    assert second.loaded_from == "snapshot"
    assert _ids(second.match_text("forbidden later a.example/x")) == [kw, later]


def test_snapshot_records_carry_options_for_the_matcher(db: Database) -> None:
    _bank(db)
    _add(db, "lists", signal_type="keyword", value="exam", match="prefix")
    tm = TextMatcher()
    tm.load_snapshot(load_snapshot(db))
    assert [m.kind for m in tm.match_text("examples")] == ["prefix"]


# -- freshness across processes ------------------------------------------------------------------

CHILD = """
import json, sys
from bastion.scan.service import MatchService
from bastion.store.database import Database
svc = MatchService(Database(sys.argv[1]), poll_interval_s=0.1)
svc.start(background=False, follow=True)
print("ready", flush=True)
for line in sys.stdin:
    hits = svc.match_text(json.loads(line))
    print(",".join(str(m.entry_id) for m in hits) or "-", flush=True)
"""


def _visible_within(child: subprocess.Popen[str], text: str, want: str, limit_s: float) -> float:
    assert child.stdin is not None and child.stdout is not None
    t0 = time.monotonic()
    while True:
        child.stdin.write(json.dumps(text) + "\n")
        child.stdin.flush()
        got = child.stdout.readline().strip()
        elapsed = time.monotonic() - t0
        if got == want:
            return elapsed
        assert elapsed < limit_s, f"still {got!r} after {elapsed:.2f} s, wanted {want!r}"
        time.sleep(0.02)


def test_url_and_keyword_entries_visible_in_other_process_within_1s(db: Database) -> None:
    _bank(db)
    text = "see https://fresh.example/page and the n3wterm here"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, db.url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, env={**os.environ},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        assert _visible_within(child, text, "-", 1.0) < 1.0
        url = _add(db, "lists", signal_type="url", value="fresh.example", match="host")
        assert _visible_within(child, text, str(url), 1.0) < 1.0
        kw = _add(db, "lists", signal_type="keyword", value="newterm")
        assert _visible_within(child, text, f"{url},{kw}", 1.0) < 1.0
        with db.write() as s:
            banks.set_entry_enabled(s, name="lists", entry_id=url, enabled=False)
        assert _visible_within(child, text, str(kw), 1.0) < 1.0
        with db.write() as s:
            banks.delete_entry(s, name="lists", entry_id=kw)
        assert _visible_within(child, text, "-", 1.0) < 1.0
    finally:
        child.kill()
        child.wait()
