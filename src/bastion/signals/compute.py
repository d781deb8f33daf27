"""The one entry point that turns a file (or bytes) into every signal Bastion computes.

:func:`hash_file` and :func:`hash_bytes` return a :class:`~bastion.signals.result.HashResult`:

1. MD5, SHA-1 and SHA-256 of the exact bytes, streamed (any size), always, even for files
   that cannot be decoded or are over a limit;
2. the media type sniffed from the bytes (:mod:`bastion.signals.media`), never the name;
3. for images (:mod:`bastion.signals.image`): the ``stored`` PDQ (bit-identical to Meta's
   ``pdq-photo-hasher``), a ``displayed`` PDQ when the picture has transparency (or is a
   1-bit picture over 512 px), and ``frame`` PDQs of animations. Every PDQ signal carries
   its 8 dihedral hashes (:func:`bastion.signals.pdq.pdq_dihedral`, one DCT);
4. for videos: one ``vpdq`` signal from :func:`bastion.signals.video.hash_video`.

Frames of an animation: every frame up to ``Limits.max_animation_frames`` is decoded and
hashed; a ``frame`` variant (index = frame number, ``timestamp_s`` = presentation time) is
reported for each frame whose PDQ differs from every hash already reported for the file
(identical values add nothing to matching). ``every_frame=True`` reports every frame,
frame 0 included.

Status: ``hashed``, or ``not_scanned`` with ``reason`` (a short phrase) when the perceptual
hash could not be computed (over a limit, truncated, corrupt, unknown type, decoder crash).
Quality below 50 is still ``hashed``; such signals carry ``low_quality: true``.

Pass ``pool`` (:class:`bastion.signals.isolation.DecodePool`) to decode in a worker process
with memory, CPU-time and wall-clock limits (what the CLI and the scan pipeline do); without
it the work runs in the calling process.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from bastion.config import Limits
from bastion.errors import BastionError, UnhashableContent
from bastion.signals.base import Signal, Variant, VideoFrame, VideoSignal
from bastion.signals.exact import CHUNK, EXACT_TYPES, ExactHasher
from bastion.signals.image import DecodedImage, RGBArray, decode_image
from bastion.signals.media import SNIFF_BYTES, MediaKind, sniff
from bastion.signals.pdq import DIHEDRAL_TRANSFORMS, pdq_dihedral, pdq_hash
from bastion.signals.result import HashResult
from bastion.signals.robust import bank_variants, query_variants

if TYPE_CHECKING:
    from bastion.signals.isolation import DecodePool


@dataclass(frozen=True, slots=True)
class HashOptions:
    """How to hash: ``every_frame`` reports every frame of animations and samples every
    video frame; ``fast_decode`` decodes JPEGs at reduced size (not reference-exact, see
    :data:`bastion.signals.image.FAST_DECODE_MIN_SIDE`); ``video_interval_s`` is vPDQ's
    sampling interval in seconds of media time. ``variants`` adds the robustness variants
    of :mod:`bastion.signals.robust`: ``"query"`` for an upload being scanned (``trimmed``
    and ``band``; bars also trimmed from video frames), ``"bank"`` for a picture being added
    to a bank (``trimmed``, ``crop``, ``band``), ``"none"`` for the plain hashes."""

    every_frame: bool = False
    fast_decode: bool = False
    video_interval_s: float = 1.0
    variants: Literal["none", "query", "bank"] = "none"


@dataclass(frozen=True, slots=True)
class ExactPart:
    """What is known once the bytes are read, before any decoding: the exact digests
    (``{"md5", "sha1", "sha256"}`` hex), the size in bytes and the sniffed kind. Worker
    processes send it first so that a decoder crash still yields the exact hashes."""

    digests: dict[str, str]
    size: int
    kind: MediaKind


@dataclass(frozen=True, slots=True)
class HashTask:
    """One unit of work for :func:`run_task`: a ``path`` to read, or ``data`` with an
    optional ``label`` reported as the result's path."""

    path: str | None = None
    data: bytes | None = None
    label: str | None = None
    options: HashOptions = field(default_factory=HashOptions)
    limits: Limits = field(default_factory=Limits)

    @property
    def shown_path(self) -> str | None:
        """The path reported in the result."""
        return self.path if self.path is not None else self.label


class VideoHashLike(Protocol):
    """The fields of :class:`bastion.signals.video.VideoHash` used here."""

    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def duration_s(self) -> float | None: ...
    @property
    def rotation(self) -> int: ...
    @property
    def frames(self) -> tuple[VideoFrame, ...]: ...
    @property
    def notes(self) -> tuple[str, ...]: ...
    def signals(self) -> list[VideoSignal]: ...


OnExact = Callable[[ExactPart], None]


def exact_signals(digests: dict[str, str]) -> list[Signal]:
    """``md5``, ``sha1``, ``sha256`` signals (in that order) from hex digests."""
    return [Signal(t.name, digests[t.name]) for t in EXACT_TYPES]


def pdq_signal(rgb: RGBArray, variant: Variant) -> Signal:
    """The PDQ signal of one picture (H x W x 3 uint8) with its 8 dihedral hashes in
    :data:`~bastion.signals.pdq.DIHEDRAL_TRANSFORMS` order (``dihedral[0] == value``)."""
    hashes, quality = pdq_dihedral(rgb)
    values = tuple(hashes[t] for t in DIHEDRAL_TRANSFORMS)
    return Signal("pdq", values[0], quality, variant, dihedral=values)


def not_scanned_result(path: str | None, part: ExactPart | None, reason: str) -> HashResult:
    """A ``not_scanned`` result carrying the exact hashes of ``part`` when known."""
    if part is None:
        return HashResult(path=path, media_type="other", status="not_scanned", reason=reason)
    return HashResult(
        path=path, media_type=part.kind.media_type, status="not_scanned", reason=reason,
        mime=part.kind.mime, signals=list(exact_signals(part.digests)),
    )


def robust_signals(rgb: RGBArray, side: Literal["query", "bank"]) -> list[Signal]:
    """PDQ signals of the robustness variants of one picture (:mod:`bastion.signals.robust`):
    ``trimmed`` with its 8 dihedral hashes, ``crop`` and ``band`` in the original
    orientation only. ``side`` picks :func:`~bastion.signals.robust.query_variants` or
    :func:`~bastion.signals.robust.bank_variants`."""
    make = query_variants if side == "query" else bank_variants
    out: list[Signal] = []
    for variant, pixels in make(rgb):
        if variant.kind == "trimmed":
            out.append(pdq_signal(pixels, variant))
        else:
            h = pdq_hash(pixels)
            out.append(Signal("pdq", h.value, h.quality, variant))
    return out


def _image_result(result: HashResult, decoded: DecodedImage, every_frame: bool,
                  variants: Literal["none", "query", "bank"] = "none") -> None:
    result.width, result.height = decoded.width, decoded.height
    result.orientation = decoded.orientation
    stored = pdq_signal(decoded.stored, Variant("stored", 0))
    result.signals.append(stored)
    if variants != "none":
        result.signals.extend(robust_signals(decoded.stored, variants))
    seen = {stored.value}
    if decoded.displayed is not None:
        shown = pdq_signal(decoded.displayed, Variant("displayed", 0))
        result.signals.append(shown)
        seen.add(shown.value)
    if decoded.animated and every_frame:
        first = decoded.displayed if decoded.displayed is not None else decoded.stored
        result.signals.append(pdq_signal(first, Variant("frame", 0, timestamp_s=0.0)))
    try:
        for frame in decoded.frames:
            sig = pdq_signal(frame.rgb, Variant("frame", frame.index, frame.timestamp_s))
            if every_frame or sig.value not in seen:
                result.signals.append(sig)
                seen.add(sig.value)
    except BastionError as exc:
        result.status = "not_scanned"
        result.reason = getattr(exc, "reason", exc.message)
    result.notes.extend(decoded.notes)


def _video_result(result: HashResult, source: Path | bytes, options: HashOptions,
                  limits: Limits) -> None:
    try:
        from bastion.signals.video import hash_video
    except ImportError:
        raise UnhashableContent("video hashing is not available in this build") from None
    vh: VideoHashLike = hash_video(
        source, every_frame=options.every_frame, interval_s=options.video_interval_s,
        limits=limits, trim_borders=options.variants != "none",
        halves=options.variants != "none",
    )
    result.width, result.height, result.duration_s = vh.width, vh.height, vh.duration_s
    if vh.rotation:
        result.notes.append(f"display rotation {vh.rotation} degrees")
    result.notes.extend(vh.notes)
    if not vh.frames:
        raise UnhashableContent("no video frame could be decoded")
    result.signals.extend(vh.signals())


def _perceptual(part: ExactPart, path: str | None, source: Path | bytes,
                data: bytes | None, options: HashOptions, limits: Limits) -> HashResult:
    """Everything after the exact hashes; errors become a ``not_scanned`` result."""
    result = HashResult(
        path=path, media_type=part.kind.media_type, status="hashed", mime=part.kind.mime,
        signals=list(exact_signals(part.digests)),
    )
    try:
        if part.size == 0:
            raise UnhashableContent("empty file")
        if part.kind.media_type == "other":
            raise UnhashableContent("not an image or video (unrecognised file type)")
        if part.size > limits.max_file_bytes:
            raise UnhashableContent(
                f"file over the size limit ({part.size} > {limits.max_file_bytes} bytes)"
            )
        if part.kind.media_type == "image":
            assert data is not None
            decoded = decode_image(
                data, limits=limits, kind=part.kind, fast_decode=options.fast_decode
            )
            _image_result(result, decoded, options.every_frame, options.variants)
        else:
            _video_result(result, source, options, limits)
    except BastionError as exc:
        result.status = "not_scanned"
        result.reason = getattr(exc, "reason", exc.message)
    except MemoryError:
        result.status = "not_scanned"
        result.reason = "memory limit exceeded while decoding"
    except Exception as exc:  # a library bug on hostile input must cost one file, not all
        result.status = "not_scanned"
        result.reason = f"decoder error ({type(exc).__name__}: {exc})"[:200]
    return result


def _read_path(path: Path, limits: Limits) -> tuple[ExactPart, bytes | None]:
    """Stream ``path`` through the exact hashers; keep its bytes when it is an image within
    the size limit. Raises OSError (unreadable) or UnhashableContent (not a regular file)."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise UnhashableContent("not a regular file")
    hasher = ExactHasher()
    kept: list[bytes] | None = []
    kind: MediaKind | None = None
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
        kind = sniff(head)
        if kind.media_type != "image":
            kept = None
        chunk = head
        while chunk:
            hasher.update(chunk)
            if kept is not None:
                if hasher.size > limits.max_file_bytes:
                    kept = None
                else:
                    kept.append(chunk)
            chunk = fh.read(CHUNK)
    part = ExactPart(hasher.hexdigests(), hasher.size, kind)
    return part, (b"".join(kept) if kept is not None else None)


def run_task(task: HashTask, on_exact: OnExact | None = None) -> HashResult:
    """Hash one task in the calling process (what :class:`DecodePool` workers run).

    ``on_exact`` is called with the :class:`ExactPart` as soon as the bytes are read and
    before any decoding. Never raises for bad content; returns a ``not_scanned`` result.
    """
    shown = task.shown_path
    if task.data is not None:
        hasher = ExactHasher()
        hasher.update(task.data)
        part = ExactPart(hasher.hexdigests(), hasher.size, sniff(task.data[:SNIFF_BYTES]))
        data: bytes | None = task.data
        source: Path | bytes = task.data
    else:
        assert task.path is not None
        source = Path(task.path)
        try:
            part, data = _read_path(source, task.limits)
        except UnhashableContent as exc:
            return not_scanned_result(shown, None, exc.reason)
        except FileNotFoundError:
            return not_scanned_result(shown, None, "file not found")
        except OSError as exc:
            return not_scanned_result(shown, None, f"cannot read file ({exc.strerror or exc})")
    if on_exact is not None:
        on_exact(part)
    return _perceptual(part, shown, source, data, task.options, task.limits)


def hash_file(path: str | os.PathLike[str], *, limits: Limits | None = None,
              every_frame: bool = False, fast_decode: bool = False,
              video_interval_s: float = 1.0, pool: DecodePool | None = None,
              variants: Literal["none", "query", "bank"] = "none") -> HashResult:
    """Every signal of the file at ``path`` (see the module docstring).

    ``limits`` default to :class:`~bastion.config.Limits`'s defaults. ``pool`` runs the work
    in an isolated worker process. Never raises for bad content or an unreadable file: the
    result is ``not_scanned`` with a reason, and carries the exact hashes whenever the bytes
    could be read.
    """
    task = HashTask(
        path=os.fspath(path),
        options=HashOptions(every_frame, fast_decode, video_interval_s, variants),
        limits=limits or Limits(),
    )
    return pool.run(task) if pool is not None else run_task(task)


def hash_bytes(data: bytes, *, path: str | None = None, limits: Limits | None = None,
               every_frame: bool = False, fast_decode: bool = False,
               video_interval_s: float = 1.0, pool: DecodePool | None = None,
               variants: Literal["none", "query", "bank"] = "none") -> HashResult:
    """Every signal of ``data`` (an upload held in memory); ``path`` is only a label for the
    result. Same behaviour and guarantees as :func:`hash_file`."""
    task = HashTask(
        data=bytes(data), label=path,
        options=HashOptions(every_frame, fast_decode, video_interval_s, variants),
        limits=limits or Limits(),
    )
    return pool.run(task) if pool is not None else run_task(task)
