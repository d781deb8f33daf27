"""Bank import and export: validation with line numbers, strict mode, round trips."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from bastion.banks import service
from bastion.banks.exporting import export_bank
from bastion.banks.importing import ImportLimits, import_file, import_stream
from bastion.banks.schemas import BankCreate
from bastion.banks.values import encode_vpdq, parse_vpdq
from bastion.errors import InvalidInput, LimitExceeded, PolicyDenied
from bastion.signals.base import VideoFrame
from bastion.store.audit import list_audit_events
from bastion.store.database import Database

GOOD = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"
EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"
OTHER = "f8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b23"


def _bank(db: Database, name: str = "h", *, exportable: bool = False) -> None:
    with db.write() as s:
        service.create(s, data=BankCreate(name=name, label="csam", exportable=exportable))


def _import(db: Database, text: str, fmt: str = "csv", **kw: object) -> dict[str, object]:
    with db.write() as s:
        report = import_stream(
            s, name="h", binary=io.BytesIO(text.encode()), fmt=fmt, **kw  # type: ignore[arg-type]
        )
        return report.to_json()


def _values(db: Database, bank: str = "h") -> list[str]:
    with db.read() as s:
        return sorted(e.value for e in service.list_entries(s, name=bank, limit=10_000))


def test_issue_import_rows_rejected_with_line_numbers(db: Database) -> None:
    _bank(db)
    rows = [
        "signal_type,value",  # line 1
        "pdq," + "0" * 32,  # 2: wrong length
        "pdq," + "0" * 64,  # 3: all zeros
        "pdq," + "f" * 64,  # 4: all ones
        "pdq," + GOOD[:63],  # 5: 63 characters
        "pdq," + GOOD + "a",  # 6: 65 characters
        "pdq," + OTHER.upper(),  # 7: uppercase: valid after normalisation
        "pdq," + GOOD + " ",  # 8: trailing space: valid after normalisation
        "pdq," + "g" * 64,  # 9: not hex
        "md5," + EMPTY_MD5,  # 10: the empty file's MD5
        "md5,9e107d9d372bb6826bd81d3542a419d6",  # 11: good
    ]
    report = _import(db, "\n".join(rows) + "\n")
    rejected = {i["line"]: i["reason"] for i in report["issues"] if i["kind"] == "rejected"}
    assert sorted(rejected) == [2, 3, 4, 5, 6, 9, 10]
    assert "64 hex characters, got 32" in rejected[2]
    assert "all zeros" in rejected[3]
    assert "all ones" in rejected[4]
    assert "got 63" in rejected[5] and "got 65" in rejected[6]
    assert "hex" in rejected[9]
    assert "empty file" in rejected[10]
    assert report["stored"] == 3 and report["rows"] == 10 and report["committed"]
    assert _values(db) == sorted([OTHER, GOOD, "9e107d9d372bb6826bd81d3542a419d6"])


def test_strict_stores_nothing_when_a_row_is_bad(db: Database) -> None:
    _bank(db)
    report = _import(db, f"signal_type,value\npdq,{GOOD}\npdq,{'0' * 64}\n", strict=True)
    assert not report["committed"] and report["stored"] == 0
    assert [i["line"] for i in report["issues"]] == [3]
    assert _values(db) == []


def test_flagged_duplicate_and_column_problems(db: Database) -> None:
    _bank(db)
    sparse = "8" + "0" * 63  # one bit set: valid, but far from 128 set bits
    text = (
        "Signal_Type,signal,classification,colour\n"
        f"pdq,{sparse},a1,red\n"
        f"pdq,{GOOD},,blue\n"
        f"pdq,{GOOD.upper()},,blue\n"
        f"pdq,{OTHER},C3,\n"
        "pdq,too,many,columns,here\n"
        f"sha1,{'a' * 40},,\n"
    )
    report = _import(db, text)
    by_line = {(i["line"], i["kind"]) for i in report["issues"]}
    assert (2, "flagged") in by_line
    assert (4, "duplicate") in by_line
    assert (5, "rejected") in by_line  # bad classification
    assert (6, "rejected") in by_line  # column count
    assert report["notes"] == ["ignored columns/keys: colour"]
    assert report["stored"] == 3
    with db.read() as s:
        entries = service.list_entries(s, name="h")
    assert {e.value: e.classification for e in entries}[sparse] == "A1"


def test_malformed_files_refused_whole(db: Database, tmp_path: Path) -> None:
    _bank(db)
    bad = io.BytesIO(b"signal_type,value\npdq,\xff\n")
    with pytest.raises(InvalidInput, match="not valid UTF-8"), db.write() as s:
        import_stream(s, name="h", binary=bad, fmt="csv")
    with pytest.raises(InvalidInput, match="header must name"):
        _import(db, "a,b\n1,2\n")
    with pytest.raises(LimitExceeded):
        _import(db, f"signal_type,value\npdq,{GOOD}\npdq,{OTHER}\n",
                limits=ImportLimits(max_rows=1))
    big = tmp_path / "big.csv"
    big.write_text("signal_type,value\n" + f"pdq,{GOOD}\n" * 100)
    with pytest.raises(LimitExceeded), db.write() as s:
        import_file(s, name="h", path=big, limits=ImportLimits(max_bytes=1000))
    assert _values(db) == []


def test_jsonl_and_pytx_rows(db: Database) -> None:
    _bank(db)
    frames = [VideoFrame(0, 0.0, GOOD, 100), VideoFrame(1, 1.0, OTHER, 90)]
    jl = "\n".join([
        json.dumps({"signal_type": "pdq", "signal": GOOD, "source": "ncmec",
                    "external_id": "42", "source_date": "2024-05-01"}),
        "not json",
        json.dumps([1, 2]),
        json.dumps({"signal_type": "vpdq", "value": [f.to_json() for f in frames]}),
        "",
    ])
    report = _import(db, jl, fmt="jsonl")
    assert [(i["line"], i["kind"]) for i in report["issues"]] == [(2, "rejected"), (3, "rejected")]
    assert report["stored"] == 2
    pytx_vpdq = json.dumps([f"{GOOD},100,0.000", f"{OTHER},90,1.000"])
    tx = (f"pdq {OTHER}\nvideo_md5 9e107d9d372bb6826bd81d3542a419d6\nphotodna abc\n"
          f"vpdq {pytx_vpdq}\n")
    report = _import(db, tx, fmt="pytx")
    assert [(i["line"], i["kind"]) for i in report["issues"]] == [
        (3, "rejected"), (4, "duplicate")]
    assert encode_vpdq(frames) in _values(db)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "pytx"])
def test_export_import_round_trip(db: Database, fmt: str) -> None:
    _bank(db, "src", exportable=True)
    frames = [VideoFrame(0, 0.0, GOOD, 100), VideoFrame(3, 2.5, OTHER, 77)]
    jl = "\n".join(json.dumps(o) for o in [
        {"signal_type": "pdq", "value": GOOD, "variant": {"kind": "trimmed", "index": 0},
         "item": "sha256:abc", "source": "hotline", "external_id": "x-1",
         "source_date": "2024-01-02T03:04:05+00:00", "classification": "B2",
         "note": "a, \"quoted\"\ttab note"},
        {"signal_type": "md5", "value": "9e107d9d372bb6826bd81d3542a419d6", "enabled": False,
         "disabled_until": "2030-01-01T00:00:00+00:00"},
        {"signal_type": "sha1", "value": "a" * 40},
        {"signal_type": "vpdq", "value": encode_vpdq(frames)},
    ])
    with db.write() as s:
        import_stream(s, name="src", binary=io.BytesIO(jl.encode()), fmt="jsonl")
    out = io.StringIO()
    with db.write() as s:
        exp = export_bank(s, name="src", out=out, fmt=fmt, actor="test")
    _bank(db, "dst")
    with db.write() as s:
        rep = import_stream(s, name="dst", binary=io.BytesIO(out.getvalue().encode()), fmt=fmt)
    assert rep.count("rejected") == 0
    with db.read() as s:
        src = {(e.signal_type, e.value): e for e in service.list_entries(s, name="src")}
        dst = {(e.signal_type, e.value): e for e in service.list_entries(s, name="dst")}
    if fmt == "pytx":  # the format carries type and value only, and has no SHA-1
        assert [i.reason for i in exp.skipped] == [
            f"entry {src[('sha1', 'a' * 40)].id}: python-threatexchange has no sha1 signal type"]
        del src[("sha1", "a" * 40)]

        def key(k: tuple[str, str]) -> object:  # pytx vPDQ has no frame numbers
            if k[0] != "vpdq":
                return k
            return tuple((f.value, f.quality, f.timestamp_s) for f in parse_vpdq(k[1]))

        assert {key(k) for k in dst} == {key(k) for k in src}
        return
    assert exp.rows == 4 and set(dst) == set(src)
    keep = ("variant", "item", "source", "external_id", "source_date", "classification",
            "note", "enabled", "disabled_until")
    for key, e in src.items():
        assert {k: getattr(dst[key], k) for k in keep} == {k: getattr(e, k) for k in keep}


def test_export_refused_unless_exportable_and_audited(db: Database) -> None:
    _bank(db)
    _import(db, f"signal_type,value\npdq,{GOOD}\n")
    with pytest.raises(PolicyDenied, match="not exportable"), db.write() as s:
        export_bank(s, name="h", out=io.StringIO(), actor="cli:tester")
    with db.write() as s:
        service.update(s, name="h", data=service.BankUpdate(exportable=True))
    out = io.StringIO()
    with db.write() as s:
        export_bank(s, name="h", out=out, fmt="csv", actor="cli:tester")
    assert GOOD in out.getvalue()
    with db.read() as s:
        events = [(e.actor, e.detail) for e in list_audit_events(s, action="bank.export")]
    assert len(events) == 1
    assert events[0][0] == "cli:tester" and events[0][1] is not None
    assert events[0][1]["rows"] == 1
