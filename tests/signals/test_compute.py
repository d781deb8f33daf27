"""The hashing entry point: exact hashes (against coreutils), statuses, odd input, video."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from bastion.config import Limits
from bastion.signals.base import Signal, VideoSignal
from bastion.signals.compute import hash_bytes, hash_file
from bastion.signals.result import HashResult

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "../shared/data"
JPEG = DATA / "images/bridge-mods/aaa-orig.jpg"


def exact(result: HashResult) -> dict[str, str]:
    return {
        s.signal_type: s.value
        for s in result.signals
        if isinstance(s, Signal) and s.signal_type in ("md5", "sha1", "sha256")
    }


def coreutils(path: Path) -> dict[str, str]:
    out = {}
    for name in ("md5", "sha1", "sha256"):
        tool = shutil.which(f"{name}sum")
        assert tool is not None, f"{name}sum is needed for this test"
        line = subprocess.run([tool, str(path)], check=True, capture_output=True, text=True)
        out[name] = line.stdout.split()[0]
    return out


@pytest.mark.parametrize("size", [0, 1, 8191, 8192, 8193, 65537, (1 << 20) * 3 + 5])
def test_exact_hashes_equal_coreutils(tmp_path: Path, size: int) -> None:
    path = tmp_path / f"f{size}.bin"
    path.write_bytes(os.urandom(size))
    want = coreutils(path)
    assert exact(hash_file(path)) == want
    assert exact(hash_bytes(path.read_bytes())) == want


def test_exact_hashes_of_a_jpeg_equal_coreutils() -> None:
    result = hash_file(JPEG)
    assert result.status == "hashed"
    assert exact(result) == coreutils(JPEG)
    assert [s.signal_type for s in result.signals][:4] == ["md5", "sha1", "sha256", "pdq"]


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    result = hash_file(path)
    assert result.status == "not_scanned" and result.reason == "empty file"
    assert exact(result)["md5"] == "d41d8cd98f00b204e9800998ecf8427e"


def test_text_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_text("this is not a picture\n" * 20)
    result = hash_file(path)
    assert result.media_type == "other"
    assert result.status == "not_scanned"
    assert result.reason and "not an image or video" in result.reason
    assert exact(result) == coreutils(path)
    assert result.to_json()["reason"] == result.reason


def test_over_size_limit_still_gets_exact_hashes(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    shutil.copy(JPEG, path)
    result = hash_file(path, limits=Limits(max_file_bytes=1000))
    assert result.status == "not_scanned"
    assert result.reason and "size limit" in result.reason
    assert exact(result) == coreutils(path)


def test_missing_and_special_files(tmp_path: Path) -> None:
    missing = hash_file(tmp_path / "nope.jpg")
    assert missing.status == "not_scanned" and missing.reason == "file not found"
    folder = hash_file(tmp_path)
    assert folder.status == "not_scanned" and folder.reason == "not a regular file"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    r = hash_file(fifo)  # must not block reading a FIFO
    assert r.status == "not_scanned" and r.reason == "not a regular file"


def test_json_shape_of_an_image() -> None:
    obj = hash_file(JPEG).to_json()
    assert obj["path"] == str(JPEG)
    assert obj["media_type"] == "image" and obj["status"] == "hashed"
    assert (obj["width"], obj["height"], obj["orientation"]) == (1600, 1004, 1)
    assert "reason" not in obj
    pdq = [s for s in obj["signals"] if s["signal_type"] == "pdq"]
    assert pdq == [{
        "signal_type": "pdq",
        "value": "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22",
        "quality": 100,
        "variant": {"kind": "stored", "index": 0},
    }]


def test_every_pdq_signal_carries_its_dihedral() -> None:
    buf = io.BytesIO()
    with Image.open(JPEG) as im:
        im.convert("RGBA").resize((300, 200)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    im2 = Image.open(io.BytesIO(bytes(data)))
    arr = im2.copy()
    arr.putpixel((0, 0), (1, 2, 3, 0))
    out = io.BytesIO()
    arr.save(out, "PNG")
    result = hash_bytes(out.getvalue())
    pdqs = [s for s in result.signals if isinstance(s, Signal) and s.signal_type == "pdq"]
    assert [s.variant.kind for s in pdqs] == ["stored", "displayed"]
    for s in pdqs:
        assert s.dihedral is not None and len(s.dihedral) == 8 and s.dihedral[0] == s.value
        assert len(set(s.dihedral)) == 8


def test_video_gets_one_vpdq_signal() -> None:
    path = DATA / "video/test-padded-dimensions.mp4"
    result = hash_file(path)
    assert result.media_type == "video" and result.mime == "video/mp4"
    assert result.status == "hashed", result.reason
    (vsig,) = [s for s in result.signals if isinstance(s, VideoSignal)]
    assert len(vsig.frames) >= 1
    assert result.duration_s is not None and result.duration_s > 0
    assert exact(result) == coreutils(path)
    obj = result.to_json()
    assert obj["duration_s"] == result.duration_s
    assert obj["signals"][-1]["signal_type"] == "vpdq"


def test_truncated_mp4_is_not_scanned_with_exact_hashes(tmp_path: Path) -> None:
    data = (DATA / "video/doorknob-hd-no-bar.mp4").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 3])
    result = hash_file(path)
    assert result.media_type == "video"
    assert result.status == "not_scanned"
    assert result.reason and "truncated" in result.reason
    assert exact(result) == coreutils(path)
