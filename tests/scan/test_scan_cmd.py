"""``bastion scan`` and ``bastion match`` end to end, in a subprocess like a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
BASTION = [sys.executable, "-m", "bastion.cli.main"]


def run(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BASTION_HOME": str(home), "BASTION_DECODE_WORKERS": "2"}
    env.pop("BASTION_DATABASE_URL", None)
    return subprocess.run(
        [*BASTION, *args], env=env, input=stdin, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    assert run(h, "bank", "sample").returncode == 0
    return h


def test_scan_shared_data_finds_bridge_edits_exit_1(home: Path) -> None:
    proc = run(home, "scan", "--json", str(DATA / "images"))
    assert proc.returncode == 1, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    by_name = {Path(r["path"]).name: r for r in results}
    for name in ("aaa-orig.jpg", "blur-a-lot.jpg", "bridge-2-rotate-90.jpg",
                 "letterboxed_sample-b.jpg"):
        assert by_name[name]["status"] == "match", name
    assert by_name["pen-and-coaster.png"]["status"] == "no_match"
    m = by_name["bridge-2-rotate-90.jpg"]["matches"][0]
    assert m["bank"] == "sample" and isinstance(m["distance"], int) and m["transform"] == "rot270"
    assert "matched" in proc.stderr and "files/s" in proc.stderr


def test_clean_folder_exits_0_and_broken_file_is_not_scanned(home: Path, tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    for name in ("q0003.jpg", "q0004.jpg"):
        shutil.copy(DATA / "images" / "reg-test-input" / "labelme-subset" / name, clean / name)
    proc = run(home, "scan", "--json", str(clean))
    assert proc.returncode == 0, proc.stderr
    assert {json.loads(x)["status"] for x in proc.stdout.splitlines()} == {"no_match"}
    bad = clean / "broken.jpg"
    bad.write_bytes((DATA / "images" / "bridge-mods" / "aaa-orig.jpg").read_bytes()[:3000])
    unreadable = clean / "secret.jpg"
    unreadable.write_bytes(b"x")
    unreadable.chmod(0)
    proc = run(home, "scan", "--json", str(clean))
    results = {Path(r["path"]).name: r for r in map(json.loads, proc.stdout.splitlines())}
    assert proc.returncode == 2
    assert results["broken.jpg"]["status"] == "not_scanned" and results["broken.jpg"]["reason"]
    assert results["q0003.jpg"]["status"] == "no_match"
    if os.geteuid() != 0:  # root reads a mode-000 file; the truncated JPEG covers root
        assert results["secret.jpg"]["status"] == "not_scanned"


def test_no_enabled_bank_never_looks_clean(tmp_path: Path) -> None:
    proc = run(tmp_path / "empty", "scan", str(DATA / "images" / "misc-images" / "c.png"))
    assert proc.returncode == 2
    assert "no bank is enabled" in proc.stderr


def test_stdin_list_and_bank_filter(home: Path) -> None:
    assert run(home, "bank", "create", "other").returncode == 0
    orig = DATA / "images" / "bridge-mods" / "aaa-orig.jpg"
    proc = run(home, "scan", "--json", "--bank", "other", "-", stdin=f"{orig}\n")
    assert proc.returncode == 0, proc.stderr  # the sample bank is not asked
    assert json.loads(proc.stdout)["status"] == "no_match"
    proc = run(home, "scan", "--bank", "nope", str(orig))
    assert proc.returncode == 2 and "unknown bank" in proc.stderr


def test_match_bare_hash(home: Path) -> None:
    proc = run(home, "match", "--json", "pdq",
               "D8F8F0CEE0F4A84F0637022A078F67F0B36E2ED596621E1D33E6339C4E9C9B22 ")
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert out["status"] == "match" and out["matches"][0]["distance"] == 0
    proc = run(home, "match", "pdq", "zz")
    assert proc.returncode == 2 and "64 hex" in proc.stderr


def test_match_url_and_keyword_search_the_lists(home: Path, tmp_path: Path) -> None:
    lists = tmp_path / "lists.csv"
    lists.write_text("signal_type,signal,match\nurl,http://bad.example/stuff,prefix\n"
                     "keyword,pizzagift,word\n")
    assert run(home, "bank", "create", "watch").returncode == 0
    proc = run(home, "bank", "import", "watch", str(lists))
    assert proc.returncode == 0, proc.stderr
    proc = run(home, "match", "--json", "url", "http://bad.example/stuff/page?x=1")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    out = json.loads(proc.stdout)
    assert out["status"] == "match" and out["matches"][0]["signal_type"] == "url"
    proc = run(home, "match", "keyword", "a P1ZZAGIFT offer")
    assert proc.returncode == 1 and "watch" in proc.stdout, (proc.stdout, proc.stderr)
    assert run(home, "match", "url", "http://good.example/").returncode == 0
    assert run(home, "match", "keyword", "pizza").returncode == 0


def test_scan_dash_with_file_bytes_on_stdin_is_a_clear_error(home: Path) -> None:
    jpeg = (DATA / "images" / "bridge-mods" / "aaa-orig.jpg").read_bytes()
    env = {**os.environ, "BASTION_HOME": str(home), "BASTION_DECODE_WORKERS": "0"}
    env.pop("BASTION_DATABASE_URL", None)
    proc = subprocess.run([*BASTION, "scan", "-"], env=env, input=jpeg, capture_output=True,
                          timeout=300)
    assert proc.returncode == 2
    err = proc.stderr.decode(errors="replace")
    assert "Traceback" not in err and "paths" in err, err
