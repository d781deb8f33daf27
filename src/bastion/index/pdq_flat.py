"""Flat (brute-force) Hamming scans over 256-bit PDQ hashes held as uint64 words.

Used for the small delta buffer of :class:`bastion.index.pdq.PdqIndex`, for thresholds so
large that the multi-index tables would touch most rows anyway, and by tests as the oracle.
Distances are Hamming bits (0-256), computed with ``numpy.bitwise_count`` (numpy >= 2.0).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Words = npt.NDArray[np.uint64]
IntArray = npt.NDArray[np.int64]

#: Rows compared per block in :func:`flat_range_search` (bounds temporary memory: 8 bytes
#: per row per query in the block).
BLOCK_ROWS = 1 << 18

_LANES = np.uint32(0x00FF00FF)


def hamming_rows(a: Words, b: Words) -> IntArray:
    """Row-wise Hamming distance of two ``(N, 4)`` uint64 arrays: ``(N,)`` int64, 0-256."""
    counts = np.bitwise_count(np.bitwise_xor(a, b))  # (N, 4) uint8, each <= 64
    # Add the four byte counts of a row in its uint32 view: pairs into 16-bit lanes, then the
    # two lanes (no lane overflows: 2 * 64 and 4 * 64 both fit).
    x = np.ascontiguousarray(counts).view(np.uint32).reshape(-1)
    y = (x & _LANES) + ((x >> np.uint32(8)) & _LANES)
    return ((y & np.uint32(0xFFFF)) + (y >> np.uint32(16))).astype(np.int64)


def to_columns(words: Words) -> Words:
    """``(N, 4)`` row-major words as a ``(4, N)`` array (one contiguous column per word),
    the layout :func:`flat_range_search` scans fastest."""
    return np.ascontiguousarray(words.T)


def flat_range_search(
    columns: Words, n_rows: int, queries: Words, threshold: int
) -> tuple[IntArray, IntArray, IntArray]:
    """Every ``(query index, row, distance)`` with ``distance <= threshold`` between
    ``queries`` (``(Q, 4)`` uint64) and the first ``n_rows`` rows of ``columns`` (``(4, N)``
    uint64, see :func:`to_columns`). Exact; ordered by query, then row.

    All queries are compared with a block of rows at once (``Q x block`` temporaries of about
    8 MiB), so the cost is a few numpy calls per block, not per query.
    """
    nq = int(queries.shape[0])
    if nq == 0 or n_rows == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    block = max(1024, min(BLOCK_ROWS, (1 << 20) // nq))
    q_out: list[IntArray] = []
    r_out: list[IntArray] = []
    d_out: list[IntArray] = []
    qcols = [np.ascontiguousarray(queries[:, w : w + 1]) for w in range(4)]
    for lo in range(0, n_rows, block):
        hi = min(n_rows, lo + block)
        tmp = np.empty((nq, hi - lo), dtype=np.uint64)
        cnt = np.empty((nq, hi - lo), dtype=np.uint8)
        dist = np.empty((nq, hi - lo), dtype=np.uint16)
        for w in range(4):
            np.bitwise_xor(columns[w, lo:hi][None, :], qcols[w], out=tmp)
            np.bitwise_count(tmp, out=cnt)
            if w == 0:
                dist[...] = cnt
            else:
                np.add(dist, cnt, out=dist)
        qi, rows = np.nonzero(dist <= threshold)
        if qi.size:
            q_out.append(qi.astype(np.int64))
            r_out.append(rows.astype(np.int64) + lo)
            d_out.append(dist[qi, rows].astype(np.int64))
    if not q_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    qa, ra, da = np.concatenate(q_out), np.concatenate(r_out), np.concatenate(d_out)
    order = np.lexsort((ra, qa))
    return qa[order], ra[order], da[order]
