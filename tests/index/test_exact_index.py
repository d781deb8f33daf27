"""ExactIndex: MD5/SHA-1/SHA-256 and string values -> entry ids, checked against a dict model.

(Named ``test_exact_index.py`` so that it cannot collide with a ``tests/signals/test_exact.py``:
the test folders have no ``__init__.py``.)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from bastion.errors import InvalidInput
from bastion.index import ExactIndex


def md5(i: int) -> str:
    return hashlib.md5(str(i).encode()).hexdigest()


def model_lookup(model: dict[int, str], queries: list[str]) -> list[tuple[int, int]]:
    return sorted((qi, eid) for qi, q in enumerate(queries) for eid, v in model.items() if v == q)


@pytest.mark.parametrize(
    ("name", "fn"), [("md5", hashlib.md5), ("sha1", hashlib.sha1), ("sha256", hashlib.sha256)]
)
def test_digest_types(name: str, fn: object) -> None:
    index = ExactIndex.for_signal_type(name)
    values = [fn(str(i).encode()).hexdigest() for i in range(50)]  # type: ignore[operator]
    index.add(range(50), values)
    assert index.lookup_one(values[7]) == [7]
    assert index.lookup_one(values[7].upper()) == [7]
    index.merge()
    assert index.lookup_one(values[7]) == [7]
    assert index.lookup([values[3], values[3], fn(b"x").hexdigest()]).tolist() == [  # type: ignore[operator]
        (0, 3),
        (1, 3),
    ]
    assert index.nbytes() == 50 * (index.digest_bytes + 21)  # type: ignore[operator]


def test_one_value_many_ids_and_empty_cases() -> None:
    index = ExactIndex(16)
    assert len(index) == 0 and index.lookup([md5(1)]).tolist() == []
    assert index.lookup([]).tolist() == []
    index.add([5, 9, -2], [md5(1), md5(1), md5(2)])
    assert index.lookup_one(md5(1)) == [5, 9]
    index.merge()
    index.add([11], [md5(1)])
    assert index.lookup_one(md5(1)) == [5, 9, 11]
    assert index.remove([9, 12345]) == 1
    assert index.lookup_one(md5(1)) == [5, 11]


def test_add_remove_re_add_and_replace() -> None:
    index = ExactIndex(16)
    index.add([1, 2], [md5(1), md5(2)])
    index.merge()
    assert index.remove([1]) == 1
    assert index.lookup_one(md5(1)) == []
    index.add([1], [md5(3)])  # re-add with another value
    assert index.lookup_one(md5(3)) == [1] and index.lookup_one(md5(1)) == []
    index.add([2], [md5(4)])  # replace a merged entry's value
    assert index.lookup_one(md5(2)) == [] and index.lookup_one(md5(4)) == [2]
    index.merge()
    assert index.lookup_one(md5(3)) == [1] and index.lookup_one(md5(4)) == [2]
    assert len(index) == 2


@pytest.mark.parametrize("background", [False, True])
def test_random_operations_match_a_dict_model(background: bool) -> None:
    rng = np.random.default_rng(0)
    index = ExactIndex(16, delta_capacity=23, background_merge=background)
    model: dict[int, str] = {}
    for _ in range(80):
        k = int(rng.integers(1, 15))
        ids = rng.choice(300, size=k, replace=False).tolist()
        if rng.random() < 0.6:
            vals = [md5(int(v)) for v in rng.integers(0, 60, size=k)]
            index.add(ids, vals)
            model.update(zip(ids, vals, strict=True))
        else:
            assert index.remove(ids) == sum(1 for i in ids if i in model)
            for i in ids:
                model.pop(i, None)
        queries = [md5(int(v)) for v in rng.integers(0, 70, size=6)]
        assert index.lookup(queries).tolist() == model_lookup(model, queries)
        assert len(index) == len(model)


def test_string_values() -> None:
    index = ExactIndex.for_signal_type("url")
    urls = ["https://example.com/a", "https://example.com/ä", "", "x" * 10_000]
    index.add([1, 2, 3, 4], urls)
    assert [index.lookup_one(u) for u in urls] == [[1], [2], [3], [4]]
    assert index.lookup_one("https://example.com/A") == []
    with pytest.raises(InvalidInput, match="value 1"):
        index.lookup(["ok", 5])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["0" * 31], "value 0: must be 32 hex"),
        ([md5(1), "g" * 32], "value 1: must be hex"),
        ([md5(1), md5(2)[:-1] + " "], "value 1: must be hex"),
    ],
)
def test_bad_digests_are_rejected(values: list[str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        ExactIndex(16).add(range(len(values)), values)


def test_bad_calls_are_rejected() -> None:
    index = ExactIndex(16)
    with pytest.raises(InvalidInput, match="more than once"):
        index.add([1, 1], [md5(1), md5(2)])
    with pytest.raises(InvalidInput, match="2 ids for 1 values"):
        index.add([1, 2], [md5(1)])
    with pytest.raises(InvalidInput):
        index.lookup(md5(1))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        ExactIndex(4)
    assert len(index) == 0


def test_snapshot_round_trip(tmp_path: Path) -> None:
    index = ExactIndex(16)
    index.add(range(100), [md5(i % 40) for i in range(100)])
    index.merge()
    index.remove([3, 4])
    index.add([1000, 1001], [md5(500), md5(3)])
    path = tmp_path / "md5.npz"
    index.save(path, meta={"log_position": 7})
    loaded = ExactIndex.load(path)
    assert loaded.snapshot_meta == {"log_position": 7} and loaded.digest_bytes == 16
    queries = [md5(i) for i in range(45)] + [md5(500)]
    assert loaded.lookup(queries).tolist() == index.lookup(queries).tolist()
    assert len(loaded) == len(index) == 100
    strings = ExactIndex(None)
    strings.add([1], ["kw"])
    strings.save(tmp_path / "s.npz")
    assert ExactIndex.load(tmp_path / "s.npz").lookup_one("kw") == [1]
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(InvalidInput):
        ExactIndex.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", keys=np.zeros(2, np.uint64))
    with pytest.raises(InvalidInput):
        ExactIndex.load(tmp_path / "other.npz")


def test_bulk_build_matches_incremental_adds() -> None:
    values = [md5(i % 300) for i in range(1000)]
    bulk = ExactIndex.from_arrays(np.arange(1000) * 3, values, 16)
    inc = ExactIndex(16)
    inc.add(np.arange(1000) * 3, values)
    queries = [md5(i) for i in range(310)]
    assert bulk.lookup(queries).tolist() == inc.lookup(queries).tolist()
    assert len(bulk.lookup(queries)) == 1000
    assert bulk.remove([3, 6]) == 2 and bulk.lookup_one(md5(1)) == [903, 1803, 2703]
    with pytest.raises(InvalidInput, match="more than once"):
        ExactIndex.from_arrays([1, 1], [md5(1), md5(2)], 16)
    strings = ExactIndex.from_arrays([7, 8], ["a", "b"])
    assert strings.lookup_one("b") == [8]
