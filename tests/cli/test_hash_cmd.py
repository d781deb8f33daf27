"""``bastion hash``: JSON lines, the table, folders, exit status."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from bastion.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "../shared/data"
JPEG = DATA / "images/bridge-mods/aaa-orig.jpg"
BRIDGE_PDQ = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))
    for key in ("BASTION_CONFIG", "BASTION_DECODE_WORKERS", "BASTION_FAST_DECODE"):
        monkeypatch.delenv(key, raising=False)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "uploads"
    (root / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(JPEG, root / "b-photo.jpg")
    with Image.open(JPEG) as im:
        im.resize((400, 251)).save(root / "sub" / "deeper" / "small.png")
    return root


def test_json_lines_shape_and_exit_0(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    code, out = run("hash", "--json", str(root))
    assert code == 0
    objs = lines(out)
    assert [Path(o["path"]).name for o in objs] == ["b-photo.jpg", "small.png"]
    photo = objs[0]
    assert photo["media_type"] == "image" and photo["status"] == "hashed"
    assert photo["mime"] == "image/jpeg"
    assert (photo["width"], photo["height"], photo["orientation"]) == (1600, 1004, 1)
    types = [s["signal_type"] for s in photo["signals"]]
    assert types == ["md5", "sha1", "sha256", "pdq"]
    pdq = photo["signals"][3]
    assert pdq == {"signal_type": "pdq", "value": BRIDGE_PDQ, "quality": 100,
                   "variant": {"kind": "stored", "index": 0}}
    for s in photo["signals"]:
        assert s["value"] == s["value"].lower()


def test_not_scanned_gives_exit_2_with_reason(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "notes.jpg").write_text("not a picture")
    (root / "empty.png").write_bytes(b"")
    code, out = run("hash", "--json", str(root), str(tmp_path / "missing.jpg"))
    assert code == 2
    by_name = {Path(o["path"]).name: o for o in lines(out)}
    assert set(by_name) == {"b-photo.jpg", "empty.png", "notes.jpg", "small.png", "missing.jpg"}
    text = by_name["notes.jpg"]
    assert text["status"] == "not_scanned" and text["media_type"] == "other"
    assert "not an image or video" in text["reason"]
    assert [s["signal_type"] for s in text["signals"]] == ["md5", "sha1", "sha256"]
    assert by_name["empty.png"]["reason"] == "empty file"
    assert by_name["missing.jpg"]["reason"] == "file not found"
    assert by_name["b-photo.jpg"]["status"] == "hashed"


def test_low_quality_is_reported_and_still_hashed(tmp_path: Path) -> None:
    path = tmp_path / "solid.png"
    Image.new("RGB", (64, 64), (9, 9, 9)).save(path)
    code, out = run("hash", "--json", str(path))
    assert code == 0
    (obj,) = lines(out)
    (pdq,) = [s for s in obj["signals"] if s["signal_type"] == "pdq"]
    assert pdq["quality"] == 0 and pdq["low_quality"] is True


def test_every_frame_flag(tmp_path: Path) -> None:
    with Image.open(JPEG) as im:
        a = im.convert("RGB").resize((200, 125)).quantize(256)
    b = Image.new("RGB", (200, 125), (200, 30, 30)).quantize(256)
    buf = io.BytesIO()
    a.save(buf, "GIF", save_all=True, append_images=[b, a], duration=100)
    path = tmp_path / "anim.gif"
    path.write_bytes(buf.getvalue())
    _, out = run("hash", "--json", str(path))
    frames = [s for s in lines(out)[0]["signals"] if s["variant"]["kind"] == "frame"]
    assert [f["variant"]["index"] for f in frames] == [1]
    _, out = run("hash", "--json", "--every-frame", str(path))
    frames = [s for s in lines(out)[0]["signals"] if s["variant"]["kind"] == "frame"]
    assert [f["variant"]["index"] for f in frames] == [0, 1, 2]
    assert frames[1]["variant"]["timestamp_s"] == pytest.approx(0.1)


def test_table_without_json(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    code, out = run("hash", str(root))
    assert code == 0
    assert "b-photo.jpg" in out and "small.png" in out
    assert BRIDGE_PDQ in out
    assert "{" not in out


def test_in_process_setting_gives_the_same_lines(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path)
    _, pooled = run("hash", "--json", str(root))
    monkeypatch.setenv("BASTION_DECODE_WORKERS", "0")
    _, local = run("hash", "--json", str(root))
    assert lines(pooled) == lines(local)


def test_console_script_exit_status(tmp_path: Path) -> None:
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    env = {"PATH": "/usr/bin:/bin", "BASTION_HOME": str(tmp_path / "home")}
    cmd = [sys.executable, "-m", "bastion.cli.main", "hash", "--json"]
    bad_run = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, env=env,
                             timeout=120)
    assert bad_run.returncode == 2
    (obj,) = lines(bad_run.stdout)
    assert obj["status"] == "not_scanned" and obj["reason"]
    good_run = subprocess.run([*cmd, str(JPEG)], capture_output=True, text=True, env=env,
                              timeout=120)
    assert good_run.returncode == 0, good_run.stderr
    assert lines(good_run.stdout)[0]["signals"][3]["value"] == BRIDGE_PDQ
    usage = subprocess.run([*cmd], capture_output=True, text=True, env=env, timeout=120)
    assert usage.returncode == 2
