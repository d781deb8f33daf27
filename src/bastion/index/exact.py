"""The exact index: value -> entry ids, for MD5, SHA-1, SHA-256 and any string signal.

Digests are held as raw bytes in sorted numpy arrays, not as Python strings: a digest of ``D``
bytes costs ``D + 21`` bytes per entry (the first 8 bytes as a sorted uint64 key, the rest,
the id, a tombstone flag and the id order for removals), 37 bytes for an MD5 instead of about
200 for a ``dict[str, list[int]]``. Values of other string signal types (URLs, keywords ...)
are stored as their 16-byte BLAKE2b digest (RFC 7693); finding a different string with the same
digest as a bank value takes about 2**128 work, so lookups stay exact in practice.

Like :class:`bastion.index.pdq.PdqIndex`: additions go to a small dict-based delta, removals set
tombstones, both visible at once; :meth:`ExactIndex.merge` folds the delta into the sorted
arrays outside the lock and swaps them in; snapshots are ``.npz`` files (no pickle).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.errors import InvalidInput
from bastion.index.merging import BackgroundMerge
from bastion.index.npz import read_npz, write_npz

IntArray = npt.NDArray[np.int64]
Digests = npt.NDArray[np.uint8]

#: Digest bytes of the exact signal types (their canonical form is lowercase hex).
DIGEST_BYTES: dict[str, int] = {"md5": 16, "sha1": 20, "sha256": 32}
#: Digest bytes used for values of other string signal types (BLAKE2b).
STRING_DIGEST_BYTES = 16
#: Default number of delta entries that triggers a merge.
DEFAULT_DELTA_CAPACITY = 65_536

SNAPSHOT_FORMAT = "bastion-exact-index"
SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True)
class ExactMatches:
    """Matches of one lookup, as parallel int64 arrays sorted by query, then id."""

    query_idx: IntArray
    ids: IntArray

    def __len__(self) -> int:
        return int(self.ids.size)

    def tolist(self) -> list[tuple[int, int]]:
        """``[(query_idx, entry id), ...]`` as Python ints."""
        return list(zip(self.query_idx.tolist(), self.ids.tolist(), strict=True))

    def for_query(self, query_idx: int) -> list[int]:
        """Entry ids matched by one query, in increasing order."""
        lo, hi = np.searchsorted(self.query_idx, [query_idx, query_idx + 1])
        return [int(x) for x in self.ids[lo:hi]]


@dataclass(frozen=True, slots=True)
class _Sorted:
    keys: npt.NDArray[np.uint64]  # (N,) first 8 digest bytes, big-endian, sorted
    rest: Digests  # (N, D - 8) remaining bytes, same order
    ids: IntArray  # (N,)
    alive: npt.NDArray[np.bool_]  # (N,) tombstones, mutated under the lock
    ids_sorted: IntArray  # (N,)
    id_order: npt.NDArray[np.uint32]  # rows in the order of ids_sorted

    @property
    def n(self) -> int:
        return int(self.ids.size)

    @classmethod
    def build(cls, digests: Digests, ids: IntArray) -> tuple[_Sorted, IntArray]:
        """Sorted arrays for ``digests`` (``(N, D)``); also returns the source row of each new
        row."""
        keys = _keys(digests)
        order = np.argsort(keys)  # order within one key does not matter
        ids_o = np.take(ids, order)  # np.take: several times faster than fancy indexing
        id_order = np.argsort(ids_o)  # ids are unique here
        built = cls(
            keys=np.take(keys, order),
            rest=np.take(np.ascontiguousarray(digests[:, 8:]), order, axis=0),
            ids=ids_o,
            alive=np.ones(ids.size, dtype=bool),
            ids_sorted=np.take(ids_o, id_order),
            id_order=id_order.astype(np.uint32),
        )
        return built, order.astype(np.int64)

    def rows_of(self, ids: IntArray) -> IntArray:
        lo = np.searchsorted(self.ids_sorted, ids, side="left")
        hi = np.searchsorted(self.ids_sorted, ids, side="right")
        return self.id_order[_expand(lo, hi - lo)].astype(np.int64)

    def nbytes(self) -> int:
        return sum(
            a.nbytes
            for a in (self.keys, self.rest, self.ids, self.alive, self.ids_sorted, self.id_order)
        )


def _expand(starts: IntArray, lens: IntArray) -> IntArray:
    """Concatenate the ranges ``[starts[i], starts[i] + lens[i])`` without a Python loop."""
    if lens.size == 0 or not lens.any():
        return np.zeros(0, np.int64)
    ends = np.cumsum(lens)
    out: IntArray = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(
        starts - (ends - lens), lens
    )
    return out


def _keys(digests: Digests) -> npt.NDArray[np.uint64]:
    return np.ascontiguousarray(digests[:, :8]).view(">u8").astype(np.uint64).reshape(-1)


class ExactIndex(BackgroundMerge):
    """Exact lookup of signal values, updated in place.

    Args:
        digest_bytes: the size of the values as hex digests (16 MD5, 20 SHA-1, 32 SHA-256);
            ``None`` for string values of any other signal type (stored as BLAKE2b digests).
        delta_capacity: delta entries that trigger a merge into the sorted arrays.
        background_merge: run those merges in a background daemon thread (the default)
            instead of inside :meth:`add`.

    One id holds one value; ``add`` of an id already present replaces its value; one value
    may be held by many ids. Raises :class:`InvalidInput` for malformed ids or values.
    """

    _merge_thread_name = "exact-index-merge"

    def __init__(
        self,
        digest_bytes: int | None = None,
        *,
        delta_capacity: int = DEFAULT_DELTA_CAPACITY,
        background_merge: bool = True,
    ) -> None:
        if digest_bytes is not None and not 8 <= digest_bytes <= 64:
            raise InvalidInput("digest_bytes must be 8..64")
        if delta_capacity < 1:
            raise InvalidInput("delta_capacity must be at least 1")
        self.digest_bytes = digest_bytes
        self._size = STRING_DIGEST_BYTES if digest_bytes is None else digest_bytes
        self.delta_capacity = int(delta_capacity)
        self.background_merge = background_merge
        self._merge_thread: threading.Thread | None = None
        #: The last error of a background merge (None if none); the next merge retries.
        self.merge_error: BaseException | None = None
        self._lock = threading.RLock()
        self._merge_lock = threading.Lock()
        #: Metadata stored with the snapshot this index was loaded from (else empty).
        self.snapshot_meta: dict[str, Any] = {}
        self._main, _ = _Sorted.build(np.zeros((0, self._size), np.uint8), np.zeros(0, np.int64))
        self._d_by_id: dict[int, bytes] = {}
        self._d_by_value: dict[bytes, set[int]] = {}

    @classmethod
    def from_arrays(
        cls,
        ids: Sequence[int] | npt.NDArray[np.integer[Any]],
        values: Sequence[str] | Digests,
        digest_bytes: int | None = None,
        **kwargs: Any,
    ) -> ExactIndex:
        """Build the sorted arrays for a whole list at once (the fast path at start-up; no
        delta). Raises :class:`InvalidInput` for malformed input or repeated ids."""
        index = cls(digest_bytes, **kwargs)
        id_arr = as_entry_ids(ids)
        d = index.digests(values)
        if id_arr.size != d.shape[0]:
            raise InvalidInput(f"{id_arr.size} ids for {d.shape[0]} values")
        if has_repeats(id_arr):
            raise InvalidInput("an id appears more than once in one call")
        index._main, _ = _Sorted.build(d, id_arr)
        return index

    @classmethod
    def for_signal_type(cls, name: str, **kwargs: Any) -> ExactIndex:
        """An index for a signal type: hex digests for ``md5``/``sha1``/``sha256``, string
        values for anything else."""
        return cls(DIGEST_BYTES.get(name), **kwargs)

    # -- values --

    def digests(self, values: Sequence[str] | Digests) -> Digests:
        """Values as ``(N, D)`` uint8 digests. Hex values (any case) for a digest index, any
        strings for a string index; a digest index also takes an ``(N, D)`` uint8 array.
        Raises :class:`InvalidInput` naming the first bad value."""
        size = self._size
        if isinstance(values, np.ndarray):
            if (
                self.digest_bytes is None
                or values.dtype != np.uint8
                or values.shape[1:] != (size,)
                or values.ndim != 2
            ):
                raise InvalidInput(f"digests must be an (N, {size}) uint8 array")
            return np.ascontiguousarray(values)
        if isinstance(values, str):
            raise InvalidInput("values must be a sequence of strings, not one string")
        n = len(values)
        if self.digest_bytes is None:
            out = bytearray()
            for i, v in enumerate(values):
                if not isinstance(v, str):
                    raise InvalidInput(f"value {i}: must be a string")
                out += hashlib.blake2b(
                    v.encode("utf-8", "surrogatepass"), digest_size=size
                ).digest()
            return np.frombuffer(bytes(out), dtype=np.uint8).reshape(n, size)
        try:
            ok = all(isinstance(v, str) and len(v) == 2 * size for v in values)
            raw = bytes.fromhex("".join(values)) if ok else b""
        except ValueError:
            ok, raw = False, b""
        if not ok or len(raw) != n * size:
            for i, v in enumerate(values):
                if not isinstance(v, str) or len(v) != 2 * size:
                    raise InvalidInput(f"value {i}: must be {2 * size} hex characters")
                try:
                    bytes.fromhex(v)
                except ValueError:
                    raise InvalidInput(f"value {i}: must be hex (0-9, a-f)") from None
                if len(bytes.fromhex(v)) != size:
                    raise InvalidInput(f"value {i}: must be hex (0-9, a-f)")
        return np.frombuffer(raw, dtype=np.uint8).reshape(n, size)

    # -- reading --

    def __len__(self) -> int:
        """Live entries."""
        with self._lock:
            return int(np.count_nonzero(self._main.alive)) + len(self._d_by_id)

    def nbytes(self) -> int:
        """Bytes held by the sorted arrays (the delta's dicts not included)."""
        return self._main.nbytes()

    def lookup(self, values: Sequence[str] | Digests) -> ExactMatches:
        """Entry ids holding each value. Raises :class:`InvalidInput` for malformed values."""
        d = self.digests(values)
        if d.shape[0] == 0:
            z = np.zeros(0, np.int64)
            return ExactMatches(z, z.copy())
        with self._lock:
            main = self._main
            delta_hits: list[tuple[int, int]] = []
            if self._d_by_value:
                raw = d.tobytes()
                size = self._size
                for qi in range(d.shape[0]):
                    for entry in self._d_by_value.get(raw[qi * size : (qi + 1) * size], ()):
                        delta_hits.append((qi, entry))
        keys = _keys(d)
        lo = np.searchsorted(main.keys, keys, side="left")
        hi = np.searchsorted(main.keys, keys, side="right")
        ln = (hi - lo).astype(np.int64)
        rows = _expand(lo.astype(np.int64), ln)
        qi_arr = np.repeat(np.arange(d.shape[0], dtype=np.int64), ln)
        if rows.size:
            same = np.all(main.rest[rows] == d[qi_arr, 8:], axis=1) & main.alive[rows]
            qi_arr, ids = qi_arr[same], main.ids[rows[same]]
        else:
            ids = np.zeros(0, np.int64)
        if delta_hits:
            extra = np.array(delta_hits, dtype=np.int64)
            qi_arr = np.concatenate([qi_arr, extra[:, 0]])
            ids = np.concatenate([ids, extra[:, 1]])
        order = np.lexsort((ids, qi_arr))
        return ExactMatches(qi_arr[order], ids[order])

    def lookup_one(self, value: str) -> list[int]:
        """Entry ids holding ``value``, in increasing order."""
        return self.lookup([value]).for_query(0)

    # -- updates --

    def add(
        self, ids: Sequence[int] | npt.NDArray[np.integer[Any]], values: Sequence[str] | Digests
    ) -> None:
        """Add entries (``ids[i]`` holds ``values[i]``); an id already present is replaced.
        Visible at once. Raises :class:`InvalidInput` (also for an id repeated in one call)."""
        id_arr = as_entry_ids(ids)
        d = self.digests(values)
        if id_arr.size != d.shape[0]:
            raise InvalidInput(f"{id_arr.size} ids for {d.shape[0]} values")
        if has_repeats(id_arr):
            raise InvalidInput("an id appears more than once in one call")
        if id_arr.size == 0:
            return
        self._add_digests(id_arr, d)

    def _add_digests(self, id_arr: IntArray, d: Digests) -> None:
        raw = d.tobytes()
        with self._lock:
            self._remove_locked(id_arr)
            for k, i in enumerate(id_arr.tolist()):
                b = raw[k * self._size : (k + 1) * self._size]
                self._d_by_id[i] = b
                self._d_by_value.setdefault(b, set()).add(i)
            full = len(self._d_by_id) >= self.delta_capacity
        if full:
            if self.background_merge:
                self.merge_in_background()
            else:
                self.merge()

    def remove(self, ids: Sequence[int] | npt.NDArray[np.integer[Any]]) -> int:
        """Remove entries by id (unknown ids ignored); returns how many live entries went."""
        id_arr = as_entry_ids(ids)
        if id_arr.size == 0:
            return 0
        with self._lock:
            return self._remove_locked(id_arr)

    def _remove_locked(self, ids: IntArray) -> int:
        removed = 0
        main = self._main
        if main.n:
            rows = main.rows_of(ids)
            rows = rows[main.alive[rows]]
            main.alive[rows] = False
            removed += int(rows.size)
        if self._d_by_id:
            for i in ids.tolist():
                b = self._d_by_id.pop(i, None)
                if b is not None:
                    holders = self._d_by_value[b]
                    holders.discard(i)
                    if not holders:
                        del self._d_by_value[b]
                    removed += 1
        return removed

    def merge(self) -> None:
        """Fold the delta into the sorted arrays (lookups and updates may run meanwhile) and
        drop tombstoned rows."""
        with self._merge_lock:
            with self._lock:
                main0 = self._main
                frozen = list(self._d_by_id.items())
                alive0 = main0.alive.copy()
            if not frozen and alive0.all():
                return
            k = len(frozen)
            f_ids = np.array([i for i, _ in frozen], dtype=np.int64)
            f_dig = np.frombuffer(b"".join(b for _, b in frozen), dtype=np.uint8).reshape(
                k, self._size
            )
            keep_main = np.flatnonzero(alive0)
            m_dig = np.concatenate(
                [
                    main0.keys[keep_main].astype(">u8").view(np.uint8).reshape(-1, 8),
                    main0.rest[keep_main],
                ],
                axis=1,
            )
            built, src = _Sorted.build(
                np.concatenate([m_dig, f_dig]), np.concatenate([main0.ids[keep_main], f_ids])
            )
            with self._lock:
                # Tombstones as they are now: main rows removed meanwhile, delta entries
                # removed or replaced meanwhile.
                still = np.array([self._d_by_id.get(i) == b for i, b in frozen], dtype=bool)
                alive_src = np.concatenate([main0.alive[keep_main], still])
                built.alive[:] = alive_src[src]
                self._main = built
                for (i, b), s in zip(frozen, still.tolist(), strict=True):
                    if s:
                        del self._d_by_id[i]
                        holders = self._d_by_value[b]
                        holders.discard(i)
                        if not holders:
                            del self._d_by_value[b]

    def _delta_full(self) -> bool:
        return len(self._d_by_id) >= self.delta_capacity

    # -- snapshots --

    def save(self, path: str | os.PathLike[str], *, meta: Mapping[str, Any] | None = None) -> None:
        """Write a snapshot (uncompressed ``.npz``, no pickle) atomically; merges first.
        ``meta``: JSON-serialisable values kept with it. Raises :class:`InvalidInput`."""
        try:
            meta_json = json.dumps(dict(meta or {}), sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"snapshot meta must be JSON-serialisable: {exc}") from None
        self.merge()
        with self._lock:
            main = self._main
            alive = main.alive.copy()
            d_ids = np.array(list(self._d_by_id), dtype=np.int64)
            d_dig = np.frombuffer(b"".join(self._d_by_id.values()), dtype=np.uint8).reshape(
                -1, self._size
            )
        write_npz(
            path,
            {
                "format": np.array(SNAPSHOT_FORMAT),
                "version": np.array(SNAPSHOT_VERSION, dtype=np.int64),
                "meta": np.array(meta_json),
                "digest_bytes": np.array(self.digest_bytes or 0, dtype=np.int64),
                "keys": main.keys,
                "rest": main.rest,
                "ids": main.ids,
                "alive": alive,
                "delta_ids": d_ids,
                "delta_digests": d_dig,
            },
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], **kwargs: Any) -> ExactIndex:
        """Read a snapshot written by :meth:`save`. Raises :class:`InvalidInput` for a file
        that is not a valid snapshot, OSError if it cannot be read."""
        data = read_npz(path, "exact index snapshot")
        try:
            if str(data["format"]) != SNAPSHOT_FORMAT or int(data["version"]) != SNAPSHOT_VERSION:
                raise InvalidInput("not an exact index snapshot of a supported version")
            meta = json.loads(str(data["meta"]))
            db = int(data["digest_bytes"])
            keys, rest, ids, alive = data["keys"], data["rest"], data["ids"], data["alive"]
            d_ids, d_dig = data["delta_ids"], data["delta_digests"]
        except (KeyError, ValueError, TypeError):
            raise InvalidInput("exact index snapshot: missing or unreadable fields") from None
        index = cls(db or None, **kwargs)
        size = index._size
        n = keys.size
        if (
            not isinstance(meta, dict)
            or keys.dtype != np.uint64
            or rest.dtype != np.uint8
            or rest.shape != (n, size - 8)
            or ids.dtype != np.int64
            or ids.shape != (n,)
            or alive.dtype != np.bool_
            or alive.shape != (n,)
            or d_ids.dtype != np.int64
            or d_dig.dtype != np.uint8
            or d_dig.shape != (d_ids.size, size)
            or (n > 1 and bool(np.any(keys[1:] < keys[:-1])))
        ):
            raise InvalidInput("exact index snapshot: arrays of the wrong type, shape or order")
        id_order = np.argsort(ids, kind="stable")
        index._main = _Sorted(
            keys, rest, ids, alive.copy(), ids[id_order], id_order.astype(np.uint32)
        )
        if d_ids.size:
            if has_repeats(d_ids):
                raise InvalidInput("exact index snapshot: repeated delta ids")
            index._add_digests(d_ids, d_dig)
        index.snapshot_meta = meta
        return index


def as_entry_ids(ids: Sequence[int] | npt.NDArray[np.integer[Any]]) -> IntArray:
    """Entry ids as a 1-D int64 array. Raises :class:`InvalidInput` for anything else."""
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise InvalidInput("ids must be a one-dimensional sequence of integers")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise InvalidInput("ids must be integers")
    if arr.dtype == np.uint64 and int(arr.max()) > np.iinfo(np.int64).max:
        raise InvalidInput("ids must fit in a signed 64-bit integer")
    return arr.astype(np.int64, copy=False)


def has_repeats(ids: IntArray) -> bool:
    """True if some id occurs more than once (one sort; numpy's hash-based ``unique`` is
    several times slower on millions of ids)."""
    if ids.size < 2:
        return False
    s = np.sort(ids)
    return bool(np.any(s[1:] == s[:-1]))
