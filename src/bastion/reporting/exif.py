"""Original EXIF of a reported picture, for the ``details type="EXIF"`` block of its
CyberTipline ``fileDetails`` (name/value pairs; ``cybertipline.xsd``, elements ``details``
and ``nameValuePair``).

Only metadata is read (Pillow's ``Image.open`` and ``getexif``: the JPEG APP1 segment, the
TIFF IFDs, the PNG ``eXIf`` chunk, the WebP ``EXIF`` chunk), from the preserved original
bytes. The bytes are hostile, so by default the parsing runs in a fresh interpreter
(``python -m bastion.reporting.exif``) with the decode workers' limits
(:mod:`bastion.signals.isolation`): no core dumps, an address-space cap, a CPU-time cap and a
wall-clock timeout after which it is killed. A crash, timeout or unreadable metadata gives
an :class:`ExifResult` with no tags and the reason (``note``), never an exception: the
report is still drafted, without EXIF.

Bounds: at most :data:`MAX_INPUT_BYTES` of the file are parsed, at most :data:`MAX_TAGS`
tags are kept (base IFD first, then the Exif and GPS IFDs; the thumbnail IFD and the
``MakerNote``/``UserComment``/``PrintImageMatching`` blobs and a TIFF's strip and tile
offsets are left out), each value at
most :data:`MAX_VALUE_CHARS` characters (longer values are cut and end with ``…``).
Byte values become lowercase hex; rationals become decimals; tuples are joined with ", ".
Names are EXIF's tag names (``Make``, ``DateTimeOriginal``, ``GPSLatitude`` ...), or
``Tag0x1234`` for a tag Pillow does not name.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
from dataclasses import dataclass

#: Bytes of a file handed to the EXIF parser (EXIF sits near the start of a picture;
#: a file cut here yields the EXIF of its first part or none).
MAX_INPUT_BYTES = 32 * 1024 * 1024
#: Tags kept per file.
MAX_TAGS = 100
#: Characters per value.
MAX_VALUE_CHARS = 256
#: Seconds the isolated parser may run (wall clock) before it is killed.
TIMEOUT_S = 20.0
#: CPU seconds of the isolated parser.
CPU_SECONDS = 10
#: Address-space limit of the isolated parser, bytes.
MEMORY_BYTES = 1024 * 1024 * 1024
#: Largest answer read back from the isolated parser, bytes.
_MAX_ANSWER = 1024 * 1024

#: Tags never sent: vendor blobs and free text of unknown encoding.
_SKIPPED = {0x927C: "MakerNote", 0x9286: "UserComment", 0xC4A5: "PrintImageMatching",
            # where a TIFF's own pixel data sits: structure, not facts about the picture
            0x0111: "StripOffsets", 0x0117: "StripByteCounts", 0x0144: "TileOffsets",
            0x0145: "TileByteCounts", 0x0201: "JPEGInterchangeFormat",
            0x0202: "JPEGInterchangeFormatLength"}
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_INTEROP_IFD = 0xA005
#: Leading bytes of the picture formats whose EXIF Pillow reads.
_MAGIC = (b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"\x89PNG\r\n\x1a\n", b"RIFF")


@dataclass(frozen=True, slots=True)
class ExifResult:
    """The (name, value) pairs of a file's EXIF, in file order, and why there are none or
    fewer than in the file (``note``: ``not a picture with EXIF``, ``parser timed out``,
    ``cut at 100 tags`` ...)."""

    tags: tuple[tuple[str, str], ...]
    note: str | None = None


def _text(value: object) -> str:
    from fractions import Fraction

    from PIL.TiffImagePlugin import IFDRational

    if isinstance(value, bytes):
        out = value.hex()
    elif isinstance(value, IFDRational | Fraction):
        try:
            out = format(float(value), ".10g")
        except (ZeroDivisionError, ValueError, OverflowError):
            out = "undefined"
    elif isinstance(value, tuple | list):
        out = ", ".join(_text(v) for v in value[:64])
    elif isinstance(value, str):
        out = value.replace("\x00", "").strip()
    else:
        out = str(value)
    # XML 1.0 allows no control characters but tab, line feed and carriage return.
    out = "".join(ch for ch in out if ch >= " " or ch in "\t\n\r")
    return out if len(out) <= MAX_VALUE_CHARS else out[:MAX_VALUE_CHARS - 1] + "…"


def parse_exif(data: bytes) -> ExifResult:
    """The EXIF of ``data`` (see the module docstring), parsed in this process. Never
    raises for bad bytes: the result then has no tags and a ``note``."""
    from PIL import ExifTags, Image, UnidentifiedImageError

    if not data.startswith(_MAGIC):
        return ExifResult((), "not a picture with EXIF (JPEG, TIFF, PNG, WebP)")
    data = data[:MAX_INPUT_BYTES]
    try:
        with Image.open(io.BytesIO(data)) as img:
            exif = img.getexif()
            groups: list[tuple[dict[int, object], dict[int, str]]] = [
                (dict(exif.items()), ExifTags.TAGS)]
            for ifd, names in ((_EXIF_IFD, ExifTags.TAGS), (_GPS_IFD, ExifTags.GPSTAGS)):
                try:
                    sub = exif.get_ifd(ifd)
                except (KeyError, ValueError, TypeError, OSError, SyntaxError, struct.error):
                    sub = {}
                groups.append((dict(sub.items()), names))
    except (UnidentifiedImageError, OSError, ValueError, TypeError, SyntaxError, EOFError,
            struct.error, Image.DecompressionBombError) as exc:
        return ExifResult((), f"EXIF unreadable ({type(exc).__name__})")
    tags: list[tuple[str, str]] = []
    cut = False
    for items, names in groups:
        for tag, value in items.items():
            if tag in (_EXIF_IFD, _GPS_IFD, _INTEROP_IFD) or tag in _SKIPPED:
                continue
            if isinstance(value, dict):
                continue
            if len(tags) >= MAX_TAGS:
                cut = True
                break
            tags.append((names.get(tag) or f"Tag0x{tag:04x}", _text(value)))
    note = f"cut at {MAX_TAGS} tags" if cut else (None if tags else "no EXIF in the file")
    return ExifResult(tuple(tags), note)


def extract_exif(data: bytes, *, isolated: bool = True, timeout_s: float = TIMEOUT_S
                 ) -> ExifResult:
    """The EXIF of ``data``: parsed in an isolated, limited interpreter (``isolated``, the
    default; see the module docstring) or in this process. Never raises for bad bytes or a
    failing parser: the result then has no tags and a ``note``."""
    if not data.startswith(_MAGIC):
        return ExifResult((), "not a picture with EXIF (JPEG, TIFF, PNG, WebP)")
    if not isolated:
        return parse_exif(data)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bastion.reporting.exif", str(MEMORY_BYTES),
             str(CPU_SECONDS)],
            input=data[:MAX_INPUT_BYTES], capture_output=True, timeout=timeout_s, env=env,
            check=False)
    except subprocess.TimeoutExpired:
        return ExifResult((), f"EXIF parser timed out after {timeout_s:g} s")
    except OSError as exc:
        return ExifResult((), f"EXIF parser could not start ({exc.strerror})")
    if proc.returncode != 0:
        why = (f"signal {-proc.returncode}" if proc.returncode < 0
               else f"status {proc.returncode}")
        return ExifResult((), f"EXIF parser failed ({why})")
    try:
        answer = json.loads(proc.stdout[:_MAX_ANSWER])
        tags = tuple((str(n)[:100], _text(str(v))) for n, v in answer["tags"][:MAX_TAGS])
        note = answer.get("note")
        return ExifResult(tags, None if note is None else str(note)[:200])
    except (ValueError, KeyError, TypeError):
        return ExifResult((), "EXIF parser gave no usable answer")


def _child(argv: list[str]) -> None:
    """The isolated parser: limits first, then the bytes from stdin, JSON to stdout."""
    import resource

    memory, cpu = int(argv[0]), int(argv[1])
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (
        memory if hard == resource.RLIM_INFINITY else min(memory, hard), hard))
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (
        cpu if hard == resource.RLIM_INFINITY else min(cpu, hard), hard))
    data = sys.stdin.buffer.read(MAX_INPUT_BYTES)
    result = parse_exif(data)
    sys.stdout.write(json.dumps({"tags": [list(t) for t in result.tags],
                                 "note": result.note}))


if __name__ == "__main__":
    _child(sys.argv[1:])
