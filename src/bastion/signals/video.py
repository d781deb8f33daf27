"""vPDQ: Meta's video hash, the PDQ hashes of frames sampled from a video.

Source: Meta, ThreatExchange ``vpdq/README.md`` and the reference implementation
``vpdq/cpp`` (``vpdq-hash-video``, ``hashing/filehasher.cpp``). A vPDQ hash is a list of
*frames*: frame number (0-based, in the decoder's output order), presentation time in seconds,
the frame's PDQ hash (256 bits, 64 lowercase hex) and its quality (0-100).

What the reference does, and what :func:`hash_video` matches (checked against the
reference's own output for Meta's sample videos, ``../shared/data/video/vpdq-expected``):

* **Pixels.** Each kept frame is converted to 8-bit RGB at its full coded size and hashed by
  PDQ *without* the 512-px squash of the photo tool (``pdq-photo-hasher``): the vPDQ hasher
  feeds the whole frame to ``pdqHash256FromFloatLuma``. Measured on the sample clips, the
  squash would move hashes by a median of 2-18 bits; without it they agree bit for bit on most
  frames. Colour conversion: FFmpeg's accurate YUV-to-RGB path (``rgb48le``, then the top
  8 bits) reproduces the reference exactly on the SD and HD clips; FFmpeg's fast 8-bit path
  drifts by up to 22 bits on dark, low-gradient frames.
* **Which frames.** The reference keeps decoded frame ``n`` when ``n % int(interval_s * fps)
  == 0`` (``fps`` = the stream's average frame rate) and stamps it ``n / fps`` seconds. That
  counts frames, so a variable-frame-rate video is sampled unevenly. Bastion samples by
  presentation time instead: the first frame at or after each multiple of ``interval_s``
  (measured from the first frame), and stamps each frame with its presentation time relative
  to the first frame. For a constant-frame-rate video (and always with ``every_frame``) this
  selects the same frames with the same timestamps as the reference.
* **Stream.** The first video stream, whatever its index (cover-art pictures in audio files
  are not video).

Beyond the reference: the display rotation matrix (side data) is honoured, so a phone video
stored sideways with a rotation flag hashes like its physically rotated copy; and with
``trim_borders`` every kept frame is hashed a second time with the video's letterbox or
pillarbox bars removed (the ``trimmed`` variant, DESIGN.md), the bars being found once per video
on its key frames (:func:`bastion.signals.borders.find_content_box`); and with ``halves``
each kept frame's four halves (top, bottom, left, right of the picture inside the bars) are
hashed too (``band`` variants), so that a logo or caption covering one corner or edge leaves
two halves to match (measured on Meta's large-logo sample clips: the bottom half of every
frame within 4 bits of the original's, unrelated clips' halves 90+ bits apart). Halves are
for video-to-video matching, where 80% of frames must agree; they are not photo signals.

Thresholds for matching (frames within 31 bits, quality >= 50) live in
:mod:`bastion.index.video`.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np

from bastion.config import Limits
from bastion.errors import LimitExceeded, UnhashableContent
from bastion.signals.base import Variant, VideoFrame, VideoSignal
from bastion.signals.borders import DEFAULT_TOLERANCE, ContentBox, find_content_box
from bastion.signals.pdq import RGBArray, pdq_hash

#: Key frames read to find a video's bars (``trim_borders``), at most.
MAX_PROBE_KEYFRAMES = 48

#: A decoded video is *truncated* when its frames end this many seconds (plus two frame
#: durations) before the duration its container declares.
TRUNCATION_SLACK_S = 0.5

#: Presentation times are compared with this slack (seconds) when sampling on the
#: ``interval_s`` grid, so that frame 30 of a 30 fps video (t = 1.0) counts as "at 1 s".
_EPS_S = 1e-6

#: The variant of the trimmed frames' signal.
TRIMMED = Variant("trimmed", 0, detail="borders")

#: The halves hashed with ``halves=True``, in this order (``band`` variants).
HALVES = ("top", "bottom", "left", "right")


@dataclass(frozen=True, slots=True)
class VideoHash:
    """The vPDQ hash of one video, and what was learned decoding it.

    ``width`` x ``height``: the stored (coded) frame size in pixels, before rotation.
    ``rotation``: the display rotation in degrees counter-clockwise (0, 90, 180 or 270; frames
    are hashed as displayed). ``duration_s``: the video stream's duration in seconds (from
    the container, else from the last frame), ``None`` when unknown. ``frame_rate``: the
    stream's average frames per second, ``None`` when unknown.
    ``frames``: the kept frames in presentation order (the ``vpdq`` signal).
    ``trimmed_frames``: with ``trim_borders`` and bars found, the same frames (same frame
    numbers and timestamps) hashed inside ``content_box`` (``(top, bottom, left, right)`` in
    the displayed frame, half-open); empty otherwise. ``frames_decoded``: frames the decoder
    produced. ``notes``: warnings that did not stop hashing (corrupt packets skipped, time
    limit reached). ``half_frames``: with ``halves``, ``(name, frames)`` for each of
    :data:`HALVES`, the same frames hashed on that half of the picture inside the bars.
    """

    width: int
    height: int
    duration_s: float | None
    rotation: int
    frames: tuple[VideoFrame, ...]
    trimmed_frames: tuple[VideoFrame, ...] = ()
    content_box: ContentBox | None = None
    frame_rate: float | None = None
    frames_decoded: int = 0
    notes: tuple[str, ...] = ()
    half_frames: tuple[tuple[str, tuple[VideoFrame, ...]], ...] = ()

    def signals(self) -> list[VideoSignal]:
        """The ``vpdq`` signal, plus a ``trimmed`` one when bars were removed and one
        ``band`` signal per half when halves were hashed."""
        out = [VideoSignal(frames=self.frames)]
        if self.trimmed_frames:
            out.append(VideoSignal(frames=self.trimmed_frames, variant=TRIMMED))
        for i, (name, frames) in enumerate(self.half_frames):
            out.append(VideoSignal(frames=frames, variant=Variant("band", i, detail=name)))
        return out


def frame_rgb(frame: av.VideoFrame) -> RGBArray:
    """A decoded frame as H x W x 3 ``uint8`` RGB, converted as the vPDQ reference's frames
    are (FFmpeg's accurate YUV-to-RGB conversion to 16 bits per channel, top 8 bits kept)."""
    wide = np.asarray(frame.to_ndarray(format="rgb48le"), dtype=np.uint16)
    return np.ascontiguousarray((wide >> 8).astype(np.uint8))


def _rotate(rgb: RGBArray, rotation: int) -> RGBArray:
    """``rgb`` turned ``rotation`` degrees counter-clockwise (a multiple of 90)."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def _rotation_of(frame: av.VideoFrame) -> int:
    """The frame's display rotation, counter-clockwise degrees snapped to 0/90/180/270."""
    try:
        raw = float(frame.rotation or 0)
    except (AttributeError, TypeError, ValueError):
        return 0
    return (round(raw / 90.0) * 90) % 360


def _halves(rgb: RGBArray) -> list[tuple[str, RGBArray]]:
    """The four halves of ``rgb`` in :data:`HALVES` order (contiguous copies)."""
    h, w = rgb.shape[:2]
    parts = (rgb[: h // 2], rgb[h // 2 :], rgb[:, : w // 2], rgb[:, w // 2 :])
    return [(n, np.ascontiguousarray(p)) for n, p in zip(HALVES, parts, strict=True)]


def _is_flat(rgb: RGBArray) -> bool:
    """True for a picture of (nearly) one colour: a black frame tells nothing about bars."""
    sample = rgb[:: max(1, rgb.shape[0] // 64), :: max(1, rgb.shape[1] // 64)]
    spread = sample.max(axis=(0, 1)).astype(np.int16) - sample.min(axis=(0, 1))
    return bool(spread.max() <= DEFAULT_TOLERANCE)


class _Source:
    """Opens the container for ``source`` (a path or the bytes of a file), as often as
    needed (the bar probe reads the file a second time)."""

    def __init__(self, source: Path | bytes, limits: Limits) -> None:
        self.source = source
        if isinstance(source, bytes | bytearray | memoryview):
            size = len(source)
        else:
            try:
                size = Path(source).stat().st_size
            except OSError as exc:
                raise UnhashableContent(f"video file unreadable: {exc.strerror}") from None
        if size > limits.max_file_bytes:
            raise LimitExceeded(
                f"video over the size limit ({size} > {limits.max_file_bytes} bytes)"
            )
        if size == 0:
            raise UnhashableContent("empty file")

    def open(self) -> Any:
        src: Any = (
            io.BytesIO(bytes(self.source))
            if isinstance(self.source, bytes | bytearray | memoryview)
            else str(self.source)
        )
        try:
            return av.open(src, mode="r")
        except av.FFmpegError as exc:
            if self._mp4_without_moov():
                raise UnhashableContent(
                    "video container unreadable: MP4 without its moov atom (truncated or "
                    "unfinished upload)"
                ) from None
            detail = getattr(exc, "strerror", None) or _short(exc)
            raise UnhashableContent(f"video container unreadable: {detail}") from None
        except (OSError, ValueError, RuntimeError) as exc:
            raise UnhashableContent(f"video container unreadable: {_short(exc)}") from None

    def _mp4_without_moov(self) -> bool:
        """True when the file is an ISO base media file (``ftyp`` first) whose top-level
        boxes hold no ``moov``: the index of every sample is missing."""
        try:
            if isinstance(self.source, bytes | bytearray | memoryview):
                return _boxes_lack_moov(io.BytesIO(bytes(self.source)))
            with open(self.source, "rb") as fh:
                return _boxes_lack_moov(fh)
        except OSError:
            return False


def _boxes_lack_moov(fh: BinaryIO) -> bool:
    """Walk the top-level boxes (ISO/IEC 14496-12: 32-bit size, 4-byte type, 64-bit size
    when the size is 1, to the end when 0); at most 4096 boxes are read."""
    first = True
    for _ in range(4096):
        head = fh.read(8)
        if len(head) < 8:
            return not first
        size, kind = struct.unpack(">I4s", head)
        if first and kind != b"ftyp":
            return False
        first = False
        if kind == b"moov":
            return False
        if size == 1:
            ext = fh.read(8)
            if len(ext) < 8:
                return True
            size = struct.unpack(">Q", ext)[0] - 8
        elif size == 0:
            return True
        if size < 8:
            return True
        fh.seek(size - 8, io.SEEK_CUR)
    return False


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _video_stream(container: Any) -> Any:
    """The first video stream that is not a cover picture. Raises UnhashableContent."""
    attached = av.stream.Disposition.attached_pic
    for stream in container.streams.video:
        if stream.disposition & attached:
            continue
        return stream
    if container.streams.audio:
        raise UnhashableContent("no video stream (audio only)")
    raise UnhashableContent("no video stream")


def _check_pixels(width: int, height: int, limits: Limits) -> None:
    if width * height > limits.max_pixels:
        raise LimitExceeded(
            f"video frame of {width}x{height} pixels over the limit ({limits.max_pixels})"
        )


def _frames(container: Any, stream: Any, notes: list[str]) -> Iterator[av.VideoFrame]:
    """Decoded frames of ``stream`` in output order, then the decoder's flush. Packets the
    demuxer or decoder rejects are skipped and counted in ``notes``."""
    bad = 0
    try:
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except av.FFmpegError:
                bad += 1
    except av.FFmpegError as exc:
        notes.append(f"demuxing stopped early: {_short(exc)}")
    if bad:
        notes.append(f"{bad} corrupt video packets skipped")


def _probe_box(src: _Source, limits: Limits) -> ContentBox | None:
    """The video's bars: the per-side median of the content boxes of its first
    :data:`MAX_PROBE_KEYFRAMES` key frames that are not one flat colour (a key frame without
    bars counts as the full frame). ``None`` when there are no bars to remove."""
    container = src.open()
    try:
        stream = _video_stream(container)
        stream.codec_context.skip_frame = "NONKEY"
        boxes: list[tuple[int, int, int, int]] = []
        shape: tuple[int, int] | None = None
        notes: list[str] = []
        first_pts: int | None = None
        tb = stream.time_base or Fraction(1, 90000)
        for frame in _frames(container, stream, notes):
            if frame.pts is not None:
                first_pts = frame.pts if first_pts is None else first_pts
                if float((frame.pts - first_pts) * tb) > limits.max_video_seconds:
                    break
            _check_pixels(frame.width, frame.height, limits)
            rgb = _rotate(frame_rgb(frame), _rotation_of(frame))
            if shape is None:
                shape = (rgb.shape[0], rgb.shape[1])
            elif shape != (rgb.shape[0], rgb.shape[1]):
                return None  # the frame size changes: no one box fits
            if _is_flat(rgb):
                continue
            box = find_content_box(rgb)
            boxes.append(box if box is not None else (0, shape[0], 0, shape[1]))
            if len(boxes) >= MAX_PROBE_KEYFRAMES:
                break
    finally:
        container.close()
    if not boxes or shape is None:
        return None
    arr = np.array(boxes, dtype=np.int64)
    top, bottom, left, right = (int(v) for v in np.median(arr, axis=0).round())
    if (top, bottom, left, right) == (0, shape[0], 0, shape[1]):
        return None
    if bottom - top < 16 or right - left < 16:
        return None
    return top, bottom, left, right


def hash_video(
    source: Path | bytes,
    *,
    every_frame: bool = False,
    interval_s: float = 1.0,
    limits: Limits,
    trim_borders: bool = False,
    halves: bool = False,
) -> VideoHash:
    """vPDQ of a video file (a path, or the file's bytes); see the module docstring.

    ``every_frame``: hash every decoded frame (the form bank videos should be hashed in:
    matching is then robust to the query's sampling phase). Otherwise hash one frame per
    ``interval_s`` seconds of presentation time (default 1.0, the reference's default).
    ``limits``: ``max_file_bytes`` (checked first), ``max_pixels`` (the codec's frame size,
    checked before decoding, and every frame's), ``max_video_seconds`` (media time read; the
    rest is not hashed and ``notes`` says so). ``trim_borders``: also hash every kept frame
    with the video's uniform bars removed (``trimmed_frames``). ``halves``: also hash the
    four halves of every kept frame (``half_frames``; costs about two more frame hashes).

    Raises :class:`~bastion.errors.UnhashableContent` (``reason`` a short phrase) for: an
    empty or unreadable file, a container FFmpeg cannot open (including an MP4 without its
    ``moov`` atom), no video stream (``"no video stream (audio only)"``), no decodable frame,
    or frames ending well before the declared duration (``"video truncated: ..."``); and
    :class:`~bastion.errors.LimitExceeded` for a file or frame over the limits. Never
    returns an empty ``frames``.
    """
    if not interval_s > 0 or not math.isfinite(interval_s):
        raise ValueError("interval_s must be a positive number of seconds")
    src = _Source(source, limits)
    box = _probe_box(src, limits) if trim_borders else None
    container = src.open()
    try:
        return _hash_stream(container, every_frame, interval_s, limits, box, halves)
    finally:
        container.close()


def _hash_stream(
    container: Any,
    every_frame: bool,
    interval_s: float,
    limits: Limits,
    box: ContentBox | None,
    halves: bool,
) -> VideoHash:
    stream = _video_stream(container)
    cc = stream.codec_context
    width, height = int(cc.width or 0), int(cc.height or 0)
    _check_pixels(width, height, limits)
    tb = stream.time_base or Fraction(1, 90000)
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else None
    step = 1.0 / fps if fps else 1.0 / 30.0
    declared: float | None = None
    if stream.duration is not None and stream.duration > 0:
        declared = float(stream.duration * tb)
    elif container.duration is not None and container.duration > 0:
        declared = container.duration / 1_000_000

    notes: list[str] = []
    frames: list[VideoFrame] = []
    trimmed: list[VideoFrame] = []
    half_lists: dict[str, list[VideoFrame]] = {name: [] for name in HALVES}
    rotation: int | None = None
    first_pts: int | None = None
    last_t = -math.inf
    next_t = 0.0
    n = 0
    limited = False
    for frame in _frames(container, stream, notes):
        if frame.pts is not None:
            if first_pts is None:
                first_pts = frame.pts
            t = float((frame.pts - first_pts) * tb)
        else:
            t = 0.0 if n == 0 else last_t + step
        if t > limits.max_video_seconds:
            limited = True
            break
        index = n
        n += 1
        last_t = max(last_t, t)
        if not every_frame:
            if t < next_t - _EPS_S:
                continue
            next_t = (math.floor((t + _EPS_S) / interval_s) + 1) * interval_s
        _check_pixels(frame.width, frame.height, limits)
        if rotation is None:
            rotation = _rotation_of(frame)
            width, height = width or frame.width, height or frame.height
        rgb = _rotate(frame_rgb(frame), rotation)
        h = pdq_hash(rgb, squash=False)
        frames.append(VideoFrame(index, t, h.value, h.quality))
        content = rgb
        if box is not None:
            top, bottom, left, right = box
            if bottom <= rgb.shape[0] and right <= rgb.shape[1]:
                content = np.ascontiguousarray(rgb[top:bottom, left:right])
                th = pdq_hash(content, squash=False)
                trimmed.append(VideoFrame(index, t, th.value, th.quality))
        if halves:
            for name, part in _halves(content):
                ph = pdq_hash(part, squash=False)
                half_lists[name].append(VideoFrame(index, t, ph.value, ph.quality))

    if not frames:
        raise UnhashableContent("no decodable video frames")
    if limited:
        notes.append(
            f"only the first {limits.max_video_seconds:g} s hashed (max_video_seconds)"
        )
    elif declared is not None and last_t + 2 * step + TRUNCATION_SLACK_S < declared:
        raise UnhashableContent(
            f"video truncated: frames end at {last_t:.2f} s of {declared:.2f} s"
        )
    duration = declared if declared is not None else last_t + step
    frames.sort(key=lambda f: f.timestamp_s)
    trimmed.sort(key=lambda f: f.timestamp_s)
    return VideoHash(
        width=width,
        height=height,
        duration_s=duration,
        rotation=rotation or 0,
        frames=tuple(frames),
        trimmed_frames=tuple(trimmed),
        content_box=box if trimmed else None,
        frame_rate=fps,
        frames_decoded=n,
        notes=tuple(notes),
        half_frames=tuple(
            (name, tuple(sorted(half_lists[name], key=lambda f: f.timestamp_s)))
            for name in HALVES
            if halves
        ),
    )
