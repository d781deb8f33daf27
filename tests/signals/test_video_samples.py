"""vPDQ of Meta's sample videos against the reference's own output
(``../shared/data/video/vpdq-expected/*.txt``: ``frame_number,quality,pdq_hex,timestamp``, one
line per frame, every frame hashed, full frame size).

Every frame of every sample video is hashed once per session (about a minute on one core).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from bastion.config import Limits
from bastion.index.video import plain_match_pcts
from bastion.signals.base import VideoFrame
from bastion.signals.pdq import hamming
from bastion.signals.video import VideoHash, hash_video

VIDEO_DIR = Path(__file__).resolve().parents[2] / "../shared/data/video"
EXPECTED_DIR = VIDEO_DIR / "vpdq-expected"
NAMES = sorted(p.stem for p in VIDEO_DIR.glob("*.mp4"))

# Hashing every frame of a clip takes 5-40 s of CPU; on a loaded shared machine much longer.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def reference(name: str) -> list[VideoFrame]:
    """The reference's frames for ``name`` (full-size file)."""
    out = []
    for line in (EXPECTED_DIR / f"{name}.txt").read_text().splitlines():
        frame, quality, value, ts = line.strip().split(",")
        out.append(VideoFrame(int(frame), float(ts), value, int(quality)))
    return out


class DenseHashes(dict[str, VideoHash]):
    """Every frame of a sample video, hashed by Bastion on first use, kept for the session."""

    def __missing__(self, name: str) -> VideoHash:
        vh = hash_video(VIDEO_DIR / f"{name}.mp4", every_frame=True, limits=Limits())
        self[name] = vh
        return vh


@pytest.fixture(scope="session")
def dense() -> DenseHashes:
    return DenseHashes()


def test_the_sample_videos_are_there() -> None:
    assert len(NAMES) == 14, NAMES
    assert all((EXPECTED_DIR / f"{n}.txt").is_file() for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_same_frames_and_hashes_as_the_reference(dense: dict[str, VideoHash], name: str) -> None:
    ours, ref = dense[name].frames, reference(name)
    assert [f.frame for f in ours] == [f.frame for f in ref]
    # The reference prints timestamps to the millisecond.
    assert max(abs(a.timestamp_s - b.timestamp_s) for a, b in zip(ours, ref, strict=True)) <= 0.0006
    good = [(a, b) for a, b in zip(ours, ref, strict=True) if b.quality >= 50]
    assert good, name
    d = np.array([hamming(a.value, b.value) for a, b in good])
    assert (d <= 8).mean() >= 0.95, (name, np.percentile(d, [50, 95, 100]))
    assert np.median(d) <= 2, name
    q = np.array([abs(a.quality - b.quality) for a, b in zip(ours, ref, strict=True)])
    assert q.max() <= 5, name


def test_one_frame_per_second_is_the_reference_choice(dense: dict[str, VideoHash]) -> None:
    """At 30 fps the reference keeps frames 0, 30, 60 ... (``frame % int(1 s * fps)``)."""
    name = "pattern-sd-grey-bar"
    sparse = hash_video(VIDEO_DIR / f"{name}.mp4", limits=Limits())
    assert [f.frame for f in sparse.frames] == list(range(0, 206, 30))
    by_frame = {f.frame: f for f in dense[name].frames}
    assert all(by_frame[f.frame] == f for f in sparse.frames)


def test_pairwise_match_percentages_follow_the_reference(dense: dict[str, VideoHash]) -> None:
    """For every ordered pair of sample videos, q% and c% (unique frames, quality >= 50,
    within 31 bits) from Bastion's hashes are within 5 points of the reference hashes'."""
    refs = {n: reference(n) for n in NAMES}
    for a, b in itertools.product(NAMES, repeat=2):
        ours = plain_match_pcts(dense[a].frames, dense[b].frames)
        theirs = plain_match_pcts(refs[a], refs[b])
        gap = max(abs(x - y) for x, y in zip(ours, theirs, strict=True))
        assert gap <= 5.0, (a, b, ours, theirs)
    # The comparison is not vacuous: related clips score high, unrelated ones zero.
    assert plain_match_pcts(refs["chair-22-sd-grey-bar"], refs["chair-orig-22-sd-bar"])[0] > 80
    assert plain_match_pcts(refs["doorknob-hd-no-bar"], refs["pattern-hd-no-bar"]) == (0, 0)
