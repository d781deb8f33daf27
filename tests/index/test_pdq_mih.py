"""Multi-index hashing internals: substrings, probe plans (the pigeonhole condition that makes
the search exact), layouts within the memory bound, appended tables equal rebuilt ones."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bastion.index.pdq_flat import flat_range_search, hamming_rows, to_columns
from bastion.index.pdq_mih import (
    BITS,
    Layout,
    MihTables,
    ball_size,
    choose_layout,
    flip_patterns,
    probe_plan,
    substring,
)


def rand_words(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**64, size=(n, 4), dtype=np.uint64)


def as_int(row: np.ndarray) -> int:
    return int.from_bytes(row.astype(">u8").tobytes(), "big")


@pytest.mark.parametrize("m", [12, 13, 16, 22, 32])
def test_substrings_are_the_hex_bits(m: int) -> None:
    rng = np.random.default_rng(m)
    words = rand_words(rng, 20)
    layout = Layout.even(m)
    assert sum(layout.widths) == BITS and max(layout.widths) - min(layout.widths) <= 1
    for start, width in zip(layout.starts, layout.widths, strict=True):
        got = substring(words, start, width)
        for row, value in zip(words, got, strict=True):
            expect = (as_int(row) >> (BITS - start - width)) & ((1 << width) - 1)
            assert int(value) == expect


def test_flip_patterns_cover_the_ball() -> None:
    for width, radius in [(8, 0), (8, 1), (16, 2), (21, 2), (22, 1)]:
        pats = flip_patterns(width, radius)
        assert pats.size == ball_size(width, radius) == len(set(pats.tolist()))
        assert all(int(p).bit_count() <= radius and 0 <= p < 1 << width for p in pats)


@pytest.mark.parametrize("m", [12, 16, 21, 32])
@pytest.mark.parametrize("n_rows", [10, 1_000_000, 10_000_000])
def test_probe_plans_satisfy_the_pigeonhole_condition(m: int, n_rows: int) -> None:
    layout = Layout.even(m)
    for threshold in range(0, 256, 7):
        radii = probe_plan(layout, threshold, n_rows)
        assert sum(t + 1 for t in radii) == threshold + 1
        assert all(-1 <= t <= w for t, w in zip(radii, layout.widths, strict=True))


def test_probe_plan_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        probe_plan(Layout.even(16), 256, 10)
    with pytest.raises(ValueError):
        probe_plan(Layout.even(16), -1, 10)


def test_layouts_stay_within_the_memory_bound() -> None:
    for n in (0, 1, 1_000, 100_000, 1_000_000, 10_000_000, 50_000_000):
        layout = choose_layout(n)
        tables = 4 * len(layout.widths) * n + layout.offsets_bytes()
        assert tables <= 72 * n + (4 << 20) or len(layout.widths) == 32
    # At 10M: 12 substrings of 21-22 bits (~9k candidates per query instead of ~41k for 16
    # substrings of 16 bits).
    assert choose_layout(10_000_000).widths == (22,) * 4 + (21,) * 8


def test_tables_find_exactly_what_a_flat_scan_finds() -> None:
    rng = np.random.default_rng(3)
    words = rand_words(rng, 5_000)
    queries = words[rng.integers(0, 5_000, size=16)].copy()
    # Flip 0..31 bits of the queries so that each has a neighbour at a known distance.
    for i in range(16):
        for b in rng.choice(256, size=2 * i, replace=False):
            queries[i, b // 64] ^= np.uint64(1) << np.uint64(63 - b % 64)
    # Plans as chosen for this bank and for the 1M and 10M banks of the benchmark (whose
    # layouts are 14 and 12 substrings with radius-2 probes).
    for m, plan_rows in ((12, 5_000), (12, 10_000_000), (14, 1_000_000), (16, 5_000), (32, 5_000)):
        layout = Layout.even(m)
        tables = MihTables.build(words, layout)
        for threshold in (0, 10, 31, 40):
            radii = probe_plan(layout, threshold, plan_rows)
            qi, rows, d = tables.range_search(words, queries, threshold, radii)
            fq, fr, fd = flat_range_search(to_columns(words), 5_000, queries, threshold)
            got = sorted(zip(qi.tolist(), rows.tolist(), d.tolist(), strict=True))
            assert got == sorted(zip(fq.tolist(), fr.tolist(), fd.tolist(), strict=True))
            assert np.array_equal(hamming_rows(words[rows], queries[qi]), d)
            assert len(got) >= (threshold >= 30) * 16


def test_appended_tables_equal_rebuilt_tables() -> None:
    rng = np.random.default_rng(4)
    words = rand_words(rng, 3_000)
    for m in (12, 16):
        layout = Layout.even(m)
        grown = MihTables.build(words[:2_000], layout).appended(words[2_000:2_700])
        grown = grown.appended(words[2_700:])
        whole = MihTables.build(words, layout)
        assert grown.n_rows == whole.n_rows == 3_000
        assert np.array_equal(grown.postings, whole.postings)
        for a, b in zip(grown.offsets, whole.offsets, strict=True):
            assert np.array_equal(a, b)


def test_hamming_rows_is_exact_at_the_extremes() -> None:
    a = np.zeros((3, 4), np.uint64)
    b = np.array([[0, 0, 0, 0], [2**64 - 1] * 4, [1, 0, 0, 2**63]], dtype=np.uint64)
    assert hamming_rows(a, b).tolist() == [0, 256, 2]


def test_ball_size() -> None:
    assert ball_size(21, 2) == 1 + 21 + math.comb(21, 2)
    assert ball_size(8, 10) == 256
