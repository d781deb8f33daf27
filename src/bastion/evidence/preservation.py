"""Preservation of reported items: the evidence kept for law enforcement, and its end.

In the United States a provider that reports to the CyberTipline must preserve the report's
contents for one year (18 U.S.C. 2258A(h), as amended by the REPORT Act of 2024) and limit
access to those who need it. Law enforcement may ask a provider to preserve records
pending legal process (a *preservation request*, 18 U.S.C. 2703(f)): that obliges the
provider to keep, not to disclose. Disclosure needs legal process.

What is kept, per reported content item (a
:class:`~bastion.store.models_preservation.PreservedItem`):

- its bytes: the case's media, already encrypted in the vault (:mod:`bastion.evidence.vault`;
  its own retention clock is switched off while preserved);
- its metadata record, JSON sealed in the vault the same way (AES-256-GCM under its own
  data key): content id, user id, IP address and port, upload and submission times, the
  platform's original hashes and Bastion's signals, the decisions (who, when, what), the
  report id, and the item's submitted text, title and links when they were kept
  (:mod:`bastion.evidence.texts`; the kept-text item's own clock is switched off too).

The clock: ``expires_at`` = report time + ``Settings.preservation_days`` (365, may only be
raised); preserving the item again for a later report moves it later, never earlier. The
duty runs from the submission, so an item whose report is not submitted yet is kept, and
one submitted later than it was drafted is kept ``preservation_days`` from then. A
legal hold (``legal_hold``) or a recorded preservation request (``preservation_request``)
keeps the item past that until released (or until its own ``until``).

:func:`purge_expired` deletes what has expired and is held by nothing: both vault items'
data keys are destroyed and their files deleted (:meth:`~bastion.evidence.vault.Vault.destroy`),
then every row about the item is deleted: the vault rows, reveal tokens, the case and its
events, the verdict and its events, the content log entry, actions, retro-hunt matches,
the stored classified ad (``ads`` row; processes' in-memory ad networks forget it when
they restart);
reports naming the item keep NCMEC's report id and state but lose their facts. Previews are
made in memory for each request and never cached. On SQLite every connection runs with
``secure_delete`` on (:mod:`bastion.store.database`) and the purge checkpoints the
write-ahead log (``TRUNCATE``) so no copy of a deleted page stays in it. On PostgreSQL the
rows are deleted, but old row versions stay in the table files until autovacuum reuses the
space (and in its WAL archives): keep PostgreSQL's storage encrypted. One audit event
per item (``evidence.purge``, ids only). Signals added to the confirmed bank stay: a bank
holds fingerprints, not content.

Reading (:func:`read_preserved`) needs an enabled admin and a stated reason; exporting
(:func:`request_export`, :func:`approve_export`) records the legal process reference and
needs a second, different admin's approval; the archive is encrypted with a fresh key
shown once to the approver. Every step is audited. Errors: :class:`NotFound`,
:class:`Conflict`, :class:`InvalidInput`, :class:`PolicyDenied`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import tarfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from bastion.config import Settings
from bastion.errors import Conflict, InvalidInput, LimitExceeded, NotFound, PolicyDenied
from bastion.evidence.texts import find_text, read_text
from bastion.evidence.vault import EvidenceCorrupt, Vault
from bastion.store.audit import record_audit_event
from bastion.store.database import Database
from bastion.store.models import ContentItem, RetrohuntMatch
from bastion.store.models_actions import ActionRow, CyberTipReportFileRow, CyberTipReportRow
from bastion.store.models_api import ContentVerdict
from bastion.store.models_preservation import EvidenceExport, LegalHold, PreservedItem
from bastion.store.models_review import Case, CaseEvent, EvidenceItem, RevealToken, User
from bastion.store.types import utcnow

HOLD_KINDS = ("legal_hold", "preservation_request")
#: Longest reason or legal reference, characters.
MAX_REASON_CHARS = 500
MAX_REFERENCE_CHARS = 200
#: Largest export archive (sum of the items' bytes), bytes: it is built in memory.
MAX_EXPORT_BYTES = 1024 * 1024 * 1024
#: Items per export.
MAX_EXPORT_ITEMS = 1000
#: Magic prefix of an export archive: then a 12-byte nonce, then AES-256-GCM ciphertext of
#: a tar file (``manifest.json`` and ``items/<id>/{content.bin,metadata.json}``).
EXPORT_MAGIC = b"BASTION-EXPORT-1\n"


@dataclass(frozen=True, slots=True)
class HoldView:
    """One hold: ``kind`` (``legal_hold``, ``preservation_request``), its reference, who
    placed it, and whether it still holds."""

    id: int
    item_id: int
    kind: str
    reference: str
    created_by: str
    created_at: datetime
    until: datetime | None
    released_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """JSON (times ISO 8601)."""
        return {"id": self.id, "item_id": self.item_id, "kind": self.kind,
                "reference": self.reference, "created_by": self.created_by,
                "created_at": self.created_at.isoformat(),
                "until": None if self.until is None else self.until.isoformat(),
                "released_at": None if self.released_at is None
                else self.released_at.isoformat()}


@dataclass(frozen=True, slots=True)
class PreservedView:
    """A preserved item as the CLI shows it (no metadata: reading that is audited)."""

    id: int
    content_id: str
    case_id: int | None
    report_id: int | None
    has_bytes: bool
    preserved_at: datetime
    expires_at: datetime
    held: bool

    def to_json(self) -> dict[str, Any]:
        """JSON (times ISO 8601)."""
        return {"id": self.id, "content_id": self.content_id, "case_id": self.case_id,
                "report_id": self.report_id, "has_bytes": self.has_bytes,
                "preserved_at": self.preserved_at.isoformat(),
                "expires_at": self.expires_at.isoformat(), "held": self.held}


@dataclass(frozen=True, slots=True)
class PreservedContent:
    """What :func:`read_preserved` returns: the bytes (None for hash-only items) and the
    metadata record (a dict, see the module docstring)."""

    item_id: int
    data: bytes | None
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ExportResult:
    """An approved export: the archive's path, its SHA-256 (64 hex) and the key that
    decrypts it (64 hex; shown once, never stored)."""

    export_id: int
    path: Path
    archive_sha256: str
    key_hex: str


def _active(hold: LegalHold, at: datetime) -> bool:
    return hold.released_at is None and (hold.until is None or hold.until > at)


def _held(session: Session, item_id: int, at: datetime) -> bool:
    return any(_active(h, at) for h in session.execute(
        select(LegalHold).where(LegalHold.item_id == item_id)).scalars())


def _view(session: Session, row: PreservedItem, at: datetime | None = None) -> PreservedView:
    return PreservedView(row.id, row.content_id, row.case_id, row.report_id,
                         row.evidence_id is not None, row.preserved_at, row.expires_at,
                         _held(session, row.id, at or utcnow()))


def _hold_view(h: LegalHold) -> HoldView:
    return HoldView(h.id, h.item_id, h.kind, h.reference, h.created_by, h.created_at,
                    h.until, h.released_at)


def _iso(v: datetime | None) -> str | None:
    return None if v is None else v.isoformat()


def _metadata(session: Session, case: Case, report_id: int | None,
              text: dict[str, Any] | None = None) -> dict[str, Any]:
    verdict = session.execute(
        select(ContentVerdict).where(ContentVerdict.content_id == case.content_id)
    ).scalar_one_or_none()
    meta: dict[str, Any] = dict(verdict.meta) if verdict is not None else {}
    signals = list(verdict.verdict.get("signals", [])) if verdict is not None else []
    decisions = [{"at": _iso(e.at), "kind": e.kind, "actor": e.actor, "detail": e.detail}
                 for e in session.execute(select(CaseEvent).where(
                     CaseEvent.case_id == case.id,
                     CaseEvent.kind.in_(("decide", "first_review", "escalate")))
                     .order_by(CaseEvent.id)).scalars()]
    media = session.execute(select(EvidenceItem).where(
        EvidenceItem.case_id == case.id, EvidenceItem.wrapped_key.is_not(None),
        EvidenceItem.kind == "media",
        EvidenceItem.content_id == case.content_id).order_by(EvidenceItem.id)).scalars().first()
    return {
        "content_id": case.content_id, "user_id": case.user_id,
        "ip": meta.get("ip"), "port": meta.get("port"),
        "uploaded_at": meta.get("uploaded_at"), "published_url": meta.get("published_url"),
        "submitted_at": _iso(verdict.created_at) if verdict is not None else None,
        "original_hashes": meta.get("original_hashes"),
        "sha256": None if media is None else media.sha256,
        "size": None if media is None else media.size,
        "signals": [s for s in signals if s.get("signal_type") != "vpdq"],
        "matches": case.matches, "decision": case.decision,
        "classification": case.classification, "decided_by": case.decided_by,
        "decided_at": _iso(case.decided_at), "decisions": decisions, "notes": case.notes,
        "case_id": case.id, "report_id": report_id, "text": text,
    }


def preserve(
    session: Session, *, vault: Vault, case_id: int, settings: Settings, actor: str,
    report_id: int | None = None, now: datetime | None = None,
) -> PreservedView:
    """Preserve the item of ``case_id`` (reported now, or at ``now``) for
    ``settings.preservation_days`` days, in ``session``'s transaction: its media stays in
    the vault (its own ``delete_after`` cleared) and a metadata record is sealed beside it.
    Preserving an item again (a later report) re-seals the record and moves the clock
    later, never earlier. Audited (``evidence.preserve``). Raises :class:`NotFound`."""
    at = now or utcnow()
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"no case {case_id}")
    expires = at + timedelta(days=settings.preservation_days)
    media = list(session.execute(select(EvidenceItem).where(
        EvidenceItem.case_id == case.id, EvidenceItem.wrapped_key.is_not(None),
        EvidenceItem.kind == "media",
        EvidenceItem.content_id == case.content_id).order_by(EvidenceItem.id)
        .with_for_update()).scalars())
    kept_text = find_text(session, case.content_id)
    existing = session.execute(select(PreservedItem).where(
        PreservedItem.content_id == case.content_id).with_for_update()).scalar_one_or_none()
    media = [m for m in media if existing is None or m.id != existing.record_id]
    for m in media if kept_text is None else [*media, kept_text]:
        m.delete_after = None  # the preservation clock governs it now
    text: dict[str, Any] | None = None
    if kept_text is not None:  # an unreadable copy never blocks preserving the rest
        try:
            text = read_text(session, vault, kept_text.id).to_json()
        except EvidenceCorrupt as exc:
            text = {"error": exc.message, "evidence_id": kept_text.id}
    record = json.dumps(_metadata(session, case, report_id, text), sort_keys=True,
                        default=str).encode()
    sealed = vault.put(session, content_id=case.content_id, data=record, case_id=None,
                       actor=actor, kind="record")
    if existing is None:
        row = PreservedItem(content_id=case.content_id, case_id=case.id, report_id=report_id,
                            evidence_id=media[0].id if media else None, record_id=sealed.id,
                            preserved_at=at, expires_at=expires)
        session.add(row)
        session.flush()
    else:
        row = existing
        old_record = row.record_id
        row.record_id = sealed.id
        row.report_id = report_id if report_id is not None else row.report_id
        if row.evidence_id is None and media:
            row.evidence_id = media[0].id
        row.expires_at = max(row.expires_at, expires)
        session.flush()
        vault.destroy(session, old_record, actor=actor, reason="superseded")
        session.execute(delete(EvidenceItem).where(EvidenceItem.id == old_record))
    record_audit_event(session, actor=actor, action="evidence.preserve",
                       object_type="preserved_item", object_id=str(row.id),
                       detail={"case_id": case.id, "report_id": report_id,
                               "expires_at": row.expires_at.isoformat()})
    return _view(session, row, at)


def _item(session: Session, item_id: int, *, lock: bool = False) -> PreservedItem:
    q = select(PreservedItem).where(PreservedItem.id == item_id)
    row = session.execute(q.with_for_update() if lock else q).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no preserved item {item_id}")
    return row


def get(session: Session, *, item_id: int) -> PreservedView:
    """One preserved item. Raises :class:`NotFound`."""
    return _view(session, _item(session, item_id))


def get_by_content(session: Session, *, content_id: str) -> PreservedView:
    """The preserved item of ``content_id``. Raises :class:`NotFound`."""
    row = session.execute(select(PreservedItem).where(
        PreservedItem.content_id == content_id)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no preserved item for content_id {content_id!r}")
    return _view(session, row)


def list_items(session: Session, *, limit: int = 100) -> list[PreservedView]:
    """Preserved items, soonest to expire first (``limit`` 1-1000)."""
    limit = max(1, min(limit, 1000))
    return [_view(session, r) for r in session.execute(
        select(PreservedItem).order_by(PreservedItem.expires_at, PreservedItem.id)
        .limit(limit)).scalars()]


def _text(value: str, what: str, most: int) -> str:
    v = value.strip()
    if not v or len(v) > most or not v.isprintable():
        raise InvalidInput(f"{what} must be 1-{most} printable characters")
    return v


def place_hold(
    session: Session, *, item_id: int, kind: str, reference: str, actor: str,
    until: datetime | None = None, now: datetime | None = None,
) -> HoldView:
    """Hold a preserved item past its clock: ``kind`` ``legal_hold`` (a legal matter) or
    ``preservation_request`` (law enforcement's 18 U.S.C. 2703(f) request, ``reference``
    its number; it obliges preservation only, never disclosure). Active until released or
    until ``until``. Audited. Raises :class:`NotFound`, :class:`InvalidInput`."""
    if kind not in HOLD_KINDS:
        raise InvalidInput(f"unknown hold kind {kind!r}; one of {', '.join(HOLD_KINDS)}")
    ref = _text(reference, "reference", MAX_REFERENCE_CHARS)
    at = now or utcnow()
    if until is not None and (until.tzinfo is None or until <= at):
        raise InvalidInput("until must be a future time with a zone")
    _item(session, item_id, lock=True)
    hold = LegalHold(item_id=item_id, kind=kind, reference=ref, created_by=actor[:200],
                     created_at=at, until=until)
    session.add(hold)
    session.flush()
    record_audit_event(session, actor=actor, action=f"evidence.{kind}",
                       object_type="preserved_item", object_id=str(item_id),
                       detail={"hold_id": hold.id, "reference": ref,
                               "until": _iso(until)})
    return _hold_view(hold)


def release_hold(session: Session, *, hold_id: int, actor: str,
                 now: datetime | None = None) -> HoldView:
    """Release a hold (audited); the item's clock applies again. Raises :class:`NotFound`,
    :class:`Conflict` (released already)."""
    hold = session.execute(select(LegalHold).where(LegalHold.id == hold_id)
                           .with_for_update()).scalar_one_or_none()
    if hold is None:
        raise NotFound(f"no hold {hold_id}")
    if hold.released_at is not None:
        raise Conflict(f"hold {hold_id} is released already")
    hold.released_at = now or utcnow()
    hold.released_by = actor[:200]
    session.flush()
    record_audit_event(session, actor=actor, action="evidence.release_hold",
                       object_type="preserved_item", object_id=str(hold.item_id),
                       detail={"hold_id": hold.id})
    return _hold_view(hold)


def holds(session: Session, *, item_id: int) -> list[HoldView]:
    """Every hold of an item, oldest first."""
    return [_hold_view(h) for h in session.execute(
        select(LegalHold).where(LegalHold.item_id == item_id).order_by(LegalHold.id)).scalars()]


def _admin(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.role != "admin" or user.disabled_at is not None:
        raise PolicyDenied("preserved evidence needs an enabled admin")
    return user


def read_preserved(session: Session, *, vault: Vault, item_id: int, user_id: int,
                   reason: str) -> PreservedContent:
    """Decrypt a preserved item's bytes and metadata for an enabled admin ``user_id``
    giving ``reason``, audited (``evidence.read_preserved`` with the reason) in
    ``session``'s transaction: call it in a write unit of work. Raises
    :class:`PolicyDenied`, :class:`InvalidInput`, :class:`NotFound`,
    :class:`~bastion.evidence.vault.EvidenceCorrupt`."""
    why = _text(reason, "reason", MAX_REASON_CHARS)
    row = _item(session, item_id)
    _admin(session, user_id)
    record_audit_event(session, actor=f"user:{user_id}", action="evidence.read_preserved",
                       object_type="preserved_item", object_id=str(item_id),
                       detail={"reason": why})
    data = None if row.evidence_id is None else vault.read(session, row.evidence_id)
    metadata = json.loads(vault.read(session, row.record_id))
    return PreservedContent(item_id, data, metadata)


def _forget_item(session: Session, row: PreservedItem, vault_root: Path) -> None:
    """Destroy both vault items (keys and files) and delete every row about the item."""
    content_id, case_id = row.content_id, row.case_id
    vault_ids = [i for i in (row.evidence_id, row.record_id) if i is not None]
    items = list(session.execute(select(EvidenceItem).where(or_(
        EvidenceItem.id.in_(vault_ids), EvidenceItem.content_id == content_id,
        *([EvidenceItem.case_id == case_id] if case_id is not None else [])))).scalars())
    for item in items:
        item.wrapped_key = None  # the data key is gone: every copy is unreadable
        session.flush()
        (vault_root / item.file_name).unlink(missing_ok=True)
    ids = [i.id for i in items]
    if ids:
        session.execute(delete(RevealToken).where(RevealToken.evidence_id.in_(ids)))
        session.execute(delete(EvidenceItem).where(EvidenceItem.id.in_(ids)))
    report_ids = {row.report_id} if row.report_id is not None else set()
    if case_id is not None:
        report_ids |= {d["report_id"] for d in session.execute(select(CaseEvent.detail).where(
            CaseEvent.case_id == case_id, CaseEvent.kind == "reported")).scalars()
            if isinstance(d, dict) and isinstance(d.get("report_id"), int)}
        session.execute(delete(RevealToken).where(RevealToken.case_id == case_id))
        session.execute(delete(CaseEvent).where(CaseEvent.case_id == case_id))
        session.execute(delete(Case).where(Case.id == case_id))
        _scrub_reports(session, str(case_id), report_ids)
    session.execute(delete(Case).where(Case.content_id == content_id))
    verdict_ids = list(session.execute(select(ContentVerdict.id).where(
        ContentVerdict.content_id == content_id)).scalars())
    if verdict_ids:
        from bastion.store.models_api import ContentVerdictEvent

        session.execute(delete(ContentVerdictEvent).where(
            ContentVerdictEvent.verdict_id.in_(verdict_ids)))
        session.execute(delete(ContentVerdict).where(ContentVerdict.id.in_(verdict_ids)))
    session.execute(delete(RetrohuntMatch).where(RetrohuntMatch.content_id == content_id))
    session.execute(delete(ContentItem).where(ContentItem.content_id == content_id))
    # The classified ad analysed from it (its text and title are kept in plain text for
    # network linking; see docs/design-notes.md).
    # (deleted through the ad store, so that every process's networks drop it too)
    from bastion.trafficking.adstore import delete_ads

    delete_ads(session, [content_id])
    # Actions about it (long delivered or dead: their maximum age is days, not a year).
    session.execute(delete(ActionRow).where(ActionRow.content_id == content_id))
    session.execute(delete(LegalHold).where(LegalHold.item_id == row.id))
    session.execute(delete(PreservedItem).where(PreservedItem.id == row.id))


def _scrub_reports(session: Session, case_id: str, report_ids: set[int]) -> None:
    """Reports naming the case keep NCMEC's id and their state; their facts go."""
    for rep in session.execute(select(CyberTipReportRow).where(
            CyberTipReportRow.id.in_(report_ids))).scalars():
        if case_id in [str(c) for c in (rep.incident or {}).get("case_ids", [])]:
            rep.incident = {"purged": True}
            rep.report_xml = ""
            for f in session.execute(select(CyberTipReportFileRow).where(
                    CyberTipReportFileRow.report_id == rep.id)).scalars():
                f.locator = "purged"
                f.file_name = "purged"


#: Report states before NCMEC has the report: the preservation duty has not started.
_UNSENT = ("draft", "approved", "submitting", "needs_reconciliation", "failed")


def _kept(session: Session, row: PreservedItem, at: datetime, days: int) -> bool:
    """True while the item's clock runs, a hold keeps it, or its report is not sent yet
    or was sent less than ``days`` days ago (the duty runs from the submission)."""
    if row.expires_at > at or _held(session, row.id, at):
        return True
    if row.report_id is None:
        return False
    rep = session.get(CyberTipReportRow, row.report_id)
    if rep is None:
        return False
    if rep.state in _UNSENT:
        return True
    return rep.submitted_at is not None and rep.submitted_at + timedelta(days=days) > at


def due_for_purge(session: Session, *, now: datetime | None = None,
                  preservation_days: int = 365, limit: int = 1000) -> list[int]:
    """Ids of items whose clock has ended, that no active hold keeps and whose report was
    submitted at least ``preservation_days`` days ago (or has none)."""
    at = now or utcnow()
    rows = session.execute(select(PreservedItem).where(PreservedItem.expires_at <= at)
                           .order_by(PreservedItem.id).limit(limit)).scalars()
    return [r.id for r in rows if not _kept(session, r, at, preservation_days)]


def purge_expired(db: Database, *, vault_root: Path, now: datetime | None = None,
                  preservation_days: int = 365, actor: str = "system:retention",
                  limit: int = 1000) -> list[int]:
    """Delete every expired, unheld preserved item (see the module docstring), one
    transaction per item with its audit event (``evidence.purge``), then checkpoint
    SQLite's write-ahead log. Needs no master key: destruction only forgets. Returns the
    purged items' ids."""
    at = now or utcnow()
    with db.read() as session:
        due = due_for_purge(session, now=at, preservation_days=preservation_days,
                            limit=limit)
    done: list[int] = []
    for item_id in due:
        with db.write() as session:
            row = session.execute(select(PreservedItem).where(PreservedItem.id == item_id)
                                  .with_for_update()).scalar_one_or_none()
            if row is None or _kept(session, row, at, preservation_days):
                continue  # purged, extended or held meanwhile
            report_id = row.report_id
            _forget_item(session, row, vault_root)
            record_audit_event(session, actor=actor, action="evidence.purge",
                               object_type="preserved_item", object_id=str(item_id),
                               detail={"report_id": report_id, "reason": "retention"})
        done.append(item_id)
    if done:
        checkpoint(db)
    return done


def checkpoint(db: Database) -> bool:
    """On SQLite, copy the write-ahead log into the database and truncate it (so deleted
    pages live on nowhere); True when it completed (no reader held it back). A no-op
    (True) on PostgreSQL."""
    if db.is_postgresql:
        return True
    with db.engine.connect() as conn:
        busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()[0]
    return int(busy) == 0


def request_export(session: Session, *, item_ids: list[int], reference: str, reason: str,
                   user_id: int, now: datetime | None = None) -> int:
    """Ask to disclose preserved items under legal process ``reference`` (a warrant's,
    subpoena's or court order's number); an enabled admin asks, a different one approves
    (:func:`approve_export`). Audited. Returns the export's id. Raises
    :class:`PolicyDenied`, :class:`InvalidInput`, :class:`NotFound`."""
    ref = _text(reference, "legal process reference", MAX_REFERENCE_CHARS)
    why = _text(reason, "reason", MAX_REASON_CHARS)
    ids = sorted(set(item_ids))
    if not 1 <= len(ids) <= MAX_EXPORT_ITEMS:
        raise InvalidInput(f"an export holds 1-{MAX_EXPORT_ITEMS} items")
    _admin(session, user_id)
    for i in ids:
        _item(session, i)
    exp = EvidenceExport(reference=ref, reason=why, item_ids=ids, state="requested",
                         requested_by=user_id, requested_at=now or utcnow())
    session.add(exp)
    session.flush()
    record_audit_event(session, actor=f"user:{user_id}", action="evidence.export_request",
                       object_type="evidence_export", object_id=str(exp.id),
                       detail={"reference": ref, "items": ids})
    return exp.id


def approve_export(session: Session, *, vault: Vault, export_id: int, user_id: int,
                   out_dir: Path, now: datetime | None = None) -> ExportResult:
    """A second admin approves an export: the archive (see :data:`EXPORT_MAGIC`) is
    written to ``out_dir`` (mode 0600), encrypted with a fresh 256-bit key returned once.
    Its ``manifest.json`` names the reference, the items and each file's SHA-256. Audited
    (``evidence.export``, with the archive's SHA-256). Raises :class:`PolicyDenied` (the
    requester, or not an admin), :class:`Conflict` (approved already), :class:`NotFound`,
    :class:`LimitExceeded`."""
    exp = session.execute(select(EvidenceExport).where(EvidenceExport.id == export_id)
                          .with_for_update()).scalar_one_or_none()
    if exp is None:
        raise NotFound(f"no export {export_id}")
    if exp.state != "requested":
        raise Conflict(f"export {export_id} is {exp.state}")
    if exp.requested_by == user_id:
        raise PolicyDenied("an export needs a second admin's approval")
    _admin(session, user_id)
    at = now or utcnow()
    buf = io.BytesIO()
    manifest: dict[str, Any] = {"export_id": exp.id, "legal_process": exp.reference,
                                "requested_by": f"user:{exp.requested_by}",
                                "approved_by": f"user:{user_id}",
                                "created_at": at.isoformat(), "files": []}
    total = 0
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i in exp.item_ids:
            row = _item(session, int(i))
            parts = [("metadata.json", vault.read(session, row.record_id))]
            if row.evidence_id is not None:
                parts.append(("content.bin", vault.read(session, row.evidence_id)))
            for name, data in parts:
                total += len(data)
                if total > MAX_EXPORT_BYTES:
                    raise LimitExceeded(f"an export holds at most {MAX_EXPORT_BYTES} bytes")
                path = f"items/{row.id}/{name}"
                info = tarfile.TarInfo(path)
                info.size, info.mtime, info.mode = len(data), int(at.timestamp()), 0o600
                tar.addfile(info, io.BytesIO(data))
                manifest["files"].append({"path": path, "item_id": row.id,
                                          "content_id": row.content_id, "size": len(data),
                                          "sha256": hashlib.sha256(data).hexdigest()})
        mdata = json.dumps(manifest, indent=2, sort_keys=True).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size, info.mtime, info.mode = len(mdata), int(at.timestamp()), 0o600
        tar.addfile(info, io.BytesIO(mdata))
    key = AESGCM.generate_key(bit_length=256)
    nonce = secrets.token_bytes(12)
    blob = EXPORT_MAGIC + nonce + AESGCM(key).encrypt(nonce, buf.getvalue(), EXPORT_MAGIC)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"export-{exp.id}-{secrets.token_hex(4)}.bin"
    fd = os.open(out_dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    digest = hashlib.sha256(blob).hexdigest()
    exp.state, exp.approved_by, exp.approved_at = "approved", user_id, at
    exp.archive_name, exp.archive_sha256 = name, digest
    session.flush()
    record_audit_event(session, actor=f"user:{user_id}", action="evidence.export",
                       object_type="evidence_export", object_id=str(exp.id),
                       detail={"reference": exp.reference, "items": list(exp.item_ids),
                               "archive_sha256": digest})
    return ExportResult(exp.id, out_dir / name, digest, key.hex())


def open_export(blob: bytes, key_hex: str) -> dict[str, bytes]:
    """Decrypt an export archive with its key: ``{path: bytes}`` of its tar members
    (``manifest.json`` included). Raises :class:`InvalidInput` (wrong key, not an
    archive)."""
    from cryptography.exceptions import InvalidTag

    if not blob.startswith(EXPORT_MAGIC):
        raise InvalidInput("not a Bastion export archive")
    rest = blob[len(EXPORT_MAGIC):]
    try:
        plain = AESGCM(bytes.fromhex(key_hex)).decrypt(rest[:12], rest[12:], EXPORT_MAGIC)
    except (InvalidTag, ValueError):
        raise InvalidInput("the key does not open this archive") from None
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r") as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m)
            if f is not None:
                out[m.name] = f.read()
    return out
