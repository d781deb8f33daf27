"""Media type sniffing from magic bytes (never from names)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from bastion.signals.media import MediaKind, sniff

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "../shared/data"


def _encode(fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "kw", "mime", "pil"),
    [
        ("JPEG", {}, "image/jpeg", "JPEG"),
        ("PNG", {}, "image/png", "PNG"),
        ("GIF", {}, "image/gif", "GIF"),
        ("WEBP", {}, "image/webp", "WEBP"),
        ("BMP", {}, "image/bmp", "BMP"),
        ("TIFF", {}, "image/tiff", "TIFF"),
        ("AVIF", {}, "image/avif", "AVIF"),
    ],
)
def test_images_made_by_pillow(fmt: str, kw: dict[str, object], mime: str, pil: str) -> None:
    kind = sniff(_encode(fmt, **kw))
    assert kind == MediaKind("image", mime, pil)


def test_apng_is_told_from_png() -> None:
    buf = io.BytesIO()
    a = Image.new("RGB", (8, 8), (0, 0, 0))
    a.save(buf, "PNG", save_all=True, append_images=[Image.new("RGB", (8, 8), (255, 0, 0))])
    assert sniff(buf.getvalue()).mime == "image/apng"
    assert sniff(buf.getvalue()).format == "PNG"


def test_heic() -> None:
    import pillow_heif

    buf = io.BytesIO()
    pillow_heif.from_pillow(Image.new("RGB", (64, 64), (1, 2, 3))).save(buf, quality=50)
    assert sniff(buf.getvalue()) == MediaKind("image", "image/heic", "HEIF")


def test_shared_videos_are_video() -> None:
    for p in sorted((DATA / "video").glob("*.mp4")):
        with open(p, "rb") as fh:
            assert sniff(fh.read(4096)).media_type == "video", p.name


@pytest.mark.parametrize(
    ("head", "media_type", "mime"),
    [
        (b"", "other", None),
        (b"hello world, I am a text file named photo.jpg", "other", None),
        (b"%PDF-1.7\n", "other", "application/pdf"),
        (b"PK\x03\x04rest", "other", "application/zip"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "video", "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", "video", "video/quicktime"),
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf", "image", "image/avif"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "image", "image/heic"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video", "video/webm"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video", "video/x-msvideo"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "other", None),
        (b"FLV\x01\x05", "video", "video/x-flv"),
    ],
)
def test_signatures(head: bytes, media_type: str, mime: str | None) -> None:
    kind = sniff(head)
    assert (kind.media_type, kind.mime) == (media_type, mime)


def test_name_is_never_used(tmp_path: Path) -> None:
    # sniff() takes only bytes: the same bytes give the same kind whatever they are called.
    png = _encode("PNG")
    assert sniff(png).mime == "image/png"
    assert sniff(b"GIF89a" + png[6:]).mime == "image/gif"


@given(st.binary(max_size=600))
def test_sniff_never_raises(data: bytes) -> None:
    kind = sniff(data)
    assert kind.media_type in ("image", "video", "other")
