"""The worker that empties the outbox (and advances CyberTipline reports).

:class:`ActionWorker` repeats rounds: claim due actions (:func:`bastion.actions.outbox.claim_due`),
deliver each through a :class:`~bastion.actions.webhooks.Deliverer`, store the outcome; then,
when given a :class:`ReportRunner`, take the due reports one at
a time and run their next steps. It runs in a daemon thread of ``bastion serve`` or in the
foreground of ``bastion worker``; any number of workers may run against one database (claims
are leases; see :mod:`bastion.actions.outbox`).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from bastion.actions import outbox
from bastion.actions.webhooks import Deliverer, DeliveryFailed
from bastion.config import Settings
from bastion.store.database import Database
from bastion.store.types import utcnow

if TYPE_CHECKING:
    from bastion.evidence.vault import Vault
    from bastion.reporting.files import FileProvider

log = logging.getLogger(__name__)

#: Seconds a worker sleeps when a round found nothing to do.
IDLE_S = 1.0
#: Actions claimed per round.
BATCH = 20


class ReportRunner(Protocol):
    """Advances due reports (:class:`bastion.reporting.service.ReportSubmitter`)."""

    def run_due(self, *, worker: str) -> int:
        """Run the next steps of every due report; returns how many were advanced."""


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What one round did: actions delivered, failed (to be retried), dead-lettered, lost
    (the lease expired and another worker took over), reports advanced, actions blocked
    by a configuration error (no endpoint for the kind)."""

    delivered: int = 0
    failed: int = 0
    dead: int = 0
    lost: int = 0
    reports: int = 0
    blocked: int = 0

    @property
    def busy(self) -> bool:
        """True when the round did anything (the next round starts at once)."""
        return bool(self.delivered or self.failed or self.dead or self.reports
                    or self.blocked)


def worker_name() -> str:
    """A name unique to this worker: ``host:pid:random``."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class ActionWorker:
    """Delivers actions from ``db``'s outbox with ``deliverer``; advances reports with
    ``reports`` when given. ``clock`` returns aware UTC now (tests move it); ``lease_s`` is
    how long a claim lasts (a killed worker's actions are taken over after it)."""

    def __init__(self, db: Database, settings: Settings, deliverer: Deliverer, *,
                 reports: ReportRunner | None = None, name: str | None = None,
                 clock: Callable[[], datetime] = utcnow, batch: int = BATCH,
                 lease_s: float = outbox.LEASE_S) -> None:
        self.db = db
        self.settings = settings
        self.deliverer = deliverer
        self.reports = reports
        self.name = name or worker_name()
        self.clock = clock
        self.batch = batch
        self.lease_s = lease_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> RoundResult:
        """One round: deliver every action due now (in batches), then advance due reports."""
        delivered = failed = dead = lost = blocked = 0
        while True:
            with self.db.write() as session:
                claimed = outbox.claim_due(session, worker=self.name, limit=self.batch,
                                           now=self.clock(), lease_s=self.lease_s)
            if not claimed:
                break
            for action in claimed:
                try:
                    self.deliverer.deliver(action)
                except DeliveryFailed as exc:
                    if exc.permanent:
                        with self.db.write() as session:
                            ok = outbox.record_blocked(session, action.id, worker=self.name,
                                                       error=exc.message, now=self.clock())
                        if ok:
                            blocked += 1
                            log.warning("action %d (%s) blocked: %s", action.id,
                                        action.kind, exc.message)
                        else:
                            lost += 1
                        continue
                    with self.db.write() as session:
                        state = outbox.record_failed(session, action.id, worker=self.name,
                                                     error=exc.message, settings=self.settings,
                                                     now=self.clock())
                    if state is None:
                        lost += 1
                    elif state == "dead":
                        dead += 1
                        log.warning("action %d (%s) dead-lettered: %s", action.id,
                                    action.kind, exc.message)
                    else:
                        failed += 1
                    continue
                with self.db.write() as session:
                    ok = outbox.record_delivered(session, action.id, worker=self.name,
                                                 now=self.clock())
                delivered += ok
                lost += not ok
            if self._stop.is_set():
                break
        advanced = 0
        if self.reports is not None:
            advanced = self.reports.run_due(worker=self.name)
        return RoundResult(delivered, failed, dead, lost, advanced, blocked)

    def run(self) -> None:
        """Run rounds until :meth:`close` (the calling thread); errors are logged and the
        round is retried after :data:`IDLE_S`."""
        while not self._stop.is_set():
            try:
                result = self.run_once()
            except Exception:
                log.exception("action worker round failed; retrying")
                result = RoundResult()
            if not result.busy and self._stop.wait(IDLE_S):
                return

    def start(self) -> None:
        """Run in a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="bastion-actions", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop after the current delivery and close the deliverer's connections."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        close = getattr(self.deliverer, "close", None)
        if callable(close):
            close()


def _drafting_only(db: Database, settings: Settings) -> ReportRunner | None:
    """A runner that drafts reports of decided cases and preserves their items, without
    submitting (no CyberTipline credentials); None, logged, when the schema is not on disk
    or the vault does not open."""
    from bastion.reporting.case_incidents import DraftingRunner
    from bastion.reporting.service import load_schema

    try:
        from bastion.evidence.vault import open_vault

        schema = load_schema(settings)
        vault = open_vault(settings)
    except Exception as exc:
        log.warning("reports are not drafted nor items preserved by the workers: %s", exc)
        return None
    return DraftingRunner(db, settings, schema, None, vault)


def build_worker(db: Database, settings: Settings, *, files: FileProvider | None = None
                 ) -> ActionWorker:
    """The worker ``bastion serve`` and ``bastion worker`` run: webhooks from the settings,
    and, when CyberTipline credentials are configured, drafts of reports from decided cases
    (:class:`bastion.reporting.case_incidents.DraftingRunner`) and report submission with
    report files
    read from ``files`` (default: the encrypted evidence vault, ``evidence:<id>`` locators).
    Without credentials, decided cases are still drafted and their items preserved when the
    schema is on disk (``cybertipline_xsd`` or the cached copy) and the vault opens
    (:func:`_drafting_only`): preservation must not wait for credentials. Approved reports
    then wait, and :func:`bastion.reporting.service.alert_counts` (``no_credentials``) says
    why."""
    from bastion.actions.webhooks import WebhookDeliverer

    reports: ReportRunner | None = None
    if settings.cybertipline_username is not None:
        from bastion.reporting.case_incidents import DraftingRunner
        from bastion.reporting.client import CyberTiplineClient
        from bastion.reporting.files import NoFileProvider, VaultFileProvider
        from bastion.reporting.service import ReportSubmitter, load_schema

        vault: Vault | None = None
        try:
            from bastion.evidence.vault import open_vault

            vault = open_vault(settings)
        except Exception as exc:  # no vault or master key: reports wait, visibly
            if files is None:
                files = NoFileProvider(f"the evidence vault cannot be opened: {exc}")
        if files is None and vault is not None:
            files = VaultFileProvider(db, vault)
        if files is None:  # pragma: no cover - set above whenever vault is None
            files = NoFileProvider("the evidence vault cannot be opened")
        client = CyberTiplineClient(settings)
        try:
            schema = load_schema(settings, client)
            # Decided cases become drafts (items preserved), then due reports advance.
            reports = DraftingRunner(db, settings, schema,
                                     ReportSubmitter(db, settings, client, files, schema),
                                     vault)
        except Exception:
            log.exception("CyberTipline schema unavailable; report submission off for now")
    else:
        reports = _drafting_only(db, settings)
    return ActionWorker(db, settings, WebhookDeliverer(settings), reports=reports)
