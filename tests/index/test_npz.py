"""Snapshot files: aligned, numpy-compatible ``.npz`` written atomically; read zero-copy with
CRC checks."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bastion.errors import InvalidInput
from bastion.index.npz import read_npz, write_npz


def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "format": np.array("bastion-test"),
        "n": np.array(7, dtype=np.int64),
        "words": rng.integers(0, 2**64, size=(1000, 4), dtype=np.uint64),
        "flags": rng.random(333) < 0.5,
        "empty": np.zeros((0, 4), np.uint64),
        "fortran": np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
    }


def test_round_trip_aligned_and_numpy_compatible(tmp_path: Path) -> None:
    src = arrays()
    path = tmp_path / "a.npz"
    write_npz(path, src)
    got = read_npz(path, "test file")
    assert set(got) == set(src)
    for name, arr in src.items():
        assert got[name].dtype == arr.dtype and got[name].shape == arr.shape
        assert np.array_equal(got[name], arr)
    assert not got["words"].flags.writeable  # a view of the mapped file, not a copy
    with np.load(path, allow_pickle=False) as z:
        for name, arr in src.items():
            assert np.array_equal(z[name], arr)
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for info in zf.infolist():
            fh.seek(info.header_offset)
            name_len, extra_len = struct.unpack("<26xHH", fh.read(30))
            assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0
    assert not list(tmp_path.glob(".*tmp"))


def test_numpy_savez_files_are_read_too(tmp_path: Path) -> None:
    src = arrays()
    np.savez(tmp_path / "b.npz", **src)
    got = read_npz(tmp_path / "b.npz", "test file")
    assert all(np.array_equal(got[k], v) for k, v in src.items())


def test_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    write_npz(path, arrays())
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3] ^= 1
    (tmp_path / "flip.npz").write_bytes(bytes(raw))
    with pytest.raises(InvalidInput, match="CRC"):
        read_npz(tmp_path / "flip.npz", "test file")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(InvalidInput, match="test file: not a zip"):
        read_npz(tmp_path / "empty.npz", "test file")
    with zipfile.ZipFile(tmp_path / "txt.npz", "w") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(InvalidInput, match="unexpected member"):
        read_npz(tmp_path / "txt.npz", "test file")
    with pytest.raises(ValueError, match="object"):
        write_npz(tmp_path / "o.npz", {"x": np.array([{"a": 1}], dtype=object)})
    assert not (tmp_path / "o.npz").exists() and not list(tmp_path.glob(".*tmp"))
