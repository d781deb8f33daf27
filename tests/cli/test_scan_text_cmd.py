"""``bastion scan-text`` end to end, on SQLite and PostgreSQL: one item per line or JSON
line, spans in the original line, bad lines reported by number, exit status as ``scan``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bastion.cli import scan_text_cmd
from bastion.cli.main import main
from bastion.store.database import Database

Run = Callable[..., tuple[int, str, str]]

LIST = (
    "signal_type,value,match,collapse_repeats\n"
    "keyword,example,,\n"
    "keyword,pizza,,true\n"
    "url,mastodon.social,host,\n"
    "url,https://abuse.test/x,,\n"
)


@pytest.fixture
def run(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Run:
    monkeypatch.setenv("BASTION_DATABASE_URL", db.url)
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))

    def _run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        out = capsys.readouterr()
        code = exc.value.code
        return (code if isinstance(code, int) else 0), out.out, out.err

    return _run


@pytest.fixture
def lists(run: Run, tmp_path: Path) -> Path:
    assert run("bank", "create", "lists", "--label", "csam")[0] == 0
    path = tmp_path / "lists.csv"
    path.write_text(LIST)
    code, out, err = run("bank", "import", "lists", str(path))
    assert code == 0, out + err
    return path


def _write(tmp_path: Path, data: bytes, name: str = "in.txt") -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def _results(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def test_plain_lines_json_shape_and_spans(run: Run, lists: Path, tmp_path: Path) -> None:
    lines = [
        "hello ｅｘａｍｐｌｅ world",  # 1: fullwidth keyword
        "",  # 2: blank, not an item
        "see (https://abuse.test/x). and piiizzza",  # 3: URL + collapsed keyword
        "nothing to see",  # 4
        "join mastоdon.social/@kid",  # 5: Cyrillic о: confusable host
    ]
    src = _write(tmp_path, ("\n".join(lines) + "\n").encode())
    code, out, err = run("scan-text", "--json", src)
    assert code == 1, err
    res = _results(out)
    assert [(r["line"], r["status"]) for r in res] == [
        (1, "match"), (3, "match"), (4, "no_match"), (5, "match")]
    for r in res:
        text = lines[r["line"] - 1]
        for m in r["matches"]:
            s, e = m["span"]
            assert text[s:e] == m["matched"]
            assert m["bank"] == "lists" and m["label"] == "csam" and m["distance"] == 0
    (kw,) = res[0]["matches"]
    assert {k: kw[k] for k in ("signal_type", "entry", "kind", "matched", "span")} == {
        "signal_type": "keyword", "entry": "example", "kind": "word",
        "matched": "ｅｘａｍｐｌｅ", "span": [6, 13]}
    url, pizza = res[1]["matches"]
    assert (url["signal_type"], url["canonical"], url["matched"], url["kind"]) == (
        "url", "https://abuse.test/x", "https://abuse.test/x", "exact")
    assert (pizza["entry"], pizza["matched"]) == ("pizza", "piiizzza")
    (conf,) = res[3]["matches"]
    assert (conf["kind"], conf["host"], conf["listed_host"]) == (
        "confusable", "mastоdon.social", "mastodon.social")
    assert "4 items, 3 matched, 0 not scanned" in err


def test_clean_input_exits_0_and_human_output(run: Run, lists: Path, tmp_path: Path) -> None:
    src = _write(tmp_path, b"all fine here\nnothing\n")
    code, out, err = run("scan-text", src)
    assert (code, out) == (0, "")
    assert "2 items, 0 matched" in err
    code, out, _ = run("scan-text", _write(tmp_path, b"ok\nan example\n", "b.txt"))
    assert code == 1
    assert out.startswith("line 2\tmatch\tlists/") and "'example' [3,10)" in out


def test_bad_lines_reported_by_number_and_rest_processed(
    run: Run, lists: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_MAX_TEXT_CHARS", "40")
    data = b"fine\n" + b"\xff\xfe broken\n" + b"x" * 41 + b"\nclean again\n"
    code, out, err = run("scan-text", "--json", _write(tmp_path, data))
    assert code == 2, err
    res = _results(out)
    assert [(r["line"], r["status"]) for r in res] == [
        (1, "no_match"), (2, "not_scanned"), (3, "not_scanned"), (4, "no_match")]
    assert "UTF-8" in res[1]["reason"] and "over the limit of 40" in res[2]["reason"]
    assert "2 not scanned" in err
    code, out, _ = run("scan-text", _write(tmp_path, data + b"example\n", "m.txt"))
    assert code == 1  # a match wins over lines not scanned
    assert "line 2\tnot_scanned" in out and "line 5\tmatch" in out


def test_overlong_line_skipped_without_reading_it_whole(
    run: Run, lists: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_MAX_TEXT_CHARS", "10")
    # 6 bytes per character plus 64 KiB is the byte cap of one line.
    data = b"a" * (6 * 10 + 64 * 1024 + 5) + b"\nexample\n"
    code, out, _ = run("scan-text", "--json", _write(tmp_path, data))
    res = _results(out)
    assert code == 1
    assert res[0]["line"] == 1 and "bytes" in res[0]["reason"]
    assert (res[1]["line"], res[1]["status"]) == (2, "match")


def test_json_lines_detected_with_id_and_links(run: Run, lists: Path) -> None:
    items = [
        json.dumps({"id": "post-1", "text": "e x a m p l e"}),
        json.dumps({"id": 2, "text": "clean", "links": ["https://abuse.test/x"]}),
        "not json",
        json.dumps({"text": 5}),
        json.dumps(["text"]),
        json.dumps({"text": "ok", "links": ["ftp://abuse.test/"]}),
        json.dumps({"other": "no text"}),
    ]
    code, out, _ = run("scan-text", "--json", "-", stdin=("\n".join(items) + "\n").encode())
    assert code == 1
    res = _results(out)
    assert [(r["line"], r["status"]) for r in res] == [
        (1, "match"), (2, "match"), (3, "not_scanned"), (4, "not_scanned"),
        (5, "not_scanned"), (6, "not_scanned"), (7, "not_scanned")]
    assert res[0]["id"] == "post-1" and res[0]["matches"][0]["span"] == [0, 13]
    link = res[1]["matches"][0]
    assert res[1]["id"] == 2 and "span" not in link and link["matched"] == "https://abuse.test/x"
    assert "JSON" in res[2]["reason"] and "string" in res[3]["reason"]
    assert "object" in res[4]["reason"] and "link 0" in res[5]["reason"]
    assert "no text" in res[6]["reason"]


def test_plain_and_jsonl_flags(run: Run, lists: Path) -> None:
    line = json.dumps({"text": "example"}) + "\n"
    code, out, _ = run("scan-text", "--json", "--plain", "-", stdin=line.encode())
    (r,) = _results(out)
    assert code == 1 and r["matches"][0]["span"] == [10, 17]  # inside the JSON text
    code, out, _ = run("scan-text", "--json", "--jsonl", "-", stdin=b"example\n")
    assert code == 2 and _results(out)[0]["status"] == "not_scanned"
    code, _, err = run("scan-text", "--jsonl", "--plain", "-", stdin=b"x\n")
    assert code == 2 and "exclude" in err


def test_bank_filter_and_no_bank(run: Run, lists: Path, tmp_path: Path) -> None:
    src = _write(tmp_path, b"an example\n")
    assert run("bank", "create", "other")[0] == 0
    code, out, _ = run("scan-text", "--json", "--bank", "other", src)
    assert code == 0 and _results(out)[0]["status"] == "no_match"
    code, _, err = run("scan-text", "--bank", "nope", src)
    assert code == 2 and "unknown bank" in err
    assert run("bank", "disable", "lists")[0] == 0
    assert run("bank", "disable", "other")[0] == 0
    code, _, err = run("scan-text", src)
    assert code == 2 and "no bank is enabled" in err


def test_order_kept_across_batches(
    run: Run, lists: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan_text_cmd, "BATCH_ITEMS", 3)
    lines = [b"example" if i % 4 == 0 else b"\xff" if i % 7 == 3 else b"plain %d" % i
             for i in range(20)]
    code, out, _ = run("scan-text", "--json", _write(tmp_path, b"\n".join(lines) + b"\n"))
    res = _results(out)
    assert code == 1 and [r["line"] for r in res] == list(range(1, 21))
    want = ["match" if i % 4 == 0 else "not_scanned" if i % 7 == 3 else "no_match"
            for i in range(20)]
    assert [r["status"] for r in res] == want


def test_missing_file_is_a_usage_error(run: Run, lists: Path, tmp_path: Path) -> None:
    code, _, err = run("scan-text", str(tmp_path / "absent.txt"))
    assert code == 2 and "not a readable file" in err


def test_as_a_user_runs_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "BASTION_HOME": str(home)}
    env.pop("BASTION_DATABASE_URL", None)
    bastion = [sys.executable, "-m", "bastion.cli.main"]
    lst = tmp_path / "l.csv"
    lst.write_text(LIST)
    for args in (["bank", "create", "lists"], ["bank", "import", "lists", str(lst)]):
        assert subprocess.run([*bastion, *args], env=env, capture_output=True).returncode == 0
    proc = subprocess.run([*bastion, "scan-text", "--json", "-"], env=env, input="x\nexample\n",
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert [json.loads(x)["status"] for x in proc.stdout.splitlines()] == ["no_match", "match"]
