"""Shapes of cases as adapters see them (:class:`CaseRead`), and the case vocabulary."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bastion.reporting.incident import FileAnnotation, ReportAnnotation
from bastion.store.models_review import Case

#: Case states, in the order a case usually goes through them.
STATES = ("open", "in_review", "decided", "escalated", "closed")
#: States that wait for a reviewer (the queue).
QUEUE_STATES = ("open", "in_review", "escalated")
#: Decisions that are reported to the CyberTipline (annotations and urgency apply to them).
REPORTED_DECISIONS = ("csam", "child_exploitation_other", "trafficking")
#: ``fileAnnotations`` a reviewer may tick: the element names of NCMEC's schema
#: (``cybertipline.xsd``, complex type ``fileAnnotations``), in the schema's order.
FILE_ANNOTATIONS = typing.get_args(FileAnnotation)
#: ``reportAnnotations`` a reviewer may tick (the schema's ``reportAnnotations`` names).
REPORT_ANNOTATIONS = typing.get_args(ReportAnnotation)
#: Longest reason for marking a case urgent, characters.
MAX_URGENT_REASON_CHARS = 1000


@dataclass(frozen=True, slots=True)
class CaseRead:
    """One case (times aware UTC). ``matches`` are DESIGN.md match objects; ``media``:
    ``stored``, ``hashes_only`` or ``none``; ``evidence_id`` the vault item, if any."""

    id: int
    content_id: str
    user_id: str | None
    source: str
    rule: str
    state: str
    priority: int
    hidden: bool
    media: str
    banks: list[str]
    matches: list[dict[str, Any]]
    opened_at: datetime
    updated_at: datetime
    claimed_by: int | None
    claim_expires_at: datetime | None
    decision: str | None
    classification: str | None
    notes: str | None
    decided_by: int | None
    decided_at: datetime | None
    second_review: bool
    actions: list[dict[str, Any]]
    evidence_id: int | None = None
    #: CyberTipline ``fileAnnotations`` names a reviewer ticked (e.g. ``potentialMeme``).
    file_annotations: list[str] = field(default_factory=list)
    #: CyberTipline ``reportAnnotations`` names a reviewer ticked (e.g. ``sextortion``).
    report_annotations: list[str] = field(default_factory=list)
    #: Why the reviewer marked the case urgent (``escalateToHighPriority``); None if not.
    urgent_reason: str | None = None

    @classmethod
    def of(cls, row: Case, evidence_id: int | None = None) -> CaseRead:
        """From a stored row."""
        return cls(
            id=row.id, content_id=row.content_id, user_id=row.user_id, source=row.source,
            rule=row.rule, state=row.state, priority=row.priority, hidden=row.hidden,
            media=row.media, banks=list(row.banks), matches=list(row.matches),
            opened_at=row.opened_at, updated_at=row.updated_at, claimed_by=row.claimed_by,
            claim_expires_at=row.claim_expires_at, decision=row.decision,
            classification=row.classification, notes=row.notes, decided_by=row.decided_by,
            decided_at=row.decided_at, second_review=row.second_review,
            actions=list(row.actions), evidence_id=evidence_id,
            file_annotations=list(row.file_annotations or []),
            report_annotations=list(row.report_annotations or []),
            urgent_reason=row.urgent_reason,
        )

    def to_json(self) -> dict[str, Any]:
        """As JSON (times RFC 3339 UTC); reviewers' notes included."""
        def t(x: datetime | None) -> str | None:
            return None if x is None else x.isoformat().replace("+00:00", "Z")

        return {
            "id": str(self.id), "content_id": self.content_id, "user_id": self.user_id,
            "source": self.source, "rule": self.rule, "state": self.state,
            "priority": self.priority, "hidden": self.hidden, "media": self.media,
            "banks": self.banks, "matches": self.matches, "opened_at": t(self.opened_at),
            "updated_at": t(self.updated_at), "claimed_by": self.claimed_by,
            "claim_expires_at": t(self.claim_expires_at), "decision": self.decision,
            "classification": self.classification, "notes": self.notes,
            "decided_by": self.decided_by, "decided_at": t(self.decided_at),
            "second_review": self.second_review, "actions": self.actions,
            "evidence_id": self.evidence_id, "file_annotations": self.file_annotations,
            "report_annotations": self.report_annotations, "urgent_reason": self.urgent_reason,
        }
