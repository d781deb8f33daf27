"""Uploads: never a plaintext copy on disk; a decompression bomb is not_scanned quickly
without the server's memory growing past a bound."""

from __future__ import annotations

import struct
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from tests.api.conftest import Api, ServerProcess


def _png_bomb(side: int = 20_000) -> bytes:
    """A valid 1-bit greyscale PNG of side x side pixels (all black), a few KB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\0" + b"\0" * ((side + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file():
            try:
                if needle in p.read_bytes():
                    hits.append(p)
            except OSError:
                continue
    return hits


def test_5mb_upload_leaves_no_plaintext_copy(
    make_api: Callable[..., Api], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    api = make_api(decode_workers=1)  # the isolated decode pool, as in production
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, size=(1300, 1300, 3), dtype=np.uint8)
    import io

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=0)
    data = buf.getvalue()
    assert len(data) > 5_000_000
    r = api.client.post("/v1/content", headers=api.h("content:submit"),
                        files={"file": ("big.png", data)}, data={"content_id": "big"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "no_match"
    # The database file and its write-ahead log are under tmp_path: searched below.
    for offset in (1000, len(data) // 2, len(data) - 2000):
        needle = data[offset : offset + 64]
        assert _files_containing(tmp, needle) == []
        assert _files_containing(api.settings.home, needle) == []
        assert _files_containing(tmp_path, needle) == []


def _vm(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(field)


def test_png_bomb_is_not_scanned_quickly_within_a_memory_bound(tmp_path: Path) -> None:
    bomb = _png_bomb()
    server = ServerProcess(tmp_path / "home", env={"BASTION_DECODE_WORKERS": "1"})
    try:
        server.wait_ready()
        key = next(line for line in server.stderr().splitlines() if line.startswith("bst_"))
        h = {"Authorization": f"Bearer {key}"}
        # Warm up the decode worker and the request path with a small picture.
        small = Image.new("RGB", (64, 64), (10, 200, 30))
        import io

        b = io.BytesIO()
        small.save(b, format="PNG")
        r = httpx.post(server.url + "/v1/content", headers=h, timeout=60,
                       files={"file": ("s.png", b.getvalue())}, data={"content_id": "warm"})
        assert r.status_code == 200
        before = _vm(server.proc.pid, "VmHWM")
        t0 = time.monotonic()
        r = httpx.post(server.url + "/v1/content", headers=h, timeout=60,
                       files={"file": ("bomb.png", bomb)}, data={"content_id": "bomb"})
        seconds = time.monotonic() - t0
        after = _vm(server.proc.pid, "VmHWM")
        assert r.status_code == 200, r.text
        v = r.json()
        assert v["status"] == "not_scanned" and "pixel" in v["reason"].lower()
        assert {s["signal_type"] for s in v["signals"]} == {"md5", "sha1", "sha256"}
        assert seconds < 20, seconds  # a refusal from the header, not a decode
        # 400 megapixels decoded would be >= 50 MB (1 bit each) and 1.2 GB as RGB.
        assert after - before < 40 * 1024 * 1024, (before, after)
        assert httpx.get(server.url + "/healthz").status_code == 200
    finally:
        server.stop()
