"""``bastion bank``: the commands end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bastion.cli.main import main
from bastion.store.audit import list_audit_events
from bastion.store.database import Database

REPO = Path(__file__).resolve().parents[2]
GOOD = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"


@pytest.fixture
def run(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BASTION_DATABASE_URL", db.url)
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))

    def _run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(["bank", *args])
        out = capsys.readouterr()
        code = exc.value.code
        return (code if isinstance(code, int) else 0), out.out, out.err

    return _run


def test_create_list_show_update_delete(run, db: Database) -> None:  # type: ignore[no-untyped-def]
    assert run("create", "ncmec", "--label", "csam", "--threshold", "pdq=20")[0] == 0
    code, _, err = run("create", "ncmec")
    assert code == 2 and "exists already" in err
    code, _, err = run("create", "x", "--threshold", "pdq")
    assert code == 2 and "pdq=20" in err
    code, out, _ = run("list", "--json")
    (bank,) = json.loads(out)
    assert (bank["name"], bank["label"], bank["thresholds"], bank["exportable"]) == (
        "ncmec", "csam", {"pdq": 20}, False)
    assert run("update", "ncmec", "--threshold", "md5=0", "--auto-action")[0] == 0
    assert run("disable", "ncmec")[0] == 0
    code, out, _ = run("show", "ncmec", "--json")
    shown = json.loads(out)
    assert shown["enabled"] is False and shown["auto_action"] is True
    assert shown["thresholds"] == {"pdq": 20, "md5": 0}
    assert run("rename", "ncmec", "hotline")[0] == 0
    code, _, err = run("delete", "hotline")  # no terminal, no --yes
    assert code == 2 and "--yes" in err
    assert run("delete", "hotline", "--yes")[0] == 0
    code, _, err = run("show", "hotline")
    assert code == 2 and "no bank named" in err


def test_import_reports_lines_and_export_is_guarded(run, db: Database,  # type: ignore[no-untyped-def]
                                                     tmp_path: Path) -> None:
    run("create", "h")
    src = tmp_path / "list.csv"
    empty_md5 = "d41d8cd98f00b204e9800998ecf8427e"
    src.write_text(f"signal_type,value\npdq,{'0' * 64}\npdq,{GOOD} \nmd5,{empty_md5}\n")
    code, out, _ = run("import", "h", str(src))
    assert code == 2
    assert "1 stored, 2 rejected" in out
    assert "line 2: PDQ hash is all zeros" in out and "line 4: md5 of the empty file" in out
    code, out, _ = run("import", "h", str(src), "--strict", "--json")
    report = json.loads(out)
    assert code == 2 and not report["committed"] and report["rejected"] == 2
    bare = tmp_path / "bare.csv"
    bare.write_text(f"value\n{GOOD}\n9e107d9d372bb6826bd81d3542a419d6\n")
    code, out, _ = run("import", "h", str(bare), "--signal-type", "md5", "--json")
    assert code == 2 and json.loads(out)["issues"][0]["line"] == 2  # a PDQ is not an MD5
    code, _, err = run("import", "h", str(tmp_path / "list.xyz"))
    assert code == 2 and "format" in err
    code, _, err = run("export", "h")
    assert code == 2 and "not exportable" in err
    assert run("update", "h", "--exportable")[0] == 0
    dest = tmp_path / "out.jsonl"
    code, _, err = run("export", "h", "--format", "jsonl", "-o", str(dest))
    assert code == 0 and "exported 2 entries" in err
    assert {json.loads(line)["value"] for line in dest.read_text().splitlines()} == {
        GOOD, "9e107d9d372bb6826bd81d3542a419d6"}
    with db.read() as s:
        actions = sorted(e.action for e in list_audit_events(s))
    assert actions == ["bank.export", "bank.export.denied", "bank.import", "bank.import"]


def test_sample_and_add(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("sample", "--json")
    assert code == 0 and json.loads(out)["entries"] == 4
    run("create", "own")
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    code, out, _ = run("add", "own", str(REPO / "samples" / "bridge.jpg"), str(empty), "--json")
    report = json.loads(out)
    assert code == 2  # the empty file added nothing
    added = report["files"][str(REPO / "samples" / "bridge.jpg")]
    assert sorted({e["signal_type"] for e in added}) == ["md5", "pdq", "sha1", "sha256"]
    code, out, _ = run("show", "own", "--json")
    assert json.loads(out)["entries"] == len(added)
    entry_id = str(added[0]["id"])
    assert run("disable-entry", "own", entry_id, "--until", "2031-01-01")[0] == 0
    assert run("enable-entry", "own", entry_id)[0] == 0
    assert run("delete-entry", "own", entry_id)[0] == 0
    code, _, err = run("delete-entry", "own", entry_id)
    assert code == 2 and "no entry" in err
