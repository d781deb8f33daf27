"""The scan pipeline: hash -> match -> content log, for files (``bastion scan``) and uploads.

:class:`MatchService` owns one process's :class:`~bastion.scan.matcher.Matcher`: it loads
the store's snapshot (in the background for servers, so ``/readyz`` and matching refuse
until it is loaded) and follows the bank change log in a thread, applying each change in
place within :data:`POLL_INTERVAL_S` of its commit.

Status of one item (DESIGN.md "Shapes"): ``match`` > ``not_scanned`` > ``no_match``, the
first that applies. A file that could not be decoded is ``not_scanned`` with a reason, and
its exact hashes are still matched (so it can be ``match``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select

from bastion.config import Limits
from bastion.errors import NotReady
from bastion.scan.matcher import Match, Matcher
from bastion.scan.text_matcher import TextItem, TextMatcher, TextOutcome
from bastion.signals.base import Signal, VideoSignal
from bastion.signals.result import HashResult
from bastion.store.change_log import ChangeFollower, SnapshotRequired
from bastion.store.database import Database
from bastion.store.models import BankEntry, StoreMeta
from bastion.store.records import EntryRecord

log = logging.getLogger(__name__)

ScanStatus = Literal["match", "no_match", "not_scanned"]

#: Seconds between two polls of the bank change log (changes are matchable within this,
#: plus the poll's own time: well under the 1 s freshness goal).
POLL_INTERVAL_S = 0.2

#: Seconds between polls while the change log cannot be read (database unreachable).
FAILED_POLL_INTERVAL_S = 1.0

#: A load from the store of at least this many entries writes an index snapshot, so the
#: next start loads it and replays the change log's tail instead.
SNAPSHOT_MIN_ENTRIES = 100_000

_STORE_ID_KEY = "store.id"


def store_identity(db: Database) -> str:
    """A random id naming this database (created on first use), so an index snapshot is
    never applied to another database that happens to sit at the same path or URL."""
    with db.read() as session:
        row = session.get(StoreMeta, _STORE_ID_KEY)
        if row is not None:
            return row.value
    try:
        with db.write() as session:
            if session.get(StoreMeta, _STORE_ID_KEY) is None:
                session.add(StoreMeta(key=_STORE_ID_KEY, value=uuid.uuid4().hex))
    except Exception:  # another process created it first
        log.debug("store id created concurrently", exc_info=True)
    with db.read() as session:
        row = session.get(StoreMeta, _STORE_ID_KEY)
        assert row is not None
        return row.value


def _bank_videos(db: Database) -> list[EntryRecord]:
    """The enabled vPDQ entries (bank videos), which index snapshots do not hold."""
    with db.read() as session:
        rows = session.execute(
            select(BankEntry).where(BankEntry.signal_type == "vpdq", BankEntry.enabled.is_(True))
        ).scalars()
        return [EntryRecord.from_row(r) for r in rows]


def status_of(hashed: bool, matches: Sequence[Match]) -> ScanStatus:
    """``match`` if anything matched, else ``not_scanned`` if the item could not be fully
    hashed, else ``no_match``."""
    if matches:
        return "match"
    return "no_match" if hashed else "not_scanned"


@dataclass(slots=True)
class ScanResult:
    """The outcome of scanning one item: its signals, matches and status.

    ``reason`` is set when ``status`` is ``not_scanned``, and also when the item matched
    through its exact hashes although its pixels could not be decoded.
    """

    path: str | None
    status: ScanStatus
    matches: list[Match]
    signals: list[Signal | VideoSignal]
    reason: str | None = None
    media_type: str | None = None
    content_id: str | None = None
    hash_result: HashResult | None = field(default=None, repr=False)

    def to_json(self, *, with_signals: bool = True) -> dict[str, Any]:
        """The ``bastion scan --json`` object: ``path``, ``status``, ``matches``,
        ``signals`` (DESIGN.md shapes) and ``reason`` when not scanned."""
        out: dict[str, Any] = {}
        if self.content_id is not None:
            out["content_id"] = self.content_id
        out["path"] = self.path
        out["status"] = self.status
        if self.reason is not None:
            out["reason"] = self.reason
        if self.media_type is not None:
            out["media_type"] = self.media_type
        out["matches"] = [m.to_json() for m in self.matches]
        if with_signals:
            out["signals"] = [s.to_json() for s in self.signals]
        return out


class MatchService:
    """One process's matcher, loaded from ``db`` and kept fresh from its change log.

    >>> svc = MatchService(db); svc.start(background=False)     # doctest: +SKIP
    >>> svc.scan_result(hash_file("x.jpg"))                      # doctest: +SKIP
    >>> svc.close()                                               # doctest: +SKIP
    """

    def __init__(
        self,
        db: Database,
        *,
        poll_interval_s: float = POLL_INTERVAL_S,
        snapshot_dir: Path | None = None,
        snapshot_min_entries: int = SNAPSHOT_MIN_ENTRIES,
        limits: Limits | None = None,
    ) -> None:
        self.db = db
        self.matcher = Matcher()
        #: URL and keyword lists (issue 7), loaded and followed with :attr:`matcher`.
        self.text_matcher = TextMatcher(limits=limits)
        self.poll_interval_s = poll_interval_s
        #: Where index snapshots are kept (None: never); see :meth:`_load`.
        self.snapshot_dir = snapshot_dir
        self.snapshot_min_entries = snapshot_min_entries
        #: How the indexes were loaded: ``store`` or ``snapshot``.
        self.loaded_from: str | None = None
        self._follower: ChangeFollower | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.load_error: BaseException | None = None
        #: ``time.monotonic()`` when following the change log began to fail (None: healthy).
        self.failing_since: float | None = None
        #: Seconds the last snapshot load took.
        self.load_seconds: float | None = None

    def start(self, *, background: bool = True, follow: bool = True) -> None:
        """Load the snapshot (in a thread when ``background``), then follow the change log
        every :attr:`poll_interval_s` seconds when ``follow``."""
        if background:
            self._thread = threading.Thread(
                target=self._run, args=(follow,), name="bastion-matcher", daemon=True
            )
            self._thread.start()
        else:
            self._load()
            if follow:
                self._thread = threading.Thread(
                    target=self._follow_loop, name="bastion-follower", daemon=True
                )
                self._thread.start()

    def _load(self) -> None:
        """Load the indexes: from this database's index snapshot when one is usable (then
        the change log's tail is replayed), else by streaming the store; a load from the
        store of at least :attr:`snapshot_min_entries` entries writes a new snapshot."""
        t0 = time.perf_counter()
        store_id = store_identity(self.db) if self.snapshot_dir is not None else ""
        cursor = None
        if self.snapshot_dir is not None:
            cursor = self.matcher.load(self.snapshot_dir, store_id)
        if cursor is not None:
            try:
                follower = ChangeFollower(self.db, cursor)
                self.matcher.load_videos(_bank_videos(self.db))
                self.text_matcher.load_from_store(self.db)  # newer than cursor: replay is safe
                changes = follower.poll()
                self.matcher.apply(changes)
                self.text_matcher.apply(changes)
                self._follower = follower
                self.loaded_from = "snapshot"
            except SnapshotRequired:
                cursor = None
        if cursor is None:
            cursor = self.matcher.load_from_store(self.db)
            self.text_matcher.load_from_store(self.db)  # newer than cursor: replay is safe
            self._follower = ChangeFollower(self.db, cursor)
            self.loaded_from = "store"
            live = sum(self.matcher.stats().entries.values())
            if self.snapshot_dir is not None and live >= self.snapshot_min_entries:
                try:
                    self.save_snapshot()
                except OSError:  # e.g. another replica replacing it at the same moment
                    log.warning("could not write the index snapshot", exc_info=True)
        self.load_seconds = time.perf_counter() - t0

    def save_snapshot(self) -> None:
        """Write the indexes and the follower's cursor to :attr:`snapshot_dir` (call it from
        the thread that polls, so the cursor matches what was applied)."""
        if self.snapshot_dir is None or self._follower is None:
            return
        self.matcher.save(self.snapshot_dir, self._follower.cursor, store_identity(self.db))

    def _run(self, follow: bool) -> None:
        try:
            self._load()
        except Exception as exc:  # reported through /readyz and NotReady
            self.load_error = exc
            log.exception("loading bank indexes failed")
            return
        if follow:
            self._follow_loop()

    def poll_once(self) -> int:
        """Apply the changes committed since the last poll; returns how many. A follower
        that fell behind the log's purge horizon reloads the whole snapshot."""
        if self._follower is None:
            return 0
        try:
            changes = self._follower.poll()
            n = self.matcher.apply(changes)
            self.text_matcher.apply(changes)
            return n
        except SnapshotRequired:
            self._load()
            return 0

    def _follow_loop(self) -> None:
        """Poll until closed. While polls keep failing (database down), the error is logged
        once, then once a minute, and polls back off to :data:`FAILED_POLL_INTERVAL_S`."""
        failing_since: float | None = None
        last_logged = 0.0
        interval = self.poll_interval_s
        while not self._stop.wait(interval):
            try:
                self.poll_once()
            except Exception:
                now = time.monotonic()
                if failing_since is None or now - last_logged >= 60.0:
                    log.exception("following the bank change log failed; retrying")
                    last_logged = now
                failing_since = failing_since or now
                interval = max(self.poll_interval_s, FAILED_POLL_INTERVAL_S)
                self.failing_since = failing_since
                continue
            if failing_since is not None:
                log.warning("following the bank change log works again")
            failing_since = None
            self.failing_since = None
            interval = self.poll_interval_s

    def close(self) -> None:
        """Stop following (the database is the caller's to dispose)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    @property
    def ready(self) -> bool:
        """True once the indexes are loaded."""
        return self.matcher.ready and self.text_matcher.ready

    def require_ready(self) -> None:
        """Raise :class:`NotReady` (with the load error, if any) unless ready."""
        if not self.ready:
            if self.load_error is not None:
                raise NotReady(f"bank indexes failed to load: {self.load_error}")
            raise NotReady("bank indexes are still loading; try again shortly")

    def match_signals(self, signals: Sequence[Signal | VideoSignal]) -> list[Match]:
        """Matches of bare signals. Raises NotReady while loading."""
        self.require_ready()
        return self.matcher.match(signals)

    def match_text(self, text: str, urls: Sequence[str] = ()) -> list[Match]:
        """Matches of one text item (a post, message, profile, ad) and the links given
        with it against the URL and keyword lists (:mod:`bastion.scan.text_matcher`): by
        position in ``text``, links given apart last; each carries ``span`` (code points,
        ``[start, end)``), ``matched``, ``entry``, ``kind`` and, for URLs, ``canonical``.
        Raises :class:`NotReady` while loading, :class:`~bastion.errors.LimitExceeded`
        over ``Limits.max_text_chars``/``max_url_chars``/``max_urls_per_text``,
        :class:`~bastion.errors.InvalidInput` for a link that is not an http(s) URL."""
        self.require_ready()
        return self.text_matcher.match_text(text, urls)

    def match_texts(self, items: Sequence[TextItem]) -> list[TextOutcome]:
        """:meth:`match_text` for many items in one batch (much faster for short texts);
        an item over a limit gets its ``reason`` instead of matches. Raises NotReady."""
        self.require_ready()
        return self.text_matcher.match_many(items)

    def match_each(self, signals: Sequence[Signal]) -> list[list[Match]]:
        """Matches of each bare signal on its own, searched as one batch. Raises NotReady."""
        self.require_ready()
        return self.matcher.match_each(signals)

    def scan_result(self, hashed: HashResult, *, content_id: str | None = None) -> ScanResult:
        """Match one hashed item and build its :class:`ScanResult`. Raises NotReady."""
        matches = self.match_signals(hashed.signals)
        status = status_of(hashed.status == "hashed", matches)
        return ScanResult(
            path=hashed.path,
            status=status,
            matches=matches,
            signals=list(hashed.signals),
            reason=hashed.reason,
            media_type=hashed.media_type,
            content_id=content_id,
            hash_result=hashed,
        )

    def scan_many(self, results: Iterable[HashResult]) -> Iterator[ScanResult]:
        """:meth:`scan_result` for each hashed item, in order."""
        for r in results:
            yield self.scan_result(r)
