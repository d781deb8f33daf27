"""CyberTipline reports: drafts, approval, and the submission state machine.

States of a report (``cybertip_reports.state``)::

    draft --approve--> approved --(worker)--> submitting --> submitted
                          ^                     |   |
                          |  server error or    |   +--> failed (4000s etc.: NCMEC's message;
                          |  connection refused |         an admin fixes and approves again)
                          +---------------------+
                                                |
    submitting without a report id, found by a  +--> needs_reconciliation (an admin checks
    worker after an interruption                      with NCMEC: resolve_reconciliation)
    any report with NCMEC's id --retract--> retracted

The Reporting API has no idempotency key. So ``submitting`` (and ``submit_started_at``) is
committed *before* ``/submit`` is called, and NCMEC's report id is committed as soon as it
arrives. A worker that finds a report ``submitting`` without an id (its previous worker
died between the two) cannot know whether NCMEC created the report: it moves it to
``needs_reconciliation`` and never resubmits it blindly. A connection broken after sending
``/submit`` does the same. Every later step is recorded when done (each file's id and MD5
after ``/upload``, ``fileinfo_at`` after ``/fileinfo``, ``submitted`` after ``/finish``), so
an interrupted submission resumes from the step it stopped at. A kill between ``/upload``
and storing its file id re-uploads that file into the same report on resumption (the API
offers no way to list a report's files); nothing is ever submitted twice.

Server errors (1000s, HTTP 5xx) and network failures are retried with exponential backoff
(``Settings.actions_backoff_s`` doubling up to ``actions_backoff_max_s``), without a maximum
age: a legally required report is never given up silently; :func:`overdue` lists reports
not submitted within ``Settings.report_alert_hours``. Refusals (2000 authentication, 3000s,
4000s invalid request, 5000s) mark the report ``failed`` with NCMEC's code and message.

Wiring for the case service: build an :class:`~bastion.reporting.incident.Incident` from an
incident's decided cases, then :func:`create_draft` (refused with
:class:`~bastion.reporting.xml.ReportInvalid` naming the element when the documents would not
validate), :func:`approve`, and a :class:`ReportSubmitter` with a
:class:`~bastion.reporting.files.FileProvider` for the bytes (the workers run it).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.actions.outbox import backoff_s
from bastion.config import Settings
from bastion.errors import BastionError, Conflict, InvalidInput, LimitExceeded, NotFound
from bastion.reporting.client import (
    CyberTiplineClient,
    CyberTiplineRejected,
    CyberTiplineUnavailable,
)
from bastion.reporting.files import FileProvider, FileUnavailable
from bastion.reporting.incident import (
    Incident,
    ReportingPerson,
    incident_from_json,
    incident_to_json,
)
from bastion.reporting.xml import (
    CyberTiplineSchema,
    ReportInvalid,
    build_file_details_xml,
    build_report_xml,
)
from bastion.store.audit import record_audit_event
from bastion.store.database import Database
from bastion.store.models_actions import CyberTipReportFileRow, CyberTipReportRow
from bastion.store.types import utcnow

log = logging.getLogger(__name__)

REPORT_STATES = ("draft", "approved", "submitting", "needs_reconciliation", "submitted",
                 "failed", "retracted")
#: States a worker advances.
ACTIVE_STATES = ("approved", "submitting")
#: Seconds a worker's claim on a report lasts (renewed at every step).
REPORT_LEASE_S = 600.0
#: Files per report.
MAX_FILES = 1000


@dataclass(frozen=True, slots=True)
class ReportFileView:
    """One file of a report: position, name, NCMEC's id and MD5, which steps are done."""

    position: int
    file_name: str
    locator: str
    ncmec_file_id: str | None
    ncmec_md5: str | None
    uploaded: bool
    described: bool


@dataclass(frozen=True, slots=True)
class ReportView:
    """A report as the CLI, API and UI show it."""

    id: int
    incident_key: str
    state: str
    ncmec_report_id: int | None
    environment: str
    created_at: datetime
    created_by: str
    approved_at: datetime | None
    approved_by: str | None
    submitted_at: datetime | None
    retracted_at: datetime | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    response_code: int | None
    files: tuple[ReportFileView, ...]
    incident: dict[str, Any]

    def to_json(self, *, with_incident: bool = False) -> dict[str, Any]:
        """JSON for ``bastion report list|show --json`` (times ISO 8601)."""
        def t(v: datetime | None) -> str | None:
            return None if v is None else v.isoformat()

        out: dict[str, Any] = {
            "id": self.id, "incident_key": self.incident_key, "state": self.state,
            "ncmec_report_id": self.ncmec_report_id, "environment": self.environment,
            "created_at": t(self.created_at), "created_by": self.created_by,
            "approved_at": t(self.approved_at), "approved_by": self.approved_by,
            "submitted_at": t(self.submitted_at), "retracted_at": t(self.retracted_at),
            "attempts": self.attempts, "next_attempt_at": t(self.next_attempt_at),
            "last_error": self.last_error, "response_code": self.response_code,
            "files": [{"position": f.position, "file_name": f.file_name,
                       "ncmec_file_id": f.ncmec_file_id, "ncmec_md5": f.ncmec_md5,
                       "uploaded": f.uploaded, "described": f.described}
                      for f in self.files],
        }
        if with_incident:
            out["incident"] = self.incident
        return out


def _files(session: Session, report_id: int) -> list[CyberTipReportFileRow]:
    q = (select(CyberTipReportFileRow).where(CyberTipReportFileRow.report_id == report_id)
         .order_by(CyberTipReportFileRow.position))
    return list(session.execute(q).scalars())


def _view(session: Session, row: CyberTipReportRow) -> ReportView:
    files = tuple(ReportFileView(f.position, f.file_name, f.locator, f.ncmec_file_id,
                                 f.ncmec_md5, f.uploaded_at is not None,
                                 f.fileinfo_at is not None)
                  for f in _files(session, row.id))
    return ReportView(row.id, row.incident_key, row.state, row.ncmec_report_id,
                      row.environment, row.created_at, row.created_by, row.approved_at,
                      row.approved_by, row.submitted_at, row.retracted_at, row.attempts,
                      row.next_attempt_at, row.last_error, row.response_code, files,
                      dict(row.incident))


def reporter_from_settings(settings: Settings) -> ReportingPerson | None:
    """The ``reportingPerson`` from ``cybertipline_reporter_*`` settings, or None when none
    of them is set (reports are then refused, naming the element)."""
    rp = ReportingPerson(
        first_name=settings.cybertipline_reporter_first_name,
        last_name=settings.cybertipline_reporter_last_name,
        email=settings.cybertipline_reporter_email,
        phone=settings.cybertipline_reporter_phone,
        legal_url=settings.cybertipline_legal_url,
    )
    return None if rp == ReportingPerson() else rp


def load_schema(settings: Settings, client: CyberTiplineClient | None = None
                ) -> CyberTiplineSchema:
    """NCMEC's schema: ``Settings.cybertipline_xsd`` if set; else ``$home/cybertipline.xsd``
    cached from an earlier ``GET /xsd``; else fetched with ``client`` and cached. Raises
    :class:`InvalidInput` when there is none."""
    if settings.cybertipline_xsd is not None:
        return CyberTiplineSchema.from_path(settings.cybertipline_xsd)
    cached = Path(settings.home) / "cybertipline.xsd"
    if cached.is_file():
        return CyberTiplineSchema.from_path(cached)
    if client is None:
        raise InvalidInput("no CyberTipline schema: set cybertipline_xsd or configure the "
                           "Reporting API credentials so it can be fetched from GET /xsd")
    data = client.xsd()
    schema = CyberTiplineSchema(data)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(data)
    return schema


def create_draft(session: Session, *, incident: Incident, schema: CyberTiplineSchema,
                 settings: Settings, actor: str, now: datetime | None = None) -> ReportView:
    """Store a ``draft`` report for ``incident`` in ``session``'s transaction.

    The report document and every file's fileDetails (with placeholder ids) are built and
    validated first: raises :class:`ReportInvalid` naming the element when one would not
    validate, :class:`Conflict` when the incident already has a report,
    :class:`InvalidInput` for more than :data:`MAX_FILES` files."""
    if len(incident.files) > MAX_FILES:
        raise InvalidInput(f"a report holds at most {MAX_FILES} files")
    report_xml = build_report_xml(incident, schema)
    for f in incident.files:
        build_file_details_xml(1, "pending", f, schema)
    exists = session.execute(select(CyberTipReportRow.id).where(
        CyberTipReportRow.incident_key == incident.key)).first()
    if exists is not None:
        raise Conflict(f"incident {incident.key} already has report {exists[0]}")
    at = now or utcnow()
    row = CyberTipReportRow(
        incident_key=incident.key, state="draft", incident=incident_to_json(incident),
        report_xml=report_xml.decode(), environment=settings.cybertipline_environment,
        created_at=at, created_by=actor[:200], updated_at=at, attempts=0)
    session.add(row)
    session.flush()
    for i, f in enumerate(incident.files):
        session.add(CyberTipReportFileRow(report_id=row.id, position=i, locator=f.locator,
                                          file_name=f.file_name[:255]))
    session.flush()
    record_audit_event(session, actor=actor, action="report.draft",
                       object_type="cybertip_report", object_id=str(row.id),
                       detail={"files": len(incident.files), "cases": list(incident.case_ids)})
    return _view(session, row)


def _row(session: Session, report_id: int, *, lock: bool = False) -> CyberTipReportRow:
    row = session.get(CyberTipReportRow, report_id, with_for_update=lock)
    if row is None:
        raise NotFound(f"no report {report_id}")
    return row


def get(session: Session, report_id: int) -> ReportView:
    """One report; raises :class:`NotFound`."""
    return _view(session, _row(session, report_id))


def list_reports(session: Session, *, state: str | None = None, limit: int = 100
                 ) -> list[ReportView]:
    """Reports, newest first, optionally of one ``state``."""
    if state is not None and state not in REPORT_STATES:
        raise InvalidInput(f"unknown report state {state!r}; expected one of {REPORT_STATES}")
    q = select(CyberTipReportRow).order_by(CyberTipReportRow.id.desc())
    if state is not None:
        q = q.where(CyberTipReportRow.state == state)
    return [_view(session, r) for r in session.execute(q.limit(max(1, limit))).scalars()]


def approve(session: Session, report_id: int, *, actor: str,
            now: datetime | None = None) -> ReportView:
    """Approve a ``draft`` (or re-approve a ``failed`` report after its cause was fixed) for
    submission; workers pick it up at once. A failed report that already has NCMEC's id
    resumes its remaining steps. Raises :class:`Conflict` from any other state."""
    row = _row(session, report_id, lock=True)
    if row.state not in ("draft", "failed"):
        raise Conflict(f"report {report_id} is {row.state}; only draft or failed reports "
                       "can be approved")
    at = now or utcnow()
    row.state = "approved" if row.ncmec_report_id is None else "submitting"
    row.approved_at = at
    row.approved_by = actor[:200]
    row.next_attempt_at = at
    row.attempts = 0
    row.updated_at = at
    record_audit_event(session, actor=actor, action="report.approve",
                       object_type="cybertip_report", object_id=str(report_id))
    return _view(session, row)


def resolve_reconciliation(session: Session, report_id: int, *, actor: str,
                           ncmec_report_id: int | None, now: datetime | None = None
                           ) -> ReportView:
    """An admin's answer for a ``needs_reconciliation`` report after checking with NCMEC:
    the report id NCMEC has (the submission resumes with the uploads), or None when NCMEC
    has none (the report goes back to ``approved`` and is submitted). Raises
    :class:`Conflict` from any other state."""
    row = _row(session, report_id, lock=True)
    if row.state != "needs_reconciliation":
        raise Conflict(f"report {report_id} is {row.state}, not needs_reconciliation")
    at = now or utcnow()
    row.ncmec_report_id = ncmec_report_id
    row.state = "approved" if ncmec_report_id is None else "submitting"
    row.next_attempt_at = at
    row.updated_at = at
    row.last_error = None
    record_audit_event(session, actor=actor, action="report.reconcile",
                       object_type="cybertip_report", object_id=str(report_id),
                       detail={"ncmec_report_id": ncmec_report_id})
    return _view(session, row)


def retry_now(session: Session, report_id: int, *, actor: str,
              now: datetime | None = None) -> ReportView:
    """Make an ``approved`` or ``submitting`` report that waits for its next attempt (after
    a server error or network failure) due now; workers pick it up at their next round.
    Audited (``report.retry``). Raises :class:`Conflict` from any other state."""
    row = _row(session, report_id, lock=True)
    if row.state not in ACTIVE_STATES:
        raise Conflict(f"report {report_id} is {row.state}; only approved or submitting "
                       "reports are retried (approve a failed one again)")
    at = now or utcnow()
    row.next_attempt_at = at
    row.updated_at = at
    record_audit_event(session, actor=actor, action="report.retry",
                       object_type="cybertip_report", object_id=str(report_id),
                       detail={"attempts": row.attempts})
    return _view(session, row)


#: States a report waits in for a person or the workers (what :func:`overdue` looks at).
WAITING_STATES = ("draft", "approved", "failed", "needs_reconciliation")


def overdue(session: Session, *, settings: Settings, now: datetime | None = None
            ) -> list[ReportView]:
    """Reports still ``draft``, ``approved``, ``failed`` or ``needs_reconciliation`` more
    than ``Settings.report_alert_hours`` after they were drafted (the law says "as soon as
    reasonably possible"): the UI and ``/metrics`` alert on them."""
    limit = (now or utcnow()) - timedelta(hours=settings.report_alert_hours)
    q = select(CyberTipReportRow).where(
        CyberTipReportRow.state.in_(WAITING_STATES),
        CyberTipReportRow.created_at < limit).order_by(CyberTipReportRow.id)
    return [_view(session, r) for r in session.execute(q).scalars()]


#: Why approved reports wait when :func:`credentials_configured` is false.
NO_CREDENTIALS = ("CyberTipline credentials are not configured: set cybertipline_username "
                  "and cybertipline_password, or approved reports are never submitted")


def credentials_configured(settings: Settings) -> bool:
    """True when the settings hold both CyberTipline credentials (the workers submit
    approved reports only then: :func:`bastion.actions.worker.build_worker`)."""
    return (settings.cybertipline_username is not None
            and settings.cybertipline_password is not None)


def alert_counts(session: Session, *, settings: Settings, now: datetime | None = None
                 ) -> dict[str, int]:
    """What ``/metrics`` and the UI alert on: ``overdue`` (see :func:`overdue`),
    ``needs_reconciliation`` and ``failed`` reports, and ``no_credentials``: approved
    reports that cannot be submitted because CyberTipline credentials are not configured
    (0 when they are)."""
    from sqlalchemy import func

    q = select(CyberTipReportRow.state, func.count()).group_by(CyberTipReportRow.state)
    by_state: dict[str, int] = {str(st): int(n) for st, n in session.execute(q).all()}
    limit = (now or utcnow()) - timedelta(hours=settings.report_alert_hours)
    late = session.execute(select(func.count()).select_from(CyberTipReportRow).where(
        CyberTipReportRow.state.in_(WAITING_STATES),
        CyberTipReportRow.created_at < limit)).scalar_one()
    stuck = 0 if credentials_configured(settings) else int(by_state.get("approved", 0))
    return {"overdue": int(late),
            "needs_reconciliation": int(by_state.get("needs_reconciliation", 0)),
            "failed": int(by_state.get("failed", 0)), "no_credentials": stuck}


class _LeaseLost(Exception):
    """Another worker took the report over (this worker's lease expired)."""


class ReportSubmitter:
    """Runs the submission state machine (module docstring) against the Reporting API.

    ``client`` talks to NCMEC (or the fake); ``files`` resolves file locators to bytes;
    ``clock`` returns aware UTC now. Several submitters (workers) may run at once: each
    report is leased to one at a time."""

    def __init__(self, db: Database, settings: Settings, client: CyberTiplineClient,
                 files: FileProvider, schema: CyberTiplineSchema, *,
                 clock: Callable[[], datetime] = utcnow, lease_s: float = REPORT_LEASE_S
                 ) -> None:
        self.db = db
        self.settings = settings
        self.client = client
        self.files = files
        self.schema = schema
        self.clock = clock
        self.lease_s = max(lease_s, 2 * settings.cybertipline_timeout_s)

    # -- claims -------------------------------------------------------------------------
    def _claim(self, worker: str, report_id: int | None) -> int | None:
        now = self.clock()
        with self.db.write() as session:
            q = select(CyberTipReportRow).where(
                CyberTipReportRow.state.in_(ACTIVE_STATES),
                CyberTipReportRow.claimed_until.is_(None)
                | (CyberTipReportRow.claimed_until < now))
            if report_id is None:
                q = q.where(CyberTipReportRow.next_attempt_at.is_(None)
                            | (CyberTipReportRow.next_attempt_at <= now))
            else:
                q = q.where(CyberTipReportRow.id == report_id)
            q = q.order_by(CyberTipReportRow.id).limit(1)
            if session.get_bind().dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True, of=CyberTipReportRow)
            row = session.execute(q).scalars().first()
            if row is None:
                return None
            if row.state == "submitting" and row.ncmec_report_id is None:
                # The previous worker stopped between recording ``submitting`` and storing
                # NCMEC's report id: /submit may or may not have reached NCMEC.
                self._reconcile(session, row, now, "interrupted after /submit was started "
                                "and before its report id was stored; check with NCMEC")
                return None
            row.claimed_by = worker[:100]
            row.claimed_until = now + timedelta(seconds=self.lease_s)
            return row.id

    def _reconcile(self, session: Session, row: CyberTipReportRow, now: datetime,
                   why: str) -> None:
        row.state = "needs_reconciliation"
        row.last_error = why
        row.claimed_by = None
        row.claimed_until = None
        row.updated_at = now
        record_audit_event(session, actor="worker", action="report.needs_reconciliation",
                           object_type="cybertip_report", object_id=str(row.id))
        log.warning("report %d needs reconciliation: %s", row.id, why)

    def _update(self, report_id: int, worker: str,
                change: Callable[[Session, CyberTipReportRow], None],
                release: bool = False) -> None:
        now = self.clock()
        with self.db.write() as session:
            row = _row(session, report_id, lock=True)
            if row.claimed_by != worker:
                raise _LeaseLost
            change(session, row)
            row.updated_at = now
            if release:
                row.claimed_by = None
                row.claimed_until = None
            else:
                row.claimed_until = now + timedelta(seconds=self.lease_s)

    # -- the state machine --------------------------------------------------------------
    def run_due(self, *, worker: str) -> int:
        """Advance every report due now, one claim at a time; returns how many."""
        done = 0
        while True:
            rid = self._claim(worker, None)
            if rid is None:
                return done
            self._advance_claimed(rid, worker)
            done += 1

    def submit_now(self, report_id: int, *, worker: str) -> ReportView:
        """Advance one ``approved`` or ``submitting`` report now, whatever its retry
        schedule (``bastion report submit``). Raises :class:`Conflict` when the report is in
        another state or another worker holds it."""
        rid = self._claim(worker, report_id)
        if rid is None:
            with self.db.read() as session:
                view = get(session, report_id)
            if view.state == "needs_reconciliation":
                return view
            raise Conflict(f"report {report_id} is {view.state} or held by another worker; "
                           "only approved or submitting reports are submitted")
        self._advance_claimed(rid, worker)
        with self.db.read() as session:
            return get(session, report_id)

    def _advance_claimed(self, report_id: int, worker: str) -> None:
        step = "submit"
        try:
            with self.db.read() as session:
                row = _row(session, report_id)
                state, ncmec_id = row.state, row.ncmec_report_id
                report_xml = row.report_xml.encode()
                incident = incident_from_json(row.incident)
                files = [(f.id, f.position, f.locator, f.file_name, f.ncmec_file_id,
                          f.uploaded_at is not None, f.fileinfo_at is not None)
                         for f in _files(session, report_id)]
            if state == "approved":
                ncmec_id = self._submit(report_id, worker, report_xml)
                if ncmec_id is None:
                    return
            assert ncmec_id is not None
            uploaded: dict[int, str] = {}
            for fid, _pos, locator, name, ncmec_file_id, is_up, _ in files:
                if is_up and ncmec_file_id is not None:
                    uploaded[fid] = ncmec_file_id
                    continue
                step = "upload"
                uploaded[fid] = self._upload(report_id, worker, ncmec_id, fid, locator, name)
            for fid, pos, _, _, _, _, described in files:
                if described:
                    continue
                step = "fileinfo"
                doc = build_file_details_xml(ncmec_id, uploaded[fid], incident.files[pos],
                                             self.schema)
                self.client.fileinfo(doc)
                self._update(report_id, worker, _mark_described(fid, self.clock()))
            step = "finish"
            self.client.finish(ncmec_id)
            self._finished(report_id, worker)
        except _LeaseLost:
            log.warning("report %d: lease lost to another worker", report_id)
        except CyberTiplineUnavailable as exc:
            self._retry_later(report_id, worker, step, exc)
        except (FileUnavailable, BastionError) as exc:
            if isinstance(exc, CyberTiplineRejected | ReportInvalid | LimitExceeded):
                self._failed(report_id, worker, exc)
            else:
                self._retry_later(report_id, worker, step, exc)

    def _submit(self, report_id: int, worker: str, report_xml: bytes) -> int | None:
        now = self.clock()

        def started(session: Session, row: CyberTipReportRow) -> None:
            row.state = "submitting"
            row.submit_started_at = now

        self._update(report_id, worker, started)  # committed BEFORE /submit is called
        try:
            ncmec_id = self.client.submit(report_xml)
        except CyberTiplineUnavailable as exc:
            if exc.maybe_processed:
                why = f"/submit outcome unknown ({exc.message}); check with NCMEC"

                def unknown(session: Session, row: CyberTipReportRow) -> None:
                    self._reconcile(session, row, self.clock(), why)
                self._update(report_id, worker, unknown, release=True)
                return None

            def not_sent(session: Session, row: CyberTipReportRow) -> None:
                row.state = "approved"  # NCMEC created nothing: submitting again is safe
            self._update(report_id, worker, not_sent)
            raise
        except CyberTiplineRejected:
            def rejected(session: Session, row: CyberTipReportRow) -> None:
                row.state = "approved"
            self._update(report_id, worker, rejected)
            raise

        def store_id(session: Session, row: CyberTipReportRow) -> None:
            row.ncmec_report_id = ncmec_id
            record_audit_event(session, actor="worker", action="report.submit",
                               object_type="cybertip_report", object_id=str(report_id),
                               detail={"ncmec_report_id": ncmec_id})
        self._update(report_id, worker, store_id)
        return ncmec_id

    def _upload(self, report_id: int, worker: str, ncmec_id: int, fid: int, locator: str,
                name: str) -> str:
        data = self.files.read(locator)
        md5 = hashlib.md5(data).hexdigest()
        file_id, their_md5 = self.client.upload(ncmec_id, name, data)
        if their_md5 is not None and their_md5.lower() != md5:
            raise CyberTiplineUnavailable(
                f"upload: NCMEC's MD5 of {name} differs from the file's; uploading again",
                maybe_processed=False)
        now = self.clock()

        def store(session: Session, row: CyberTipReportRow) -> None:
            f = session.get(CyberTipReportFileRow, fid)
            assert f is not None
            f.ncmec_file_id = file_id
            f.ncmec_md5 = their_md5 or md5
            f.uploaded_at = now
        self._update(report_id, worker, store)
        return file_id

    def _finished(self, report_id: int, worker: str) -> None:
        now = self.clock()

        def done(session: Session, row: CyberTipReportRow) -> None:
            row.state = "submitted"
            row.submitted_at = now
            row.last_error = None
            row.response_code = 0
            row.next_attempt_at = None
            record_audit_event(session, actor="worker", action="report.finish",
                               object_type="cybertip_report", object_id=str(report_id),
                               detail={"ncmec_report_id": row.ncmec_report_id})
        self._update(report_id, worker, done, release=True)
        log.info("report %d submitted to the CyberTipline", report_id)

    def _retry_later(self, report_id: int, worker: str, step: str, exc: BastionError) -> None:
        now = self.clock()

        def later(session: Session, row: CyberTipReportRow) -> None:
            row.attempts += 1
            row.last_error = f"{step}: {exc.message}"[:2000]
            row.next_attempt_at = now + timedelta(seconds=backoff_s(row.attempts,
                                                                    self.settings))
        with contextlib.suppress(_LeaseLost):
            self._update(report_id, worker, later, release=True)
        log.warning("report %d: %s failed, retrying later: %s", report_id, step, exc.message)

    def _failed(self, report_id: int, worker: str, exc: BastionError) -> None:
        code = exc.response_code if isinstance(exc, CyberTiplineRejected) else None

        def failed(session: Session, row: CyberTipReportRow) -> None:
            row.state = "failed"
            row.attempts += 1
            row.last_error = exc.message[:2000]
            row.response_code = code
            row.next_attempt_at = None
            record_audit_event(session, actor="worker", action="report.failed",
                               object_type="cybertip_report", object_id=str(report_id),
                               detail={"response_code": code})
        with contextlib.suppress(_LeaseLost):
            self._update(report_id, worker, failed, release=True)
        log.error("report %d failed: %s", report_id, exc.message)

    def retract(self, report_id: int, *, actor: str) -> ReportView:
        """``POST /retract`` a report NCMEC has an id for, then mark it ``retracted``.
        Raises :class:`Conflict` without an id or once finished (NCMEC 5102), and the
        client's errors otherwise."""
        with self.db.read() as session:
            row = _row(session, report_id)
            ncmec_id, state = row.ncmec_report_id, row.state
        if ncmec_id is None or state == "retracted":
            raise Conflict(f"report {report_id} is {state} and has no NCMEC report id "
                           "to retract" if ncmec_id is None else
                           f"report {report_id} is already retracted")
        try:
            self.client.retract(ncmec_id)
        except CyberTiplineRejected as exc:
            if exc.response_code == 5102:
                raise Conflict(f"report {report_id}: NCMEC says it is already finished; "
                               "finished reports cannot be retracted") from exc
            raise
        now = self.clock()
        with self.db.write() as session:
            row = _row(session, report_id, lock=True)
            row.state = "retracted"
            row.retracted_at = now
            row.updated_at = now
            row.next_attempt_at = None
            record_audit_event(session, actor=actor, action="report.retract",
                               object_type="cybertip_report", object_id=str(report_id),
                               detail={"ncmec_report_id": ncmec_id})
            return _view(session, row)


def _mark_described(fid: int, now: datetime) -> Callable[[Session, CyberTipReportRow], None]:
    def mark(session: Session, row: CyberTipReportRow) -> None:
        f = session.get(CyberTipReportFileRow, fid)
        assert f is not None
        f.fileinfo_at = now
    return mark
