"""vPDQ hashing of small videos made by the test itself (ffmpeg from the imageio-ffmpeg wheel):
display rotation, audio-first and audio-only files, missing moov, truncation, 1- and 2-frame
videos, variable frame rate, limits and letterbox bars."""

from __future__ import annotations

import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from bastion.config import Limits
from bastion.errors import LimitExceeded, UnhashableContent
from bastion.signals.base import VideoSignal
from bastion.signals.pdq import hamming
from bastion.signals.video import TRIMMED, VideoHash, hash_video

LIMITS = Limits()
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-y", "-nostdin", "-loglevel", "error", *args], check=True)


@dataclass(frozen=True)
class Clips:
    """Paths of the generated clips (all a few kilobytes, under a second to make)."""

    base: Path  # 160x96, 10 fps, 3 s, moving test pattern
    rotated: Path  # base with a display rotation of 90 degrees (stream copy)
    physical: Path  # rotated re-encoded with the rotation applied to the pixels
    audio_first: Path  # an AAC stream 0, base's video (copied) as stream 1
    audio_only: Path
    faststart: Path  # 4 s, moov before mdat
    one_frame: Path
    two_frames: Path
    vfr: Path  # 3 s at 30 fps then 9 s at 10 fps
    letterbox: Path  # base padded with black bars to 160x160
    plain: Path  # base re-encoded exactly like letterbox, without bars


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    d = tmp_path_factory.mktemp("clips")
    src = "testsrc2=size=160x96:rate=10:duration=3"
    x264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
    c = Clips(*(d / f"{n}.mp4" for n in Clips.__dataclass_fields__))
    ffmpeg("-f", "lavfi", "-i", src, *x264, str(c.base))
    ffmpeg("-display_rotation", "90", "-i", str(c.base), "-c", "copy", str(c.rotated))
    ffmpeg("-i", str(c.rotated), *x264, "-crf", "10", str(c.physical))
    ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-i", str(c.base),
        "-map", "0:a", "-map", "1:v", "-c:v", "copy", "-c:a", "aac", str(c.audio_first),
    )
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac",
           str(c.audio_only))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=128x96:rate=15:duration=4", *x264,
           "-movflags", "+faststart", str(c.faststart))
    ffmpeg("-f", "lavfi", "-i", src, "-frames:v", "1", *x264, str(c.one_frame))
    ffmpeg("-f", "lavfi", "-i", src, "-frames:v", "2", *x264, str(c.two_frames))
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=128x96:rate=30:duration=6",
        "-vf", "setpts='if(lt(T,3),PTS,3/TB+(PTS-3/TB)*3)'", "-fps_mode", "vfr", *x264,
        str(c.vfr),
    )
    ffmpeg("-i", str(c.base), "-vf", "pad=160:160:0:32:black", *x264, "-crf", "12",
           str(c.letterbox))
    ffmpeg("-i", str(c.base), *x264, "-crf", "12", str(c.plain))
    return c


def top_level_boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """The top-level ISO BMFF boxes of ``data``: (type, whole box)."""
    out, i = [], 0
    while i < len(data):
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        size = size or len(data) - i
        out.append((kind, data[i : i + size]))
        i += size
    return out


def distances(a: VideoHash, b: VideoHash) -> list[int]:
    assert [f.frame for f in a.frames] == [f.frame for f in b.frames]
    return [hamming(x.value, y.value) for x, y in zip(a.frames, b.frames, strict=True)]


def test_one_frame_per_second_by_presentation_time(clips: Clips) -> None:
    vh = hash_video(clips.base, limits=LIMITS)
    assert [(f.frame, f.timestamp_s) for f in vh.frames] == [(0, 0.0), (10, 1.0), (20, 2.0)]
    assert (vh.width, vh.height, vh.rotation) == (160, 96, 0)
    assert vh.duration_s == pytest.approx(3.0)
    assert vh.frame_rate == pytest.approx(10.0)
    assert vh.frames_decoded == 30
    assert all(len(f.value) == 64 and f.quality >= 50 for f in vh.frames)
    assert vh.trimmed_frames == () and vh.content_box is None


def test_every_frame_and_other_intervals(clips: Clips) -> None:
    dense = hash_video(clips.base, every_frame=True, limits=LIMITS)
    assert [f.frame for f in dense.frames] == list(range(30))
    assert [f.timestamp_s for f in dense.frames] == pytest.approx([i / 10 for i in range(30)])
    half = hash_video(clips.base, interval_s=0.5, limits=LIMITS)
    assert [f.frame for f in half.frames] == [0, 5, 10, 15, 20, 25]
    # Sampling picks frames; it never changes a frame's hash.
    by_frame = {f.frame: f for f in dense.frames}
    assert all(by_frame[f.frame] == f for f in half.frames)
    with pytest.raises(ValueError):
        hash_video(clips.base, interval_s=0.0, limits=LIMITS)


def test_bytes_and_path_give_the_same_hash(clips: Clips) -> None:
    assert hash_video(clips.base.read_bytes(), limits=LIMITS) == hash_video(
        clips.base, limits=LIMITS
    )


def test_display_rotation_is_honoured(clips: Clips) -> None:
    rotated = hash_video(clips.rotated, limits=LIMITS)
    physical = hash_video(clips.physical, limits=LIMITS)
    stored = hash_video(clips.base, limits=LIMITS)
    assert rotated.rotation == 90 and physical.rotation == 0
    assert (rotated.width, rotated.height) == (160, 96)  # stored size, before rotation
    assert (physical.width, physical.height) == (96, 160)
    # The same vPDQ as the physically rotated re-encode (a lossy re-encode moves a few bits) ...
    near = distances(rotated, physical)
    assert max(near) <= 10, near
    # ... and far from the stored, unrotated pixels' hashes.
    assert min(distances(rotated, stored)) > 60


def test_audio_first_uses_the_first_video_stream(clips: Clips) -> None:
    vh = hash_video(clips.audio_first, every_frame=True, limits=LIMITS)
    assert vh == hash_video(clips.base, every_frame=True, limits=LIMITS)


def test_audio_only_is_not_a_video(clips: Clips) -> None:
    with pytest.raises(UnhashableContent) as err:
        hash_video(clips.audio_only, limits=LIMITS)
    assert err.value.reason == "no video stream (audio only)"


def test_mp4_without_moov(clips: Clips) -> None:
    data = clips.faststart.read_bytes()
    boxes = top_level_boxes(data)
    assert b"moov" in [k for k, _ in boxes]
    no_moov = b"".join(box for kind, box in boxes if kind != b"moov")
    with pytest.raises(UnhashableContent) as err:
        hash_video(no_moov, limits=LIMITS)
    assert "moov" in err.value.reason


@pytest.mark.parametrize("keep", [0.5, 0.8])
def test_truncated_mp4(clips: Clips, keep: float) -> None:
    data = clips.faststart.read_bytes()
    with pytest.raises(UnhashableContent) as err:
        hash_video(data[: int(len(data) * keep)], limits=LIMITS)
    assert err.value.reason.startswith("video truncated")


def test_truncated_before_the_index(clips: Clips) -> None:
    data = clips.base.read_bytes()  # moov at the end: cut, the index is gone
    with pytest.raises(UnhashableContent) as err:
        hash_video(data[: len(data) // 2], limits=LIMITS)
    assert "moov" in err.value.reason


@pytest.mark.parametrize(
    "data", [b"", b"not a video at all " * 50, b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64]
)
def test_junk_is_unhashable(data: bytes) -> None:
    with pytest.raises(UnhashableContent):
        hash_video(data, limits=LIMITS)


def test_one_and_two_frame_videos(clips: Clips) -> None:
    one = hash_video(clips.one_frame, limits=LIMITS)
    assert [(f.frame, f.timestamp_s) for f in one.frames] == [(0, 0.0)]
    assert one.frames == hash_video(clips.one_frame, every_frame=True, limits=LIMITS).frames
    two = hash_video(clips.two_frames, limits=LIMITS)
    assert [f.frame for f in two.frames] == [0]
    dense = hash_video(clips.two_frames, every_frame=True, limits=LIMITS)
    assert [(f.frame, f.timestamp_s) for f in dense.frames] == [(0, 0.0), (1, pytest.approx(0.1))]
    assert dense.frames[0] == two.frames[0]


def test_variable_frame_rate_is_sampled_by_time(clips: Clips) -> None:
    vh = hash_video(clips.vfr, limits=LIMITS)
    ts = [f.timestamp_s for f in vh.frames]
    # 12 s of media: 3 s at 30 fps then 9 s at 10 fps. One hash per second of media time
    # (a frame-count rule at the average 15.25 fps would hash every 0.5 s, then every 1.5 s).
    assert vh.duration_s is not None and 11.5 <= vh.duration_s <= 12.0
    assert len(ts) == 12
    assert ts == pytest.approx([float(i) for i in range(12)], abs=0.05)
    assert [f.frame for f in vh.frames][:5] == [0, 30, 60, 90, 100]


def test_pixel_limit_is_checked_before_decoding(clips: Clips) -> None:
    with pytest.raises(LimitExceeded):
        hash_video(clips.base, limits=Limits(max_pixels=160 * 96 - 1))
    assert hash_video(clips.base, limits=Limits(max_pixels=160 * 96)).frames


def test_file_size_limit(clips: Clips) -> None:
    size = clips.base.stat().st_size
    with pytest.raises(LimitExceeded):
        hash_video(clips.base, limits=Limits(max_file_bytes=size - 1))
    with pytest.raises(LimitExceeded):
        hash_video(clips.base.read_bytes(), limits=Limits(max_file_bytes=size - 1))


def test_time_limit_hashes_the_start_and_says_so(clips: Clips) -> None:
    vh = hash_video(clips.base, every_frame=True, limits=Limits(max_video_seconds=1.45))
    assert [f.frame for f in vh.frames] == list(range(15))
    assert any("max_video_seconds" in n for n in vh.notes)


def test_letterbox_bars_are_trimmed(clips: Clips) -> None:
    boxed = hash_video(clips.letterbox, trim_borders=True, limits=LIMITS)
    plain = hash_video(clips.plain, trim_borders=True, limits=LIMITS)
    assert boxed.content_box == (32, 128, 0, 160)
    assert plain.content_box is None and plain.trimmed_frames == ()
    assert [f.frame for f in boxed.trimmed_frames] == [f.frame for f in boxed.frames]
    trimmed_to_plain = [
        hamming(t.value, p.value)
        for t, p in zip(boxed.trimmed_frames, plain.frames, strict=True)
    ]
    stored_to_plain = [
        hamming(s.value, p.value) for s, p in zip(boxed.frames, plain.frames, strict=True)
    ]
    assert max(trimmed_to_plain) <= 16, trimmed_to_plain
    assert min(stored_to_plain) > 31, stored_to_plain
    signals = boxed.signals()
    assert [s.variant for s in signals] == [VideoSignal(()).variant, TRIMMED]
    assert signals[1].to_json()["variant"]["kind"] == "trimmed"


def test_to_json_shape(clips: Clips) -> None:
    vh = hash_video(clips.base, limits=LIMITS)
    out = vh.signals()[0].to_json()
    assert out["signal_type"] == "vpdq"
    assert [sorted(f) for f in out["frames"]] == [
        ["frame", "quality", "timestamp_s", "value"]
    ] * 3
    assert np.all(np.diff([f["timestamp_s"] for f in out["frames"]]) > 0)


def test_halves_are_hashed_inside_the_bars(clips: Clips) -> None:
    boxed = hash_video(clips.letterbox, trim_borders=True, halves=True, limits=LIMITS)
    plain = hash_video(clips.plain, halves=True, limits=LIMITS)
    assert [name for name, _ in boxed.half_frames] == ["top", "bottom", "left", "right"]
    for (name, got), (_, want) in zip(boxed.half_frames, plain.half_frames, strict=True):
        assert [f.frame for f in got] == [f.frame for f in boxed.frames]
        d = [hamming(a.value, b.value) for a, b in zip(got, want, strict=True)]
        assert max(d) <= 20, (name, d)
    # Different halves of one picture are different pictures.
    top, bottom = boxed.half_frames[0][1], boxed.half_frames[1][1]
    assert min(hamming(a.value, b.value) for a, b in zip(top, bottom, strict=True)) > 31
    kinds = [(s.variant.kind, s.variant.detail) for s in boxed.signals()]
    assert kinds[2:] == [("band", "top"), ("band", "bottom"), ("band", "left"), ("band", "right")]
    assert hash_video(clips.base, limits=LIMITS).half_frames == ()
