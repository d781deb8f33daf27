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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bastion.errors import NotReady
from bastion.scan.matcher import Match, Matcher
from bastion.signals.base import Signal, VideoSignal
from bastion.signals.result import HashResult
from bastion.store.change_log import ChangeFollower, SnapshotRequired, load_snapshot
from bastion.store.database import Database

log = logging.getLogger(__name__)

ScanStatus = Literal["match", "no_match", "not_scanned"]

#: Seconds between two polls of the bank change log (changes are matchable within this,
#: plus the poll's own time: well under the 1 s freshness goal).
POLL_INTERVAL_S = 0.2


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

    def __init__(self, db: Database, *, poll_interval_s: float = POLL_INTERVAL_S) -> None:
        self.db = db
        self.matcher = Matcher()
        self.poll_interval_s = poll_interval_s
        self._follower: ChangeFollower | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.load_error: BaseException | None = None
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
        t0 = time.perf_counter()
        snap = load_snapshot(self.db)
        self.matcher.load_snapshot(snap)
        self._follower = ChangeFollower(self.db, snap.cursor)
        self.load_seconds = time.perf_counter() - t0

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
            return self.matcher.apply(self._follower.poll())
        except SnapshotRequired:
            self._load()
            return 0

    def _follow_loop(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.poll_once()
            except Exception:
                log.exception("following the bank change log failed; retrying")

    def close(self) -> None:
        """Stop following (the database is the caller's to dispose)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    @property
    def ready(self) -> bool:
        """True once the indexes are loaded."""
        return self.matcher.ready

    def require_ready(self) -> None:
        """Raise :class:`NotReady` (with the load error, if any) unless ready."""
        if not self.matcher.ready:
            if self.load_error is not None:
                raise NotReady(f"bank indexes failed to load: {self.load_error}")
            raise NotReady("bank indexes are still loading; try again shortly")

    def match_signals(self, signals: Sequence[Signal | VideoSignal]) -> list[Match]:
        """Matches of bare signals. Raises NotReady while loading."""
        self.require_ready()
        return self.matcher.match(signals)

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
