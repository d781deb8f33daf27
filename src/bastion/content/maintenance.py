"""Periodic upkeep that the service runs in-process on the embedded defaults.

- every :data:`RETROHUNT_INTERVAL_S` seconds, retro-hunt: search the content log for bank
  entries added or enabled since the last run and store the new matches
  (:class:`bastion.scan.content_log.RetrohuntFollower`; listed by ``GET /v1/retrohunt``);
- every :data:`INTERVAL_S` seconds, upkeep (:func:`run_round`), each step in its own unit
  of work: re-enable bank entries whose ``disabled_until`` has passed
  (:func:`bastion.banks.service.release_due_entries`) and purge content-log items older
  than ``Settings.content_log_days`` (:func:`bastion.store.content_log.purge_content_log`),
  and destroy case media whose retention ended
  (:func:`bastion.evidence.vault.purge_due_media`) and preserved reported items whose
  preservation ended, unheld (:func:`bastion.evidence.preservation.purge_expired`).

:class:`Maintenance` runs both in a daemon thread (``bastion serve``), or in the foreground
(``bastion worker``, for deployments that keep it out of the API processes). A failing step
is logged and retried next time. Several processes doing this at once is safe: retro-hunt
results are stored once per (item, entry), and the other steps are idempotent.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from bastion.banks import service as banks
from bastion.config import Settings
from bastion.scan.content_log import RetrohuntFollower
from bastion.store.content_log import purge_content_log
from bastion.store.database import Database

log = logging.getLogger(__name__)

#: Seconds between two upkeep rounds.
INTERVAL_S = 60.0
#: Seconds between two retro-hunt runs.
RETROHUNT_INTERVAL_S = 5.0


@dataclass(frozen=True, slots=True)
class RoundReport:
    """What one round did: entries re-enabled, content-log items purged."""

    released: int
    purged: int
    #: Case media destroyed because its retention ended (benign decisions).
    media_destroyed: int = 0
    #: Preserved reported items purged (preservation ended, no hold).
    preserved_purged: int = 0


def run_round(db: Database, settings: Settings) -> RoundReport:
    """One maintenance round (see the module docstring)."""
    with db.write() as session:
        released = banks.release_due_entries(session)
    with db.write() as session:
        purged = purge_content_log(session, days=settings.content_log_days)
    from bastion.evidence.vault import purge_due_media

    with db.write() as session:
        destroyed = purge_due_media(session, settings.home.resolve() / "evidence")
    from bastion.evidence.preservation import purge_expired

    preserved = purge_expired(db, vault_root=settings.home.resolve() / "evidence",
                              preservation_days=settings.preservation_days)
    return RoundReport(released, purged, destroyed, len(preserved))


class Maintenance:
    """Runs :func:`run_round` every ``interval_s`` seconds in a daemon thread."""

    def __init__(self, db: Database, settings: Settings, *, interval_s: float = INTERVAL_S,
                 retrohunt_interval_s: float = RETROHUNT_INTERVAL_S):
        self.db = db
        self.settings = settings
        self.interval_s = interval_s
        self.retrohunt_interval_s = retrohunt_interval_s
        self.retrohunt = RetrohuntFollower(db)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (the first round runs at once)."""
        self._thread = threading.Thread(target=self.run, name="bastion-maintenance",
                                        daemon=True)
        self._thread.start()

    def run(self) -> None:
        """Run until :meth:`close` (the calling thread)."""
        next_upkeep = 0.0
        while True:
            now = time.monotonic()
            if now >= next_upkeep:
                next_upkeep = now + self.interval_s
                try:
                    r = run_round(self.db, self.settings)
                    if r.released or r.purged:
                        log.info("maintenance: %d entries re-enabled, %d log items purged",
                                 r.released, r.purged)
                except Exception:
                    log.exception("maintenance round failed; retrying later")
            try:
                run = self.retrohunt.run_once()
                if run.new:
                    log.info("retro-hunt: %d new matches for %d entries", run.new, run.entries)
            except Exception:
                log.exception("retro-hunt failed; retrying later")
            if self._stop.wait(self.retrohunt_interval_s):
                return

    def close(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
