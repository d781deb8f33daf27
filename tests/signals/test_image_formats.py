"""Animations (GIF, WebP, APNG), HEIC/AVIF, truncated and hostile files, all made here."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bastion.config import Limits
from bastion.signals.compute import hash_bytes, hash_file
from bastion.signals.pdq import hamming, pdq_hash
from bastion.signals.result import HashResult

ROOT = Path(__file__).resolve().parents[2]
ORIGINAL = ROOT / "../shared/data/images/misc-images/modes/original.jpg"


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    with Image.open(ORIGINAL) as im:
        return im.convert("RGB").resize((320, 200))


def encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def pdq_of(result: HashResult, kind: str) -> list[tuple[str, int | None, int]]:
    return [
        (s.value, s.quality, s.variant.index)
        for s in result.signals
        if s.signal_type == "pdq" and s.variant.kind == kind
    ]


def _noise(seed: int, size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(seed)
    # Smooth random blobs (hashable, unrelated to the photo).
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


# --- animations -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "APNG"])
def test_picture_in_frame_3_is_found(photo: Image.Image, fmt: str) -> None:
    frames = [_noise(i, photo.size) for i in range(3)] + [photo, _noise(9, photo.size)]
    if fmt == "GIF":
        frames = [f.quantize(256) for f in frames]
    kw: dict[str, object] = {"save_all": True, "append_images": frames[1:], "duration": 100,
                             "loop": 0}
    if fmt == "WEBP":
        kw["lossless"] = True
    data = encode(frames[0], "PNG" if fmt == "APNG" else fmt, **kw)
    result = hash_bytes(data, path=f"anim.{fmt.lower()}")
    assert result.status == "hashed"
    target = pdq_hash(np.asarray(frames[3].convert("RGB"))).value
    frame_sigs = pdq_of(result, "frame")
    assert {i for _, _, i in frame_sigs} >= {1, 2, 3, 4}
    (v3,) = [v for v, _, i in frame_sigs if i == 3]
    assert v3 == target
    assert hamming(v3, pdq_hash(np.asarray(photo)).value) <= (8 if fmt == "GIF" else 0)
    (sig3,) = [s for s in result.signals if s.variant.kind == "frame" and s.variant.index == 3]
    assert sig3.variant.timestamp_s == pytest.approx(0.3)
    assert sig3.dihedral is not None and len(sig3.dihedral) == 8
    # The stored variant is frame 0, as the reference reads it.
    assert pdq_of(result, "stored")[0][0] == pdq_hash(np.asarray(frames[0].convert("RGB"))).value


def test_one_frame_gif_is_a_plain_photo(photo: Image.Image) -> None:
    result = hash_bytes(encode(photo.quantize(256), "GIF"))
    assert result.status == "hashed"
    assert pdq_of(result, "frame") == []
    assert len(pdq_of(result, "stored")) == 1


def test_two_frame_gif(photo: Image.Image) -> None:
    a, b = photo.quantize(256), _noise(3, photo.size).quantize(256)
    result = hash_bytes(encode(a, "GIF", save_all=True, append_images=[b], duration=500))
    assert [i for _, _, i in pdq_of(result, "frame")] == [1]
    every = hash_bytes(encode(a, "GIF", save_all=True, append_images=[b], duration=500),
                       every_frame=True)
    assert [i for _, _, i in pdq_of(every, "frame")] == [0, 1]
    assert pdq_of(every, "frame")[0][0] == pdq_of(every, "stored")[0][0]


def test_repeated_frames_reported_once_unless_every_frame(photo: Image.Image) -> None:
    q = photo.quantize(256)
    other = _noise(5, photo.size).quantize(256)
    data = encode(q, "GIF", save_all=True, append_images=[other, q, other, q],
                  duration=[100, 120, 130, 140, 150])
    result = hash_bytes(data)
    assert [i for _, _, i in pdq_of(result, "frame")] == [1]
    every = hash_bytes(data, every_frame=True)
    assert [i for _, _, i in pdq_of(every, "frame")] == [0, 1, 2, 3, 4]
    stamps = [s.variant.timestamp_s for s in every.signals if s.variant.kind == "frame"]
    assert stamps == pytest.approx([0.0, 0.1, 0.22, 0.35, 0.49])


def test_animation_frame_limit(photo: Image.Image) -> None:
    frames = [_noise(i, (64, 48)).quantize(64) for i in range(6)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    result = hash_bytes(data, limits=Limits(max_animation_frames=3), every_frame=True)
    assert [i for _, _, i in pdq_of(result, "frame")] == [0, 1, 2]
    assert any("more than 3 frames" in n for n in result.notes)


def test_truncated_animation_is_not_scanned_with_hashes_so_far(photo: Image.Image) -> None:
    frames = [_noise(i, photo.size).quantize(256) for i in range(4)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    result = hash_bytes(data[: int(len(data) * 0.8)])
    assert result.status == "not_scanned"
    assert result.reason and ("truncated" in result.reason or "corrupt" in result.reason)
    assert [s.signal_type for s in result.signals][:3] == ["md5", "sha1", "sha256"]


# --- HEIC / AVIF ---------------------------------------------------------------------------


def test_heic_named_jpg(photo: Image.Image, tmp_path: Path) -> None:
    import pillow_heif

    heif = pillow_heif.from_pillow(photo)
    buf = io.BytesIO()
    heif.save(buf, quality=92)
    path = tmp_path / "holiday.jpg"
    path.write_bytes(buf.getvalue())
    result = hash_file(path)
    assert result.status == "hashed", result.reason
    assert result.mime == "image/heic"
    assert (result.width, result.height) == photo.size
    assert hamming(pdq_of(result, "stored")[0][0], pdq_hash(np.asarray(photo)).value) <= 8


def test_avif_named_jpg(photo: Image.Image, tmp_path: Path) -> None:
    path = tmp_path / "holiday.jpg"
    path.write_bytes(encode(photo, "AVIF", quality=90))
    result = hash_file(path)
    assert result.status == "hashed", result.reason
    assert result.mime == "image/avif"
    assert hamming(pdq_of(result, "stored")[0][0], pdq_hash(np.asarray(photo)).value) <= 8


# --- truncated and hostile ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "kw"),
    [("JPEG", {"quality": 90}), ("JPEG", {"quality": 90, "progressive": True}),
     ("PNG", {}), ("WEBP", {"quality": 90}), ("WEBP", {"lossless": True})],
    ids=["jpeg", "progressive-jpeg", "png", "webp", "webp-lossless"],
)
def test_truncated_files_are_not_scanned_never_a_stand_in(photo: Image.Image, fmt: str,
                                                          kw: dict[str, object]) -> None:
    data = encode(photo, fmt, **kw)
    assert hash_bytes(data).status == "hashed"
    for frac in (0.3, 0.7, 0.95):
        result = hash_bytes(data[: int(len(data) * frac)])
        assert result.status == "not_scanned", (frac, result.reason)
        assert result.reason
        assert pdq_of(result, "stored") == []
        assert [s.signal_type for s in result.signals] == ["md5", "sha1", "sha256"]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(side: int = 20000, approx_bytes: int = 48_000) -> bytes:
    """A ~48 KB PNG whose header declares side x side grey pixels (rows of zeros)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    raw = bytes(side + 1) * 120  # a few rows; the rest is simply missing
    idat = zlib.compress(raw, 9)
    idat += bytes(max(0, approx_bytes - len(idat) - 100))
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def test_decompression_bomb_refused_from_header() -> None:
    data = bomb_png()
    assert 40_000 < len(data) < 60_000
    result = hash_bytes(data)
    assert result.status == "not_scanned"
    assert result.reason is not None and "pixel limit" in result.reason
    assert [s.signal_type for s in result.signals] == ["md5", "sha1", "sha256"]
    # Under Pillow's own ceiling, Bastion's configured limit refuses it before decoding.
    small = bomb_png(side=3000, approx_bytes=10_000)
    r2 = hash_bytes(small, limits=Limits(max_pixels=1_000_000))
    assert r2.status == "not_scanned" and r2.reason and "3000x3000" in r2.reason
