"""What kind of media a file holds, decided from its first bytes (magic numbers).

The file name and any declared content type are never trusted: a text file named ``.jpg`` is
``other``, a HEIC named ``.jpg`` is ``image/heic``. :func:`sniff` needs only the first
:data:`SNIFF_BYTES` bytes.

Sources for the signatures: the JPEG (ITU-T T.81, SOI ``FF D8`` then a marker), PNG (RFC 2083,
the 8-byte signature; APNG's ``acTL`` chunk before the first ``IDAT``), GIF89a, RIFF/WebP
(``RIFF....WEBP``), BMP, TIFF, ISO base media file format (ISO/IEC 14496-12: ``ftyp`` box
with major and compatible brands; HEIF brands from ISO/IEC 23008-12, AVIF brands from the
AV1 Image File Format spec), Matroska/WebM (EBML header), RIFF/AVI, MPEG-TS (sync byte 0x47
every 188 bytes), MPEG-PS (pack start code), FLV and ICO specifications.
"""

from __future__ import annotations

from dataclasses import dataclass

from bastion.signals.result import MediaType

#: How many leading bytes :func:`sniff` looks at (enough for an ``ftyp`` box's brand list and
#: for PNG chunks up to the first ``IDAT`` in ordinary files).
SNIFF_BYTES = 4096

#: HEIF brands (ISO/IEC 23008-12) that mean a still HEIC/HEIF picture or sequence.
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
#: ISO-BMFF brands of ordinary video files (MP4, QuickTime, 3GP, M4V, DASH segments).
_VIDEO_BRANDS = frozenset(
    {
        b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"mp71",
        b"avc1", b"M4V ", b"M4VH", b"M4VP", b"qt  ", b"3gp4", b"3gp5", b"3gp6", b"3g2a",
        b"dash", b"msnv", b"MSNV", b"f4v ", b"NDAS", b"mmp4", b"XAVC", b"hvc1", b"av01",
    }
)  # fmt: skip
#: QuickTime files without an ``ftyp`` box start directly with one of these atoms.
_QT_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


@dataclass(frozen=True, slots=True)
class MediaKind:
    """What :func:`sniff` decided: ``media_type`` (``image``, ``video`` or ``other``),
    ``mime`` (``image/jpeg`` ...; ``None`` when unknown) and, for images, the Pillow
    ``format`` name the bytes must decode as (``JPEG``, ``PNG`` ...; ``None`` otherwise)."""

    media_type: MediaType
    mime: str | None
    format: str | None = None

    @property
    def animated_capable(self) -> bool:
        """True for formats that can hold an animation (GIF, WebP, APNG/PNG)."""
        return self.format in ("GIF", "WEBP", "PNG")


OTHER = MediaKind("other", None)


def _image(mime: str, fmt: str) -> MediaKind:
    return MediaKind("image", mime, fmt)


def _png_kind(head: bytes) -> MediaKind:
    """PNG, or APNG when an ``acTL`` chunk precedes the first ``IDAT`` within ``head``."""
    pos = 8
    while pos + 8 <= len(head):
        length = int.from_bytes(head[pos : pos + 4], "big")
        ctype = head[pos + 4 : pos + 8]
        if ctype == b"acTL":
            return _image("image/apng", "PNG")
        if ctype in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return _image("image/png", "PNG")


def _isobmff_kind(head: bytes) -> MediaKind:
    """Classify an ISO base media file by its ``ftyp`` major and compatible brands."""
    size = int.from_bytes(head[0:4], "big")
    end = min(len(head), size if size >= 16 else 16)
    major = head[8:12]
    brands = [major] + [head[i : i + 4] for i in range(16, end - 3, 4)]
    if major in _AVIF_BRANDS:
        return _image("image/avif", "AVIF")
    if major in _HEIF_BRANDS:
        if major in (b"mif1", b"msf1") and any(b in _AVIF_BRANDS for b in brands):
            return _image("image/avif", "AVIF")
        return _image("image/heic", "HEIF")
    if major == b"qt  ":
        return MediaKind("video", "video/quicktime")
    if major in _VIDEO_BRANDS or major.startswith(b"3g"):
        return MediaKind("video", "video/mp4")
    # Unknown major brand: decide by the compatible brands.
    if any(b in _AVIF_BRANDS for b in brands):
        return _image("image/avif", "AVIF")
    if any(b in _HEIF_BRANDS for b in brands):
        return _image("image/heic", "HEIF")
    if any(b in _VIDEO_BRANDS for b in brands):
        return MediaKind("video", "video/mp4")
    return OTHER


def sniff(head: bytes) -> MediaKind:
    """Decide a file's media kind from its first bytes (pass at least :data:`SNIFF_BYTES`
    when available; fewer is fine for short files). Never raises; unknown -> ``other``.

    >>> sniff(b"\\xff\\xd8\\xff\\xe0" + bytes(12)).mime
    'image/jpeg'
    >>> sniff(b"hello").media_type
    'other'
    """
    if head.startswith(b"\xff\xd8\xff"):
        return _image("image/jpeg", "JPEG")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png_kind(head)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return _image("image/gif", "GIF")
    if head[:4] == b"RIFF" and len(head) >= 12:
        sub = head[8:12]
        if sub == b"WEBP":
            return _image("image/webp", "WEBP")
        if sub == b"AVI ":
            return MediaKind("video", "video/x-msvideo")
        return OTHER
    if head[:2] == b"BM" and len(head) >= 26 and head[6:10] == b"\0\0\0\0":
        return _image("image/bmp", "BMP")
    if head[:4] in (b"II*\0", b"MM\0*"):
        return _image("image/tiff", "TIFF")
    if head[:4] == b"\0\0\1\0" and len(head) >= 6 and head[4:6] != b"\0\0":
        return _image("image/x-icon", "ICO")
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _isobmff_kind(head)
    if len(head) >= 8 and head[4:8] in _QT_ATOMS and int.from_bytes(head[0:4], "big") >= 8:
        return MediaKind("video", "video/quicktime")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        if b"webm" in head[:64]:
            return MediaKind("video", "video/webm")
        return MediaKind("video", "video/x-matroska")
    if head[:3] == b"FLV":
        return MediaKind("video", "video/x-flv")
    if head[:4] == b"\0\0\1\xba":
        return MediaKind("video", "video/mpeg")
    if len(head) >= 377 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47:
        return MediaKind("video", "video/mp2t")
    if head[:5] == b"%PDF-":
        return MediaKind("other", "application/pdf")
    if head[:4] == b"PK\3\4":
        return MediaKind("other", "application/zip")
    return OTHER
