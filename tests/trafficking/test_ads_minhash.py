"""MinHash signatures, the banded LSH index and the exact Jaccard check of ad networks."""

from __future__ import annotations

import numpy as np
import pytest

from bastion.errors import InvalidInput
from bastion.trafficking import minhash
from bastion.trafficking.minhash import BandIndex, MinHasher
from bastion.trafficking.networks import jaccard


def _set(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.unique(rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32))


def test_signature_agreement_estimates_jaccard() -> None:
    rng = np.random.default_rng(3)
    hasher = MinHasher(256, seed=1)
    base = _set(rng, 400)
    for keep in (400, 300, 200, 100):
        other = np.unique(np.concatenate([base[:keep], _set(rng, 400 - keep)]))
        true = jaccard(base, other)
        est = float(np.mean(hasher.signature(base) == hasher.signature(other)))
        assert abs(est - true) < 0.1, (keep, true, est)


def test_signature_is_order_and_duplicate_free_and_seeded() -> None:
    rng = np.random.default_rng(4)
    s = _set(rng, 50)
    h = MinHasher(128, seed=1)
    assert np.array_equal(h.signature(s), h.signature(np.concatenate([s[::-1], s[:5]])))
    assert np.array_equal(h.signature(s), MinHasher(128, seed=1).signature(s))
    assert not np.array_equal(h.signature(s), MinHasher(128, seed=2).signature(s))
    with pytest.raises(InvalidInput):
        h.signature(np.zeros(0, np.uint32))
    with pytest.raises(InvalidInput):
        MinHasher(0)


def test_band_index_finds_near_duplicates_before_and_after_merging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(minhash, "MIN_BUFFER", 64)  # merge into the arrays every few items
    rng = np.random.default_rng(5)
    hasher = MinHasher(128)
    index = BandIndex(32, 4)
    sets = [_set(rng, 60) for _ in range(40)]
    for i, s in enumerate(sets):
        index.insert(i, index.keys(hasher.signature(s)))
    assert len(index) == 40 and index.nbytes() > 0
    for i, s in enumerate(sets):
        near = np.unique(np.concatenate([s[:55], _set(rng, 5)]))  # Jaccard ~0.85
        found = index.query(index.keys(hasher.signature(near)))
        assert i in found
        assert len(found) <= 2  # unrelated random sets are (almost) never candidates


def test_band_index_rejects_bad_shapes() -> None:
    with pytest.raises(InvalidInput):
        BandIndex(0, 4)
    with pytest.raises(InvalidInput):
        BandIndex(32, 4).keys(np.zeros(64, np.uint32))


def test_jaccard_matches_python_sets() -> None:
    rng = np.random.default_rng(6)
    for _ in range(200):
        a = _set(rng, int(rng.integers(0, 20)) + 1) % np.uint32(40)
        b = _set(rng, int(rng.integers(0, 20)) + 1) % np.uint32(40)
        a, b = np.unique(a), np.unique(b)
        sa, sb = set(a.tolist()), set(b.tolist())
        assert jaccard(a, b) == pytest.approx(len(sa & sb) / len(sa | sb))
    empty = np.zeros(0, np.uint32)
    assert jaccard(empty, empty) == 0.0
    assert jaccard(empty, np.array([1], np.uint32)) == 0.0


def test_query_array_is_the_sorted_query_set_with_large_buckets(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(minhash, "MIN_BUFFER", 64)  # merge into the arrays often
    rng = np.random.default_rng(9)
    index = BandIndex(8, 2)
    # few distinct signature values: many items share buckets (large buckets)
    sigs = rng.integers(0, 3, (600, 16), dtype=np.uint64).astype(np.uint32)
    for item, sig in enumerate(sigs):
        keys = index.keys(sig)
        if item % 37 == 0:
            got = index.query_array(keys)
            assert got.dtype == np.int64
            assert got.tolist() == sorted(index.query(keys))
        index.insert(item, keys)
    for sig in rng.integers(0, 3, (50, 16), dtype=np.uint64).astype(np.uint32):
        keys = index.keys(sig)
        assert index.query_array(keys).tolist() == sorted(index.query(keys))
    assert BandIndex(8, 2).query_array(index.keys(sigs[0])).size == 0


def test_prefilter_bound_is_binomial() -> None:
    from bastion.trafficking.networks import _prefilter_bound

    assert _prefilter_bound(0.5) == 2  # P(< 2 of 32) = 7.7e-9; P(< 3) = 1.2e-7
    assert _prefilter_bound(0.3) == 0  # no safe bound: the first step is skipped
    assert _prefilter_bound(1.0) == 32
    bounds = [_prefilter_bound(p / 20) for p in range(1, 21)]
    assert bounds == sorted(bounds)


def test_many_candidates_keep_every_pair_at_the_threshold() -> None:
    """Hundreds of ads sharing boilerplate (LSH candidates of each other, Jaccard ~0.4, so
    the two-step pre-filter runs) and near-duplicates among them (Jaccard ~0.8, LSH
    candidates with probability ~1): the networks are those of the exact Jaccard graph."""
    from itertools import combinations

    from bastion.trafficking.networks import AdNetworks, NetworkAd, shingle_hashes

    rng = np.random.default_rng(21)
    vocab = [f"w{i}" for i in range(5000)]
    shared = " ".join(vocab[:30])
    texts: list[str] = []
    for k in range(260):
        own = rng.choice(len(vocab) - 30, 20, replace=False) + 30
        texts.append(f"{shared} " + " ".join(vocab[i] for i in own))
        if k % 10 == 0:  # a near-duplicate: two of its words changed
            words = texts[-1].split()
            for i in rng.choice(len(words), 2, replace=False):
                words[i] = f"x{k}_{i}"
            texts.append(" ".join(words))
    nets = AdNetworks()
    for i, t in enumerate(texts):
        nets.add(NetworkAd(f"a{i}", t))
    sh = [shingle_hashes(t) for t in texts]
    parent = list(range(len(texts)))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for i, j in combinations(range(len(texts)), 2):
        if jaccard(sh[i], sh[j]) >= 0.5:
            parent[find(i)] = find(j)
    groups: dict[int, set[str]] = {}
    for i in range(len(texts)):
        groups.setdefault(find(i), set()).add(f"a{i}")
    assert sorted(map(sorted, nets.partition())) == sorted(map(sorted, groups.values()))
    assert sum(1 for g in groups.values() if len(g) > 1) >= 20


def test_query_recent_takes_the_latest_items_of_each_bucket(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a brute force: per bucket key, the ``limit`` last inserted items (below
    ``before`` when given), from the sorted arrays and the dict of recent insertions alike."""
    monkeypatch.setattr(minhash, "MIN_BUFFER", 64)
    rng = np.random.default_rng(12)
    index = BandIndex(8, 2)
    buckets: dict[int, list[int]] = {}
    sigs = rng.integers(0, 3, (500, 16), dtype=np.uint64).astype(np.uint32)

    def brute(keys: np.ndarray, limit: int, before: int | None) -> list[int]:
        out: set[int] = set()
        for k in keys.tolist():
            items = [i for i in buckets.get(k, []) if before is None or i < before]
            out.update(items[-limit:])
        return sorted(out)

    for item, sig in enumerate(sigs):
        keys = index.keys(sig)
        if item % 23 == 0:
            for limit in (1, 3, 40):
                assert index.query_recent(keys, limit).tolist() == brute(keys, limit, None)
                cut = item // 2
                assert index.query_recent(keys, limit, before=cut).tolist() == brute(
                    keys, limit, cut)
        index.insert(item, keys)
        for k in keys.tolist():
            buckets.setdefault(k, []).append(item)
    keys = index.keys(sigs[7])
    assert index.query_recent(keys, 10**6).tolist() == index.query_array(keys).tolist()
    assert index.query_recent(keys, 2).size <= 2 * 8
    with pytest.raises(InvalidInput):
        index.query_recent(keys, 0)
