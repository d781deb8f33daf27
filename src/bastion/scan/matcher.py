"""The matcher: every signal of one item against every enabled bank, kept fresh in place.

One :class:`Matcher` per process holds one in-memory index per signal type and bank-variant
group, built from a store :class:`~bastion.store.change_log.Snapshot` and updated from the
bank change log (:meth:`Matcher.apply`), never rebuilt:

===========================  ==========================================================
index                        holds bank entries of
===========================  ==========================================================
``pdq`` / ``whole``          PDQ of whole pictures (stored, displayed, frame, trimmed, or a
                             hash received without a variant)
``pdq`` / ``crop``           PDQ of the bank pictures' centre crops (``robust.bank_variants``)
``pdq`` / ``band:<region>``  PDQ of the bank pictures without a caption strip
``md5``/``sha1``/``sha256``  exact digests (:class:`~bastion.index.exact.ExactIndex`)
``vpdq``                     bank videos (:class:`~bastion.index.video.VideoIndex`)
===========================  ==========================================================

Queries: a photo's whole-picture PDQ hashes are searched with their 8 dihedral transforms
(the match says which ``transform`` met) against ``whole`` and ``crop``; band variants only
against the band with the same detail (:func:`bastion.signals.robust.pair_threshold` gives
each pair's threshold, capped by the bank's own per-signal-type threshold). Every sampled
video frame is also searched against the photo banks (a known picture shown in a video).
Low-quality hashes (quality < 50) are never matched; disabled entries and banks are not in
the indexes at all.

While the first snapshot is loading, :meth:`Matcher.match` raises
:class:`~bastion.errors.NotReady` rather than answer ``no_match``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.banks.values import parse_vpdq
from bastion.errors import InvalidInput, NotReady
from bastion.index.exact import ExactIndex
from bastion.index.pdq import PdqIndex, hex_to_codes
from bastion.index.video import VideoIndex, VideoMatch
from bastion.scan.changes import apply_changes
from bastion.scan.entry_table import CLASS_CODES, EntryTable
from bastion.signals.base import MIN_MATCH_QUALITY, Signal, Variant, VideoSignal
from bastion.signals.exact import EXACT_TYPES
from bastion.signals.pdq import DIHEDRAL_TRANSFORMS, PDQ_THRESHOLD
from bastion.signals.robust import WHOLE_KINDS, pair_threshold, region_of
from bastion.store.change_log import Change, ChangeCursor, Snapshot, read_snapshot
from bastion.store.database import Database
from bastion.store.records import BankRecord, EntryRecord

log = logging.getLogger(__name__)

#: Format name written into matcher snapshots' manifests.
SNAPSHOT_FORMAT = "bastion-matcher-1"

#: Largest PDQ threshold any bank may set (Hamming bits); indexes are searched at the
#: largest threshold in force and results filtered per bank.
MAX_PDQ_THRESHOLD = 64

EXACT_NAMES: tuple[str, ...] = tuple(t.name for t in EXACT_TYPES)


@dataclass(frozen=True, slots=True)
class Match:
    """One match (DESIGN.md "Match" shape).

    ``distance``: integer in the signal type's unit (PDQ: Hamming bits; exact hashes: 0).
    ``transform``: the dihedral transform applied to the query picture that matched (PDQ).
    Video matches carry ``query_match_pct``/``compared_match_pct`` (percent, 0-100) and the
    matched frames' timestamps; a photo-bank match found in a video frame carries the
    frame's ``timestamp_s`` in ``query_variant``.

    Text matches (``url``, ``keyword``; :mod:`bastion.scan.text_matcher`) carry ``span``
    (``[start, end)`` code points of the text, None for a link given apart from the
    text), ``matched`` (the original characters there, or the link as given), ``entry``
    (the listed term or canonical URL), ``kind`` (URLs: ``exact``, ``prefix``, ``host`` or
    ``confusable``; keywords: the entry's ``word``, ``prefix`` or ``substring``), and for
    URLs ``canonical`` (the found URL's canonical form) and, for ``confusable``, ``host``
    (the found look-alike) and ``listed_host`` (the listed host it imitates).
    """

    bank: str
    bank_id: int
    entry_id: int
    signal_type: str
    distance: int
    label: str
    classification: str | None
    auto_action: bool
    query_variant: Variant | None = None
    bank_variant: dict[str, Any] | None = None
    transform: str | None = None
    query_match_pct: float | None = None
    compared_match_pct: float | None = None
    matched_frames: tuple[dict[str, Any], ...] = ()
    value: str | None = None
    span: tuple[int, int] | None = None
    matched: str | None = None
    entry: str | None = None
    kind: str | None = None
    canonical: str | None = None
    host: str | None = None
    listed_host: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The DESIGN.md match object."""
        out: dict[str, Any] = {
            "bank": self.bank,
            "entry_id": str(self.entry_id),
            "signal_type": self.signal_type,
            "distance": self.distance,
            "label": self.label,
            "classification": self.classification,
        }
        if self.query_variant is not None:
            out["query_variant"] = self.query_variant.to_json()
        if self.bank_variant is not None:
            out["bank_variant"] = self.bank_variant
        if self.transform is not None:
            out["transform"] = self.transform
        if self.query_match_pct is not None:
            out["query_match_pct"] = round(self.query_match_pct, 2)
            out["compared_match_pct"] = round(self.compared_match_pct or 0.0, 2)
            out["matched_frames"] = list(self.matched_frames)
        for key in ("kind", "entry", "matched", "canonical", "host", "listed_host"):
            v = getattr(self, key)
            if v is not None:
                out[key] = v
        if self.span is not None:
            out["span"] = list(self.span)
        if self.auto_action:
            out["auto_action"] = True
        return out

    @property
    def strength_key(self) -> tuple[int, int]:
        """Sort key: exact hashes first, then smaller distances."""
        return (0 if self.signal_type in EXACT_NAMES else 1, self.distance)


def _group_of(variant: dict[str, Any] | None) -> str:
    """The PDQ index group of a bank entry's variant (see the module docstring)."""
    if not variant:
        return "whole"
    kind = variant.get("kind", "stored")
    if kind in WHOLE_KINDS:
        return "whole"
    if kind == "crop":
        return "crop"
    if kind == "band":
        return f"band:{region_of(_variant_of(variant))}"
    return f"other:{kind}"


def _variant_of(variant: dict[str, Any] | None) -> Variant:
    try:
        return Variant.from_json(variant)
    except InvalidInput:
        return Variant("stored")


class _Rows:
    """Rows of one (signal type, group) collected during a bulk load."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.banks: list[int] = []
        self.klass: list[int] = []
        self.values: list[str] = []

    def arrays(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int8], list[str]]:
        return (
            np.asarray(self.ids, dtype=np.int64),
            np.asarray(self.banks, dtype=np.int32),
            np.asarray(self.klass, dtype=np.int8),
            self.values,
        )


class _BulkLoader:
    """Collects streamed entries by (signal type, index group) for :meth:`Matcher._install`."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], _Rows] = {}
        self.variants: dict[int, dict[str, Any]] = {}
        self.videos: list[EntryRecord] = []
        self.max_id = 0

    def add(self, entries: Iterable[EntryRecord]) -> None:
        for e in entries:
            if not e.enabled:
                continue
            if e.signal_type == "vpdq":
                self.videos.append(e)
                continue
            if e.signal_type == "pdq":
                group = _group_of(e.variant)
            elif e.signal_type in EXACT_NAMES:
                group = e.signal_type
            else:
                continue
            rows = self.rows.get((e.signal_type, group))
            if rows is None:
                rows = self.rows[(e.signal_type, group)] = _Rows()
            rows.ids.append(e.id)
            rows.banks.append(e.bank_id)
            rows.klass.append(CLASS_CODES.get(e.classification, 0))
            rows.values.append(e.value)
            if e.variant and e.variant.get("kind", "stored") != "stored":
                self.variants[e.id] = dict(e.variant)
            self.max_id = max(self.max_id, e.id)


@dataclass(slots=True)
class _PdqQuery:
    """One PDQ hash to search, with what produced it."""

    value: str
    variant: Variant
    transform: str
    groups: tuple[str, ...]
    source: int = 0


@dataclass(slots=True)
class MatcherStats:
    """Sizes of the indexes: live entries per index name."""

    entries: dict[str, int] = field(default_factory=dict)
    banks: int = 0


class Matcher:
    """In-memory indexes of every enabled bank entry, updated in place.

    Thread-safe: :meth:`apply` and :meth:`match` may run concurrently (updates take a lock
    briefly; the PDQ and exact indexes are themselves safe for concurrent search/update).
    ``dihedral`` (default on) searches the 8 dihedral transforms of each whole picture.
    Per-entry metadata lives in a compact :class:`~bastion.scan.entry_table.EntryTable`
    (8 bytes per entry id).
    """

    def __init__(self, *, dihedral: bool = True) -> None:
        self.dihedral = dihedral
        self._lock = threading.RLock()
        self._ready = threading.Event()
        self._banks: dict[int, BankRecord] = {}
        self._table = EntryTable()
        self._pdq: dict[str, PdqIndex] = {}
        self._exact: dict[str, ExactIndex] = {
            name: ExactIndex.for_signal_type(name) for name in EXACT_NAMES
        }
        self._video = VideoIndex()

    # -- state --

    @property
    def ready(self) -> bool:
        """True once the first snapshot is loaded."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until ready (or ``timeout`` seconds); returns :attr:`ready`."""
        return self._ready.wait(timeout)

    def banks(self) -> dict[int, BankRecord]:
        """A copy of the banks known (enabled or not), by id."""
        with self._lock:
            return dict(self._banks)

    def enabled_banks(self) -> list[BankRecord]:
        """The enabled banks."""
        with self._lock:
            return [b for b in self._banks.values() if b.enabled]

    def stats(self) -> MatcherStats:
        """Live entries per index (``pdq:whole``, ``md5`` ...)."""
        with self._lock:
            s = MatcherStats(banks=len(self._banks))
            for g, idx in self._pdq.items():
                s.entries[f"pdq:{g}"] = len(idx)
            for name, eidx in self._exact.items():
                s.entries[name] = len(eidx)
            s.entries["vpdq"] = len(self._video)
            return s

    def nbytes(self) -> int:
        """Approximate bytes held by the indexes and the entry table."""
        with self._lock:
            return (
                sum(idx.stats().nbytes for idx in self._pdq.values())
                + sum(e.nbytes() for e in self._exact.values())
                + self._table.nbytes()
            )

    # -- loading and following --

    def load_snapshot(self, snapshot: Snapshot) -> None:
        """Build every index from an in-memory ``snapshot`` and mark the matcher ready."""
        loader = _BulkLoader()
        loader.add(snapshot.entries)
        self._install(snapshot.banks, loader)

    def load_from_store(self, db: Database) -> ChangeCursor:
        """Build every index by streaming the store's enabled entries in batches (no list
        of every entry is held), mark the matcher ready, and return the change-log cursor
        consistent with what was loaded."""
        loader = _BulkLoader()
        banks, cursor = read_snapshot(db, loader.add)
        self._install(banks, loader)
        return cursor

    def _install(self, banks: dict[int, BankRecord], loader: _BulkLoader) -> None:
        with self._lock:
            self._banks = dict(banks)
            table = EntryTable(capacity=max(1024, loader.max_id + 1))
            pdq: dict[str, PdqIndex] = {}
            exact = {name: ExactIndex.for_signal_type(name) for name in EXACT_NAMES}
            enabled = {b.id for b in banks.values() if b.enabled}
            for (signal_type, group), rows in loader.rows.items():
                ids, bank_ids, klass, values = rows.arrays()
                keep = np.isin(bank_ids, list(enabled))
                ids, bank_ids, klass = ids[keep], bank_ids[keep], klass[keep]
                vals = [v for v, k in zip(values, keep.tolist(), strict=True) if k]
                table.set_many(ids, bank_ids, signal_type, group, klass)
                if signal_type == "pdq":
                    pdq[group] = PdqIndex.from_arrays(
                        ids, hex_to_codes(vals) if vals else np.zeros((0, 32), np.uint8),
                        threshold=PDQ_THRESHOLD, background_merge=True,
                    )
                elif signal_type in exact and len(ids):
                    exact[signal_type].add(ids, vals)
            self._table = table
            for entry_id, variant in loader.variants.items():
                if table.get(entry_id) is not None:
                    table.variants[entry_id] = variant
            self._pdq, self._exact = pdq, exact
            self._video = VideoIndex()
            for e in loader.videos:
                self._upsert(e)
            self._ready.set()

    def _upsert(self, e: EntryRecord) -> None:
        bank = self._banks.get(e.bank_id)
        self._remove(e.id)
        if bank is None or not bank.enabled or not e.enabled:
            return
        if e.signal_type == "pdq":
            g = _group_of(e.variant)
            idx = self._pdq.get(g)
            if idx is None:
                idx = self._pdq[g] = PdqIndex(PDQ_THRESHOLD, background_merge=True)
            idx.add([e.id], [e.value])
        elif e.signal_type in self._exact:
            g = e.signal_type
            self._exact[g].add([e.id], [e.value])
        elif e.signal_type == "vpdq":
            g = "vpdq"
            frames = parse_vpdq(e.value)
            kind = (e.variant or {}).get("kind", "stored")
            if kind == "band":
                # A half of the bank video (issue 3 stretch: large logos); compared only
                # with the same half of the query.
                half = str((e.variant or {}).get("detail"))
                self._video.add(e.id, (), halves=[(half, frames)])
            else:
                self._video.add(e.id, frames)
        else:
            return  # url and keyword entries are matched by their own services
        self._table.set(e.id, e.bank_id, e.signal_type, g, e.classification, e.variant)

    def _remove(self, entry_id: int) -> None:
        gone = self._table.clear(entry_id)
        if gone is None:
            return
        signal_type, group = gone
        if signal_type == "pdq":
            self._pdq[group].remove([entry_id])
        elif signal_type in self._exact:
            self._exact[signal_type].remove([entry_id])
        elif signal_type == "vpdq":
            self._video.remove(entry_id)

    def apply(self, changes: Iterable[Change]) -> int:
        """Apply change-log changes in place (the contract in
        :mod:`bastion.store.change_log`); returns how many were applied."""
        with self._lock:
            return apply_changes(
                changes, self._banks, upsert=self._upsert, remove=self._remove,
                drop_bank=self._drop_bank,
            )

    def _drop_bank(self, bank_id: int) -> None:
        for entry_id in self._table.ids_of_bank(bank_id):
            self._remove(entry_id)

    # -- snapshots --

    def save(self, directory: Path, cursor: ChangeCursor, store_id: str) -> None:
        """Write the indexes and entry table to ``directory`` (replaced atomically), with
        the change-log ``cursor`` they reflect and the ``store_id`` of their database, so a
        restart loads them and replays only the log's tail (:meth:`load`). Bank videos are
        not written (they are reloaded from the store; there are few)."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = directory.with_name(directory.name + f".tmp{os.getpid()}")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        with self._lock:
            for i, (group, idx) in enumerate(sorted(self._pdq.items())):
                idx.save(tmp / f"pdq-{i}.npz", meta={"group": group})
            for name, eidx in self._exact.items():
                eidx.save(tmp / f"{name}.npz")
            self._table.save(tmp / "entries.npz")
            manifest = {
                "format": SNAPSHOT_FORMAT,
                "store_id": store_id,
                "cursor": cursor.dumps(),
                "banks": [b.to_json() for b in self._banks.values()],
                "pdq_groups": len(self._pdq),
            }
        (tmp / "manifest.json").write_text(json.dumps(manifest))
        old = directory.with_name(directory.name + f".old{os.getpid()}")
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)

    def load(self, directory: Path, store_id: str) -> ChangeCursor | None:
        """Load a snapshot written by :meth:`save` for the database ``store_id``; returns
        its cursor, or None (nothing loaded) when there is no usable snapshot. The caller
        then reloads bank videos and replays the change log from the cursor."""
        if not (directory / "manifest.json").is_file():
            return None
        try:
            manifest = json.loads((directory / "manifest.json").read_text())
            if manifest.get("format") != SNAPSHOT_FORMAT or manifest.get("store_id") != store_id:
                return None
            cursor = ChangeCursor.loads(manifest["cursor"])
            banks = {int(b["id"]): BankRecord.from_json(b) for b in manifest["banks"]}
            pdq: dict[str, PdqIndex] = {}
            for i in range(int(manifest["pdq_groups"])):
                idx = PdqIndex.load(directory / f"pdq-{i}.npz", background_merge=True)
                pdq[str(idx.snapshot_meta["group"])] = idx
            exact = {n: ExactIndex.load(directory / f"{n}.npz") for n in EXACT_NAMES}
            table = EntryTable.load(directory / "entries.npz")
        except (OSError, ValueError, KeyError, TypeError, InvalidInput):
            log.warning("index snapshot in %s is unusable; loading from the store", directory)
            return None
        with self._lock:
            self._banks, self._pdq, self._exact, self._table = banks, pdq, exact, table
            self._video = VideoIndex()
        return cursor

    def load_videos(self, entries: Iterable[EntryRecord]) -> None:
        """Add bank videos (after :meth:`load`) and mark the matcher ready."""
        with self._lock:
            for e in entries:
                self._upsert(e)
            self._ready.set()

    # -- matching --

    def _require_ready(self) -> None:
        if not self._ready.is_set():
            raise NotReady("bank indexes are still loading; try again shortly")

    def _make_match(self, entry_id: int, distance: int, **kw: Any) -> Match | None:
        meta = self._table.get(entry_id)
        if meta is None:
            return None
        bank_id, signal_type, _, classification, variant = meta
        bank = self._banks.get(bank_id)
        if bank is None or not bank.enabled:
            return None
        return Match(
            bank=bank.name,
            bank_id=bank_id,
            entry_id=entry_id,
            signal_type=signal_type,
            distance=int(distance),
            label=bank.label,
            classification=classification,
            auto_action=bank.auto_action,
            bank_variant=variant,
            **kw,
        )

    def _pdq_queries(self, signals: Sequence[Signal]) -> list[_PdqQuery]:
        out: list[_PdqQuery] = []
        for src, s in enumerate(signals):
            if s.signal_type != "pdq" or s.low_quality:
                continue
            v = s.variant
            if v.kind in WHOLE_KINDS:
                groups = ("whole", "crop")
                hashes = s.dihedral if (self.dihedral and s.dihedral) else (s.value,)
                if v.kind == "frame":
                    hashes = (s.value,)
                for transform, h in zip(DIHEDRAL_TRANSFORMS, hashes, strict=False):
                    out.append(_PdqQuery(h, v, transform, groups, src))
            elif v.kind == "band":
                out.append(_PdqQuery(s.value, v, "original", (f"band:{region_of(v)}",), src))
            elif v.kind == "crop":
                # The centre of the upload, against bank crops of slightly rotated copies.
                out.append(_PdqQuery(s.value, v, "original", ("crop",), src))
        return out

    def _max_pdq_threshold(self) -> int:
        ts = [b.threshold_for("pdq", PDQ_THRESHOLD) for b in self._banks.values() if b.enabled]
        return max(0, min(MAX_PDQ_THRESHOLD, max(ts, default=PDQ_THRESHOLD)))

    def match_pdq(self, signals: Sequence[Signal]) -> list[Match]:
        """Matches of the PDQ signals among ``signals`` (best per entry). Raises NotReady."""
        best: dict[int, Match] = {}
        for (_, entry_id), m in self._match_pdq_by_source(signals).items():
            prev = best.get(entry_id)
            if prev is None or _pdq_rank(m) < _pdq_rank(prev):
                best[entry_id] = m
        return list(best.values())

    def _match_pdq_by_source(self, signals: Sequence[Signal]) -> dict[tuple[int, int], Match]:
        """Best match per (index of the signal in ``signals``, entry id), every query of
        every signal searched in one pass per index group."""
        self._require_ready()
        queries = self._pdq_queries(signals)
        best: dict[tuple[int, int], Match] = {}
        if not queries:
            return best
        limit = self._max_pdq_threshold()
        by_group: dict[str, list[int]] = {}
        for qi, q in enumerate(queries):
            for g in q.groups:
                by_group.setdefault(g, []).append(qi)
        for g, qis in by_group.items():
            idx = self._pdq.get(g)
            if idx is None or len(idx) == 0:
                continue
            res = idx.search([queries[i].value for i in qis], threshold=limit)
            for local_qi, entry_id, dist in res.tolist():
                q = queries[qis[local_qi]]
                m = self._make_match(
                    entry_id, dist, query_variant=q.variant, transform=q.transform
                )
                if m is None:
                    continue
                bank = self._banks[m.bank_id]
                t = pair_threshold(
                    q.variant, _variant_of(m.bank_variant),
                    bank.threshold_for("pdq", PDQ_THRESHOLD),
                )
                if t is None or dist > t:
                    continue
                key = (q.source, entry_id)
                prev = best.get(key)
                if prev is None or _pdq_rank(m) < _pdq_rank(prev):
                    best[key] = m
        return best

    def match_each(self, signals: Sequence[Signal]) -> list[list[Match]]:
        """Matches of each bare signal on its own (``result[i]`` for ``signals[i]``,
        strongest first), with every PDQ search of the batch done in one pass per index.
        For ``POST /v1/match`` batches. Raises NotReady."""
        self._require_ready()
        out: list[list[Match]] = [self.match_exact([s]) for s in signals]
        for (src, _), m in self._match_pdq_by_source(signals).items():
            out[src].append(m)
        for ms in out:
            ms.sort(key=lambda m: (m.strength_key, m.bank, m.entry_id))
        return out

    def match_exact(self, signals: Sequence[Signal]) -> list[Match]:
        """Matches of MD5/SHA-1/SHA-256 signals. Raises NotReady."""
        self._require_ready()
        out: list[Match] = []
        for s in signals:
            idx = self._exact.get(s.signal_type)
            if idx is None:
                continue
            for entry_id in idx.lookup_one(s.value):
                m = self._make_match(entry_id, 0, query_variant=s.variant)
                if m is not None:
                    out.append(m)
        return out

    def match_video(self, video: Sequence[VideoSignal]) -> list[Match]:
        """Matches of a query video (its stored and ``trimmed`` vPDQ signals) against bank
        videos: q% or c% >= 80 (see :mod:`bastion.index.video`). Raises NotReady."""
        self._require_ready()
        stored = [v for v in video if v.variant.kind not in ("trimmed", "band")]
        trimmed = [v for v in video if v.variant.kind == "trimmed"]
        halves = [(str(v.variant.detail), v.frames) for v in video if v.variant.kind == "band"]
        if not stored:
            return []
        frames = stored[0].frames
        tframes = trimmed[0].frames if trimmed else ()
        with self._lock:
            results: list[VideoMatch] = self._video.match(
                frames, trimmed=tframes, halves=halves
            )
        out: list[Match] = []
        for vm in results:
            best = min((f.distance for f in vm.matched_frames), default=0)
            m = self._make_match(
                int(vm.video_id),  # type: ignore[call-overload]
                best,
                query_match_pct=vm.query_match_pct,
                compared_match_pct=vm.compared_match_pct,
                matched_frames=tuple(f.to_json() for f in vm.matched_frames),
            )
            if m is not None:
                out.append(m)
        return out

    def match(self, signals: Sequence[Signal | VideoSignal]) -> list[Match]:
        """Every match of one item's signals, strongest first. Raises
        :class:`~bastion.errors.NotReady` while the first snapshot is loading.

        Video frames are also matched against the photo banks (as ``frame`` variants).
        """
        self._require_ready()
        photo = [s for s in signals if isinstance(s, Signal)]
        video = [s for s in signals if isinstance(s, VideoSignal)]
        frame_signals = [
            Signal(
                "pdq", f.value, f.quality,
                Variant("frame", f.frame, f.timestamp_s, v.variant.detail),
            )
            for v in video
            if v.variant.kind in ("stored", "trimmed")
            for f in v.frames
            if f.quality >= MIN_MATCH_QUALITY
        ]
        matches = self.match_exact(photo) + self.match_pdq(photo + frame_signals)
        if video:
            matches += self.match_video(video)
        matches.sort(key=lambda m: (m.strength_key, m.bank, m.entry_id))
        return matches


def _pdq_rank(m: Match) -> tuple[int, int, int]:
    """Prefer the stored picture, then smaller distance, then the untransformed query."""
    kind_rank = 0 if m.query_variant is None or m.query_variant.kind == "stored" else 1
    return (m.distance, kind_rank, 0 if m.transform in (None, "original") else 1)

