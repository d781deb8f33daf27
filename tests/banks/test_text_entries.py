"""URL and keyword bank entries (issue 7): options validated row by row on every way in,
stored, carried by the change log, and round-tripped through export and import."""

from __future__ import annotations

import io
import json

import pytest

from bastion.banks import service
from bastion.banks.exporting import export_bank
from bastion.banks.importing import import_stream
from bastion.banks.schemas import BankCreate
from bastion.banks.values import check_entry
from bastion.errors import InvalidInput
from bastion.store.change_log import ChangeFollower, current_cursor, load_snapshot
from bastion.store.database import Database
from bastion.store.records import EntryRecord

PDQ = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"


def _bank(db: Database, name: str = "h", *, exportable: bool = False) -> None:
    with db.write() as s:
        service.create(s, data=BankCreate(name=name, label="csam", exportable=exportable))


def _import(db: Database, text: str, fmt: str = "csv", name: str = "h") -> dict[str, object]:
    with db.write() as s:
        return import_stream(s, name=name, binary=io.BytesIO(text.encode()), fmt=fmt).to_json()


def _entries(db: Database, name: str = "h") -> dict[tuple[str, str], service.EntryRead]:
    with db.read() as s:
        return {(e.signal_type, e.value): e for e in service.list_entries(s, name=name)}


# -- check_entry: the one validation every way in goes through --------------------------


@pytest.mark.parametrize(
    ("fields", "value", "options"),
    [
        ({"value": "HTTP://Example.COM:80"}, "http://example.com/",
         {"match": "exact", "scheme": "http", "query_order": "keep"}),
        ({"value": "example.com/a", "match": "PREFIX"}, "//example.com/a",
         {"match": "prefix", "scheme": "any", "query_order": "keep"}),
        ({"value": "bücher.example", "match": "host", "scheme": "https"},
         "//xn--bcher-kva.example/", {"match": "host", "scheme": "https", "query_order": "keep"}),
        ({"value": "https://x.example/?b=2&a=1", "query_order": "any"},
         "https://x.example/?b=2&a=1", {"match": "exact", "scheme": "https", "query_order": "any"}),
        ({"value": "hxxps://x[.]example/p", "options": {"match": "prefix"}},
         "https://x.example/p", {"match": "prefix", "scheme": "https", "query_order": "keep"}),
    ],
)
def test_url_entry_options(
    fields: dict[str, object], value: str, options: dict[str, object]
) -> None:
    entry, warnings = check_entry({"signal_type": "url", **fields})
    assert (entry.signal_type, entry.value, entry.options, warnings) == ("url", value, options, ())


@pytest.mark.parametrize(
    ("fields", "value", "options"),
    [
        ({"value": "  cheese   pizza "}, "cheese pizza",
         {"match": "word", "language": None, "collapse_repeats": False}),
        ({"value": "example", "match": "prefix", "language": "EN", "collapse_repeats": "yes"},
         "example", {"match": "prefix", "language": "en", "collapse_repeats": True}),
        ({"value": "cafe\u0301", "options": '{"match": "substring", "collapse_repeats": true}'},
         "café", {"match": "substring", "language": None, "collapse_repeats": True}),
        ({"value": "🍕", "language": "pt_BR"}, "🍕",
         {"match": "word", "language": "pt-BR", "collapse_repeats": False}),
    ],
)
def test_keyword_entry_options(
    fields: dict[str, object], value: str, options: dict[str, object]
) -> None:
    entry, _ = check_entry({"signal_type": "keyword", **fields})
    assert (entry.value, entry.options) == (value, options)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"signal_type": "url", "value": "example.com/a", "match": "word"}, "match must be one of"),
        ({"signal_type": "url", "value": "https://a.example/", "scheme": "http"}, "contradicts"),
        ({"signal_type": "url", "value": "a.example/x", "match": "host"}, "host only"),
        ({"signal_type": "url", "value": "a.example", "query_order": "sorted"}, "query_order"),
        ({"signal_type": "url", "value": "a.example", "language": "en"}, "keyword entries"),
        ({"signal_type": "url", "value": "ftp://a.example/"}, "scheme"),
        ({"signal_type": "keyword", "value": "x", "match": "exact"}, "match must be one of"),
        ({"signal_type": "keyword", "value": "x", "scheme": "https"}, "url entries"),
        ({"signal_type": "keyword", "value": "x", "language": "english!"}, "BCP 47"),
        ({"signal_type": "keyword", "value": "x", "collapse_repeats": "maybe"}, "true or false"),
        ({"signal_type": "keyword", "value": "x", "collapse_repeats": 3}, "true or false"),
        ({"signal_type": "keyword", "value": "\u200b\u200b"}, "no visible characters"),
        ({"signal_type": "keyword", "value": "x" * 300}, "longer than"),
        ({"signal_type": "keyword", "value": "x", "options": {"colour": "red"}}, "unknown option"),
        ({"signal_type": "keyword", "value": "x", "options": "[1]"}, "must be an object"),
        ({"signal_type": "keyword", "value": "x", "match": 7}, "must be a string"),
        ({"signal_type": "pdq", "value": PDQ, "match": "exact"}, "url and keyword entries only"),
    ],
)
def test_bad_options_rejected_naming_the_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_entry(fields)


def test_other_signal_types_have_no_options_even_with_empty_columns() -> None:
    entry, _ = check_entry({"signal_type": "pdq", "value": PDQ, "match": "", "language": " "})
    assert entry.options is None


# -- import, store, change log -------------------------------------------------------------


def test_import_rows_validated_with_line_numbers(db: Database) -> None:
    _bank(db)
    rows = [
        "signal_type,signal,match,scheme,query_order,language,collapse_repeats",  # 1
        "url,example.com/a,prefix,,,,",  # 2
        "url,https://x.example/p,prefix,http,,,",  # 3: scheme contradicts
        "keyword,cheese pizza,,,,en,",  # 4
        "keyword,example,substring,,,,true",  # 5
        "keyword,example,sometimes,,,,",  # 6: bad match
        "url,b.example,host,,,,",  # 7
        "keyword,other,,https,,,",  # 8: scheme on a keyword
        'url,"https://q.example/?a=1&b=2",,,any,,',  # 9
        f"pdq,{PDQ},,,,,",  # 10
        "url,example.com/a,exact,,,,",  # 11: same canonical URL as line 2
    ]
    report = _import(db, "\n".join(rows) + "\n")
    issues = {i["line"]: (i["kind"], i["reason"]) for i in report["issues"]}
    assert sorted(issues) == [3, 6, 8, 11]
    assert issues[3][0] == "rejected" and "contradicts" in issues[3][1]
    assert issues[6][0] == "rejected" and "match must be one of" in issues[6][1]
    assert issues[8][0] == "rejected" and "url entries" in issues[8][1]
    assert issues[11][0] == "duplicate"
    assert report["stored"] == 6
    got = _entries(db)
    assert got[("url", "//example.com/a")].options == {
        "match": "prefix", "scheme": "any", "query_order": "keep"}
    assert got[("url", "//b.example/")].options == {
        "match": "host", "scheme": "any", "query_order": "keep"}
    assert got[("url", "https://q.example/?a=1&b=2")].options == {
        "match": "exact", "scheme": "https", "query_order": "any"}
    assert got[("keyword", "cheese pizza")].options == {
        "match": "word", "language": "en", "collapse_repeats": False}
    assert got[("keyword", "example")].options == {
        "match": "substring", "language": None, "collapse_repeats": True}
    assert got[("pdq", PDQ)].options is None


def test_jsonl_import_with_options_object_and_boolean(db: Database) -> None:
    _bank(db)
    lines = [
        {"signal_type": "keyword", "signal": "exxample", "collapse_repeats": True},
        {"signal_type": "url", "value": "a.example/x", "options": {"match": "prefix"}},
        {"signal_type": "url", "value": "a.example/y", "options": {"match": "nope"}},
    ]
    report = _import(db, "\n".join(json.dumps(o) for o in lines), fmt="jsonl")
    assert [(i["line"], i["kind"]) for i in report["issues"]] == [(3, "rejected")]
    got = _entries(db)
    assert got[("keyword", "exxample")].options == {
        "match": "word", "language": None, "collapse_repeats": True}
    assert got[("url", "//a.example/x")].options == {
        "match": "prefix", "scheme": "any", "query_order": "keep"}


def test_options_reach_followers_and_snapshots(db: Database) -> None:
    _bank(db)
    follower = ChangeFollower(db, current_cursor(db))
    with db.write() as s:
        service.add_entry(s, name="h", fields={
            "signal_type": "url", "value": "a.example", "match": "host"})
        service.add_entry(s, name="h", fields={
            "signal_type": "keyword", "value": "term", "match": "prefix", "language": "de"})
    changes = follower.poll()
    got = {c.entry.signal_type: c.entry.options for c in changes if c.entry is not None}
    assert got == {
        "url": {"match": "host", "scheme": "any", "query_order": "keep"},
        "keyword": {"match": "prefix", "language": "de", "collapse_repeats": False},
    }
    snap = load_snapshot(db)
    assert {e.signal_type: e.options for e in snap.entries} == got
    rec = snap.entries[0]
    assert EntryRecord.from_json(json.loads(json.dumps(rec.to_json()))) == rec


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_export_import_round_trip(db: Database, fmt: str) -> None:
    _bank(db, "src", exportable=True)
    lines = [
        {"signal_type": "url", "value": "https://x.example/a?b=2&a=1", "query_order": "any",
         "source": "hotline"},
        {"signal_type": "url", "value": "x.example/dir", "match": "prefix", "scheme": "https"},
        {"signal_type": "url", "value": "bücher.example", "match": "host"},
        {"signal_type": "keyword", "value": "cheese, \"pizza\"", "language": "en",
         "classification": "A1"},
        {"signal_type": "keyword", "value": "exxample", "match": "prefix",
         "collapse_repeats": True},
        {"signal_type": "keyword", "value": "児童"},
        {"signal_type": "pdq", "value": PDQ},
    ]
    _import(db, "\n".join(json.dumps(o) for o in lines), fmt="jsonl", name="src")
    out = io.StringIO()
    with db.write() as s:
        exp = export_bank(s, name="src", out=out, fmt=fmt, actor="test")
    assert exp.rows == len(lines)
    _bank(db, "dst")
    report = _import(db, out.getvalue(), fmt=fmt, name="dst")
    assert report["issues"] == [] and report["stored"] == len(lines)
    src, dst = _entries(db, "src"), _entries(db, "dst")
    assert set(src) == set(dst)
    for key, e in src.items():
        assert (dst[key].options, dst[key].source, dst[key].classification) == (
            e.options, e.source, e.classification), key


def test_pytx_export_skips_url_entries_it_cannot_express(db: Database) -> None:
    _bank(db, "src", exportable=True)
    _import(db, "signal_type,value,match\nurl,https://a.example/x,\nurl,b.example,host\n"
            "keyword,term,\n", name="src")
    out = io.StringIO()
    with db.write() as s:
        exp = export_bank(s, name="src", out=out, fmt="pytx", actor="test")
    assert out.getvalue() == "url https://a.example/x\n"
    reasons = sorted(i.reason for i in exp.skipped)
    assert len(reasons) == 2
    assert "no host URL entries" in reasons[0] and "no keyword signal type" in reasons[1]
