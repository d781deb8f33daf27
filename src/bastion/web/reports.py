"""CyberTipline reports in the review UI (``/ui/reports``), the report alerts banner and the
case page's report fields.

Pages:

- ``GET /ui/reports`` (admins and auditors): reports, newest first, with their incident,
  user, files, state, age and NCMEC's id; filters: state, ``attention`` (drafts, failed,
  needs_reconciliation and overdue reports), ``overdue``.
- ``GET /ui/reports/{id}``: what will be sent: the incident's facts, each file's
  ``fileDetails`` facts (hashes, ``fileViewedByEsp``, annotations, EXIF tag names; EXIF
  values are not shown, so ``exifViewedByEsp`` stays true to its word), the report XML
  itself, the submission steps done and NCMEC's last answer.
- ``POST /ui/reports/{id}/approve`` (admins; CSRF): :func:`bastion.reporting.service.approve`
  (``report.approve`` audited with the admin as actor, as ``bastion report approve``), for
  a draft or a failed report whose cause was fixed.
- ``POST /ui/reports/{id}/retry`` (admins): :func:`~bastion.reporting.service.retry_now` for
  a report waiting for its next attempt.
- ``POST /ui/reports/{id}/reconcile`` (admins): :func:`~bastion.reporting.service.
  resolve_reconciliation` with NCMEC's report id, or ``not_received``.
- ``GET /ui/actions`` (admins and auditors): the outbox's dead-letter list (or pending or
  delivered actions); ``POST /ui/actions/{id}/retry`` and ``POST /ui/actions/retry-dead``
  (admins) put dead actions back in the queue (:func:`bastion.actions.outbox.retry`,
  audited as ``actions.retry``, as ``bastion actions retry`` is).

The banner (``base.html``, admins: they approve reports) names what ``/metrics`` alerts on
(:func:`bastion.reporting.service.alert_counts`: overdue, failed, needs_reconciliation,
approved reports that cannot be submitted because CyberTipline credentials are not
configured; preserved items past their clock that the purge has not removed; dead outbox
actions and those blocked because their kind has no webhook endpoint) plus
the drafts waiting for approval (urgent ones counted apart), with links to the pages.

The case page's decision form gets ``case_decide_report.html``: the CyberTipline
``fileAnnotations`` and ``reportAnnotations`` a reviewer may tick (the schema's names) and
"urgent" with its reason (``escalateToHighPriority``); parsed by the ``decide`` handler of
:mod:`bastion.web.app` (:func:`report_fields`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path as FastApiPath
from fastapi import Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from bastion.cases.schemas import FILE_ANNOTATIONS, REPORT_ANNOTATIONS, REPORTED_DECISIONS
from bastion.errors import InvalidInput
from bastion.reporting import service as reports
from bastion.reporting.incident import Incident, incident_from_json
from bastion.reporting.xml import pretty
from bastion.store.models_actions import CyberTipReportRow
from bastion.store.types import utcnow
from bastion.web.guard import require_role
from bastion.web.kit import UiKit

#: A report id in a URL (a positive 63-bit integer).
ReportId = Annotated[int, FastApiPath(ge=1, le=2**63 - 1)]
#: An outbox action id in a URL (a positive 63-bit integer).
ActionId = Annotated[int, FastApiPath(ge=1, le=2**63 - 1)]
#: Reports listed on one page.
PAGE_SIZE = 200
#: Roles that see reports (no media: facts, hashes and the report document only).
READERS = ("admin", "auditor")
#: States of outbox actions shown by ``/ui/actions``: ``failed`` (the default) is every
#: action an operator must act on, ``dead`` (past its maximum age) or ``blocked`` (its kind
#: has no webhook endpoint configured).
ACTION_STATES = ("failed", "blocked", "dead", "pending", "delivered")
#: States whose actions the page offers to retry.
RETRYABLE_VIEWS = ("failed", "blocked", "dead")

#: People's words for the schema's ``fileAnnotations`` (from its documentation).
FILE_ANNOTATION_LABELS: dict[str, str] = {
    "animeDrawingVirtualHentai": "Anime, drawing, cartoon or virtual",
    "potentialMeme": "Potential meme (shared out of mimicry, not malice)",
    "viral": "Viral (circulating rapidly between users)",
    "possibleSelfProduction": "Possibly self-produced",
    "physicalHarm": "Physical harm",
    "violenceGore": "Violence or gore",
    "bestiality": "Involves an animal",
    "liveStreaming": "Streamed live when uploaded",
    "infant": "Depicts an infant",
    "generativeAi": "Generative AI",
}
#: People's words for the schema's ``reportAnnotations``.
REPORT_ANNOTATION_LABELS: dict[str, str] = {
    "sextortion": "Sextortion",
    "csamSolicitation": "Solicitation of abuse material",
    "minorToMinorInteraction": "Interaction between minors",
    "spam": "Spam",
    "sadisticOnlineExploitation": "Sadistic online exploitation",
}


def report_fields(form: Any) -> dict[str, Any]:
    """The report fields of a posted decision form (``file_annotation`` and
    ``report_annotation`` checkboxes, ``urgent`` and ``urgent_reason``) as keyword
    arguments of :func:`bastion.cases.service.decide`. Raises :class:`InvalidInput` when a
    reason is given without ticking "urgent" or a name comes more often than there are
    names (the service checks the rest)."""
    def values(name: str, names: tuple[str, ...]) -> list[str]:
        got = [str(v) for v in form.getlist(name)]
        if len(got) > len(names):
            raise InvalidInput(f"at most {len(names)} values of {name}")
        return got

    urgent = form.get("urgent") == "1"
    reason = str(form.get("urgent_reason") or "")
    if not urgent and reason.strip():
        raise InvalidInput("an urgency reason was given without ticking \"urgent\": tick it "
                           "or clear the reason")
    return {"file_annotations": values("file_annotation", FILE_ANNOTATIONS),
            "report_annotations": values("report_annotation", REPORT_ANNOTATIONS),
            "urgent_reason": reason if urgent else None}


@dataclass(frozen=True, slots=True)
class ReportAlerts:
    """What the banner says (counts; an overdue draft counts as a draft and as overdue)."""

    drafts: int
    urgent_drafts: int
    overdue: int
    failed: int
    needs_reconciliation: int
    purge_due: int
    #: Outbox actions past their maximum age (the dead-letter list).
    dead_actions: int = 0
    #: Outbox actions blocked by a configuration error (no webhook endpoint for the kind).
    blocked_actions: int = 0
    #: Kinds of the blocked actions (for the banner's words), sorted.
    blocked_kinds: tuple[str, ...] = ()
    #: Approved reports that cannot be submitted: CyberTipline credentials not configured.
    unsubmittable: int = 0

    @property
    def total(self) -> int:
        """Sum of the counts (urgent drafts are counted among drafts): 0 when nothing
        waits for an admin."""
        return (self.drafts + self.overdue + self.failed + self.needs_reconciliation
                + self.purge_due + self.dead_actions + self.blocked_actions
                + self.unsubmittable)


def _urgent(incident: dict[str, Any]) -> bool:
    return bool(isinstance(incident, dict) and incident.get("escalation_reason"))


def alerts(session: Any, settings: Any, now: datetime | None = None) -> ReportAlerts:
    """The banner's counts (module docstring) from the store."""
    from bastion.actions.outbox import counts as action_counts
    from bastion.evidence.preservation import due_for_purge
    from bastion.store.models_actions import ActionRow

    counts = reports.alert_counts(session, settings=settings, now=now)
    totals = action_counts(session)
    kinds = tuple(sorted(str(k) for k in session.execute(
        select(ActionRow.kind).where(ActionRow.state == "blocked").distinct()).scalars()))
    drafts = list(session.execute(select(CyberTipReportRow.incident).where(
        CyberTipReportRow.state == "draft").limit(10_000)).scalars())
    return ReportAlerts(
        drafts=len(drafts), urgent_drafts=sum(1 for d in drafts if _urgent(d)),
        overdue=counts["overdue"], failed=counts["failed"],
        needs_reconciliation=counts["needs_reconciliation"],
        purge_due=len(due_for_purge(session, now=now,
                                    preservation_days=settings.preservation_days)),
        dead_actions=totals["dead"], blocked_actions=totals["blocked"], blocked_kinds=kinds,
        unsubmittable=counts.get("no_credentials", 0))


def _incident(view: reports.ReportView) -> Incident | None:
    """The report's incident, or None once its facts were purged (or unreadable)."""
    if view.incident.get("purged"):
        return None
    try:
        return incident_from_json(view.incident)
    except InvalidInput:
        return None


def _age(delta_s: float) -> str:
    minutes = int(delta_s // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // 1440} d"


def register(kit: UiKit) -> None:
    """Add the reports pages, the alerts banner's data and the decision form's report
    fields to the UI (module docstring)."""
    ui, db, settings = kit.app, kit.db, kit.settings
    prefix = "/ui"

    def banner() -> ReportAlerts:
        with db.read() as s:
            return alerts(s, settings)

    kit.env.globals.update(
        report_alerts=banner, file_annotation_labels=FILE_ANNOTATION_LABELS,
        report_annotation_labels=REPORT_ANNOTATION_LABELS, file_annotations=FILE_ANNOTATIONS,
        report_annotations=REPORT_ANNOTATIONS, reported_decisions=REPORTED_DECISIONS,
        cybertipline_ready=reports.credentials_configured(settings),
        no_credentials_message=reports.NO_CREDENTIALS)
    kit.decide_templates.append("case_decide_report.html")

    def overdue_ids(s: Any) -> set[int]:
        return {v.id for v in reports.overdue(s, settings=settings)}

    @ui.get(f"{prefix}/reports")
    def reports_page(
        request: Request,
        state: Annotated[str | None, Query(max_length=32)] = None,
        attention: Annotated[bool, Query()] = False,
        overdue: Annotated[bool, Query()] = False,
    ) -> Response:
        viewer = kit.viewer_of(request)
        require_role(viewer, *READERS)
        if state and state not in reports.REPORT_STATES:
            raise InvalidInput(f"unknown report state {state!r}; one of "
                               f"{', '.join(reports.REPORT_STATES)}")
        now = utcnow()
        with db.read() as s:
            late = overdue_ids(s)
            if overdue:
                views = reports.overdue(s, settings=settings)[:PAGE_SIZE]
            elif attention:
                views = [v for st in ("needs_reconciliation", "failed", "draft")
                         for v in reports.list_reports(s, state=st, limit=PAGE_SIZE)]
                seen = {v.id for v in views}
                views += [v for v in reports.overdue(s, settings=settings)
                          if v.id not in seen]
                views = views[:PAGE_SIZE]
            else:
                views = reports.list_reports(s, state=state or None, limit=PAGE_SIZE)
            banner_counts = alerts(s, settings, now)
        rows = []
        for v in views:
            inc = _incident(v)
            rows.append({
                "view": v, "incident": inc, "overdue": v.id in late,
                "user": (inc.reported_users[0].esp_identifier
                         if inc is not None and inc.reported_users else None),
                "age": _age((now - v.created_at).total_seconds()),
            })
        return kit.page("reports.html", viewer, rows=rows, state=state or "",
                        attention=attention, overdue=overdue, states=reports.REPORT_STATES,
                        counts=banner_counts, alert_hours=settings.report_alert_hours)

    @ui.get(f"{prefix}/reports/{{report_id}}")
    def report_page(request: Request, report_id: ReportId) -> Response:
        viewer = kit.viewer_of(request)
        require_role(viewer, *READERS)
        now = utcnow()
        with db.read() as s:
            view = reports.get(s, report_id)
            row = s.get(CyberTipReportRow, report_id)
            doc = "" if row is None else row.report_xml
            late = report_id in overdue_ids(s)
        inc = _incident(view)
        try:
            document = pretty(doc.encode()) if doc else ""
        except InvalidInput:
            document = doc
        files = []
        for f in view.files:
            facts = inc.files[f.position] if inc is not None and f.position < len(
                inc.files) else None
            files.append({"step": f, "facts": facts})
        waiting = (view.state in reports.ACTIVE_STATES and view.next_attempt_at is not None
                   and view.next_attempt_at > now)
        return kit.page("reports_detail.html", viewer, view=view, incident=inc, files=files,
                        document=document, overdue=late, waiting=waiting,
                        age=_age((now - view.created_at).total_seconds()),
                        can_act=viewer.role == "admin")

    def _back(report_id: int) -> Response:
        from bastion.web.app import HEADERS

        return RedirectResponse(f"{prefix}/reports/{report_id}", status_code=303,
                                headers=HEADERS)

    @ui.post(f"{prefix}/reports/{{report_id}}/approve")
    async def approve(request: Request, report_id: ReportId) -> Response:
        viewer, _form = await kit.posted(request, "admin")
        with db.write() as s:
            reports.approve(s, report_id, actor=viewer.actor)
        return _back(report_id)

    @ui.post(f"{prefix}/reports/{{report_id}}/retry")
    async def retry(request: Request, report_id: ReportId) -> Response:
        viewer, _form = await kit.posted(request, "admin")
        with db.write() as s:
            reports.retry_now(s, report_id, actor=viewer.actor)
        return _back(report_id)

    @ui.get(f"{prefix}/actions")
    def actions_page(
        request: Request, state: Annotated[str, Query(max_length=16)] = "failed",
    ) -> Response:
        from bastion.actions import outbox

        viewer = kit.viewer_of(request)
        require_role(viewer, *READERS)
        if state not in ACTION_STATES:
            raise InvalidInput(f"unknown action state {state!r}; one of "
                               f"{', '.join(ACTION_STATES)}")
        with db.read() as s:
            if state == "failed":
                rows = outbox.list_actions(s, failed=True, limit=PAGE_SIZE)
            else:
                rows = outbox.list_actions(s, state=state, limit=PAGE_SIZE)
            totals: dict[str, int] = dict(outbox.counts(s))
        totals["failed"] = sum(totals[x] for x in outbox.FAILED_STATES)
        return kit.page("reports_actions.html", viewer, actions=rows, state=state,
                        totals=totals, states=ACTION_STATES, can_act=viewer.role == "admin",
                        retryable=state in RETRYABLE_VIEWS)

    def _actions_back(request: Request) -> Response:
        from bastion.web.app import HEADERS

        return RedirectResponse(f"{prefix}/actions", status_code=303, headers=HEADERS)

    @ui.post(f"{prefix}/actions/{{action_id}}/retry")
    async def action_retry(request: Request, action_id: ActionId) -> Response:
        from bastion.actions import outbox
        from bastion.store.audit import record_audit_event

        viewer, _form = await kit.posted(request, "admin")
        with db.write() as s:
            outbox.retry(s, action_id, settings=settings)
            record_audit_event(s, actor=viewer.actor, action="actions.retry",
                               object_type="action", object_id=str(action_id),
                               detail={"count": 1})
        return _actions_back(request)

    @ui.post(f"{prefix}/actions/retry-dead")
    async def actions_retry_dead(request: Request) -> Response:
        from bastion.actions import outbox
        from bastion.store.audit import record_audit_event

        viewer, _form = await kit.posted(request, "admin")
        with db.write() as s:
            n = outbox.retry_all_dead(s, settings=settings)
            record_audit_event(s, actor=viewer.actor, action="actions.retry",
                               object_type="action", object_id="all", detail={"count": n})
        return _actions_back(request)

    @ui.post(f"{prefix}/reports/{{report_id}}/reconcile")
    async def reconcile(request: Request, report_id: ReportId) -> Response:
        viewer, form = await kit.posted(request, "admin")
        not_received = form.get("not_received") == "1"
        raw = str(form.get("ncmec_report_id") or "").strip()
        if not_received == bool(raw):
            raise InvalidInput("give NCMEC's report id, or tick that NCMEC has no such "
                               "report (one of them)")
        ncmec_id: int | None = None
        if raw:
            if not raw.isdigit() or len(raw) > 18 or int(raw) < 1:
                raise InvalidInput("NCMEC's report id is a positive whole number")
            ncmec_id = int(raw)
        with db.write() as s:
            reports.resolve_reconciliation(s, report_id, actor=viewer.actor,
                                           ncmec_report_id=ncmec_id)
        return _back(report_id)
