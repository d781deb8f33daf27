"""Original EXIF for reports: read from a picture's metadata only, bounded (tags, value
length, input bytes), in an isolated interpreter by default; bad bytes give a note, never an
exception."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bastion.reporting import exif as exif_mod
from bastion.reporting.exif import MAX_TAGS, MAX_VALUE_CHARS, extract_exif, parse_exif


def picture_with_exif(fmt: str = "JPEG", *, extra_tags: int = 0, long_value: int = 0) -> bytes:
    """A plain gradient picture (made here) carrying camera, time and GPS EXIF tags."""
    img = Image.linear_gradient("L").resize((96, 64)).convert("RGB")
    ex = Image.Exif()
    ex[0x010F] = "TestCam"                      # Make
    ex[0x0110] = "Model 7"                      # Model
    ex[0x0132] = "2025:06:01 12:00:00"          # DateTime
    ex[0x010E] = "x" * long_value if long_value else "plain gradient"  # ImageDescription
    for i in range(extra_tags):
        ex[0x1000 + i] = f"v{i}"
    sub = ex.get_ifd(0x8769)                    # Exif IFD
    sub[0x9003] = "2025:06:01 11:59:58"         # DateTimeOriginal
    sub[0x927C] = b"\x01\x02vendor-blob"        # MakerNote: never sent
    gps = ex.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (52.0, 31.0, 12.5)
    out = io.BytesIO()
    if fmt == "WEBP":
        img.save(out, fmt, exif=ex.tobytes())
    else:
        img.save(out, fmt, exif=ex)
    return out.getvalue()


EXPECTED = (("Make", "TestCam"), ("Model", "Model 7"), ("DateTime", "2025:06:01 12:00:00"),
            ("ImageDescription", "plain gradient"),
            ("DateTimeOriginal", "2025:06:01 11:59:58"), ("GPSLatitudeRef", "N"),
            ("GPSLatitude", "52, 31, 12.5"))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_tags_of_each_format_in_process_and_isolated(fmt: str) -> None:
    data = picture_with_exif(fmt)
    local = parse_exif(data)
    if fmt == "TIFF":  # a TIFF's own tags are its EXIF too (width, bits per sample ...);
        # Pillow's TIFF writer keeps no Exif or GPS sub-IFD, so only the base tags are there
        assert set(EXPECTED[:4]) < set(local.tags) and ("ImageWidth", "96") in local.tags
        assert not {"StripOffsets", "StripByteCounts"} & set(dict(local.tags))
    else:
        assert sorted(local.tags) == sorted(EXPECTED)
    assert local.note is None
    assert "MakerNote" not in dict(local.tags)
    isolated = extract_exif(data)
    assert isolated == local


def test_bounds_on_tags_and_values() -> None:
    many = extract_exif(picture_with_exif(extra_tags=150))
    assert len(many.tags) == MAX_TAGS and many.note == f"cut at {MAX_TAGS} tags"
    long = dict(extract_exif(picture_with_exif(long_value=5000)).tags)["ImageDescription"]
    assert len(long) == MAX_VALUE_CHARS and long.endswith("…")


def test_bad_bytes_give_a_note_not_an_error() -> None:
    assert extract_exif(b"%PDF-1.7 not a picture").note == (
        "not a picture with EXIF (JPEG, TIFF, PNG, WebP)")
    data = picture_with_exif()
    for broken in (data[:40], b"\xff\xd8\xff" + bytes(range(256)) * 10):
        r = extract_exif(broken)
        assert r.tags == () and r.note is not None and "unreadable" in r.note
    plain = io.BytesIO()
    Image.new("RGB", (8, 8)).save(plain, "JPEG")
    assert extract_exif(plain.getvalue()) == exif_mod.ExifResult((), "no EXIF in the file")


def test_a_parser_past_its_time_is_killed() -> None:
    r = extract_exif(picture_with_exif(), timeout_s=0.001)
    assert r.tags == () and r.note == "EXIF parser timed out after 0.001 s"
