"""The PDQ index: exact Hamming range search over bank hashes, updated in place.

A PDQ hash is 256 bits, shown as 64 lowercase hex characters (see
:mod:`bastion.signals.pdq`); distances are Hamming bits, 0-256; a match is
``distance <= threshold`` (inclusive; Meta's recommended threshold is 31, ``pdq/README.md``).

Structure (all numpy, no compiled code of our own):

* **main**: rows of ``(id, hash)`` with multi-index hashing tables over them
  (:mod:`bastion.index.pdq_mih`), a tombstone flag per row, and the rows ordered by id for
  removal. Immutable except for the tombstones.
* **delta**: rows added since the last merge, scanned flat (:mod:`bastion.index.pdq_flat`).
  An add or a removal is visible to the next search at once.
* **merge**: when the delta holds ``delta_capacity`` rows, it is folded into the main tables in
  one pass over the postings (old row numbers kept, no sort of the old rows), synchronously or
  in a background thread. When more than a quarter of the main rows are tombstones, or the
  bank has grown so much that another table layout is cheaper, the merge rebuilds instead.

Concurrency: searches take a consistent view of (main, delta) under a short lock and then run
without it; ``add``/``remove`` hold the lock briefly; a merge builds the new main outside the
lock and swaps it in under the lock. Searches see every change that returned before they began.

Memory per hash at 10M hashes (measured by ``benchmarks/bench_pdq_index.py``): hash 32 bytes,
id 8, tombstone 1, id order 12, postings 4 per table (12 tables: 48) and the tables' offsets
(about 13 bytes per hash at 10M): about 114 bytes.

Snapshots are ``.npz`` files (no pickle, :mod:`bastion.index.npz`), written atomically, with
the caller's metadata (e.g. the bank change-log position they reflect) so a restart loads and
then replays the log tail. Loading maps the file and checks it (CRCs, shapes, bounds) without
copying the tables: about 2 s for 10M hashes, against about 20 s to build them.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.errors import InvalidInput
from bastion.index.exact import as_entry_ids, has_repeats
from bastion.index.merging import BackgroundMerge
from bastion.index.npz import read_npz, write_npz
from bastion.index.pdq_flat import BLOCK_ROWS, flat_range_search, to_columns
from bastion.index.pdq_mih import Layout, MihTables, choose_layout, plan_cost, probe_plan

Words = npt.NDArray[np.uint64]
Codes = npt.NDArray[np.uint8]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: What :meth:`PdqIndex.add` and :meth:`PdqIndex.search` accept as hashes: 64-hex strings,
#: an ``(N, 32)`` uint8 array (the 32 bytes of each hash, most significant first) or an
#: ``(N, 4)`` uint64 array of words (see :func:`codes_to_words`).
HashesLike = Sequence[str] | npt.NDArray[np.uint8] | npt.NDArray[np.uint64]

#: Meta's recommended PDQ match threshold, Hamming bits, inclusive (``pdq/README.md``).
DEFAULT_THRESHOLD = 31
#: Bits in a PDQ hash; also the largest meaningful threshold.
PDQ_BITS = 256
PDQ_HEX_CHARS = 64
PDQ_BYTES = 32

#: Queries probed together (bounds the temporary arrays of one search pass).
QUERY_CHUNK = 64
#: Bounds of the automatic delta capacity (``main rows / 512``, clamped): the flat scan of a
#: full delta costs about as much as a tenth of a multi-index search, and merges stay rare.
MIN_DELTA_CAPACITY = 4_096
MAX_DELTA_CAPACITY = 65_536
#: Fraction of tombstoned main rows above which a merge rebuilds the tables.
REBUILD_DEAD_FRACTION = 0.25

SNAPSHOT_FORMAT = "bastion-pdq-index"
SNAPSHOT_VERSION = 1


# --- conversions -----------------------------------------------------------------------------


def hex_to_codes(values: Sequence[str]) -> Codes:
    """64-hex strings -> ``(N, 32)`` uint8 (byte 0 = hex digits 0-1). Upper case is accepted.

    Vectorised: one ``bytes.fromhex`` over the joined strings (about 1 s per 10M hashes).
    Raises :class:`InvalidInput` naming the first bad value's position (wrong type or length,
    non-hex character).
    """
    n = len(values)
    if n == 0:
        return np.zeros((0, PDQ_BYTES), dtype=np.uint8)
    try:
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
        joined = "".join(values)
        raw = bytes.fromhex(joined)
    except (TypeError, ValueError):
        raw = b""
        lengths = np.zeros(0, np.int64)
    if len(raw) != n * PDQ_BYTES or not np.all(lengths == PDQ_HEX_CHARS):
        _raise_first_bad_hex(values)
    return np.frombuffer(raw, dtype=np.uint8).reshape(n, PDQ_BYTES)


def _raise_first_bad_hex(values: Sequence[str]) -> None:
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise InvalidInput(f"PDQ hash {i}: must be a string of 64 hex characters")
        if len(v) != PDQ_HEX_CHARS:
            raise InvalidInput(f"PDQ hash {i}: must be 64 hex characters, got {len(v)}")
        try:
            ok = len(bytes.fromhex(v)) == PDQ_BYTES
        except ValueError:
            ok = False
        if not ok:
            raise InvalidInput(f"PDQ hash {i}: must be hex (0-9, a-f)")
    raise InvalidInput("PDQ hashes must be 64 hex characters each")


def codes_to_hex(codes: Codes) -> list[str]:
    """``(N, 32)`` uint8 -> list of N lowercase 64-hex strings (inverse of
    :func:`hex_to_codes`)."""
    s = np.ascontiguousarray(codes, dtype=np.uint8).tobytes().hex()
    return [s[i : i + PDQ_HEX_CHARS] for i in range(0, len(s), PDQ_HEX_CHARS)]


def codes_to_words(codes: Codes) -> Words:
    """``(N, 32)`` uint8 -> ``(N, 4)`` uint64 words, big-endian: word 0 holds hex digits 0-15,
    so bit 0 of the hex string is the most significant bit of word 0. Raises
    :class:`InvalidInput` for a wrong shape."""
    c = np.asarray(codes)
    if c.dtype != np.uint8 or c.ndim != 2 or c.shape[1] != PDQ_BYTES:
        raise InvalidInput(f"PDQ codes must be an (N, 32) uint8 array, got {c.dtype} {c.shape}")
    return np.ascontiguousarray(c).view(">u8").astype(np.uint64)


def words_to_codes(words: Words) -> Codes:
    """``(N, 4)`` uint64 words -> ``(N, 32)`` uint8 (inverse of :func:`codes_to_words`)."""
    w = np.asarray(words, dtype=np.uint64)
    return np.ascontiguousarray(w.astype(">u8")).view(np.uint8).reshape(-1, PDQ_BYTES)


def hex_to_words(values: Sequence[str]) -> Words:
    """64-hex strings -> ``(N, 4)`` uint64 words. Raises :class:`InvalidInput`."""
    return codes_to_words(hex_to_codes(values))


def words_to_hex(words: Words) -> list[str]:
    """``(N, 4)`` uint64 words -> lowercase 64-hex strings."""
    return codes_to_hex(words_to_codes(words))


def as_words(hashes: HashesLike | str) -> Words:
    """Any accepted form of PDQ hashes (see :data:`HashesLike`; a single string is one hash)
    as ``(N, 4)`` uint64 words. Raises :class:`InvalidInput` for anything else."""
    if isinstance(hashes, str):
        return hex_to_words([hashes])
    if isinstance(hashes, np.ndarray):
        if hashes.dtype == np.uint8:
            return codes_to_words(hashes.astype(np.uint8, copy=False))
        if hashes.dtype == np.uint64 and hashes.ndim == 2 and hashes.shape[1] == 4:
            return np.ascontiguousarray(hashes)
        raise InvalidInput(
            f"PDQ hashes must be (N, 32) uint8 or (N, 4) uint64, got {hashes.dtype} {hashes.shape}"
        )
    if isinstance(hashes, Sequence):
        return hex_to_words(hashes)
    raise InvalidInput("PDQ hashes must be hex strings or a numpy array")


def _check_threshold(threshold: int) -> int:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)):
        raise InvalidInput("PDQ threshold must be an integer number of bits")
    t = int(threshold)
    if not 0 <= t <= PDQ_BITS:
        raise InvalidInput(f"PDQ threshold must be 0..{PDQ_BITS} bits, got {t}")
    return t


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PdqMatches:
    """Matches of one search, as parallel int64 arrays sorted by query, then distance, then id.

    ``query_idx[k]`` indexes the search's queries, ``ids[k]`` is the matched entry id and
    ``distances[k]`` the Hamming distance in bits (``<= threshold``).
    """

    query_idx: IntArray
    ids: IntArray
    distances: IntArray

    def __len__(self) -> int:
        return int(self.ids.size)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        return iter(self.tolist())

    def tolist(self) -> list[tuple[int, int, int]]:
        """``[(query_idx, entry id, distance), ...]`` as Python ints."""
        return list(
            zip(self.query_idx.tolist(), self.ids.tolist(), self.distances.tolist(), strict=True)
        )

    def for_query(self, query_idx: int) -> list[tuple[int, int]]:
        """``[(entry id, distance), ...]`` of one query, nearest first."""
        lo, hi = np.searchsorted(self.query_idx, [query_idx, query_idx + 1])
        return list(zip(self.ids[lo:hi].tolist(), self.distances[lo:hi].tolist(), strict=True))


def _empty_matches() -> PdqMatches:
    z = np.zeros(0, np.int64)
    return PdqMatches(z, z.copy(), z.copy())


@dataclass(frozen=True, slots=True)
class PdqIndexStats:
    """Sizes of a :class:`PdqIndex`: ``live`` entries, ``main_rows`` (tombstones included),
    ``dead_rows`` among them, ``delta_rows`` (scanned flat), the table ``widths`` (bits) and
    ``nbytes`` held by all arrays."""

    live: int
    main_rows: int
    dead_rows: int
    delta_rows: int
    widths: tuple[int, ...]
    nbytes: int


# --- the main part ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Main:
    words: Words  # (N, 4) uint64
    ids: IntArray  # (N,)
    alive: BoolArray  # (N,), the only mutable part (tombstones), changed under the lock
    ids_sorted: IntArray  # (N,) ids in increasing order (duplicates: dead older versions)
    id_order: npt.NDArray[np.uint32]  # rows in the order of ids_sorted
    tables: MihTables

    @property
    def n(self) -> int:
        return int(self.ids.size)

    @classmethod
    def build(cls, words: Words, ids: IntArray, alive: BoolArray | None = None) -> _Main:
        n = int(ids.size)
        order = np.argsort(ids, kind="stable")
        return cls(
            words=words,
            ids=ids,
            alive=np.ones(n, dtype=bool) if alive is None else alive,
            ids_sorted=np.take(ids, order),
            id_order=order.astype(np.uint32),
            tables=MihTables.build(words, choose_layout(n)),
        )

    def rows_of(self, ids: IntArray) -> IntArray:
        """All rows (alive or dead) holding any of ``ids``."""
        lo = np.searchsorted(self.ids_sorted, ids, side="left")
        hi = np.searchsorted(self.ids_sorted, ids, side="right")
        ln = hi - lo
        if not ln.any():
            return np.zeros(0, np.int64)
        ends = np.cumsum(ln)
        idx = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(lo - (ends - ln), ln)
        rows: IntArray = self.id_order[idx].astype(np.int64)
        return rows

    def nbytes(self) -> int:
        return (
            self.words.nbytes
            + self.ids.nbytes
            + self.alive.nbytes
            + self.ids_sorted.nbytes
            + self.id_order.nbytes
            + self.tables.nbytes()
        )


@lru_cache(maxsize=512)
def _plan(layout: Layout, threshold: int, n_rows: int) -> tuple[tuple[int, ...], bool]:
    """``(radii, use_tables)``: the probe plan, and False when a flat scan is cheaper."""
    if threshold >= PDQ_BITS:
        return (), False
    radii = probe_plan(layout, threshold, n_rows)
    probes, cands = plan_cost(layout, radii, n_rows)
    return radii, cands + probes < n_rows / 4


def _search_main(
    main: _Main, queries: Words, threshold: int
) -> tuple[IntArray, IntArray, IntArray]:
    """``(query idx, row, distance)`` over the live main rows."""
    if main.n == 0:
        z = np.zeros(0, np.int64)
        return z, z.copy(), z.copy()
    radii, use_tables = _plan(main.tables.layout, threshold, main.n)
    qs: list[IntArray] = []
    rs: list[IntArray] = []
    ds: list[IntArray] = []
    if use_tables:
        for lo in range(0, int(queries.shape[0]), QUERY_CHUNK):
            qi, rows, d = main.tables.range_search(
                main.words, queries[lo : lo + QUERY_CHUNK], threshold, radii
            )
            qs.append(qi + lo)
            rs.append(rows)
            ds.append(d)
    else:
        for lo in range(0, main.n, BLOCK_ROWS):
            hi = min(main.n, lo + BLOCK_ROWS)
            qi, rows, d = flat_range_search(
                to_columns(main.words[lo:hi]), hi - lo, queries, threshold
            )
            qs.append(qi)
            rs.append(rows + lo)
            ds.append(d)
    qa, ra, da = np.concatenate(qs), np.concatenate(rs), np.concatenate(ds)
    live = main.alive[ra]
    return qa[live], ra[live], da[live]


class PdqIndex(BackgroundMerge):
    """Exact PDQ range search over ``(entry id, hash)`` pairs, updated in place.

    Args:
        threshold: default match threshold, Hamming bits, inclusive (Meta's 31). A search may
            pass its own (e.g. the largest of several banks' thresholds, then filter).
        delta_capacity: delta rows that trigger a merge into the main tables (the delta is
            scanned flat: about 10 ns per row per query). None (the default): main rows / 512,
            between 4,096 and 65,536.
        background_merge: run those merges in a background daemon thread (the default; at
            10M hashes a merge takes seconds) instead of inside
            :meth:`add` (searches and updates continue meanwhile).

    Ids are int64 (the store's entry ids); one id holds one hash, and identical hashes under
    different ids are separate rows. ``add`` of an id already present replaces its hash.

    Raises :class:`InvalidInput` for malformed ids, hashes or thresholds.
    """

    _merge_thread_name = "pdq-index-merge"

    def __init__(
        self,
        threshold: int = DEFAULT_THRESHOLD,
        *,
        delta_capacity: int | None = None,
        background_merge: bool = True,
    ) -> None:
        self._threshold = _check_threshold(threshold)
        if delta_capacity is not None and delta_capacity < 1:
            raise InvalidInput("delta_capacity must be at least 1")
        self._delta_capacity = delta_capacity
        self.background_merge = background_merge
        self._lock = threading.RLock()
        self._merge_lock = threading.Lock()
        self._merge_thread: threading.Thread | None = None
        #: The last error of a background merge (None if none); the next merge retries.
        self.merge_error: BaseException | None = None
        #: Metadata stored with the snapshot this index was loaded from (else empty).
        self.snapshot_meta: dict[str, Any] = {}
        self._main = _Main.build(np.zeros((0, 4), np.uint64), np.zeros(0, np.int64))
        self._reset_delta(np.zeros((0, 4), np.uint64), np.zeros(0, np.int64), np.zeros(0, bool))

    # -- construction --

    @classmethod
    def from_arrays(
        cls,
        ids: Sequence[int] | npt.NDArray[np.integer[Any]],
        hashes: HashesLike,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        delta_capacity: int | None = None,
        background_merge: bool = True,
    ) -> PdqIndex:
        """Build the main tables for a whole bank at once (the fast path for a start-up from
        the store). An int64 ``ids`` array and a C-contiguous ``(N, 4)`` uint64 ``hashes``
        array are kept without copying (memory): do not modify them afterwards. Raises
        :class:`InvalidInput` for duplicate ids or malformed input."""
        index = cls(threshold, delta_capacity=delta_capacity, background_merge=background_merge)
        id_arr = as_entry_ids(ids)
        words = as_words(hashes)
        _check_pairs(id_arr, words)
        index._main = _Main.build(words, id_arr)
        return index

    def _reset_delta(self, words: Words, ids: IntArray, alive: BoolArray) -> None:
        k = int(ids.size)
        cap = max(64, 1 << max(k, 1).bit_length())
        self._d_cols = np.zeros((4, cap), dtype=np.uint64)
        self._d_ids = np.zeros(cap, dtype=np.int64)
        self._d_alive = np.zeros(cap, dtype=bool)
        self._d_cols[:, :k] = words.T
        self._d_ids[:k] = ids
        self._d_alive[:k] = alive
        self._d_n = k
        self._d_pos: dict[int, int] = {
            int(i): r
            for r, (i, a) in enumerate(zip(ids.tolist(), alive.tolist(), strict=True))
            if a
        }

    # -- reading --

    @property
    def delta_capacity(self) -> int:
        """Delta rows that trigger a merge (see the constructor)."""
        if self._delta_capacity is not None:
            return self._delta_capacity
        return max(MIN_DELTA_CAPACITY, min(MAX_DELTA_CAPACITY, self._main.n // 512))

    @property
    def threshold(self) -> int:
        """The default threshold (Hamming bits, inclusive)."""
        return self._threshold

    def __len__(self) -> int:
        """Live entries (ids that a search can return)."""
        with self._lock:
            return int(np.count_nonzero(self._main.alive)) + len(self._d_pos)

    def stats(self) -> PdqIndexStats:
        """Current sizes (see :class:`PdqIndexStats`)."""
        with self._lock:
            main = self._main
            dead = main.n - int(np.count_nonzero(main.alive))
            nbytes = main.nbytes() + self._d_cols.nbytes + self._d_ids.nbytes + self._d_alive.nbytes
            return PdqIndexStats(
                live=main.n - dead + len(self._d_pos),
                main_rows=main.n,
                dead_rows=dead,
                delta_rows=self._d_n,
                widths=main.tables.layout.widths,
                nbytes=nbytes,
            )

    def search(self, queries: HashesLike | str, threshold: int | None = None) -> PdqMatches:
        """Every live entry within ``threshold`` bits (inclusive) of each query.

        ``queries``: N hashes in any form of :data:`HashesLike` (e.g. the 8 dihedral variants
        of a photo, plus other variants), searched in one pass. ``threshold`` defaults to the
        index's. Exact: the result equals a brute-force scan. Raises :class:`InvalidInput`.
        """
        t = self._threshold if threshold is None else _check_threshold(threshold)
        q = as_words(queries)
        if q.shape[0] == 0:
            return _empty_matches()
        with self._lock:
            main = self._main
            cols, d_ids, d_alive, d_n = self._d_cols, self._d_ids, self._d_alive, self._d_n
        qa, ra, da = _search_main(main, q, t)
        ia = main.ids[ra]
        if d_n:
            qd, rd, dd = flat_range_search(cols, d_n, q, t)
            live = d_alive[rd]
            qa = np.concatenate([qa, qd[live]])
            ia = np.concatenate([ia, d_ids[rd[live]]])
            da = np.concatenate([da, dd[live]])
        order = np.lexsort((ia, da, qa))
        return PdqMatches(qa[order], ia[order], da[order])

    def search_hex(
        self, queries: Sequence[str], threshold: int | None = None
    ) -> list[list[tuple[int, int]]]:
        """Convenience: per query (64-hex strings), ``[(entry id, distance), ...]``."""
        m = self.search(queries, threshold)
        return [m.for_query(i) for i in range(len(queries))]

    # -- updates --

    def add(
        self,
        ids: Sequence[int] | npt.NDArray[np.integer[Any]],
        hashes: HashesLike,
    ) -> None:
        """Add entries (``ids[i]`` holds ``hashes[i]``); an id already present is replaced.
        Visible to every search that starts after this returns. May merge the delta into the
        main tables (see ``delta_capacity``). Raises :class:`InvalidInput` for malformed or
        mismatched input, or an id repeated within one call.
        """
        id_arr = as_entry_ids(ids)
        words = as_words(hashes)
        _check_pairs(id_arr, words)
        k = int(id_arr.size)
        if k == 0:
            return
        with self._lock:
            self._remove_locked(id_arr)
            n0 = self._d_n
            if n0 + k > self._d_ids.size:
                cap = 1 << (n0 + k).bit_length()
                cols = np.zeros((4, cap), dtype=np.uint64)
                cols[:, :n0] = self._d_cols[:, :n0]
                d_ids = np.zeros(cap, dtype=np.int64)
                d_ids[:n0] = self._d_ids[:n0]
                d_alive = np.zeros(cap, dtype=bool)
                d_alive[:n0] = self._d_alive[:n0]
                # New arrays: searches holding the old ones keep a consistent view.
                self._d_cols, self._d_ids, self._d_alive = cols, d_ids, d_alive
            self._d_cols[:, n0 : n0 + k] = words.T
            self._d_ids[n0 : n0 + k] = id_arr
            self._d_alive[n0 : n0 + k] = True
            self._d_pos.update(zip(id_arr.tolist(), range(n0, n0 + k), strict=True))
            self._d_n = n0 + k
            full = self._d_n >= self.delta_capacity
        if full:
            if self.background_merge:
                self.merge_in_background()
            else:
                self.merge()

    def remove(self, ids: Sequence[int] | npt.NDArray[np.integer[Any]]) -> int:
        """Remove entries by id; unknown ids are ignored (so replaying a change log is safe).
        Returns how many live entries were removed. Raises :class:`InvalidInput`."""
        id_arr = as_entry_ids(ids)
        if id_arr.size == 0:
            return 0
        with self._lock:
            return self._remove_locked(id_arr)

    def _remove_locked(self, ids: IntArray) -> int:
        main = self._main
        removed = 0
        if main.n:
            rows = main.rows_of(ids)
            if rows.size:
                rows = rows[main.alive[rows]]
                main.alive[rows] = False
                removed += int(rows.size)
        if self._d_pos:
            pos = self._d_pos
            for i in ids.tolist():
                r = pos.pop(i, None)
                if r is not None:
                    self._d_alive[r] = False
                    removed += 1
        return removed

    # -- merging --

    def merge(self) -> None:
        """Fold the delta into the main tables now (searches and updates may run meanwhile).
        Rebuilds the tables instead when over a quarter of the main rows are tombstones or
        another layout suits the bank's size better."""
        with self._merge_lock:
            with self._lock:
                main0 = self._main
                L = self._d_n
                d_words = np.ascontiguousarray(self._d_cols[:, :L].T)
                d_ids = self._d_ids[:L].copy()
                alive_now = np.concatenate([main0.alive, self._d_alive[:L]])
            n_all = main0.n + L
            n_live = int(np.count_nonzero(alive_now))
            rebuild = (n_all - n_live) > REBUILD_DEAD_FRACTION * max(n_all, 1) or (
                choose_layout(n_live) != main0.tables.layout
                and not 0.5 * main0.n <= n_live <= 2 * main0.n
            )
            if L == 0 and not rebuild:
                return
            if rebuild:
                live_rows = np.flatnonzero(alive_now)
                keep: IntArray | None = live_rows
                words1 = np.take(np.concatenate([main0.words, d_words]), live_rows, axis=0)
                ids1 = np.take(np.concatenate([main0.ids, d_ids]), live_rows)
                built = _Main.build(words1, ids1)
                ids_sorted1, id_order1, tables1 = built.ids_sorted, built.id_order, built.tables
            else:
                keep = None
                words1 = np.concatenate([main0.words, d_words])
                ids1 = np.concatenate([main0.ids, d_ids])
                tables1 = main0.tables.appended(d_words)
                d_order = np.argsort(d_ids, kind="stable")
                at = np.searchsorted(main0.ids_sorted, d_ids[d_order], side="right")
                ids_sorted1 = np.insert(main0.ids_sorted, at, d_ids[d_order])
                id_order1 = np.insert(main0.id_order, at, (main0.n + d_order).astype(np.uint32))
            with self._lock:
                # Tombstones as they are now (removals may have happened while building).
                alive_cur = np.concatenate([main0.alive, self._d_alive[:L]])
                alive1 = alive_cur if keep is None else alive_cur[keep]
                self._main = _Main(words1, ids1, alive1, ids_sorted1, id_order1, tables1)
                n_d = self._d_n
                rest = slice(L, n_d)
                self._reset_delta(
                    np.ascontiguousarray(self._d_cols[:, rest].T),
                    self._d_ids[rest].copy(),
                    self._d_alive[rest].copy(),
                )

    def _delta_full(self) -> bool:
        return self._d_n >= self.delta_capacity

    # -- snapshots --

    def save(self, path: str | os.PathLike[str], *, meta: Mapping[str, Any] | None = None) -> None:
        """Write a snapshot to ``path`` (an uncompressed ``.npz``; no pickle), atomically
        (a temporary file in the same folder, then a rename). ``meta``: JSON-serialisable
        values kept with it (e.g. the change-log position); changes made while saving may or
        may not be included, so replay the log from that position after :meth:`load` (add and
        remove are idempotent). Raises :class:`InvalidInput` if ``meta`` is not JSON.
        """
        try:
            meta_json = json.dumps(dict(meta or {}), sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"snapshot meta must be JSON-serialisable: {exc}") from None
        with self._lock:
            main = self._main
            alive = main.alive.copy()
            n_d = self._d_n
            d_words = np.ascontiguousarray(self._d_cols[:, :n_d].T)
            d_ids = self._d_ids[:n_d].copy()
            d_alive = self._d_alive[:n_d].copy()
        arrays: dict[str, Any] = {
            "format": np.array(SNAPSHOT_FORMAT),
            "version": np.array(SNAPSHOT_VERSION, dtype=np.int64),
            "meta": np.array(meta_json),
            "threshold": np.array(self._threshold, dtype=np.int64),
            "widths": np.array(main.tables.layout.widths, dtype=np.int64),
            "words": main.words,
            "ids": main.ids,
            "alive": alive,
            "ids_sorted": main.ids_sorted,
            "id_order": main.id_order,
            "postings": main.tables.postings,
            "delta_words": d_words,
            "delta_ids": d_ids,
            "delta_alive": d_alive,
        }
        for i, off in enumerate(main.tables.offsets):
            arrays[f"offsets_{i}"] = off
        write_npz(path, arrays)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        threshold: int | None = None,
        delta_capacity: int | None = None,
        background_merge: bool = True,
    ) -> PdqIndex:
        """Read a snapshot written by :meth:`save` (``threshold`` defaults to the saved one;
        the saved metadata is in :attr:`snapshot_meta`). Checks the format, shapes, dtypes
        and bounds of every array (and the zip CRCs); raises :class:`InvalidInput` for a
        file that is not a valid snapshot, and OSError if it cannot be read.
        """
        data = read_npz(path, "PDQ index snapshot")
        main, delta, saved_threshold, meta = _validate_snapshot(data)
        index = cls(
            saved_threshold if threshold is None else threshold,
            delta_capacity=delta_capacity,
            background_merge=background_merge,
        )
        index._main = main
        index._reset_delta(*delta)
        index.snapshot_meta = meta
        return index


def _check_pairs(ids: IntArray, words: Words) -> None:
    if ids.size != words.shape[0]:
        raise InvalidInput(f"{ids.size} ids for {words.shape[0]} hashes")
    if has_repeats(ids):
        raise InvalidInput("an id appears more than once in one call")


def _validate_snapshot(
    data: dict[str, npt.NDArray[Any]],
) -> tuple[_Main, tuple[Words, IntArray, BoolArray], int, dict[str, Any]]:
    def get(name: str, dtype: Any, ndim: int) -> npt.NDArray[Any]:
        if name not in data:
            raise InvalidInput(f"PDQ index snapshot lacks {name!r}")
        arr = data[name]
        if arr.dtype != np.dtype(dtype) or arr.ndim != ndim:
            raise InvalidInput(f"PDQ index snapshot: {name!r} has the wrong type or shape")
        return arr

    fmt = data.get("format")
    if fmt is None or fmt.dtype.kind != "U" or fmt.ndim != 0 or str(fmt) != SNAPSHOT_FORMAT:
        raise InvalidInput("not a PDQ index snapshot")
    if int(get("version", np.int64, 0)) != SNAPSHOT_VERSION:
        raise InvalidInput("PDQ index snapshot of an unsupported version")
    try:
        meta = json.loads(str(data["meta"]))
    except (KeyError, ValueError):
        raise InvalidInput("PDQ index snapshot: unreadable meta") from None
    if not isinstance(meta, dict):
        raise InvalidInput("PDQ index snapshot: meta must be an object")
    threshold = int(get("threshold", np.int64, 0))
    widths = tuple(int(w) for w in get("widths", np.int64, 1))
    if sum(widths) != PDQ_BITS or not all(1 <= w <= 22 for w in widths):
        raise InvalidInput("PDQ index snapshot: invalid table widths")
    words = get("words", np.uint64, 2)
    n = int(words.shape[0])
    ids = get("ids", np.int64, 1)
    alive = get("alive", np.bool_, 1)
    ids_sorted = get("ids_sorted", np.int64, 1)
    id_order = get("id_order", np.uint32, 1)
    postings = get("postings", np.uint32, 1)
    if words.shape[1] != 4 or not (ids.size == alive.size == ids_sorted.size == id_order.size == n):
        raise InvalidInput("PDQ index snapshot: array lengths disagree")
    if postings.size != n * len(widths):
        raise InvalidInput("PDQ index snapshot: postings of the wrong length")
    if n and (int(postings.max()) >= n or int(id_order.max()) >= n):
        raise InvalidInput("PDQ index snapshot: row number out of range")
    if n and not np.array_equal(ids[id_order], ids_sorted):
        raise InvalidInput("PDQ index snapshot: id order does not match ids")
    if n > 1 and np.any(ids_sorted[1:] < ids_sorted[:-1]):
        raise InvalidInput("PDQ index snapshot: ids_sorted is not sorted")
    offsets = []
    for i, w in enumerate(widths):
        off = get(f"offsets_{i}", np.uint32, 1)
        if (
            off.size != (1 << w) + 1
            or off[0] != 0
            or int(off[-1]) != n
            or np.any(off[1:] < off[:-1])
        ):
            raise InvalidInput(f"PDQ index snapshot: offsets of table {i} are invalid")
        offsets.append(off)
    tables = MihTables(Layout(widths), tuple(offsets), postings, n)
    d_words = get("delta_words", np.uint64, 2)
    d_ids = get("delta_ids", np.int64, 1)
    d_alive = get("delta_alive", np.bool_, 1)
    if d_words.shape[1:] != (4,) or not d_ids.size == d_alive.size == d_words.shape[0]:
        raise InvalidInput("PDQ index snapshot: delta arrays disagree")
    main = _Main(words, ids, alive.copy(), ids_sorted, id_order, tables)
    return main, (d_words, d_ids, d_alive), threshold, meta
