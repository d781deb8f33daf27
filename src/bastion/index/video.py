"""Matching videos by vPDQ: which bank videos a query video is, or contains.

Source of the rule: Meta, ThreatExchange ``vpdq/README.md`` ("Matching") and
python-threatexchange's brute-force vPDQ matcher. Each video is a set of *unique* frames
(identical hashes counted once) of quality >= 50; a frame is matched when it is within 31 bits
(Hamming, inclusive; Meta's PDQ threshold) of any frame of the other video. Two percentages:

* ``query_match_pct`` (q%): the share of the query's frames matched in the bank video;
* ``compared_match_pct`` (c%): the share of the bank video's frames matched in the query.

python-threatexchange's defaults accept q% >= 80 whatever c% is. Bastion accepts a bank video
when q% >= 80 (the upload is, or is part of, known material) **or** c% >= 80 (known material
inside a longer upload), and reports both. :func:`plain_match_pcts` computes the plain rule.

Robustness to sampling phase (Bastion's own). With both sides sampled at one frame per second,
the frames two copies of a video keep are up to half a second apart; in motion they differ by
more than 31 bits, and the plain rule fails on Meta's own sample clips. Bastion therefore:

1. expects bank videos hashed *densely* (every frame, ``hash_video(every_frame=True)``) and
   queries sparsely (one per second) or densely: every query frame then has its own
   counterpart among the bank's frames, whatever the phase;
2. counts each side in *windows* as long as the other side's sampling interval (the median gap
   between its frames): c% is the share of the bank video's windows holding a matched frame.
   A query sampled once a second can touch at most one bank frame per second, so c% counted
   frame by frame could never reach 80% against a dense bank; counted per second of bank
   video it measures how much of the bank video the query shows. When both sides are equally
   dense the windows hold one frame each and this is the plain rule.

Frames may carry variants (:mod:`bastion.signals.video`): a frame of a letterboxed or
pillarboxed video hashed again with its bars removed (``trimmed``), and the four halves of the
picture (``top``, ``bottom``, ``left``, ``right``), which survive a logo or caption over one
corner or edge. A frame is matched when one of its variants is within the threshold of a
variant of the other side's frame (whole pictures, stored or trimmed, with each other; a half
only with the same half); it is counted once.

Shapes: a PDQ hash is 256 bits, 64 lowercase hex, packed here as four ``uint64`` words (most
significant first); distances are integers 0-256 (Hamming bits). The index is pure (no I/O):
the store feeds it; bank videos are added and removed in place, no rebuild.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.errors import InvalidInput
from bastion.signals.base import MIN_MATCH_QUALITY, VideoFrame, parse_hex
from bastion.signals.pdq import PDQ_THRESHOLD

#: The share (percent) of frames that must match, in either direction, for a video match
#: (python-threatexchange's ``VPDQ_QUERY_MATCH_THRESHOLD_PERCENT`` default, 80).
MATCH_PCT = 80.0

#: Pairs of packed hashes compared per numpy step (bounds temporary memory: ~8 bytes each).
_CHUNK_PAIRS = 1 << 22

HashMatrix = npt.NDArray[np.uint64]

_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def pack_hashes(values: Iterable[str]) -> HashMatrix:
    """Pack 64-hex PDQ hashes into an ``(n, 4)`` ``uint64`` array (word 0 holds hex digits
    0-15). Raises :class:`InvalidInput` for a value that is not 64 hex characters."""
    raw = b"".join(bytes.fromhex(parse_hex(v, bits=256, what="PDQ hash")) for v in values)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, 4)


def _popcount(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    if _HAS_BITWISE_COUNT:
        return np.bitwise_count(words)
    as_bytes = words.view(np.uint8).reshape(*words.shape, 8)
    return _POPCOUNT8[as_bytes].sum(axis=-1, dtype=np.uint8)  # type: ignore[no-any-return]


def hamming_matrix(a: HashMatrix, b: HashMatrix) -> npt.NDArray[np.uint16]:
    """Hamming distances (bits) between every row of ``a`` (m x 4) and of ``b`` (n x 4):
    an (m, n) ``uint16`` array. Memory is bounded by processing ``b`` in chunks."""
    m, n = a.shape[0], b.shape[0]
    out = np.empty((m, n), dtype=np.uint16)
    if m == 0 or n == 0:
        return out
    step = max(1, _CHUNK_PAIRS // m)
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        acc = np.zeros((m, hi - lo), dtype=np.uint16)
        for w in range(4):
            acc += _popcount(a[:, w, None] ^ b[None, lo:hi, w])
        out[:, lo:hi] = acc
    return out


def close_pairs(
    a: HashMatrix, b: HashMatrix, threshold: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.uint16]]:
    """Every pair of rows of ``a`` and ``b`` (packed hashes) within ``threshold`` bits
    (inclusive): ``(rows of a, rows of b, distances)``, ordered by ``b`` chunk then ``a``.
    Memory stays bounded however large ``b`` is (it is scanned in chunks)."""
    m, n = a.shape[0], b.shape[0]
    parts: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.uint16]]] = []
    step = max(1, _CHUNK_PAIRS // max(m, 1))
    for lo in range(0, n, step):
        d = hamming_matrix(a, b[lo : lo + step])
        i, j = np.nonzero(d <= threshold)
        if i.size:
            parts.append((i, j + lo, d[i, j]))
    if not parts:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty.copy(), np.empty(0, dtype=np.uint16)
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


def _eligible_unique(frames: Sequence[VideoFrame], min_quality: int) -> list[VideoFrame]:
    """Frames of quality >= ``min_quality``, the first of each distinct hash only."""
    seen: set[str] = set()
    out: list[VideoFrame] = []
    for f in frames:
        if f.quality >= min_quality and f.value not in seen:
            seen.add(f.value)
            out.append(f)
    return out


def plain_match_pcts(
    query: Sequence[VideoFrame],
    compared: Sequence[VideoFrame],
    *,
    threshold: int = PDQ_THRESHOLD,
    min_quality: int = MIN_MATCH_QUALITY,
) -> tuple[float, float]:
    """The reference rule: ``(query_match_pct, compared_match_pct)`` in percent (0-100).

    Each side: its unique frames (identical hashes once) of quality >= ``min_quality``; a
    frame matches when within ``threshold`` bits (inclusive) of any frame of the other side.
    ``(0.0, 0.0)`` when either side has no such frame. This is python-threatexchange's
    brute-force vPDQ comparison; it is sensitive to sampling phase (module docstring).
    """
    q = _eligible_unique(query, min_quality)
    c = _eligible_unique(compared, min_quality)
    if not q or not c:
        return 0.0, 0.0
    near = hamming_matrix(pack_hashes(f.value for f in q), pack_hashes(f.value for f in c))
    near_ok = near <= threshold
    return (
        100.0 * float(near_ok.any(axis=1).mean()),
        100.0 * float(near_ok.any(axis=0).mean()),
    )


def sampling_interval_s(frames: Sequence[VideoFrame]) -> float:
    """A video's sampling interval in seconds: the median gap between consecutive distinct
    frame timestamps; 0.0 with fewer than two frames."""
    ts = np.unique(np.fromiter((f.timestamp_s for f in frames), dtype=np.float64))
    if ts.size < 2:
        return 0.0
    return float(np.median(np.diff(ts)))


@dataclass(frozen=True, slots=True)
class MatchedFrame:
    """One matched query frame and its nearest bank frame: timestamps in seconds, Hamming
    distance in bits, and the variants (``stored`` or ``trimmed``) that met."""

    query_timestamp_s: float
    compared_timestamp_s: float
    distance: int
    query_variant: str = "stored"
    compared_variant: str = "stored"

    def to_json(self) -> dict[str, Any]:
        """``{"query_timestamp_s", "compared_timestamp_s", "distance", ...variants}``."""
        out: dict[str, Any] = {
            "query_timestamp_s": round(self.query_timestamp_s, 6),
            "compared_timestamp_s": round(self.compared_timestamp_s, 6),
            "distance": self.distance,
        }
        if self.query_variant != "stored":
            out["query_variant"] = self.query_variant
        if self.compared_variant != "stored":
            out["compared_variant"] = self.compared_variant
        return out


@dataclass(frozen=True, slots=True)
class VideoMatch:
    """How one query compares with one bank video.

    ``query_match_pct`` / ``compared_match_pct``: percent (0-100) of the query's / the bank
    video's frames (windows, see the module docstring) that matched. ``is_match``: either
    reached the index's ``match_pct``. ``matched_frames``: one per matched query frame, in
    query time order.
    """

    video_id: Hashable
    query_match_pct: float
    compared_match_pct: float
    is_match: bool
    matched_frames: tuple[MatchedFrame, ...]

    def to_json(self) -> dict[str, Any]:
        """The video fields of DESIGN.md's match shape (the caller adds bank and entry)."""
        return {
            "signal_type": "vpdq",
            "query_match_pct": round(self.query_match_pct, 2),
            "compared_match_pct": round(self.compared_match_pct, 2),
            "matched_frames": [m.to_json() for m in self.matched_frames],
        }


@dataclass(frozen=True, slots=True)
class _Samples:
    """One video's unique eligible frames ("samples") and the packed hashes of their
    variants: ``rows`` (k x 4) with ``row_sample[i]`` the sample of row ``i`` and
    ``row_variant[i]`` its variant name index."""

    timestamps: npt.NDArray[np.float64]
    rows: HashMatrix
    row_sample: npt.NDArray[np.int32]
    row_variant: npt.NDArray[np.int8]
    interval_s: float


#: Variant names by row code; codes below :data:`_WHOLE` are whole pictures.
_VARIANTS = ("stored", "trimmed", "top", "bottom", "left", "right")
_WHOLE = 2

Halves = Mapping[str, Sequence[VideoFrame]] | Sequence[tuple[str, Sequence[VideoFrame]]]


def _samples(
    frames: Sequence[VideoFrame],
    trimmed: Sequence[VideoFrame],
    halves: Halves,
    min_quality: int,
) -> _Samples:
    """Group ``frames``, ``trimmed`` and the ``halves`` by frame number; keep variants of
    quality >= ``min_quality``; drop frames left without one, and frames whose kept hashes
    repeat an earlier frame's exactly (the reference's de-duplication)."""
    groups: list[tuple[int, Sequence[VideoFrame]]] = [(0, frames), (1, trimmed)]
    for name, group in halves.items() if isinstance(halves, Mapping) else halves:
        if name not in _VARIANTS[_WHOLE:]:
            raise InvalidInput(f"unknown half {name!r} (top, bottom, left, right)")
        groups.append((_VARIANTS.index(name), group))
    by_frame: dict[int, list[tuple[int, VideoFrame]]] = {}
    for vi, group in groups:
        for f in group:
            if not isinstance(f, VideoFrame):
                raise InvalidInput("video frames must be VideoFrame values")
            by_frame.setdefault(f.frame, []).append((vi, f))
    seen: set[tuple[tuple[int, str], ...]] = set()
    ts: list[float] = []
    values: list[str] = []
    row_sample: list[int] = []
    row_variant: list[int] = []
    for _, variants in sorted(by_frame.items(), key=lambda kv: (kv[1][0][1].timestamp_s, kv[0])):
        kept = [(vi, f) for vi, f in variants if f.quality >= min_quality]
        if not kept:
            continue
        key = tuple(sorted({(vi, f.value) for vi, f in kept}))
        if key in seen:
            continue
        seen.add(key)
        s = len(ts)
        ts.append(min(f.timestamp_s for _, f in kept))
        for vi, f in kept:
            values.append(f.value)
            row_sample.append(s)
            row_variant.append(vi)
    return _Samples(
        timestamps=np.array(ts, dtype=np.float64),
        rows=pack_hashes(values),
        row_sample=np.array(row_sample, dtype=np.int32),
        row_variant=np.array(row_variant, dtype=np.int8),
        interval_s=sampling_interval_s(list(frames)),
    )


def _windows(timestamps: npt.NDArray[np.float64], window_s: float) -> npt.NDArray[np.int64]:
    """Window number of each sample: ``floor((t - t0) / window_s)``, or the sample's own
    number when ``window_s`` is 0 (the other side is as dense as this one)."""
    if timestamps.size == 0 or window_s <= 0:
        return np.arange(timestamps.size, dtype=np.int64)
    rel = (timestamps - timestamps.min()) / window_s + 1e-9
    return np.asarray(np.floor(rel), dtype=np.int64)


class VideoIndex:
    """An in-memory vPDQ bank: add and remove bank videos in place, match query videos.

    ``threshold``: largest Hamming distance (bits, inclusive) between matching frames
    (default 31, Meta's PDQ threshold). ``min_quality``: frames below are ignored (50).
    ``match_pct``: q% or c% needed for a match (80). Bank videos should be hashed with
    every frame (module docstring). Rows live in one growing array; removed videos' rows are
    masked and the array compacted when over half is dead, so memory stays about 40 bytes
    per bank frame variant.
    """

    def __init__(
        self,
        *,
        threshold: int = PDQ_THRESHOLD,
        min_quality: int = MIN_MATCH_QUALITY,
        match_pct: float = MATCH_PCT,
    ) -> None:
        if not 0 <= threshold <= 256:
            raise InvalidInput("threshold must be 0-256 bits")
        if not 0.0 < match_pct <= 100.0:
            raise InvalidInput("match_pct must be in (0, 100]")
        self.threshold = threshold
        self.min_quality = min_quality
        self.match_pct = match_pct
        self._videos: dict[Hashable, tuple[int, _Samples]] = {}
        self._slot_ids: list[Hashable | None] = []
        self._rows: HashMatrix = np.empty((0, 4), dtype=np.uint64)
        self._row_slot: npt.NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self._row_index: npt.NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self._used = 0
        self._dead = 0

    def __len__(self) -> int:
        return len(self._videos)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._videos

    def add(
        self,
        video_id: Hashable,
        frames: Sequence[VideoFrame],
        *,
        trimmed: Sequence[VideoFrame] = (),
        halves: Halves = (),
    ) -> None:
        """Add (or replace) bank video ``video_id``: its ``frames`` (best every frame) and
        optionally the same frames with bars removed (``trimmed``) and their halves
        (``halves``: ``{"top": frames, ...}`` or ``VideoHash.half_frames``), all paired by
        frame number. A video whose frames are all below ``min_quality`` is kept but can
        never match."""
        samples = _samples(frames, trimmed, halves, self.min_quality)
        if video_id in self._videos:
            self.remove(video_id)
        slot = len(self._slot_ids)
        self._slot_ids.append(video_id)
        self._videos[video_id] = (slot, samples)
        k = samples.rows.shape[0]
        self._reserve(self._used + k)
        end = self._used + k
        self._rows[self._used : end] = samples.rows
        self._row_slot[self._used : end] = slot
        self._row_index[self._used : end] = np.arange(k, dtype=np.int32)
        self._used = end

    def remove(self, video_id: Hashable) -> bool:
        """Remove bank video ``video_id``; ``False`` when it was not there."""
        entry = self._videos.pop(video_id, None)
        if entry is None:
            return False
        slot, samples = entry
        live = self._row_slot[: self._used] == slot
        self._row_slot[: self._used][live] = -1
        self._dead += int(samples.rows.shape[0])
        self._slot_ids[slot] = None
        if self._dead * 2 > self._used:
            self._compact()
        return True

    def _reserve(self, need: int) -> None:
        if need <= self._rows.shape[0]:
            return
        cap = max(need, 2 * self._rows.shape[0], 1024)
        rows = np.zeros((cap, 4), dtype=np.uint64)
        rows[: self._used] = self._rows[: self._used]
        row_slot = np.full(cap, -1, dtype=np.int32)
        row_slot[: self._used] = self._row_slot[: self._used]
        row_index = np.zeros(cap, dtype=np.int32)
        row_index[: self._used] = self._row_index[: self._used]
        self._rows, self._row_slot, self._row_index = rows, row_slot, row_index

    def _compact(self) -> None:
        keep = np.flatnonzero(self._row_slot[: self._used] >= 0)
        n = keep.size
        self._rows[:n] = self._rows[keep]
        self._row_slot[:n] = self._row_slot[keep]
        self._row_index[:n] = self._row_index[keep]
        self._row_slot[n : self._used] = -1
        self._used, self._dead = n, 0

    def scores(
        self,
        frames: Sequence[VideoFrame],
        *,
        trimmed: Sequence[VideoFrame] = (),
        halves: Halves = (),
    ) -> list[VideoMatch]:
        """Every bank video sharing at least one matched frame with the query, with both
        percentages, whether or not it is a match; highest score first. ``trimmed`` and
        ``halves`` as for :meth:`add`."""
        q = _samples(frames, trimmed, halves, self.min_quality)
        if q.rows.shape[0] == 0 or self._used == 0:
            return []
        qrow, brow, dist = close_pairs(q.rows, self._rows[: self._used], self.threshold)
        alive = self._row_slot[brow] >= 0
        qrow, brow, dist = qrow[alive], brow[alive], dist[alive]
        if qrow.size == 0:
            return []
        slots = self._row_slot[brow]
        out: list[VideoMatch] = []
        for slot in np.unique(slots):
            sel = slots == slot
            video_id = self._slot_ids[int(slot)]
            assert video_id is not None
            _, bank = self._videos[video_id]
            scored = self._score(
                video_id, q, bank, qrow[sel], self._row_index[brow[sel]], dist[sel]
            )
            if scored is not None:
                out.append(scored)
        out.sort(key=lambda m: (-max(m.query_match_pct, m.compared_match_pct), str(m.video_id)))
        return out

    def match(
        self,
        frames: Sequence[VideoFrame],
        *,
        trimmed: Sequence[VideoFrame] = (),
        halves: Halves = (),
    ) -> list[VideoMatch]:
        """The bank videos the query matches (q% or c% >= ``match_pct``); highest first."""
        return [m for m in self.scores(frames, trimmed=trimmed, halves=halves) if m.is_match]

    def _score(
        self,
        video_id: Hashable,
        q: _Samples,
        bank: _Samples,
        qrows: npt.NDArray[np.intp],
        brows: npt.NDArray[np.int32],
        dists: npt.NDArray[np.uint16],
    ) -> VideoMatch | None:
        # Whole pictures meet whole pictures; a half meets only the same half.
        qv, bv = q.row_variant[qrows], bank.row_variant[brows]
        ok = ((qv < _WHOLE) & (bv < _WHOLE)) | (qv == bv)
        if not ok.any():
            return None
        qrows, brows, dists = qrows[ok], brows[ok], dists[ok]
        q_samples = q.row_sample[qrows]
        b_samples = bank.row_sample[brows]
        # Each side in windows of the other side's sampling interval (when coarser).
        qw = _windows(q.timestamps, bank.interval_s if bank.interval_s > q.interval_s else 0)
        bw = _windows(bank.timestamps, q.interval_s if q.interval_s > bank.interval_s else 0)
        q_pct = _pct(np.unique(qw[q_samples]).size, np.unique(qw).size)
        c_pct = _pct(np.unique(bw[b_samples]).size, np.unique(bw).size)
        best: dict[int, tuple[int, int, int]] = {}
        for i in np.argsort(dists, kind="stable"):
            s = int(q_samples[i])
            if s not in best:
                best[s] = (int(dists[i]), int(qrows[i]), int(brows[i]))
        matched = tuple(
            MatchedFrame(
                query_timestamp_s=float(q.timestamps[s]),
                compared_timestamp_s=float(bank.timestamps[bank.row_sample[br]]),
                distance=d,
                query_variant=_VARIANTS[int(q.row_variant[qr])],
                compared_variant=_VARIANTS[int(bank.row_variant[br])],
            )
            for s, (d, qr, br) in sorted(best.items(), key=lambda kv: q.timestamps[kv[0]])
        )
        return VideoMatch(
            video_id=video_id,
            query_match_pct=q_pct,
            compared_match_pct=c_pct,
            is_match=q_pct >= self.match_pct or c_pct >= self.match_pct,
            matched_frames=matched,
        )


def _pct(part: int, whole: int) -> float:
    return 0.0 if whole == 0 else 100.0 * part / whole


__all__ = [
    "MATCH_PCT",
    "MatchedFrame",
    "VideoIndex",
    "VideoMatch",
    "close_pairs",
    "hamming_matrix",
    "pack_hashes",
    "plain_match_pcts",
    "sampling_interval_s",
]
