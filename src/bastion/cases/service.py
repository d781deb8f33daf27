"""The cases service: open cases from verdicts and flags, the review queue, claims,
decisions and their effects through the policy.

Plain functions with keyword-only arguments and an explicit session; the caller owns the
unit of work (a case opened for a verdict is written in the verdict's transaction)::

    with db.write() as session:
        case = service.claim(session, case_id=7, reviewer=3, settings=settings)
        service.decide(session, case_id=7, reviewer=3, decision="not_violating",
                       policy=policy, settings=settings)

A case is one content item (unique ``content_id``) and carries one decision. States:
``open`` -> ``in_review`` (claimed; a claim lasts ``review.claim_minutes``) -> ``decided``
(or ``escalated``, which waits for a senior reviewer; ``closed`` by later issues).
Priority (0-100, higher first) starts from the policy rule's and adds: label and
classification (csam, A1 highest), match strength (exact or PDQ within 10 bits), and the
user's history (earlier violating decisions). Every change is a case event and an audit
event (ids only). Errors: :class:`NotFound`, :class:`Conflict`, :class:`InvalidInput`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bastion.cases.schemas import (
    FILE_ANNOTATIONS,
    MAX_URGENT_REASON_CHARS,
    QUEUE_STATES,
    REPORT_ANNOTATIONS,
    REPORTED_DECISIONS,
    STATES,
    CaseRead,
)
from bastion.config import Settings
from bastion.errors import Conflict, InvalidInput, NotFound
from bastion.policy.rules import CLASSIFICATIONS, Policy
from bastion.store.audit import record_audit_event
from bastion.store.models_api import ContentVerdict, ContentVerdictEvent
from bastion.store.models_review import Case, CaseEvent, EvidenceItem
from bastion.store.types import utcnow

if TYPE_CHECKING:
    from bastion.evidence.vault import Vault

#: Decisions that find a violation (they count in a user's history).
VIOLATING = ("csam", "child_exploitation_other", "trafficking")
#: Decisions after which the media is kept only ``review.benign_media_days``.
BENIGN = ("not_violating", "adult_legal")
#: Longest reviewer's note, characters.
MAX_NOTES_CHARS = 5000
#: Longest flag reason, characters.
MAX_REASON_CHARS = 500
_EXACT = ("md5", "sha1", "sha256")


def priority_for(base: int, matches: Sequence[dict[str, Any]], prior_violations: int) -> int:
    """A case's priority (0-100) from the policy rule's ``base``, its ``matches``
    (DESIGN.md objects) and the user's earlier violating decisions (module docstring)."""
    p = base
    labels = {m.get("label") for m in matches}
    classes = {m.get("classification") for m in matches}
    if "csam" in labels:
        p += 5
    p += max([{"A1": 5, "A2": 3, "B1": 2, "B2": 1}.get(str(c), 0) for c in classes] or [0])
    strong = any(m.get("signal_type") in _EXACT or (
        m.get("signal_type") == "pdq" and int(m.get("distance", 99)) <= 10) for m in matches)
    if strong:
        p += 5
    p += min(10, 5 * prior_violations)
    return max(0, min(100, p))


def _prior_violations(session: Session, user_id: str | None) -> int:
    if user_id is None:
        return 0
    return int(session.execute(
        select(func.count()).select_from(Case)
        .where(Case.user_id == user_id, Case.decision.in_(VIOLATING), Case.state == "decided")
    ).scalar_one())


def _event(session: Session, case: Case, kind: str, actor: str,
           detail: dict[str, Any] | None = None, *, now: datetime | None = None) -> None:
    session.add(CaseEvent(case_id=case.id, at=now or utcnow(), kind=kind, actor=actor[:200],
                          detail=detail))
    record_audit_event(session, actor=actor, action=f"case.{kind}", object_type="case",
                       object_id=str(case.id), detail=detail)


def open_case(
    session: Session, *, content_id: str, user_id: str | None, verdict_id: int | None,
    source: str, rule: str, base_priority: int, hide: bool, matches: list[dict[str, Any]],
    media: str, actor: str, now: datetime | None = None,
) -> Case:
    """Open a case for ``content_id`` in ``session``'s transaction and return it; the
    existing case when there is one already (one case per item). ``media``: ``stored``,
    ``hashes_only`` or ``none``."""
    existing = session.execute(
        select(Case).where(Case.content_id == content_id)).scalar_one_or_none()
    if existing is not None:
        return existing
    at = now or utcnow()
    case = Case(
        content_id=content_id, user_id=user_id, verdict_id=verdict_id, source=source,
        rule=rule[:100], state="open",
        priority=priority_for(base_priority, matches, _prior_violations(session, user_id)),
        hidden=hide, media=media, banks=sorted({str(m.get("bank")) for m in matches}),
        matches=matches, opened_at=at, updated_at=at, second_review=False, actions=[],
    )
    session.add(case)
    session.flush()
    _event(session, case, "open", actor, {"source": source, "rule": rule[:100],
                                          "priority": case.priority}, now=at)
    return case


def _get_row(session: Session, case_id: int, *, for_update: bool = False) -> Case:
    q = select(Case).where(Case.id == case_id)
    if for_update:
        q = q.with_for_update()
    case = session.execute(q).scalar_one_or_none()
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def _evidence_id(session: Session, case_id: int) -> int | None:
    return session.execute(
        select(EvidenceItem.id).where(EvidenceItem.case_id == case_id,
                                      EvidenceItem.kind == "media",
                                      EvidenceItem.wrapped_key.is_not(None))
        .order_by(EvidenceItem.id.desc()).limit(1)
    ).scalar_one_or_none()


def get(session: Session, *, case_id: int) -> CaseRead:
    """One case with its media's vault item id. Raises :class:`NotFound`."""
    return CaseRead.of(_get_row(session, case_id), _evidence_id(session, case_id))


def get_by_content(session: Session, *, content_id: str) -> CaseRead:
    """The case of ``content_id``. Raises :class:`NotFound`."""
    row = session.execute(select(Case).where(Case.content_id == content_id)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no case for content_id {content_id!r}")
    return CaseRead.of(row, _evidence_id(session, row.id))


def queue(
    session: Session, *, states: Sequence[str] = QUEUE_STATES, min_priority: int = 0,
    bank: str | None = None, opened_before: datetime | None = None,
    user_id: str | None = None, limit: int = 100,
) -> list[CaseRead]:
    """Cases waiting for review, highest priority first, then oldest first. Filters:
    ``states``, ``min_priority``, ``bank`` (a matched bank's name), ``opened_before``
    (age), ``user_id``; at most ``limit`` (1-1000). Raises :class:`InvalidInput`."""
    bad = [s for s in states if s not in STATES]
    if bad:
        raise InvalidInput(f"unknown case state {bad[0]!r}; one of {', '.join(STATES)}")
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000")
    q = (select(Case).where(Case.state.in_(list(states)), Case.priority >= min_priority)
         .order_by(Case.priority.desc(), Case.opened_at, Case.id))
    if opened_before is not None:
        q = q.where(Case.opened_at <= opened_before)
    if user_id is not None:
        q = q.where(Case.user_id == user_id)
    rows = list(session.execute(q.limit(limit if bank is None else 10 * limit)).scalars())
    if bank is not None:
        rows = [r for r in rows if bank in r.banks][:limit]
    return [CaseRead.of(r) for r in rows]


def grouped_by_user(rows: Sequence[CaseRead]) -> list[CaseRead]:
    """``rows`` (in queue order) with each user's cases moved together, at the place of
    that user's first (highest-priority) case: a reviewer decides one user's items in one
    sitting. Cases without a user stay where they are."""
    order: dict[str, list[CaseRead]] = {}
    out: list[CaseRead | str] = []
    for c in rows:
        if c.user_id is None:
            out.append(c)
        elif c.user_id in order:
            order[c.user_id].append(c)
        else:
            order[c.user_id] = [c]
            out.append(c.user_id)
    flat: list[CaseRead] = []
    for x in out:
        if isinstance(x, str):
            flat.extend(order[x])
        else:
            flat.append(x)
    return flat


def user_cases(session: Session, *, user_id: str, limit: int = 200) -> list[CaseRead]:
    """Every case of one user (shown together: a reviewer decides them in one sitting),
    oldest first."""
    rows = session.execute(
        select(Case).where(Case.user_id == user_id).order_by(Case.opened_at, Case.id)
        .limit(limit)).scalars()
    return [CaseRead.of(r, _evidence_id(session, r.id)) for r in rows]


def events(session: Session, *, case_id: int) -> list[dict[str, Any]]:
    """A case's history, oldest first: ``{"at", "kind", "actor", "detail"}``."""
    return [{"at": e.at, "kind": e.kind, "actor": e.actor, "detail": e.detail}
            for e in session.execute(select(CaseEvent).where(CaseEvent.case_id == case_id)
                                     .order_by(CaseEvent.id)).scalars()]


def _held_by_other(case: Case, reviewer: int, now: datetime) -> bool:
    return (case.claimed_by is not None and case.claimed_by != reviewer
            and case.claim_expires_at is not None and case.claim_expires_at > now)


def claim(session: Session, *, case_id: int, reviewer: int, settings: Settings,
          now: datetime | None = None) -> CaseRead:
    """Claim a case for ``reviewer`` (a user id) for ``review.claim_minutes``; renewing
    one's own claim is allowed. Raises :class:`Conflict` when another reviewer holds an
    unexpired claim or the case is decided."""
    at = now or utcnow()
    case = _get_row(session, case_id, for_update=True)
    if case.state not in QUEUE_STATES:
        raise Conflict(f"case {case_id} is {case.state}")
    if _held_by_other(case, reviewer, at):
        raise Conflict(f"case {case_id} is claimed by another reviewer")
    case.claimed_by = reviewer
    case.claim_expires_at = at + timedelta(minutes=settings.review.claim_minutes)
    if case.state == "open":
        case.state = "in_review"
    case.updated_at = at
    _event(session, case, "claim", f"user:{reviewer}", now=at)
    return CaseRead.of(case, _evidence_id(session, case.id))


def flag(
    session: Session, *, content_id: str, reporter: str, reason: str, actor: str,
    user_id: str | None = None, now: datetime | None = None,
) -> CaseRead:
    """A user report or moderator's flag on ``content_id``: opens a case (source
    ``flag``) or, when one exists, records the flag and raises its priority by 5.
    ``reporter`` is an opaque id (never a name). Raises :class:`InvalidInput`."""
    if not content_id or len(content_id) > 255:
        raise InvalidInput("content_id must be 1-255 characters")
    if len(reason) > MAX_REASON_CHARS or len(reporter) > 200:
        raise InvalidInput(f"reason is at most {MAX_REASON_CHARS} characters, reporter 200")
    at = now or utcnow()
    existing = session.execute(
        select(Case).where(Case.content_id == content_id).with_for_update()
    ).scalar_one_or_none()
    if existing is None:
        verdict = session.execute(
            select(ContentVerdict).where(ContentVerdict.content_id == content_id)
        ).scalar_one_or_none()
        case = open_case(
            session, content_id=content_id,
            user_id=user_id or (verdict.user_id if verdict else None),
            verdict_id=verdict.id if verdict else None, source="flag", rule="flag",
            base_priority=50, hide=False,
            matches=list(verdict.verdict.get("matches", [])) if verdict else [],
            media="none", actor=actor, now=at)
        if verdict is not None:
            verdict.case_id = str(case.id)
        # Text kept for a match that opened no case follows the case from now on.
        for item in session.execute(select(EvidenceItem).where(
                EvidenceItem.content_id == content_id, EvidenceItem.kind == "text",
                EvidenceItem.case_id.is_(None), EvidenceItem.wrapped_key.is_not(None))
                ).scalars():
            item.case_id, item.delete_after = case.id, None
    else:
        case = existing
        case.priority = min(100, case.priority + 5)
        if case.state in ("decided", "closed"):
            case.state = "open"  # a new report on a decided item is looked at again
    case.updated_at = at
    _event(session, case, "flag", actor, {"reporter": reporter[:200]}, now=at)
    return CaseRead.of(case)


def _idem(case: Case, decision: str, kind: str) -> str:
    digest = hashlib.sha256(f"{case.id}:{decision}:{kind}".encode()).hexdigest()[:32]
    return f"case-{case.id}-{kind}-{digest}"[:100]


def report_facts(
    decision: str, *, file_annotations: Sequence[str] = (),
    report_annotations: Sequence[str] = (), urgent_reason: str | None = None,
) -> tuple[list[str] | None, list[str] | None, str | None]:
    """Check what a reviewer says for the CyberTipline report with a decision: the
    ``fileAnnotations`` and ``reportAnnotations`` names (exactly the schema's element names,
    :data:`~bastion.cases.schemas.FILE_ANNOTATIONS`,
    :data:`~bastion.cases.schemas.REPORT_ANNOTATIONS`) and the reason for marking the case
    urgent (``escalateToHighPriority``, 1-1000 characters, surrounding blanks removed).
    Returns them deduplicated in the schema's order, None for none. They apply to reported
    decisions only (:data:`~bastion.cases.schemas.REPORTED_DECISIONS`). Raises
    :class:`InvalidInput` naming the value at fault."""
    bad = [a for a in file_annotations if a not in FILE_ANNOTATIONS]
    if bad:
        raise InvalidInput(f"unknown file annotation {bad[0]!r}; one of "
                           f"{', '.join(FILE_ANNOTATIONS)}")
    bad = [a for a in report_annotations if a not in REPORT_ANNOTATIONS]
    if bad:
        raise InvalidInput(f"unknown report annotation {bad[0]!r}; one of "
                           f"{', '.join(REPORT_ANNOTATIONS)}")
    reason = urgent_reason.strip() if urgent_reason is not None else None
    if urgent_reason is not None and not reason:
        raise InvalidInput("marking a case urgent needs a reason (it is sent to NCMEC as "
                           "escalateToHighPriority)")
    if reason is not None and len(reason) > MAX_URGENT_REASON_CHARS:
        raise InvalidInput(f"the urgency reason is at most {MAX_URGENT_REASON_CHARS} "
                           "characters")
    files = [a for a in FILE_ANNOTATIONS if a in file_annotations]
    reports = [a for a in REPORT_ANNOTATIONS if a in report_annotations]
    if (files or reports or reason) and decision not in REPORTED_DECISIONS:
        raise InvalidInput("annotations and urgency are for reported decisions only ("
                           f"{', '.join(REPORTED_DECISIONS)}), not {decision!r}")
    return files or None, reports or None, reason


def decide(
    session: Session, *, case_id: int, reviewer: int, decision: str, policy: Policy,
    settings: Settings, classification: str | None = None, notes: str | None = None,
    file_annotations: Sequence[str] = (), report_annotations: Sequence[str] = (),
    urgent_reason: str | None = None, now: datetime | None = None,
) -> CaseRead:
    """Record ``reviewer``'s decision on a case and apply its effects through
    ``policy`` (:meth:`~bastion.policy.rules.Policy.on_decision`): actions enqueued in
    this transaction, signals added to the confirmed bank, false-positive votes (and
    disabling an entry after ``policy.fp_votes_to_disable``), unhiding. ``csam`` needs a
    ``classification`` (A1, A2, B1, B2); with ``policy.second_review_csam`` it waits for
    a second, different reviewer. ``escalate`` moves the case to ``escalated``.

    For reported decisions the reviewer may add CyberTipline ``file_annotations`` and
    ``report_annotations`` and an ``urgent_reason`` (checked by :func:`report_facts`); the
    report drafted from the case carries them (``fileAnnotations``,
    ``reportAnnotations``, ``escalateToHighPriority``). A second reviewer's decision
    replaces the first's. Raises :class:`InvalidInput`, :class:`Conflict`,
    :class:`NotFound`."""
    at = now or utcnow()
    if decision == "csam":
        if not classification:
            raise InvalidInput("a csam decision needs a classification: A1, A2, B1 or B2")
        if classification not in CLASSIFICATIONS:
            raise InvalidInput(f"unknown classification {classification[:20]!r}: "
                               "A1, A2, B1 or B2")
    else:
        classification = None
    if notes is not None and len(notes) > MAX_NOTES_CHARS:
        raise InvalidInput(f"notes are at most {MAX_NOTES_CHARS} characters")
    files_ann, report_ann, urgent = report_facts(
        decision, file_annotations=file_annotations, report_annotations=report_annotations,
        urgent_reason=urgent_reason)
    facts: dict[str, Any] = {k: v for k, v in (
        ("file_annotations", files_ann), ("report_annotations", report_ann),
        ("urgent", True if urgent else None)) if v}
    case = _get_row(session, case_id, for_update=True)
    if case.state not in QUEUE_STATES:
        raise Conflict(f"case {case_id} is {case.state} already")
    if _held_by_other(case, reviewer, at):
        raise Conflict(f"case {case_id} is claimed by another reviewer")
    effects = policy.on_decision(decision, matched=bool(case.matches), hidden=case.hidden)
    actor = f"user:{reviewer}"
    case.updated_at = at
    case.claimed_by = None
    case.claim_expires_at = None
    if notes:
        case.notes = notes
    if decision == "escalate":
        case.state = "escalated"
        _event(session, case, "escalate", actor, now=at)
        return CaseRead.of(case)
    if case.second_review and case.decided_by == reviewer:
        raise Conflict(f"case {case_id} needs a second reviewer's decision")
    case.file_annotations, case.report_annotations = files_ann, report_ann
    case.urgent_reason = urgent
    if effects.second_review and not case.second_review:
        case.second_review = True
        case.decision, case.classification = decision, classification
        case.decided_by, case.decided_at = reviewer, at
        case.state = "in_review"
        _event(session, case, "first_review", actor,
               {"decision": decision, "classification": classification, **facts}, now=at)
        return CaseRead.of(case)
    case.decision, case.classification = decision, classification
    case.decided_by, case.decided_at = reviewer, at
    case.state = "decided"
    verdict = session.execute(
        select(ContentVerdict).where(ContentVerdict.content_id == case.content_id)
    ).scalar_one_or_none()
    done: dict[str, Any] = {"decision": decision, "classification": classification,
                            "rules": list(effects.rules), **facts}
    if effects.add_to_confirmed_bank and verdict is not None:
        done["confirmed_entries"] = _add_to_confirmed(
            session, policy, list(verdict.verdict.get("signals", [])), classification, case)
    if effects.false_positive_vote:
        done["disabled_entries"] = _false_positive_votes(session, policy, case)
    if effects.restore:
        case.hidden = False
    if decision in BENIGN:
        # Media of items found benign is kept review.benign_media_days, then destroyed.
        for item in session.execute(select(EvidenceItem).where(
                EvidenceItem.case_id == case.id, EvidenceItem.wrapped_key.is_not(None))
        ).scalars():
            item.delete_after = at + timedelta(days=settings.review.benign_media_days)
    actions = list(case.actions)
    if effects.actions:
        from bastion.actions.outbox import enqueue

        for kind in effects.actions:
            a = enqueue(session, kind=kind, settings=settings, content_id=case.content_id,
                        user_id=case.user_id, case_id=str(case.id),
                        payload={"content_id": case.content_id, "case_id": str(case.id),
                                 "decision": decision},
                        idempotency_key=_idem(case, decision, kind), now=at)
            actions.append({"id": str(a.id), "kind": kind, "cause": "decision"})
    case.actions = actions
    if verdict is not None:
        session.add(ContentVerdictEvent(verdict_id=verdict.id, at=at, kind="decided",
                                        actor=actor, detail={"case_id": str(case.id),
                                                             "decision": decision}))
    _event(session, case, "decide", actor, done, now=at)
    return CaseRead.of(case)


def _add_to_confirmed(session: Session, policy: Policy, signals: list[dict[str, Any]],
                      classification: str | None, case: Case) -> int:
    """Add a confirmed item's whole-picture and exact signals to the confirmed bank
    (created on first use: label ``csam``, ``auto_action`` on, not exportable)."""
    from bastion.banks import service as banks
    from bastion.banks.schemas import BankCreate

    try:
        banks.get(session, name=policy.confirmed_bank)
    except NotFound:
        banks.create(session, data=BankCreate(
            name=policy.confirmed_bank, label="csam", auto_action=True,
            description="signals of items reviewers confirmed"))
    sha = next((s.get("value") for s in signals if s.get("signal_type") == "sha256"), None)
    n = 0
    for s in signals:
        st = s.get("signal_type")
        kind = (s.get("variant") or {}).get("kind", "stored")
        if st in _EXACT or (st == "pdq" and kind in ("stored", "displayed")
                            and int(s.get("quality") or 0) >= 50):
            fields: dict[str, Any] = {"signal_type": st, "value": s.get("value"),
                                      "classification": classification,
                                      "source": f"review:case:{case.id}",
                                      "item": None if sha is None else f"sha256:{sha}"}
            if st == "pdq":
                fields["variant"] = s.get("variant")
            _entry, created = banks.add_entry(session, name=policy.confirmed_bank,
                                              fields=fields)
            n += int(created)
    return n


def _false_positive_votes(session: Session, policy: Policy, case: Case) -> list[str]:
    """One false-positive vote on every matched bank entry; entries reaching
    ``policy.fp_votes_to_disable`` votes are disabled. Returns the disabled entries' ids."""
    from bastion.store import bank_repository as repo

    disabled: list[str] = []
    seen: set[str] = set()
    for m in case.matches:
        eid = m.get("entry_id")
        if eid is None or str(eid) in seen:
            continue
        seen.add(str(eid))
        try:
            entry = repo.get_entry(session, int(eid), for_update=True)
        except (NotFound, ValueError):
            continue  # deleted since: nothing to vote on
        votes = repo.add_false_positive_vote(session, entry)
        if policy.fp_votes_to_disable and votes >= policy.fp_votes_to_disable and entry.enabled:
            repo.set_entry_enabled(session, repo.get_bank_by_id(session, entry.bank_id), entry,
                                   False)
            disabled.append(str(eid))
    return disabled


def attach_media(session: Session, *, case_id: int, data: bytes, vault: Vault,
                 actor: str) -> CaseRead:
    """Keep ``data`` (the item's bytes, e.g. fetched from the platform) encrypted as the
    case's media. Raises :class:`NotFound`, :class:`Conflict` (media held already)."""
    case = _get_row(session, case_id, for_update=True)
    if _evidence_id(session, case_id) is not None:
        raise Conflict(f"case {case_id} holds its media already")
    vault.put(session, content_id=case.content_id, data=data, case_id=case.id, actor=actor)
    case.media = "stored"
    case.updated_at = utcnow()
    _event(session, case, "media_attached", actor, {"size": len(data)})
    return CaseRead.of(case, _evidence_id(session, case_id))


def signals_of(session: Session, *, content_id: str) -> list[dict[str, Any]]:
    """The signals the platform's submission of ``content_id`` produced (DESIGN.md
    objects; empty when there is no verdict)."""
    verdict = session.execute(
        select(ContentVerdict).where(ContentVerdict.content_id == content_id)
    ).scalar_one_or_none()
    return [] if verdict is None else list(verdict.verdict.get("signals", []))


def revealed_cases(session: Session, *, case_ids: Sequence[int]) -> set[int]:
    """The cases among ``case_ids`` whose media a person revealed (an audited
    ``case.reveal`` event exists): what a report's ``fileViewedByEsp`` states. A decision
    made on the blurred preview is not a view."""
    from bastion.store.models import AuditEvent

    if not case_ids:
        return set()
    rows = session.execute(
        select(AuditEvent.object_id).where(
            AuditEvent.action == "case.reveal", AuditEvent.object_type == "case",
            AuditEvent.object_id.in_([str(i) for i in case_ids])).distinct()
    ).scalars()
    return {int(r) for r in rows}


def is_overdue(case: CaseRead, settings: Settings, now: datetime | None = None) -> bool:
    """True when a case waiting for review is older than ``review.sla_hours``."""
    at = now or utcnow()
    return case.state in QUEUE_STATES and (
        at - case.opened_at > timedelta(hours=settings.review.sla_hours))
