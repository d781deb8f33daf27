"""PdqIndex against a brute-force oracle (Python ints and ``int.bit_count``, independent of the
index's numpy code), with planted neighbours at every distance up to and across the threshold."""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.errors import InvalidInput
from bastion.index import (
    PdqIndex,
    as_words,
    codes_to_hex,
    codes_to_words,
    hex_to_codes,
    hex_to_words,
    words_to_codes,
    words_to_hex,
)

Oracle = dict[int, str]  # entry id -> 64-hex


def random_hashes(rng: np.random.Generator, n: int) -> list[str]:
    """n random PDQ-like hashes, each with exactly 128 of 256 bits set."""
    pattern = np.zeros(256, dtype=np.uint8)
    pattern[:128] = 1
    bits = rng.permuted(np.tile(pattern, (n, 1)), axis=1)
    return [row.tobytes().hex() for row in np.packbits(bits, axis=1)]


def flip_spread(value: str, distance: int, phase: int = 0) -> str:
    """``value`` with ``distance`` bits flipped, spread evenly over the 256 bits (the hardest
    case for substring pigeonholing: every substring gets its share of the flips)."""
    x = int(value, 16)
    for k in range(distance):
        bit = (phase + (k * 256) // distance) % 256
        x ^= 1 << (255 - bit)
    return f"{x:064x}"


def oracle_search(
    entries: Oracle, queries: list[str], threshold: int
) -> list[tuple[int, int, int]]:
    out = []
    qints = [int(q, 16) for q in queries]
    for eid, h in entries.items():
        hv = int(h, 16)
        for qi, qv in enumerate(qints):
            d = (hv ^ qv).bit_count()
            if d <= threshold:
                out.append((qi, eid, d))
    return sorted(out, key=lambda t: (t[0], t[2], t[1]))


def check(index: PdqIndex, entries: Oracle, queries: list[str], threshold: int | None = None):
    t = index.threshold if threshold is None else threshold
    got = index.search(queries, threshold).tolist()
    assert got == oracle_search(entries, queries, t)
    return got


@pytest.fixture(scope="module")
def bank() -> tuple[Oracle, list[str]]:
    """20,000 random hashes; queries planted at distances 0..40 from bank entries."""
    rng = np.random.default_rng(1234)
    hashes = random_hashes(rng, 20_000)
    entries = {int(i) * 7 + 3: h for i, h in enumerate(hashes)}
    ids = list(entries)
    queries = []
    for d in range(41):
        src = entries[ids[(d * 389) % len(ids)]]
        queries.append(flip_spread(src, d, phase=d * 5))
    queries += random_hashes(rng, 5)
    return entries, queries


def build(entries: Oracle, **kwargs: object) -> PdqIndex:
    return PdqIndex.from_arrays(list(entries), list(entries.values()), **kwargs)  # type: ignore[arg-type]


# --- conversions ----------------------------------------------------------------------------


def test_hex_codes_words_round_trip() -> None:
    rng = np.random.default_rng(5)
    hexes = [*random_hashes(rng, 50), "0" * 64, "f" * 64, "8" + "0" * 63, "0" * 63 + "1"]
    codes = hex_to_codes(hexes)
    assert codes.shape == (54, 32) and codes.dtype == np.uint8
    assert codes_to_hex(codes) == hexes
    words = codes_to_words(codes)
    assert words.shape == (54, 4) and words.dtype == np.uint64
    # Word 0 holds hex digits 0-15, most significant first.
    for h, w in zip(hexes, words, strict=True):
        assert [int(h[i : i + 16], 16) for i in range(0, 64, 16)] == [int(x) for x in w]
    assert np.array_equal(words_to_codes(words), codes)
    assert words_to_hex(words) == hexes
    assert np.array_equal(hex_to_words(hexes), words)
    assert np.array_equal(as_words(codes), words)
    assert np.array_equal(as_words(words), words)
    assert np.array_equal(as_words(hexes[0]), words[:1])
    assert hex_to_codes([]).shape == (0, 32)


@given(st.lists(st.integers(min_value=0, max_value=2**256 - 1), max_size=20))
def test_hex_round_trip_property(values: list[int]) -> None:
    hexes = [f"{v:064x}" for v in values]
    words = hex_to_words(hexes)
    assert words_to_hex(words) == hexes
    assert [sum(int(w) << (64 * (3 - i)) for i, w in enumerate(row)) for row in words] == values


@given(st.text(alphabet="0123456789abcdefABCDEFxyz -\u00e9", min_size=60, max_size=68))
def test_hex_parser_accepts_exactly_64_hex_digits(text: str) -> None:
    valid = len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)
    if valid:
        assert words_to_hex(hex_to_words([text])) == [text.lower()]
    else:
        with pytest.raises(InvalidInput):
            hex_to_words(["0" * 64, text])


def test_hex_upper_case_is_the_same_hash() -> None:
    h = random_hashes(np.random.default_rng(2), 1)[0]
    assert np.array_equal(hex_to_words([h.upper()]), hex_to_words([h]))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["a" * 64, "b" * 63], "PDQ hash 1: must be 64 hex characters, got 63"),
        (["a" * 65], "PDQ hash 0: must be 64 hex characters, got 65"),
        (["a" * 64, "g" * 64], "PDQ hash 1: must be hex"),
        (["a" * 62 + " b"], "PDQ hash 0: must be hex"),
        (["é" * 64], "PDQ hash 0: must be hex"),
        ([b"a" * 64], "PDQ hash 0: must be a string"),
    ],
)
def test_bad_hex_is_rejected_with_its_position(values: list[str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        hex_to_codes(values)


def test_bad_arrays_are_rejected() -> None:
    with pytest.raises(InvalidInput):
        as_words(np.zeros((3, 31), np.uint8))
    with pytest.raises(InvalidInput):
        as_words(np.zeros((3, 4), np.int64))
    with pytest.raises(InvalidInput):
        as_words(12345)  # type: ignore[arg-type]


# --- search ---------------------------------------------------------------------------------


def test_matches_oracle_at_default_threshold(bank: tuple[Oracle, list[str]]) -> None:
    entries, queries = bank
    index = build(entries)
    got = check(index, entries, queries)
    # The planted neighbours at 0..31 are found, those at 32..40 are not (inclusive bound).
    planted = {qi: d for qi, _, d in got if qi <= 40 and d == qi}
    assert sorted(planted) == list(range(32))


@pytest.mark.parametrize("threshold", [0, 1, 7, 15, 16, 17, 30, 31, 32, 33, 47, 48, 64, 96])
def test_per_call_threshold_matches_oracle(bank: tuple[Oracle, list[str]], threshold: int) -> None:
    entries, queries = bank
    index = build(entries)
    check(index, entries, queries, threshold)


def test_huge_thresholds_fall_back_to_a_flat_scan() -> None:
    rng = np.random.default_rng(8)
    entries = {i: h for i, h in enumerate(random_hashes(rng, 300))}
    index = build(entries)
    q = random_hashes(rng, 3)
    check(index, entries, q, 120)
    assert len(index.search(q, 256)) == 3 * 300


@pytest.mark.parametrize("n", [1, 2, 30, 2_000])
def test_banks_of_every_size_find_the_boundary_exactly(n: int) -> None:
    """A bank of ONE hash must match (HMA once failed that), and so must tiny banks."""
    rng = np.random.default_rng(n)
    hashes = random_hashes(rng, n)
    entries = {100 + i: h for i, h in enumerate(hashes)}
    index = build(entries)
    target = hashes[-1]
    for phase in (0, 3, 100):
        queries = [flip_spread(target, d, phase) for d in (0, 1, 30, 31, 32, 33)]
        got = check(index, entries, queries)
        assert {(qi, eid) for qi, eid, _ in got} >= {(0, 100 + n - 1), (3, 100 + n - 1)}
        assert (4, 100 + n - 1) not in {(qi, eid) for qi, eid, _ in got}
    # The same via add() into an empty index (delta path).
    grown = PdqIndex()
    grown.add(list(entries), list(entries.values()))
    check(grown, entries, [target, flip_spread(target, 31), flip_spread(target, 32)])


def test_eight_dihedral_variants_in_one_pass(bank: tuple[Oracle, list[str]]) -> None:
    entries, queries = bank
    index = build(entries)
    variants = [
        queries[40],
        queries[41],
        queries[5],
        queries[42],
        queries[31],
        queries[43],
        queries[32],
        queries[0],
    ]
    got = check(index, entries, variants)
    per_query = index.search(variants)
    assert per_query.for_query(2) == [(eid, d) for qi, eid, d in got if qi == 2]
    assert [d for qi, _, d in got if qi in (2, 4, 7)] == [5, 31, 0]
    assert not [1 for qi, _, _ in got if qi == 6]  # distance 32: no match


def test_empty_index() -> None:
    index = PdqIndex()
    assert len(index) == 0
    q = random_hashes(np.random.default_rng(0), 8)
    assert index.search(q).tolist() == []
    assert index.search([]).tolist() == []
    assert index.remove([1, 2]) == 0
    index.merge()
    assert index.search(q, 256).tolist() == []


def test_identical_hashes_under_several_ids(bank: tuple[Oracle, list[str]]) -> None:
    entries, queries = bank
    h = queries[0]  # equals an entry of the bank
    extra = {-5: h, 10**15: h, 2**62: flip_spread(h, 3)}
    index = build({**entries, **extra})
    got = index.search([h]).for_query(0)
    assert sorted(got)[:0] == [] and {(-5, 0), (10**15, 0), (2**62, 3)} <= set(got)
    check(index, {**entries, **extra}, [h])


def test_an_id_repeated_in_one_call_is_rejected() -> None:
    index = PdqIndex()
    h = random_hashes(np.random.default_rng(3), 2)
    with pytest.raises(InvalidInput, match="more than once"):
        index.add([1, 1], h)
    with pytest.raises(InvalidInput, match="more than once"):
        PdqIndex.from_arrays([4, 4], h)
    with pytest.raises(InvalidInput, match="2 ids for 1 hashes"):
        index.add([1, 2], h[:1])
    assert len(index) == 0


@pytest.mark.parametrize("bad", [-1, 257, True, 3.5, "31"])
def test_bad_thresholds_are_rejected(bad: object) -> None:
    index = PdqIndex()
    with pytest.raises(InvalidInput):
        index.search(["0" * 64], bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        PdqIndex(bad)  # type: ignore[arg-type]


def test_bad_ids_are_rejected() -> None:
    index = PdqIndex()
    h = random_hashes(np.random.default_rng(3), 1)
    with pytest.raises(InvalidInput):
        index.add(["a"], h)  # type: ignore[list-item]
    with pytest.raises(InvalidInput):
        index.add(np.array([2**63], dtype=np.uint64), h)
    with pytest.raises(InvalidInput):
        index.remove([[1]])  # type: ignore[list-item]


# --- updates --------------------------------------------------------------------------------


def test_add_remove_re_add(bank: tuple[Oracle, list[str]]) -> None:
    entries, _queries = bank
    model = dict(entries)
    index = build(entries)
    new = random_hashes(np.random.default_rng(9), 3)
    index.add([1, 2, 3], new)
    model.update({1: new[0], 2: new[1], 3: new[2]})
    check(index, model, [*new, flip_spread(new[0], 31)])
    # Remove a delta entry and a main entry; unknown ids are ignored.
    victim = next(iter(entries))
    assert index.remove([2, victim, 999_999_999]) == 2
    del model[2], model[victim]
    check(index, model, [*new, entries[victim]])
    assert index.remove([2, victim]) == 0
    # Re-add both, with other hashes; and replace a live entry's hash (upsert).
    index.add([2, victim, 1], [new[0], new[2], new[1]])
    model.update({2: new[0], victim: new[2], 1: new[1]})
    check(index, model, [*new, entries[victim]])
    assert len(index) == len(model)


def test_tombstones_survive_merges(bank: tuple[Oracle, list[str]]) -> None:
    entries, queries = bank
    model = dict(entries)
    index = build(entries, delta_capacity=1_000_000)
    ids = list(entries)
    gone = ids[:50] + ids[-3:]
    index.remove(gone)
    for i in gone:
        del model[i]
    rng = np.random.default_rng(11)
    added = random_hashes(rng, 200)
    index.add(range(-1, -201, -1), added)
    model.update(zip(range(-1, -201, -1), added, strict=True))
    index.remove([-7, -8])
    del model[-7], model[-8]
    before = index.stats()
    assert before.delta_rows == 200 and before.dead_rows == 53
    index.merge()  # appends to the main tables: tombstones stay, the delta empties
    after = index.stats()
    assert after.delta_rows == 0 and after.main_rows == before.main_rows + 200
    assert after.dead_rows == 55 and after.live == len(model) == len(index)
    probes = queries + added[:10] + [entries[i] for i in gone[:5]] + [added[6], added[7]]
    check(index, model, probes)
    # Removals and re-adds after the merge hit the merged rows.
    index.remove([-1, ids[60]])
    del model[-1], model[ids[60]]
    index.add([ids[0]], [added[0]])
    model[ids[0]] = added[0]
    check(index, model, probes)


def test_rebuild_drops_tombstones(bank: tuple[Oracle, list[str]]) -> None:
    entries, queries = bank
    index = build(entries)
    ids = list(entries)
    index.remove(ids[: len(ids) // 2])
    model = {i: entries[i] for i in ids[len(ids) // 2 :]}
    index.merge()
    st = index.stats()
    assert st.dead_rows == 0 and st.main_rows == len(model)
    check(index, model, [*queries, entries[ids[0]], entries[ids[-1]]])


@pytest.mark.parametrize("background", [False, True])
def test_random_operations_match_a_dict_model(background: bool) -> None:
    """Adds, replacements, removals and automatic merges (small delta capacity; inside add or
    in a background thread), checked against a dict after every step."""
    rng = np.random.default_rng(21)
    pool = random_hashes(rng, 400)
    index = PdqIndex(delta_capacity=37, background_merge=background)
    model: Oracle = {}
    for step in range(60):
        k = int(rng.integers(1, 25))
        ids = rng.choice(600, size=k, replace=False).tolist()
        if rng.random() < 0.6:
            hs = [pool[int(j)] for j in rng.integers(0, len(pool), size=k)]
            index.add(ids, hs)
            model.update(zip(ids, hs, strict=True))
        else:
            expect = sum(1 for i in ids if i in model)
            assert index.remove(ids) == expect
            for i in ids:
                model.pop(i, None)
        if step % 6 == 0:
            probes = [pool[int(j)] for j in rng.integers(0, len(pool), size=4)]
            probes.append(flip_spread(probes[0], 31, step))
            check(index, model, probes, 40)
        assert len(index) == len(model)
    check(index, model, pool[:20])


def test_background_merge_while_searching(bank: tuple[Oracle, list[str]]) -> None:
    entries, queries = bank
    index = build(entries, delta_capacity=64, background_merge=True)
    model = dict(entries)
    stop = threading.Event()
    errors: list[BaseException] = []

    def searcher() -> None:
        try:
            while not stop.is_set():
                got = index.search(queries[:32])
                # Every planted neighbour 0..31 is in the bank the whole time.
                assert {qi for qi, _, d in got.tolist() if d == qi} == set(range(32))
        except BaseException as exc:
            errors.append(exc)

    th = threading.Thread(target=searcher)
    th.start()
    rng = np.random.default_rng(4)
    for start in range(0, 640, 32):
        hs = random_hashes(rng, 32)
        index.add(range(10**9 + start, 10**9 + start + 32), hs)
        model.update(zip(range(10**9 + start, 10**9 + start + 32), hs, strict=True))
    index.merge_in_background().join()
    stop.set()
    th.join()
    assert not errors and index.merge_error is None
    assert index.stats().delta_rows < 64
    check(index, model, queries + list(model.values())[-5:])


# --- snapshots ------------------------------------------------------------------------------


def test_snapshot_round_trip(bank: tuple[Oracle, list[str]], tmp_path: Path) -> None:
    entries, queries = bank
    index = build(entries, threshold=20)
    model = dict(entries)
    ids = list(entries)
    index.remove(ids[:10])
    for i in ids[:10]:
        del model[i]
    new = random_hashes(np.random.default_rng(6), 5)
    index.add([-1, -2, -3, -4, -5], new)
    index.remove([-2])
    model.update({-1: new[0], -3: new[2], -4: new[3], -5: new[4]})
    path = tmp_path / "pdq.npz"
    index.save(path, meta={"log_position": 1234, "note": "x"})
    loaded = PdqIndex.load(path)
    assert loaded.snapshot_meta == {"log_position": 1234, "note": "x"}
    assert loaded.threshold == 20
    assert loaded.stats() == index.stats()
    probes = queries + new + [entries[ids[0]]]
    assert loaded.search(probes).tolist() == index.search(probes).tolist()
    check(loaded, model, probes)
    # The loaded index keeps working: updates, merges, a second round trip.
    loaded.add([-2], [new[1]])
    model[-2] = new[1]
    loaded.merge()
    check(loaded, model, probes, 31)
    loaded.save(path)
    again = PdqIndex.load(path, threshold=31)
    check(again, model, probes)
    assert not list(tmp_path.glob(".*tmp"))


def test_empty_snapshot_round_trip(tmp_path: Path) -> None:
    PdqIndex().save(tmp_path / "e.npz")
    loaded = PdqIndex.load(tmp_path / "e.npz")
    assert len(loaded) == 0 and loaded.search(["1" * 64]).tolist() == []


def test_snapshot_is_not_pickle_and_bad_files_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    hs = random_hashes(rng, 100)
    index = PdqIndex.from_arrays(range(100), hs)
    path = tmp_path / "pdq.npz"
    index.save(path)
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            assert name.endswith(".npy")
            with z.open(name) as fh:
                header = fh.read(128)
            assert b"'descr': '|O'" not in header  # no object arrays, hence no pickle
    # A flipped byte in the data is caught (zip CRC or structural checks).
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(InvalidInput):
        PdqIndex.load(bad)
    # Not a snapshot at all.
    other = tmp_path / "other.npz"
    np.savez(other, words=np.zeros((1, 4), np.uint64))
    with pytest.raises(InvalidInput, match="not a PDQ index snapshot"):
        PdqIndex.load(other)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InvalidInput):
        PdqIndex.load(tmp_path / "junk.npz")
    # Structurally wrong: offsets that do not add up.
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    data["offsets_0"] = data["offsets_0"].copy()
    data["offsets_0"][-1] += 1
    np.savez(tmp_path / "wrong.npz", **data)
    with pytest.raises(InvalidInput, match="offsets"):
        PdqIndex.load(tmp_path / "wrong.npz")
    with pytest.raises(InvalidInput, match="JSON"):
        index.save(tmp_path / "m.npz", meta={"x": object()})


def test_snapshot_reader_refuses_pickles_compression_and_truncation(tmp_path: Path) -> None:
    index = PdqIndex.from_arrays(range(50), random_hashes(np.random.default_rng(2), 50))
    path = tmp_path / "pdq.npz"
    index.save(path)
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    np.savez_compressed(tmp_path / "zipped.npz", **data)
    with pytest.raises(InvalidInput, match="compressed"):
        PdqIndex.load(tmp_path / "zipped.npz")
    np.savez(tmp_path / "pickled.npz", **{**data, "meta": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(InvalidInput, match="pickle"):
        PdqIndex.load(tmp_path / "pickled.npz")
    raw = path.read_bytes()
    (tmp_path / "short.npz").write_bytes(raw[: len(raw) - 100])
    with pytest.raises(InvalidInput):
        PdqIndex.load(tmp_path / "short.npz")
    with pytest.raises(OSError):
        PdqIndex.load(tmp_path / "missing.npz")


def test_updates_during_a_merge_are_kept(bank: tuple[Oracle, list[str]]) -> None:
    """Removals, replacements and adds made while a merge builds its new tables survive the
    swap, whatever the interleaving (the merge rebuilds here: half the rows are tombstones)."""
    entries, queries = bank
    model = dict(entries)
    index = build(entries, delta_capacity=10**6)
    ids = list(entries)
    rng = np.random.default_rng(17)
    fresh = random_hashes(rng, 700)
    index.add(range(-1, -301, -1), fresh[:300])
    model.update(zip(range(-1, -301, -1), fresh[:300], strict=True))
    for rebuild in (False, True):
        if rebuild:
            index.remove(ids[: len(ids) // 2])
            for i in ids[: len(ids) // 2]:
                model.pop(i, None)
        th = threading.Thread(target=index.merge)
        th.start()
        overlapped = False
        for step in range(30):
            overlapped |= th.is_alive()
            j = step + (300 if rebuild else 0)
            index.remove([ids[-1 - j], -1 - j])
            model.pop(ids[-1 - j], None)
            model.pop(-1 - j, None)
            index.add([ids[-100 - j], 5_000_000 + j], [fresh[300 + j], fresh[330 + j]])
            model[ids[-100 - j]] = fresh[300 + j]
            model[5_000_000 + j] = fresh[330 + j]
        th.join()
        assert overlapped  # some updates ran while the merge was building
        assert len(index) == len(model)
        check(index, model, queries[:10] + fresh[:40] + fresh[300:370])
