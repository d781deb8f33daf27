"""Multi-index hashing (MIH) tables over 256-bit PDQ hashes: exact Hamming range search.

Source: M. Norouzi, A. Punjani, D. J. Fleet, "Fast Search in Hamming Space with Multi-Index
Hashing", CVPR 2012 (substring tables and the pigeonhole argument), with the generalised
pigeonhole principle of J. Qin et al., "GPH: Similarity Search in Hamming Space", ICDE 2018
(a different search radius per substring).

The 256 bits are cut into ``m`` disjoint substrings of ``w_i`` bits (``sum(w_i) == 256``).
For each substring there is one table that lists, for every possible substring value, the rows
whose hashes have that value: a CSR layout of ``offsets`` (``2**w_i + 1`` uint32) and
``postings`` (row numbers, uint32, grouped by substring value).

Why the search is exact: if ``hamming(q, h) <= r`` then ``sum_i d_i <= r``, where ``d_i`` is the
distance between the ``i``-th substrings. Probe table ``i`` with every value within radius
``t_i`` of the query's substring (``t_i = -1``: table not probed). If ``sum_i (t_i + 1) >= r + 1``
then some ``d_i <= t_i`` (otherwise ``sum_i d_i >= r + 1``), so ``h`` is among the candidates;
every candidate is then checked against the full 256 bits. :func:`probe_plan` chooses the
``t_i`` that satisfy this with the least expected work.

Bits are numbered as the hex string reads: bit 0 is the most significant bit of hex digit 0.
Hashes are held as ``(N, 4)`` uint64 "words" (big-endian order of the 32 bytes, see
:func:`bastion.index.pdq.codes_to_words`).

Everything here is pure and immutable once built; :class:`bastion.index.pdq.PdqIndex` adds
in-place updates on top.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from bastion.index.pdq_flat import hamming_rows

Words = npt.NDArray[np.uint64]
IntArray = npt.NDArray[np.int64]

#: Bits in a PDQ hash.
BITS = 256

#: Widest substring allowed (the offsets array of one table has ``2**w + 1`` entries of 4 bytes).
MAX_WIDTH = 22

#: Relative costs used to choose layouts and probe plans, measured on the development machine
#: (one random memory read dominates both): a probe reads ``offsets`` and the start of a posting
#: run; a candidate reads its 32-byte hash. ``TABLE_COST`` is the fixed numpy overhead of
#: probing one table, in the same unit (about 50 ns).
PROBE_COST = 2.0
CANDIDATE_COST = 1.0
TABLE_COST = 100.0


@dataclass(frozen=True, slots=True)
class Layout:
    """How the 256 bits are cut: ``widths[i]`` bits starting at bit ``starts[i]``."""

    widths: tuple[int, ...]

    @property
    def starts(self) -> tuple[int, ...]:
        """Bit offset of each substring (bit 0 = most significant bit of the hex string)."""
        return tuple(itertools.accumulate((0, *self.widths[:-1])))

    @classmethod
    def even(cls, m: int) -> Layout:
        """``m`` substrings whose widths differ by at most one bit (wider ones first)."""
        if not 1 <= m <= BITS:
            raise ValueError(f"substring count must be 1..{BITS}, got {m}")
        base, extra = divmod(BITS, m)
        if base + (1 if extra else 0) > MAX_WIDTH:
            raise ValueError(f"{m} substrings would be wider than {MAX_WIDTH} bits")
        return cls(tuple(base + 1 if i < extra else base for i in range(m)))

    def offsets_bytes(self) -> int:
        """Bytes taken by all tables' ``offsets`` arrays (independent of the row count)."""
        return sum(4 * ((1 << w) + 1) for w in self.widths)


def ball_size(width: int, radius: int) -> int:
    """Number of ``width``-bit values within Hamming ``radius`` of a given value."""
    return sum(math.comb(width, k) for k in range(min(radius, width) + 1))


@cache
def flip_patterns(width: int, radius: int) -> npt.NDArray[np.int64]:
    """All XOR masks of ``width`` bits with at most ``radius`` bits set, fewest bits first."""
    out = [0]
    for k in range(1, min(radius, width) + 1):
        for combo in itertools.combinations(range(width), k):
            out.append(sum(1 << b for b in combo))
    arr = np.array(out, dtype=np.int64)
    arr.setflags(write=False)
    return arr


def probe_plan(layout: Layout, threshold: int, n_rows: int) -> tuple[int, ...]:
    """Radius ``t_i`` per substring (``-1``: not probed) for an exact search within
    ``threshold`` bits; ``sum(t_i + 1) == threshold + 1``, chosen greedily by expected cost
    (probes plus candidates for ``n_rows`` uniformly spread rows). The marginal cost of raising
    one table's radius grows with the radius, so the greedy choice is optimal for this model.

    Raises ValueError if ``threshold`` is outside ``0..255`` or exceeds what the layout can
    plan (every substring at its full width).
    """
    if not 0 <= threshold < BITS:
        raise ValueError(f"threshold must be 0..{BITS - 1}, got {threshold}")
    radii = [-1] * len(layout.widths)
    for _ in range(threshold + 1):
        best_i, best_cost = -1, math.inf
        for i, w in enumerate(layout.widths):
            t = radii[i] + 1
            if t > w:
                continue
            extra = math.comb(w, t) * (PROBE_COST + CANDIDATE_COST * n_rows / (1 << w))
            if t == 0:
                extra += TABLE_COST
            if extra < best_cost:
                best_i, best_cost = i, extra
        if best_i < 0:
            raise ValueError(f"threshold {threshold} cannot be planned on this layout")
        radii[best_i] += 1
    return tuple(radii)


def plan_cost(layout: Layout, radii: tuple[int, ...], n_rows: int) -> tuple[float, float]:
    """Expected ``(probes, candidates)`` per query for a plan (uniformly spread rows)."""
    probes = 0.0
    cands = 0.0
    for w, t in zip(layout.widths, radii, strict=True):
        if t < 0:
            continue
        v = ball_size(w, t)
        probes += v
        cands += v * n_rows / (1 << w)
    return probes, cands


def choose_layout(n_rows: int, threshold: int = 31) -> Layout:
    """The layout with the least expected search cost at ``threshold`` for ``n_rows`` rows
    whose tables (postings and offsets) take at most 72 bytes per row plus 4 MiB. At 10M rows
    this gives 12 substrings of 21-22 bits; at 1M, 16 of 16 bits.
    """
    best: tuple[float, Layout] | None = None
    n = max(n_rows, 1)
    for m in range(12, 33):
        layout = Layout.even(m)
        off = layout.offsets_bytes()
        if 4 * m * n + off > 72 * n + (4 << 20):
            continue
        radii = probe_plan(layout, threshold, n)
        probes, cands = plan_cost(layout, radii, n)
        used = sum(1 for t in radii if t >= 0)
        cost = PROBE_COST * probes + CANDIDATE_COST * cands + TABLE_COST * used
        if best is None or cost < best[0]:
            best = (cost, layout)
    return Layout.even(32) if best is None else best[1]


def substring(words: Words, start: int, width: int) -> IntArray:
    """Bits ``start .. start+width-1`` of each row of ``words`` (``(N, 4)`` uint64, big-endian
    bit order) as int64 values ``0 .. 2**width - 1``."""
    wi, off = divmod(start, 64)
    end = off + width
    col = words[:, wi]
    if end <= 64:
        v = (col >> np.uint64(64 - end)) & np.uint64((1 << width) - 1)
    else:  # straddles two words
        lo_bits = end - 64
        hi = (col & np.uint64((1 << (64 - off)) - 1)) << np.uint64(lo_bits)
        lo = words[:, wi + 1] >> np.uint64(64 - lo_bits)
        v = hi | lo
    return v.astype(np.int64)


def substring_into(words: Words, start: int, width: int, out: Words, scratch: Words) -> None:
    """:func:`substring` as uint64 into ``out`` (``(N,)``), using ``scratch`` (``(N,)``)
    instead of allocating."""
    wi, off = divmod(start, 64)
    end = off + width
    col = words[:, wi]
    if end <= 64:
        np.right_shift(col, np.uint64(64 - end), out=out)
        np.bitwise_and(out, np.uint64((1 << width) - 1), out=out)
    else:
        lo_bits = end - 64
        np.bitwise_and(col, np.uint64((1 << (64 - off)) - 1), out=out)
        np.left_shift(out, np.uint64(lo_bits), out=out)
        np.right_shift(words[:, wi + 1], np.uint64(64 - lo_bits), out=scratch)
        np.bitwise_or(out, scratch, out=out)


@dataclass(frozen=True, slots=True)
class MihTables:
    """The substring tables of one set of rows (immutable).

    ``offsets[i]``: uint32, ``2**widths[i] + 1`` entries, relative to table ``i``'s slice;
    ``postings``: uint32 row numbers, ``m * n_rows`` entries; table ``i`` is the slice
    ``[i * n_rows, (i + 1) * n_rows)``, grouped by substring value (rows of one value in
    increasing order).
    """

    layout: Layout
    offsets: tuple[npt.NDArray[np.uint32], ...]
    postings: npt.NDArray[np.uint32]
    n_rows: int

    @classmethod
    def build(cls, words: Words, layout: Layout) -> MihTables:
        """Tables for all rows of ``words`` (``(N, 4)`` uint64). Raises ValueError if
        ``N >= 2**32``.

        One sort per table: the key ``substring << 32 | row`` sorted as uint64 gives the
        postings in its low 32 bits.
        """
        n = int(words.shape[0])
        if n >= 1 << 32:
            raise ValueError("too many rows for 32-bit postings")
        m = len(layout.widths)
        # Two work buffers reused by every table: fresh memory is costly to fault in (about
        # 8 s per GiB on the development VM), so no per-table temporaries of N elements.
        keys = np.empty(n, dtype=np.uint64)
        packed = np.empty(n, dtype=np.uint64)
        rows = np.arange(n, dtype=np.uint64)
        offsets: list[npt.NDArray[np.uint32]] = []
        postings = np.empty(m * n, dtype=np.uint32)
        for i, (start, width) in enumerate(zip(layout.starts, layout.widths, strict=True)):
            substring_into(words, start, width, keys, packed)
            counts = np.bincount(keys.view(np.int64), minlength=1 << width)
            off = np.zeros((1 << width) + 1, dtype=np.uint32)
            np.cumsum(counts, out=off[1:])
            np.left_shift(keys, np.uint64(32), out=packed)
            np.bitwise_or(packed, rows, out=packed)  # row numbers in the low 32 bits
            packed.sort()
            postings[i * n : (i + 1) * n] = packed  # keeps the low 32 bits: the row
            offsets.append(off)
        return cls(layout, tuple(offsets), postings, n)

    def appended(self, words_new: Words) -> MihTables:
        """Tables for the old rows plus ``words_new`` as rows ``n_rows ..``; old row numbers are
        kept, so this costs one pass over the postings and no sort of the old rows. Raises
        ValueError past ``2**32`` rows."""
        k = int(words_new.shape[0])
        if k == 0:
            return self
        n = self.n_rows
        n2 = n + k
        if n2 >= 1 << 32:
            raise ValueError("too many rows for 32-bit postings")
        new_rows = np.arange(n, n2, dtype=np.uint32)
        step = np.arange(k, dtype=np.int64)
        offsets: list[npt.NDArray[np.uint32]] = []
        postings = np.empty(len(self.layout.widths) * n2, dtype=np.uint32)
        keep = np.ones(n2, dtype=bool)
        for i, (start, width) in enumerate(
            zip(self.layout.starts, self.layout.widths, strict=True)
        ):
            keys = substring(words_new, start, width)
            order = np.argsort(keys, kind="stable")
            old_off = self.offsets[i]
            # Each new row goes to the end of its value's run (runs stay sorted by row).
            at = old_off[keys[order] + 1].astype(np.int64) + step
            seg = postings[i * n2 : (i + 1) * n2]
            keep[:] = True
            keep[at] = False
            seg[keep] = self.postings[i * n : (i + 1) * n]
            seg[at] = new_rows[order]
            counts = np.bincount(keys, minlength=1 << width)
            add = np.zeros((1 << width) + 1, dtype=np.uint32)
            np.cumsum(counts, out=add[1:])
            offsets.append(old_off + add)
        return MihTables(self.layout, tuple(offsets), postings, n2)

    def nbytes(self) -> int:
        """Bytes held by the offsets and postings arrays."""
        return sum(a.nbytes for a in self.offsets) + self.postings.nbytes

    def candidates(
        self, queries: Words, radii: tuple[int, ...]
    ) -> tuple[IntArray, npt.NDArray[np.uint32]]:
        """Every ``(query index, row)`` whose substring ``i`` lies within ``radii[i]`` of the
        query's, for some ``i``. A row may appear more than once for one query."""
        q_parts: list[IntArray] = []
        s_parts: list[IntArray] = []
        l_parts: list[IntArray] = []
        for i, (start, width) in enumerate(
            zip(self.layout.starts, self.layout.widths, strict=True)
        ):
            t = radii[i]
            if t < 0:
                continue
            pats = flip_patterns(width, t)
            keys = (substring(queries, start, width)[:, None] ^ pats[None, :]).ravel()
            off = self.offsets[i]
            lo = np.take(off, keys).astype(np.int64)
            lens = np.take(off, keys + 1).astype(np.int64) - lo
            nz = np.flatnonzero(lens)
            if nz.size == 0:
                continue
            q_parts.append(nz // pats.size)
            s_parts.append(lo[nz] + i * self.n_rows)
            l_parts.append(lens[nz])
        if not q_parts:
            return np.zeros(0, np.int64), np.zeros(0, np.uint32)
        qi = np.concatenate(q_parts)
        st = np.concatenate(s_parts)
        ln = np.concatenate(l_parts)
        # Expand the runs [st, st + ln) into one index array without a Python loop.
        ends = np.cumsum(ln)
        idx = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(st - (ends - ln), ln)
        return np.repeat(qi, ln), np.take(self.postings, idx)

    def range_search(
        self,
        words: Words,
        queries: Words,
        threshold: int,
        radii: tuple[int, ...] | None = None,
    ) -> tuple[IntArray, IntArray, IntArray]:
        """Exact search of ``queries`` (``(Q, 4)`` uint64) against the rows of ``words`` these
        tables were built from: every ``(query index, row, distance)`` with
        ``distance <= threshold`` (Hamming bits), each pair once, unordered. ``radii``: a
        plan from :func:`probe_plan` for this threshold (computed if None)."""
        if radii is None:
            radii = probe_plan(self.layout, threshold, self.n_rows)
        qi, rows = self.candidates(queries, radii)
        if qi.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        dist = hamming_rows(np.take(words, rows, axis=0), np.take(queries, qi, axis=0))
        keep = np.flatnonzero(dist <= threshold)
        qi = qi[keep]
        r64 = rows[keep].astype(np.int64)
        d = dist[keep]
        # A row can be found through several substrings: keep each (query, row) once.
        _, first = np.unique(qi * max(self.n_rows, 1) + r64, return_index=True)
        return qi[first], r64[first], d[first]
