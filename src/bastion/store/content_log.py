"""The content log: every scanned item's signals (never its bytes), for retro-hunt.

Writers (the scan pipeline, the API) call :func:`log_item` in the unit of work that
records a scan. Each item keeps its ``content_id`` (the platform's id, if any), ``source``
(a path or where it came from), media type and scan time; each signal keeps its type,
value, quality and variant. PDQ hashes (and every vPDQ frame, stored as
``signal_type="vpdq"`` rows with a ``frame`` variant) keep their 32 raw bytes, plus the 8
dihedral hashes (256 bytes) when the signal carries them, so a retro-hunt can load them
in large batches (:func:`iter_pdq_batches`) and build a temporary index, or use the
brute-force scan here (:func:`find_pdq_near`). Exact hashes are found by indexed equality
(:func:`find_exact`).

Retention: :func:`purge_content_log` deletes items older than ``Settings.content_log_days``
(default 365); a periodic job calls it. Retro-hunt results (:func:`record_retrohunt_matches`)
outlive the purge of their item (the item's id, content id and source are copied).

Reading results with a cursor (:func:`list_retrohunt_matches`, for ``GET /v1/retrohunt``):
the cursor is the last id delivered, which is safe because result ids are assigned in
commit order. On SQLite that holds by itself (one writer at a time). On PostgreSQL a
sequence value is taken at insert time but seen only at commit, so writers of results
first take a transaction-level advisory lock (:data:`RETROHUNT_WRITE_LOCK`, held until
their commit is visible): only one transaction at a time holds uncommitted results, and a
reader that sees id N has seen every result below N that will ever exist. Unlike a
snapshot-xmin cursor, listing is never delayed by unrelated long transactions elsewhere in
the cluster (a ``pg_dump``, an idle client); the price is that result writers (the
retro-hunt follower) take turns, for the few milliseconds of their insert and commit.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bastion.errors import InvalidInput
from bastion.signals.base import Signal, VideoSignal
from bastion.signals.pdq import DIHEDRAL_TRANSFORMS
from bastion.store.bank_repository import value_key
from bastion.store.models import (
    CONTENT_ITEMS,
    CONTENT_SIGNALS,
    RETROHUNT_MATCHES,
    ContentItem,
    ContentSignal,
    RetrohuntMatch,
)
from bastion.store.records import EntryRecord
from bastion.store.types import utcnow

#: Signal types whose values are PDQ hashes (256 bits, 32 raw bytes).
PDQ_TYPES = ("pdq", "vpdq")

#: Items deleted per statement by :func:`purge_content_log`.
PURGE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class LoggedSignal:
    """One logged signal with its item's facts (``value`` canonical hex)."""

    signal_id: int
    item_id: int
    content_id: str | None
    source: str | None
    scanned_at: datetime
    signal_type: str
    value: str
    quality: int | None
    variant: dict[str, Any] | None


def _signal_rows(
    signals: Sequence[Signal | VideoSignal], keep_dihedral: bool
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for s in signals:
        if isinstance(s, VideoSignal):
            for f in s.frames:
                rows.append(
                    {
                        "signal_type": "vpdq",
                        "value_key": f.value,
                        "value_bin": bytes.fromhex(f.value),
                        "dihedral_bin": None,
                        "quality": f.quality,
                        "variant": {
                            "kind": "frame",
                            "index": f.frame,
                            "timestamp_s": round(f.timestamp_s, 6),
                        },
                    }
                )
            continue
        is_pdq = s.signal_type in PDQ_TYPES
        dihedral = None
        if is_pdq and keep_dihedral and s.dihedral and len(s.dihedral) == 8:
            dihedral = b"".join(bytes.fromhex(h) for h in s.dihedral)
        rows.append(
            {
                "signal_type": s.signal_type,
                "value_key": value_key(s.value),
                "value_bin": bytes.fromhex(s.value) if is_pdq else None,
                "dihedral_bin": dihedral,
                "quality": s.quality,
                "variant": s.variant.to_json() if s.quality is not None else None,
            }
        )
    return rows


def log_item(
    session: Session,
    *,
    signals: Sequence[Signal | VideoSignal],
    content_id: str | None = None,
    source: str | None = None,
    media_type: str | None = None,
    scanned_at: datetime | None = None,
    keep_dihedral: bool = True,
) -> int:
    """Log one scanned item and its signals; returns the item's log id.

    ``signals`` are what :class:`~bastion.signals.result.HashResult` carries (low-quality
    ones included: matching decides what to use). ``keep_dihedral`` stores each PDQ
    signal's 8 dihedral hashes (256 bytes more per picture) so a retro-hunt finds rotated
    and mirrored copies. Raises :class:`InvalidInput` for an over-long content id.
    """
    if content_id is not None and len(content_id) > 255:
        raise InvalidInput("content_id is longer than 255 characters")
    conn = session.connection()
    item_id = conn.execute(
        insert(CONTENT_ITEMS)
        .values(
            content_id=content_id,
            source=source,
            media_type=media_type,
            scanned_at=scanned_at or utcnow(),
        )
        .returning(CONTENT_ITEMS.c.id)
    ).scalar_one()
    rows = _signal_rows(signals, keep_dihedral)
    if rows:
        conn.execute(insert(CONTENT_SIGNALS), [{**r, "item_id": item_id} for r in rows])
    return int(item_id)


def purge_content_log(
    session: Session, *, days: int, now: datetime | None = None, batch_size: int = PURGE_BATCH
) -> int:
    """Delete items scanned more than ``days`` days before ``now`` (default: the current
    time), with their signals; returns the number of items deleted. Retro-hunt results
    keep their copied facts (their link to the item becomes NULL). Raises
    :class:`InvalidInput` for ``days < 1``."""
    if days < 1:
        raise InvalidInput("content log retention must be at least 1 day")
    cutoff = (now or utcnow()) - timedelta(days=days)
    total = 0
    while True:
        ids = list(
            session.execute(
                select(ContentItem.id)
                .where(ContentItem.scanned_at < cutoff)
                .order_by(ContentItem.id)
                .limit(batch_size)
            ).scalars()
        )
        if not ids:
            return total
        session.execute(
            update(RetrohuntMatch)
            .where(RetrohuntMatch.content_item_id.in_(ids))
            .values(content_item_id=None)
        )
        session.execute(delete(ContentSignal).where(ContentSignal.item_id.in_(ids)))
        session.execute(delete(ContentItem).where(ContentItem.id.in_(ids)))
        total += len(ids)


def _logged(rows: Any) -> list[LoggedSignal]:
    out = []
    for sig, item in rows:
        value = sig.value_bin.hex() if sig.value_bin is not None else sig.value_key
        out.append(
            LoggedSignal(
                signal_id=sig.id,
                item_id=item.id,
                content_id=item.content_id,
                source=item.source,
                scanned_at=item.scanned_at,
                signal_type=sig.signal_type,
                value=value,
                quality=sig.quality,
                variant=sig.variant,
            )
        )
    return out


def find_exact(
    session: Session,
    signal_type: str,
    values: Collection[str],
    *,
    since: datetime | None = None,
) -> list[LoggedSignal]:
    """Logged signals of ``signal_type`` whose canonical value is one of ``values``
    (indexed equality; for MD5/SHA-1/SHA-256, or a PDQ at distance 0), scanned at or after
    ``since`` when given; ordered by signal id."""
    keys = sorted({value_key(v) for v in values})
    out: list[LoggedSignal] = []
    for start in range(0, len(keys), 1_000):
        q = (
            select(ContentSignal, ContentItem)
            .join(ContentItem, ContentItem.id == ContentSignal.item_id)
            .where(
                ContentSignal.signal_type == signal_type,
                ContentSignal.value_key.in_(keys[start : start + 1_000]),
            )
            .order_by(ContentSignal.id)
        )
        if since is not None:
            q = q.where(ContentItem.scanned_at >= since)
        out.extend(_logged(session.execute(q).all()))
    out.sort(key=lambda s: s.signal_id)
    return out


def get_logged_signals(session: Session, signal_ids: Collection[int]) -> list[LoggedSignal]:
    """The logged signals with these ids (with their items' facts), by id."""
    ids = sorted(set(signal_ids))
    out: list[LoggedSignal] = []
    for start in range(0, len(ids), 1_000):
        q = (
            select(ContentSignal, ContentItem)
            .join(ContentItem, ContentItem.id == ContentSignal.item_id)
            .where(ContentSignal.id.in_(ids[start : start + 1_000]))
            .order_by(ContentSignal.id)
        )
        out.extend(_logged(session.execute(q).all()))
    return out


@dataclass(frozen=True, slots=True)
class PdqBatch:
    """A batch of logged PDQ hashes, aligned arrays of length n:

    ``signal_ids``, ``item_ids`` (int64); ``qualities`` (int16, -1 when unknown);
    ``hashes`` (uint8, n x 32: the 256 bits most significant first, as the hex reads);
    ``dihedral`` (uint8, n x 8 x 32, in ``DIHEDRAL_TRANSFORMS`` order; rows without
    stored dihedral hashes repeat the hash itself, see ``has_dihedral``).
    """

    signal_ids: npt.NDArray[np.int64]
    item_ids: npt.NDArray[np.int64]
    qualities: npt.NDArray[np.int16]
    hashes: npt.NDArray[np.uint8]
    dihedral: npt.NDArray[np.uint8]
    has_dihedral: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.signal_ids.shape[0])


def iter_pdq_batches(
    session: Session,
    *,
    batch_size: int = 100_000,
    since: datetime | None = None,
    signal_types: Sequence[str] = PDQ_TYPES,
    min_quality: int = 0,
) -> Iterator[PdqBatch]:
    """Every logged PDQ-type hash (``pdq`` and vPDQ frames by default) of quality at least
    ``min_quality``, scanned at or after ``since``, in batches of up to ``batch_size``
    rows in ascending signal id (keyset pagination: constant cost per batch). About 300
    bytes per row in memory with dihedral hashes."""
    last = 0
    while True:
        q = (
            select(
                ContentSignal.id,
                ContentSignal.item_id,
                ContentSignal.quality,
                ContentSignal.value_bin,
                ContentSignal.dihedral_bin,
            )
            .where(
                ContentSignal.id > last,
                ContentSignal.signal_type.in_(list(signal_types)),
                ContentSignal.value_bin.is_not(None),
            )
            .order_by(ContentSignal.id)
            .limit(batch_size)
        )
        if min_quality > 0:
            q = q.where(ContentSignal.quality >= min_quality)
        if since is not None:
            q = q.join(ContentItem, ContentItem.id == ContentSignal.item_id).where(
                ContentItem.scanned_at >= since
            )
        rows = session.execute(q).all()
        if not rows:
            return
        n = len(rows)
        hashes = np.frombuffer(b"".join(r[3] for r in rows), dtype=np.uint8).reshape(n, 32)
        has = np.array([r[4] is not None and len(r[4]) == 256 for r in rows], dtype=bool)
        dihedral = np.repeat(hashes[:, None, :], 8, axis=1)
        if has.any():
            idx = np.flatnonzero(has)
            blob = b"".join(rows[int(i)][4] or b"" for i in idx)
            dihedral[idx] = np.frombuffer(blob, dtype=np.uint8).reshape(len(idx), 8, 32)
        yield PdqBatch(
            signal_ids=np.array([r[0] for r in rows], dtype=np.int64),
            item_ids=np.array([r[1] for r in rows], dtype=np.int64),
            qualities=np.array([-1 if r[2] is None else r[2] for r in rows], dtype=np.int16),
            hashes=hashes,
            dihedral=dihedral,
            has_dihedral=has,
        )
        last = int(rows[-1][0])


@dataclass(frozen=True, slots=True)
class PdqHit:
    """A logged PDQ hash within the threshold of a query hash: ``query`` (64 hex),
    ``distance`` (Hamming bits), ``transform`` (which of the logged item's dihedral
    hashes matched; ``original`` when no dihedral hashes are stored)."""

    signal: LoggedSignal
    query: str
    distance: int
    transform: str


def find_pdq_near(
    session: Session,
    queries: Sequence[str],
    *,
    threshold: int = 31,
    since: datetime | None = None,
    min_quality: int = 50,
    use_dihedral: bool = True,
    batch_size: int = 100_000,
) -> list[PdqHit]:
    """Brute-force retro-hunt for PDQ: every logged PDQ hash (photos and vPDQ frames of
    quality >= ``min_quality``) within ``threshold`` Hamming bits (inclusive; Meta's
    recommended 31 by default) of any of ``queries`` (64 hex each), trying the logged
    items' 8 dihedral hashes when stored. One hit per (logged signal, query): the smallest
    distance. A linear scan, O(log size x queries), memory-bound; the scan service may build a
    faster temporary index over :func:`iter_pdq_batches` instead. Raises
    :class:`InvalidInput` for a malformed query."""
    try:
        qs = np.frombuffer(b"".join(bytes.fromhex(q) for q in queries), dtype=np.uint8)
    except ValueError:
        raise InvalidInput("PDQ queries must be 64 hex characters each") from None
    if qs.size != 32 * len(queries):
        raise InvalidInput("PDQ queries must be 64 hex characters each")
    qs = qs.reshape(len(queries), 32)
    found: dict[tuple[int, int], tuple[int, int]] = {}
    for batch in iter_pdq_batches(
        session, batch_size=batch_size, since=since, min_quality=min_quality
    ):
        cand = batch.dihedral if use_dihedral else batch.hashes[:, None, :]
        for qi in range(len(queries)):
            dist = np.bitwise_count(np.bitwise_xor(cand, qs[qi])).sum(axis=2, dtype=np.int32)
            best = dist.argmin(axis=1)
            best_d = dist[np.arange(len(batch)), best]
            for row in np.flatnonzero(best_d <= threshold):
                key = (int(batch.signal_ids[row]), qi)
                found[key] = (int(best_d[row]), int(best[row]))
    if not found:
        return []
    logged = {s.signal_id: s for s in get_logged_signals(session, {k[0] for k in found})}
    hits = [
        PdqHit(logged[sid], queries[qi], d, DIHEDRAL_TRANSFORMS[t])
        for (sid, qi), (d, t) in sorted(found.items())
    ]
    return hits


# -- retro-hunt results -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetrohuntMatchIn:
    """A match found by retro-hunt: logged signal ``signal`` matched bank ``entry`` (of the
    bank named ``bank_name``) at ``distance`` (integer), via ``transform`` for PDQ."""

    signal: LoggedSignal
    entry: EntryRecord
    bank_name: str
    distance: int
    transform: str | None = None


@dataclass(frozen=True, slots=True)
class RetrohuntResult:
    """A stored retro-hunt match, as ``GET /v1/retrohunt`` lists them."""

    id: int
    found_at: datetime
    content_item_id: int | None
    content_id: str | None
    source: str | None
    scanned_at: datetime | None
    bank_id: int | None
    bank: str
    entry_id: int | None
    signal_type: str
    content_value: str
    entry_value: str
    distance: int
    transform: str | None
    query_variant: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON object (times ISO 8601)."""
        return {
            "id": self.id,
            "found_at": self.found_at.isoformat(),
            "content_id": self.content_id,
            "source": self.source,
            "scanned_at": None if self.scanned_at is None else self.scanned_at.isoformat(),
            "bank": self.bank,
            "entry_id": self.entry_id,
            "signal_type": self.signal_type,
            "content_value": self.content_value,
            "entry_value": self.entry_value,
            "distance": self.distance,
            "transform": self.transform,
            "query_variant": self.query_variant,
        }


#: PostgreSQL advisory lock key serialising the writers of retro-hunt results (ASCII
#: "bstnrhw1"), so that their ids are assigned in commit order (see the module docstring).
RETROHUNT_WRITE_LOCK = 0x6273746E72687731


def record_retrohunt_matches(session: Session, matches: Sequence[RetrohuntMatchIn]) -> int:
    """Store retro-hunt matches; a (logged item, entry) pair already stored is skipped.
    Returns how many were new. On PostgreSQL it first waits for
    :data:`RETROHUNT_WRITE_LOCK` (held until this transaction ends)."""
    if not matches:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": RETROHUNT_WRITE_LOCK})
    now = utcnow()
    rows = [
        {
            "found_at": now,
            "content_item_id": m.signal.item_id,
            "content_id": m.signal.content_id,
            "source": m.signal.source,
            "scanned_at": m.signal.scanned_at,
            "bank_id": m.entry.bank_id,
            "bank_name": m.bank_name,
            "entry_id": m.entry.id,
            "signal_type": m.entry.signal_type,
            "content_value": m.signal.value,
            "entry_value": m.entry.value,
            "distance": int(m.distance),
            "transform": m.transform,
            "query_variant": m.signal.variant,
        }
        for m in matches
    ]
    dialect = session.get_bind().dialect.name
    table = RETROHUNT_MATCHES
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    stmt = ins.on_conflict_do_nothing(index_elements=["content_item_id", "entry_id"]).returning(
        table.c.id
    )
    return len(session.connection().execute(stmt, rows).all())


def _encode_cursor(rid: int) -> str:
    return f"r2.{rid}"


def _decode_cursor(cursor: str | None) -> int:
    """The last id delivered; ``r1.<xid>.<id>`` cursors of earlier versions are read by
    their id."""
    if not cursor:
        return 0
    parts = cursor.split(".")
    if not ((parts[0] == "r2" and len(parts) == 2) or (parts[0] == "r1" and len(parts) == 3)):
        raise InvalidInput("malformed retro-hunt cursor")
    try:
        rid = int(parts[-1])
    except ValueError:
        raise InvalidInput("malformed retro-hunt cursor") from None
    if not 0 <= rid < 2**63:
        raise InvalidInput("malformed retro-hunt cursor")
    return rid


def list_retrohunt_matches(
    session: Session, *, cursor: str | None = None, limit: int = 100
) -> tuple[list[RetrohuntResult], str | None]:
    """Retro-hunt results after ``cursor`` (None: from the start), at most ``limit``
    (1-1000), and the cursor to pass next (the same cursor back when nothing is new).
    Run it in a read unit of work (one snapshot). Raises :class:`InvalidInput` for a
    malformed cursor or limit."""
    if not 1 <= limit <= 1_000:
        raise InvalidInput("limit must be between 1 and 1000")
    cid = _decode_cursor(cursor)
    q = select(RetrohuntMatch).where(RetrohuntMatch.id > cid).order_by(RetrohuntMatch.id)
    rows = list(session.execute(q.limit(limit)).scalars())
    out = [
        RetrohuntResult(
            id=r.id,
            found_at=r.found_at,
            content_item_id=r.content_item_id,
            content_id=r.content_id,
            source=r.source,
            scanned_at=r.scanned_at,
            bank_id=r.bank_id,
            bank=r.bank_name,
            entry_id=r.entry_id,
            signal_type=r.signal_type,
            content_value=r.content_value,
            entry_value=r.entry_value,
            distance=r.distance,
            transform=r.transform,
            query_variant=r.query_variant,
        )
        for r in rows
    ]
    if not rows:
        return out, cursor
    return out, _encode_cursor(rows[-1].id)
