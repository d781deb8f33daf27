"""Periodic upkeep that the service runs in-process on the embedded defaults.

Each round, in its own unit of work: re-enable bank entries whose ``disabled_until`` has
passed (:func:`bastion.banks.service.release_due_entries`) and purge content-log items
older than ``Settings.content_log_days`` (:func:`bastion.store.content_log.purge_content_log`).
:class:`Maintenance` runs rounds in a daemon thread every :data:`INTERVAL_S` seconds; a
failing round is logged and retried next time. ``bastion worker`` (larger deployments)
will run the same rounds in a process of its own.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from bastion.banks import service as banks
from bastion.config import Settings
from bastion.store.content_log import purge_content_log
from bastion.store.database import Database

log = logging.getLogger(__name__)

#: Seconds between two rounds.
INTERVAL_S = 60.0


@dataclass(frozen=True, slots=True)
class RoundReport:
    """What one round did: entries re-enabled, content-log items purged."""

    released: int
    purged: int


def run_round(db: Database, settings: Settings) -> RoundReport:
    """One maintenance round (see the module docstring)."""
    with db.write() as session:
        released = banks.release_due_entries(session)
    with db.write() as session:
        purged = purge_content_log(session, days=settings.content_log_days)
    return RoundReport(released, purged)


class Maintenance:
    """Runs :func:`run_round` every ``interval_s`` seconds in a daemon thread."""

    def __init__(self, db: Database, settings: Settings, *, interval_s: float = INTERVAL_S):
        self.db = db
        self.settings = settings
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (the first round runs at once)."""
        self._thread = threading.Thread(target=self._loop, name="bastion-maintenance",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                r = run_round(self.db, self.settings)
                if r.released or r.purged:
                    log.info("maintenance: %d entries re-enabled, %d log items purged",
                             r.released, r.purged)
            except Exception:
                log.exception("maintenance round failed; retrying later")
            if self._stop.wait(self.interval_s):
                return

    def close(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
