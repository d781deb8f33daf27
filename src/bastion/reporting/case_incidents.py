"""CyberTipline reports from decided cases: one report per incident.

An *incident* (DESIGN.md "Words") is one user's decided cases with a reportable decision
(``csam``, ``child_exploitation_other``, ``trafficking``) not reported yet; a case without a
user is an incident of its own. :func:`pending_incidents` finds them, :func:`build_incident`
turns one into an :class:`~bastion.reporting.incident.Incident` and :func:`draft_incident`
stores its draft (:func:`bastion.reporting.service.create_draft`), marks each case reported
(a ``reported`` case event naming the report), preserves each item for
``Settings.preservation_days`` (:func:`bastion.evidence.preservation.preserve`) and, when
``Settings.cybertipline_auto_approve_verified`` allows it, approves the draft::

    with db.write() as session:
        for pending in pending_incidents(session):
            view = draft_incident(session, case_ids=pending.case_ids, schema=schema,
                                  settings=settings, actor="user:3", vault=vault)

What the report says, from the store:

- ``incidentType`` from the decisions: ``csam`` first, then ``trafficking``, then
  ``child_exploitation_other`` (an incident with several kinds reports as the first);
- ``incidentDateTime``: the earliest upload time the platform sent (else when the first
  case was opened);
- ``internetDetails``: the items' ``published_url`` values (web pages);
- ``personOrUserReported``: the user id as ``espIdentifier``, each item's upload IP, port
  and time as an ``Upload`` capture event, ``accountTemporarilyDisabled`` with its date
  when a ``suspend`` action was delivered, ``priorCTReports`` with NCMEC's ids of earlier
  reports about the same user;
- one file per case whose media the vault holds (``evidence:<id>``): ``fileViewedByEsp`` is
  true exactly when a person revealed it (an audited ``case.reveal``:
  :func:`bastion.cases.service.revealed_cases`; a decision on the blurred preview is not a
  view), ``industryClassification`` of a ``csam`` decision, ``originalFileHash`` the
  platform's pre-transcode hashes where it sent them, else Bastion's MD5/SHA-1/SHA-256,
  the upload time and IP. Hash-only cases (no file held) are listed with their hashes in
  the report's ``additionalInfo``.

- each file's ``fileAnnotations`` (``potentialMeme``, ``generativeAi`` ...) as its
  deciding reviewer ticked them, and, when a vault is given, the original EXIF of the
  preserved bytes (:func:`bastion.reporting.exif.extract_exif`, in an isolated, limited
  parser unless ``Settings.decode_workers`` is 0; ``exifViewedByEsp`` false: no one is
  shown the values);
- ``reportAnnotations`` (``sextortion`` ...): every name a reviewer ticked on any of the
  cases, plus the caller's ``annotations``;
- ``escalateToHighPriority`` when a reviewer marked a case urgent: the reason (``case N:
  reason; ...`` for several), plus the caller's ``escalation_reason``.

Errors: :class:`NotFound`, :class:`Conflict` (a case reported already, or
not decided as reportable), :class:`InvalidInput`, :class:`ReportInvalid` (naming the
element; nothing stored).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from bastion.cases import service as cases
from bastion.cases.schemas import FILE_ANNOTATIONS, REPORT_ANNOTATIONS
from bastion.config import Settings
from bastion.errors import Conflict, InvalidInput, NotFound
from bastion.reporting import service as reports
from bastion.reporting.exif import ExifResult
from bastion.reporting.incident import (
    INCIDENT_TYPE_OF_DECISION,
    AccountDisabled,
    Incident,
    IncidentFile,
    InternetDetails,
    IpCaptureEvent,
    OriginalHash,
    ReportAnnotation,
    ReportedUser,
)
from bastion.reporting.xml import CyberTiplineSchema
from bastion.store.audit import record_audit_event
from bastion.store.database import Database
from bastion.store.models_actions import ActionRow, CyberTipReportRow
from bastion.store.models_api import ContentVerdict
from bastion.store.models_review import Case, CaseEvent
from bastion.store.types import utcnow

if TYPE_CHECKING:
    from bastion.evidence.vault import Vault

log = logging.getLogger(__name__)

#: Decisions that are reported.
REPORTABLE = ("csam", "child_exploitation_other", "trafficking")
#: Which decision names an incident with several kinds: the first present.
_PRECEDENCE = ("csam", "trafficking", "child_exploitation_other")
#: Case event kind marking a case reported (``detail``: ``{"report_id": n}``).
REPORTED_EVENT = "reported"
#: Cases per incident (a report holds at most ``reports.MAX_FILES`` files).
MAX_CASES = reports.MAX_FILES
_EXACT = {"md5": "MD5", "sha1": "SHA1", "sha256": "SHA256"}
_EXT = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif",
        "image/webp": ".webp", "image/bmp": ".bmp", "image/tiff": ".tif",
        "video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class PendingIncident:
    """One incident waiting for its report: the user (None for a case without one) and
    the case ids, oldest first."""

    user_id: str | None
    case_ids: tuple[int, ...]


def _unreported() -> Any:
    return ~exists().where(CaseEvent.case_id == Case.id, CaseEvent.kind == REPORTED_EVENT)


def pending_incidents(session: Session, *, limit: int = 100) -> list[PendingIncident]:
    """Incidents not reported yet (module docstring), at most ``limit`` (1-1000), the one
    with the oldest decided case first."""
    limit = max(1, min(limit, 1000))
    rows = session.execute(
        select(Case.id, Case.user_id).where(Case.state == "decided",
                                            Case.decision.in_(REPORTABLE), _unreported())
        .order_by(Case.decided_at, Case.id)).all()
    groups: dict[str, list[int]] = {}
    out: list[PendingIncident] = []
    for case_id, user_id in rows:
        if user_id is None:
            out.append(PendingIncident(None, (int(case_id),)))
        elif user_id in groups:
            if len(groups[user_id]) < MAX_CASES:
                groups[user_id].append(int(case_id))
        else:
            groups[user_id] = [int(case_id)]
            out.append(PendingIncident(str(user_id), ()))
    return [PendingIncident(p.user_id, tuple(sorted(groups[p.user_id])))
            if p.user_id is not None else p for p in out][:limit]


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def _hashes(meta: dict[str, Any], signals: list[dict[str, Any]]) -> tuple[OriginalHash, ...]:
    original = meta.get("original_hashes") or {}
    out = [OriginalHash(_EXACT[k], str(v)) for k, v in original.items()
           if k in _EXACT and v]
    if not out:
        out = [OriginalHash(_EXACT[str(s["signal_type"])], str(s["value"])) for s in signals
               if s.get("signal_type") in _EXACT and s.get("value")]
    return tuple(out)


def _prior_reports(session: Session, user_id: str) -> tuple[int, ...]:
    report_ids = set()
    for detail in session.execute(
        select(CaseEvent.detail).join(Case, Case.id == CaseEvent.case_id)
        .where(Case.user_id == user_id, CaseEvent.kind == REPORTED_EVENT)
    ).scalars():
        if isinstance(detail, dict) and isinstance(detail.get("report_id"), int):
            report_ids.add(detail["report_id"])
    if not report_ids:
        return ()
    return tuple(sorted(n for n in session.execute(
        select(CyberTipReportRow.ncmec_report_id).where(
            CyberTipReportRow.id.in_(report_ids),
            CyberTipReportRow.ncmec_report_id.is_not(None))).scalars() if n is not None))


#: Longest ``escalateToHighPriority`` text built from the cases' reasons, characters.
MAX_ESCALATION_CHARS = 4000


def _escalation(reasons: list[tuple[int, str]], given: str | None) -> str | None:
    parts = [given.strip()] if given and given.strip() else []
    if len(reasons) == 1 and not parts:
        parts.append(reasons[0][1])
    else:
        parts.extend(f"case {cid}: {why}" for cid, why in reasons)
    text = "; ".join(parts)
    if len(text) > MAX_ESCALATION_CHARS:
        text = text[:MAX_ESCALATION_CHARS - 1] + "…"
    return text or None


def _read_exif(session: Session, vault: Vault, evidence_id: int, isolated: bool
               ) -> ExifResult:
    """The EXIF of one vault item (bytes decrypted in memory only)."""
    from bastion.errors import BastionError
    from bastion.reporting.exif import extract_exif

    try:
        data = vault.read(session, evidence_id)
    except BastionError as exc:
        return ExifResult((), f"media unreadable ({exc.message})"[:200])
    return extract_exif(data, isolated=isolated)


def prefetch_exif(db: Database, *, vault: Vault, case_ids: Sequence[int],
                  settings: Settings) -> dict[int, ExifResult]:
    """The EXIF of each case's media (cases without media or with a video left out), each
    read in its own short read transaction and parsed outside any (the isolated parser
    takes tens of milliseconds a file: a drafting transaction, which holds SQLite's write
    lock, should not wait for it). Pass the result to :func:`draft_incident`."""
    from bastion.errors import BastionError
    from bastion.reporting.exif import extract_exif

    isolated = settings.decode_workers != 0
    out: dict[int, ExifResult] = {}
    for cid in case_ids:
        with db.read() as session:
            case = cases.get(session, case_id=int(cid))
            if case.evidence_id is None:
                continue
            meta = session.execute(select(ContentVerdict.meta).where(
                ContentVerdict.content_id == case.content_id)).scalar_one_or_none()
            if str((meta or {}).get("content_type") or "").lower().startswith("video/"):
                continue
            try:
                data = vault.read(session, case.evidence_id)
            except BastionError as exc:
                out[int(cid)] = ExifResult((), f"media unreadable ({exc.message})"[:200])
                continue
        out[int(cid)] = extract_exif(data, isolated=isolated)
        del data
    return out


def build_incident(
    session: Session, *, case_ids: Sequence[int], settings: Settings,
    escalation_reason: str | None = None, annotations: tuple[ReportAnnotation, ...] = (),
    vault: Vault | None = None, actor: str = "system:report",
    exif_of: Mapping[int, ExifResult] | None = None,
) -> Incident:
    """The :class:`Incident` of ``case_ids`` (one user's decided, reportable, unreported
    cases; see the module docstring for what it says). Each file's EXIF comes from
    ``exif_of`` (case id -> :func:`prefetch_exif`'s result) or, failing that, is read with
    ``vault`` from its bytes now; either way its reading is audited (``report.exif`` by
    ``actor``). Raises :class:`NotFound`, :class:`Conflict`, :class:`InvalidInput`."""
    ids = sorted(set(int(i) for i in case_ids))
    if not 1 <= len(ids) <= MAX_CASES:
        raise InvalidInput(f"an incident holds 1-{MAX_CASES} cases")
    rows = {c.id: c for c in session.execute(select(Case).where(Case.id.in_(ids))).scalars()}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise NotFound(f"no case {missing[0]}")
    reported = set(session.execute(select(CaseEvent.case_id).where(
        CaseEvent.case_id.in_(ids), CaseEvent.kind == REPORTED_EVENT)).scalars())
    for c in rows.values():
        if c.state != "decided" or c.decision not in REPORTABLE:
            raise Conflict(f"case {c.id} is not decided as reportable "
                           f"({c.state}, {c.decision})")
        if c.id in reported:
            raise Conflict(f"case {c.id} is reported already")
    users = {c.user_id for c in rows.values()}
    if len(users) != 1:
        raise InvalidInput("an incident's cases belong to one user")
    (user_id,) = users
    decisions = {str(c.decision) for c in rows.values()}
    kind = next(d for d in _PRECEDENCE if d in decisions)
    revealed = cases.revealed_cases(session, case_ids=ids)
    verdicts = {v.content_id: v for v in session.execute(select(ContentVerdict).where(
        ContentVerdict.content_id.in_([c.content_id for c in rows.values()]))).scalars()}
    files: list[IncidentFile] = []
    ips: list[IpCaptureEvent] = []
    urls: list[str] = []
    times: list[datetime] = []
    hash_only: list[str] = []
    urgent: list[tuple[int, str]] = []
    report_ann: set[str] = set(annotations)
    for cid in ids:
        c = rows[cid]
        if c.urgent_reason:
            urgent.append((cid, c.urgent_reason))
        report_ann.update(c.report_annotations or ())
        v = verdicts.get(c.content_id)
        meta: dict[str, Any] = dict(v.meta) if v is not None else {}
        signals: list[dict[str, Any]] = list(v.verdict.get("signals", [])) if v else []
        uploaded = _time(meta.get("uploaded_at"))
        times.append(uploaded or c.opened_at)
        ip = None
        if meta.get("ip"):
            ip = IpCaptureEvent(str(meta["ip"]), "Upload", uploaded,
                                int(meta["port"]) if meta.get("port") is not None else None)
            if ip not in ips:
                ips.append(ip)
        url = meta.get("published_url")
        if url and url not in urls:
            urls.append(str(url))
        hashes = _hashes(meta, signals)
        evidence_id = cases.get(session, case_id=cid).evidence_id
        if evidence_id is None:
            hash_only.append(f"content {c.content_id}: " + (", ".join(
                f"{h.hash_type} {h.value}" for h in hashes) or "no hash"))
            continue
        content_type = str(meta.get("content_type") or "").lower()
        ext = _EXT.get(content_type, "")
        exif: tuple[tuple[str, str], ...] = ()
        exif_note: str | None = None
        if content_type.startswith("video/"):
            exif_note = "a video: no EXIF"
        elif vault is None and (exif_of is None or cid not in exif_of):
            exif_note = "EXIF not read (no evidence vault)"
        else:
            if exif_of is not None and cid in exif_of:
                result = exif_of[cid]
            else:
                assert vault is not None
                result = _read_exif(session, vault, evidence_id, settings.decode_workers != 0)
            exif, exif_note = result.tags, result.note
            if exif_note and not exif:
                log.info("case %d: no EXIF for its report: %s", cid, exif_note)
            record_audit_event(session, actor=actor, action="report.exif", object_type="case",
                               object_id=str(cid),
                               detail={"evidence_id": evidence_id, "tags": len(exif),
                                       "note": exif_note})
        files.append(IncidentFile(
            locator=f"evidence:{evidence_id}",
            file_name=f"case-{cid}-{_UNSAFE.sub('_', c.content_id)[:80]}{ext}",
            content_id=c.content_id, uploaded_at=uploaded,
            location_of_file=str(url) if url else None,
            viewed_by_esp=cid in revealed,
            publicly_available=meta.get("publicly_available")
            if isinstance(meta.get("publicly_available"), bool) else None,
            industry_classification=c.classification if c.decision == "csam"  # type: ignore[arg-type]
            and c.classification in ("A1", "A2", "B1", "B2") else None,
            original_hashes=hashes, upload_ip=ip,
            annotations=tuple(a for a in FILE_ANNOTATIONS if a in (c.file_annotations or ())),
            exif=exif, exif_note=exif_note))
    suspended = session.execute(select(ActionRow.delivered_at).where(
        ActionRow.kind == "suspend", ActionRow.user_id == user_id,
        ActionRow.state == "delivered").order_by(ActionRow.delivered_at)).scalars().first() \
        if user_id is not None else None
    reported_user = ReportedUser(
        esp_identifier=user_id, ip_capture_events=tuple(ips),
        prior_reports=_prior_reports(session, user_id),
        temporarily_disabled=AccountDisabled(disabled_at=suspended)
        if suspended is not None else None) if user_id is not None else None
    return Incident(
        key=f"user:{user_id}:{ids[0]}" if user_id is not None else f"case:{ids[0]}",
        incident_type=INCIDENT_TYPE_OF_DECISION[kind], incident_at=min(times),
        reporter=reports.reporter_from_settings(settings),
        escalation_reason=_escalation(urgent, escalation_reason),
        annotations=tuple(a for a in REPORT_ANNOTATIONS if a in report_ann),
        internet_details=(InternetDetails(kind="web_page", urls=tuple(urls[:50])),)
        if urls else (),
        reported_users=(reported_user,) if reported_user is not None else (),
        files=tuple(files),
        additional_info=("Reported by hash only (no file held): " + "; ".join(hash_only))
        if hash_only else None,
        case_ids=tuple(str(i) for i in ids))


def auto_approvable(session: Session, *, case_ids: Sequence[int]) -> bool:
    """True when every case is a ``csam`` decision on an exact (MD5, SHA-1, SHA-256) match
    in a bank with ``auto_action`` (verified material) plus the reviewer's confirmation."""
    from bastion.banks import service as banks

    verified: dict[str, bool] = {}
    for c in session.execute(select(Case).where(Case.id.in_(list(case_ids)))).scalars():
        if c.decision != "csam" or c.state != "decided":
            return False
        ok = False
        for m in c.matches:
            name = str(m.get("bank"))
            if m.get("signal_type") not in _EXACT:
                continue
            if name not in verified:
                try:
                    verified[name] = banks.get(session, name=name).auto_action
                except NotFound:
                    verified[name] = False
            ok = ok or verified[name]
        if not ok:
            return False
    return bool(case_ids)


def draft_incident(
    session: Session, *, case_ids: Sequence[int], schema: CyberTiplineSchema,
    settings: Settings, actor: str, vault: Vault | None = None,
    escalation_reason: str | None = None, annotations: tuple[ReportAnnotation, ...] = (),
    exif_of: Mapping[int, ExifResult] | None = None, now: datetime | None = None,
) -> reports.ReportView:
    """Build, validate and store the draft report of ``case_ids`` in ``session``'s
    transaction; mark the cases reported; preserve each item when ``vault`` is given;
    approve it (actor ``system:policy``) when the settings allow and
    :func:`auto_approvable`. Raises as :func:`build_incident` and
    :func:`~bastion.reporting.service.create_draft`."""
    at = now or utcnow()
    incident = build_incident(session, case_ids=case_ids, settings=settings,
                              escalation_reason=escalation_reason, annotations=annotations,
                              vault=vault, actor=actor, exif_of=exif_of)
    view = reports.create_draft(session, incident=incident, schema=schema, settings=settings,
                                actor=actor, now=at)
    for cid in incident.case_ids:
        session.add(CaseEvent(case_id=int(cid), at=at, kind=REPORTED_EVENT, actor=actor[:200],
                              detail={"report_id": view.id}))
    if vault is not None:
        from bastion.evidence.preservation import preserve

        for cid in incident.case_ids:
            preserve(session, vault=vault, case_id=int(cid), settings=settings, actor=actor,
                     report_id=view.id, now=at)
    session.flush()
    if settings.cybertipline_auto_approve_verified and auto_approvable(
            session, case_ids=[int(c) for c in incident.case_ids]):
        view = reports.approve(session, view.id, actor="system:policy", now=at)
    return view


@dataclass(frozen=True, slots=True)
class DraftOutcome:
    """What :func:`draft_pending` did for one incident: the report (None when refused) and
    the refusal's message (e.g. :class:`ReportInvalid` naming the element)."""

    user_id: str | None
    case_ids: tuple[int, ...]
    report: reports.ReportView | None
    error: str | None


def draft_pending(
    db: Database, *, schema: CyberTiplineSchema, settings: Settings, actor: str,
    vault: Vault | None = None, limit: int = 100, now: datetime | None = None,
) -> list[DraftOutcome]:
    """Draft a report for every pending incident (:func:`pending_incidents`, at most
    ``limit``), each in its own transaction (:func:`draft_incident`); an incident whose
    report is refused is rolled back alone and listed with the message (it stays pending
    until fixed)."""
    from sqlalchemy.exc import IntegrityError

    from bastion.errors import BastionError

    with db.read() as session:
        pending = pending_incidents(session, limit=limit)
    out: list[DraftOutcome] = []
    for p in pending:
        try:
            exif_of = None if vault is None else prefetch_exif(
                db, vault=vault, case_ids=p.case_ids, settings=settings)
            with db.write() as session:
                view = draft_incident(session, case_ids=p.case_ids, schema=schema,
                                      settings=settings, actor=actor, vault=vault,
                                      exif_of=exif_of, now=now)
        except BastionError as exc:
            out.append(DraftOutcome(p.user_id, p.case_ids, None, exc.message))
        except IntegrityError:  # another worker drafted it at the same time
            continue
        else:
            out.append(DraftOutcome(p.user_id, p.case_ids, view, None))
    return out


class DraftingRunner:
    """Drafts pending incidents (:func:`draft_pending`, preserving with ``vault``), then
    runs ``submitter`` (a :class:`~bastion.reporting.service.ReportSubmitter`): what the
    workers run each round, so a reportable decision becomes a draft for an admin to
    approve (or an approved report where the settings allow). ``submitter`` None (no
    CyberTipline credentials) drafts and preserves only; approved reports then wait, and
    the UI and ``/metrics`` say why. A refusal is logged once per incident and message."""

    def __init__(self, db: Database, settings: Settings, schema: CyberTiplineSchema,
                 submitter: reports.ReportSubmitter | None, vault: Vault | None) -> None:
        self.db = db
        self.settings = settings
        self.schema = schema
        self.submitter = submitter
        self.vault = vault
        self._logged: set[tuple[tuple[int, ...], str]] = set()

    def run_due(self, *, worker: str) -> int:
        """Draft what is pending, then advance due reports; returns drafts + steps."""
        import logging

        drafted = 0
        for o in draft_pending(self.db, schema=self.schema, settings=self.settings,
                               actor="system:report", vault=self.vault):
            if o.report is not None:
                drafted += 1
            elif (o.case_ids, o.error or "") not in self._logged:
                self._logged.add((o.case_ids, o.error or ""))
                logging.getLogger(__name__).warning(
                    "report for cases %s refused: %s", list(o.case_ids), o.error)
        if self.submitter is None:  # no credentials: drafts (and preservation) only
            return drafted
        return drafted + self.submitter.run_due(worker=worker)
