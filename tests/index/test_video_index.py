"""The vPDQ video matcher: distance kernels against a brute-force oracle, the match rule
(q% or c% >= 80), in-place add/remove, variants, and Meta's sample clips with a bank of two
originals (dense bank, one-frame-per-second queries)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from bastion.config import Limits
from bastion.errors import InvalidInput
from bastion.index.video import (
    VideoIndex,
    close_pairs,
    hamming_matrix,
    pack_hashes,
    plain_match_pcts,
    sampling_interval_s,
)
from bastion.signals.base import VideoFrame
from bastion.signals.pdq import hamming
from bastion.signals.video import VideoHash, hash_video

VIDEO_DIR = Path(__file__).resolve().parents[2] / "../shared/data/video"
BANK = ("chair-orig-22-sd-bar", "pattern-hd-no-bar")


def rand_hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def flip(value: str, bits: int, rng: random.Random) -> str:
    """``value`` with ``bits`` distinct bits flipped."""
    x = int(value, 16)
    for b in rng.sample(range(256), bits):
        x ^= 1 << b
    return f"{x:064x}"


def frames(values: list[str], *, fps: float = 1.0, quality: int = 100) -> list[VideoFrame]:
    return [VideoFrame(i, i / fps, v, quality) for i, v in enumerate(values)]


# --- kernels ---------------------------------------------------------------------------


def test_pack_and_hamming_match_python_ints() -> None:
    rng = random.Random(1)
    a = [rand_hex(rng) for _ in range(37)]
    b = [rand_hex(rng) for _ in range(53)] + [flip(a[0], 3, rng), a[5]]
    got = hamming_matrix(pack_hashes(a), pack_hashes(b))
    want = np.array([[hamming(x, y) for y in b] for x in a])
    assert np.array_equal(got, want)
    assert got[0, -2] == 3 and got[5, -1] == 0
    assert pack_hashes(["f" * 64])[0].tolist() == [2**64 - 1] * 4
    with pytest.raises(InvalidInput):
        pack_hashes(["abc"])


def test_close_pairs_is_exact_at_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    import bastion.index.video as mod

    monkeypatch.setattr(mod, "_CHUNK_PAIRS", 64)  # force many chunks
    rng = random.Random(2)
    base = [rand_hex(rng) for _ in range(20)]
    other = [flip(base[i % 20], d, rng) for i, d in enumerate(range(25, 40))]
    other += [rand_hex(rng) for _ in range(50)]
    qi, bi, d = close_pairs(pack_hashes(base), pack_hashes(other), 31)
    got = sorted(zip(qi.tolist(), bi.tolist(), d.tolist(), strict=True))
    want = sorted(
        (i, j, hamming(x, y))
        for i, x in enumerate(base)
        for j, y in enumerate(other)
        if hamming(x, y) <= 31
    )
    assert got == want
    assert {dist for _, _, dist in got} >= {25, 31}  # 31 is in, 32 is out
    assert all(dist <= 31 for _, _, dist in got)


# --- the plain rule ----------------------------------------------------------------------


def test_plain_rule_unique_frames_quality_and_threshold() -> None:
    rng = random.Random(3)
    a, b, c, d = (rand_hex(rng) for _ in range(4))
    query = [*frames([a, a, a, b]), VideoFrame(9, 9.0, c, 49)]  # a thrice, c low quality
    compared = frames([flip(a, 31, rng), flip(b, 32, rng), c, d])
    # Unique query frames {a, b}: a matches (31 bits), b does not (32); c is ignored.
    assert plain_match_pcts(query, compared) == (50.0, 25.0)
    assert plain_match_pcts(query, []) == (0.0, 0.0)
    assert plain_match_pcts([VideoFrame(0, 0.0, a, 10)], compared) == (0.0, 0.0)


def test_sampling_interval() -> None:
    assert sampling_interval_s(frames(["0" * 64] * 5, fps=30)) == pytest.approx(1 / 30)
    assert sampling_interval_s(frames(["0" * 64])) == 0.0


# --- the index ---------------------------------------------------------------------------


def walk(rng: random.Random, n: int, step: int = 4) -> list[str]:
    """A video-like sequence: each frame a few bits from the previous one."""
    out = [rand_hex(rng)]
    for _ in range(n - 1):
        out.append(flip(out[-1], step, rng))
    return out


def test_either_direction_reaching_80_percent_is_a_match() -> None:
    rng = random.Random(4)
    long = walk(rng, 100, step=40)  # frames far apart: each must be matched by itself
    index = VideoIndex()
    index.add("long", frames(long))
    # A clip of 20 frames of the bank video: q% 100, c% 20 -> match (part of known material).
    clip = index.match(frames(long[40:60]))
    assert [(m.video_id, m.query_match_pct, m.compared_match_pct) for m in clip] == [
        ("long", 100.0, 20.0)
    ]
    # An upload holding the whole bank video among 300 other frames: q% 25, c% 100 -> match.
    upload = [rand_hex(rng) for _ in range(150)] + long + [rand_hex(rng) for _ in range(150)]
    up = index.match(frames(upload))
    assert [(m.query_match_pct, m.compared_match_pct) for m in up] == [(25.0, 100.0)]
    # 79% of a half-different clip is not enough in either direction.
    mixed = long[:79] + [rand_hex(rng) for _ in range(21)]
    short = index.scores(frames(mixed))
    assert [(s.query_match_pct, s.compared_match_pct, s.is_match) for s in short] == [
        (79.0, 79.0, False)
    ]
    assert index.match(frames(mixed)) == []
    # Timestamps of matched frames are reported, query and bank side.
    m = clip[0].matched_frames
    assert [f.query_timestamp_s for f in m] == [float(i) for i in range(20)]
    assert [f.compared_timestamp_s for f in m] == [float(i) for i in range(40, 60)]
    assert all(f.distance == 0 for f in m)
    assert clip[0].to_json()["query_match_pct"] == 100.0


def test_add_remove_replace_in_place() -> None:
    rng = random.Random(5)
    videos = {f"v{i}": walk(rng, 30, step=40) for i in range(6)}
    index = VideoIndex()
    for vid, vals in videos.items():
        index.add(vid, frames(vals))
    assert len(index) == 6 and "v3" in index
    for vid, vals in videos.items():
        assert [m.video_id for m in index.match(frames(vals[:10]))] == [vid]
    assert index.remove("v3") and not index.remove("v3")
    assert index.match(frames(videos["v3"])) == []
    assert [m.video_id for m in index.match(frames(videos["v4"]))] == ["v4"]
    # Removing most videos compacts the rows; the rest still match.
    for vid in ("v0", "v1", "v2"):
        index.remove(vid)
    assert [m.video_id for m in index.match(frames(videos["v5"]))] == ["v5"]
    # Replacing a video drops its old frames.
    new = walk(rng, 30, step=40)
    index.add("v4", frames(new))
    assert index.match(frames(videos["v4"])) == []
    assert [m.video_id for m in index.match(frames(new))] == ["v4"]
    assert len(index) == 2  # v4 (replaced) and v5


def test_low_quality_frames_never_match() -> None:
    rng = random.Random(6)
    vals = walk(rng, 10, step=40)
    index = VideoIndex()
    index.add("dull", frames(vals, quality=49))
    assert index.scores(frames(vals)) == []
    index.add("ok", frames(vals))
    assert index.scores(frames(vals, quality=49)) == []


def test_trimmed_variants_count_once_per_frame() -> None:
    rng = random.Random(7)
    content = walk(rng, 20, step=40)
    barred = [rand_hex(rng) for _ in range(20)]  # the stored frames of a letterboxed copy
    index = VideoIndex()
    index.add("orig", frames(content))
    query = frames(barred)
    assert index.scores(query) == []
    found = index.match(query, trimmed=frames(content))
    assert [(m.query_match_pct, m.compared_match_pct) for m in found] == [(100.0, 100.0)]
    assert {f.query_variant for f in found[0].matched_frames} == {"trimmed"}


def test_halves_meet_only_the_same_half() -> None:
    rng = random.Random(9)
    bottom = walk(rng, 20, step=40)
    index = VideoIndex()
    index.add("orig", frames([rand_hex(rng) for _ in range(20)]), halves={"bottom": frames(bottom)})
    # The same hashes as a *top* half, or as whole frames, are not the bottom half.
    assert (
        index.scores(frames([rand_hex(rng) for _ in range(20)]), halves={"top": frames(bottom)})
        == []
    )
    assert index.scores(frames(bottom)) == []
    found = index.match(
        frames([rand_hex(rng) for _ in range(20)]), halves=[("bottom", frames(bottom))]
    )
    assert [(m.query_match_pct, m.compared_match_pct) for m in found] == [(100.0, 100.0)]
    assert {(f.query_variant, f.compared_variant) for f in found[0].matched_frames} == {
        ("bottom", "bottom")
    }
    with pytest.raises(InvalidInput):
        index.add("x", frames(bottom), halves={"middle": frames(bottom)})


def test_sparse_query_against_dense_bank_is_phase_robust() -> None:
    """Bank at 30 fps, query at 1 fps with a 0.5 s phase shift: the plain rule on 1 fps
    bank hashes fails; the dense bank with windowed c% matches fully."""
    rng = random.Random(8)
    dense = walk(rng, 300, step=5)  # 10 s at 30 fps; 5 bits a frame: ~65 bits in 0.5 s
    bank = frames(dense, fps=30)
    query = [VideoFrame(i, i / 30, dense[i], 100) for i in range(15, 300, 30)]
    bank_1fps = [bank[i] for i in range(0, 300, 30)]
    assert plain_match_pcts(query, bank_1fps) == (0.0, 0.0)
    index = VideoIndex()
    index.add("v", bank)
    (m,) = index.match(query)
    assert (m.query_match_pct, m.compared_match_pct) == (100.0, 100.0)
    # Counted frame by frame, a 1 fps query touches only the dense bank frames near its own.
    assert plain_match_pcts(query, bank)[1] < 80


def test_invalid_settings() -> None:
    with pytest.raises(InvalidInput):
        VideoIndex(threshold=300)
    with pytest.raises(InvalidInput):
        VideoIndex(match_pct=0)


# --- Meta's sample clips -------------------------------------------------------------------


def expected_original(name: str) -> str | None:
    """Which bank video a sample clip is a copy of (None: unrelated)."""
    if name.startswith("chair-"):
        return "chair-orig-22-sd-bar"
    if name.startswith("pattern-"):
        return "pattern-hd-no-bar"
    return None


NAMES = sorted(p.stem for p in VIDEO_DIR.glob("*.mp4"))


@pytest.fixture(scope="module")
def sample_hashes() -> tuple[dict[str, VideoHash], dict[str, VideoHash]]:
    """(bank videos hashed at every frame, every clip at 1 fps), bars trimmed and halves."""
    dense = {
        n: hash_video(
            VIDEO_DIR / f"{n}.mp4",
            every_frame=True,
            trim_borders=True,
            halves=True,
            limits=Limits(),
        )
        for n in BANK
    }
    sparse = {
        n: hash_video(VIDEO_DIR / f"{n}.mp4", trim_borders=True, halves=True, limits=Limits())
        for n in NAMES
    }
    return dense, sparse


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sample_clips_match_their_originals_and_nothing_else(
    sample_hashes: tuple[dict[str, VideoHash], dict[str, VideoHash]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Whole frames and trimmed frames only: every clip but the large-logo ones."""
    dense, sparse = sample_hashes
    index = VideoIndex()
    for name in BANK:
        index.add(name, dense[name].frames, trimmed=dense[name].trimmed_frames)
    assert len(NAMES) == 14
    report = []
    for name in NAMES:
        q = sparse[name]
        scores = index.scores(q.frames, trimmed=q.trimmed_frames)
        matched = [m.video_id for m in scores if m.is_match]
        report.append(
            f"{name}: "
            + ", ".join(
                f"{m.video_id} q={m.query_match_pct:.0f}% c={m.compared_match_pct:.0f}%"
                f"{' MATCH' if m.is_match else ''}"
                for m in scores
            )
        )
        if "large-logo" in name:
            assert all(m == expected_original(name) for m in matched), name
            continue
        want = expected_original(name)
        assert matched == ([want] if want else []), (name, scores)
    with capsys.disabled():
        print("\nvPDQ sample clips, dense bank, 1 fps queries:\n  " + "\n  ".join(report))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_with_halves_even_the_large_logo_clips_match(
    sample_hashes: tuple[dict[str, VideoHash], dict[str, VideoHash]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With halves hashed on both sides every chair and pattern clip, the large-logo ones
    included, matches its original and nothing else; doorknob and the padded clip match
    nothing."""
    dense, sparse = sample_hashes
    index = VideoIndex()
    for name in BANK:
        d = dense[name]
        index.add(name, d.frames, trimmed=d.trimmed_frames, halves=d.half_frames)
    report = []
    for name in NAMES:
        q = sparse[name]
        scores = index.scores(q.frames, trimmed=q.trimmed_frames, halves=q.half_frames)
        matched = [m.video_id for m in scores if m.is_match]
        report.append(
            f"{name}: "
            + ", ".join(
                f"{m.video_id} q={m.query_match_pct:.0f}% c={m.compared_match_pct:.0f}%"
                for m in scores
            )
        )
        want = expected_original(name)
        assert matched == ([want] if want else []), (name, scores)
    with capsys.disabled():
        print("\nwith halves:\n  " + "\n  ".join(report))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_plain_rule_at_one_fps_fails_where_the_index_does_not(
    sample_hashes: tuple[dict[str, VideoHash], dict[str, VideoHash]],
) -> None:
    """The reference rule with both sides at 1 fps (stored frames only) misses copies that
    the index finds: the phase-shifted chair clip, the longer pattern clip and every
    pillarboxed pattern clip against the full-frame original."""
    dense, sparse = sample_hashes
    index = VideoIndex()
    for name in BANK:
        index.add(name, dense[name].frames, trimmed=dense[name].trimmed_frames)
    missed_by_plain = []
    for name in NAMES:
        want = expected_original(name)
        if want is None or "large-logo" in name:
            continue
        q_pct, c_pct = plain_match_pcts(sparse[name].frames, sparse[want].frames)
        if q_pct < 80 and c_pct < 80:
            missed_by_plain.append(name)
        q = sparse[name]
        assert [m.video_id for m in index.match(q.frames, trimmed=q.trimmed_frames)] == [want]
    assert {"pattern-sd-grey-bar", "pattern-sd-with-small-logo-bar"} <= set(missed_by_plain)
    assert len(missed_by_plain) >= 4, missed_by_plain
