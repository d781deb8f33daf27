"""Exporting a bank's entries (formats in :mod:`bastion.banks.formats`).

Only banks marked ``exportable`` can be exported: lists received from hotlines and
partners may not be redistributed, so ``exportable`` is off by default and an export of
any other bank raises :class:`~bastion.errors.PolicyDenied`. Every export is audited
(``bank.export``, with the actor, format and row count) in the caller's transaction; the
caller commits it even when writing fails half-way (what was attempted is on record).
"""

from __future__ import annotations

import csv
import json
from typing import Any, TextIO

from sqlalchemy.orm import Session

from bastion.banks.formats import BASTION_TO_PYTX, EXPORT_COLUMNS, check_format
from bastion.banks.schemas import ExportReport, RowIssue
from bastion.banks.values import OPTION_FIELDS, VPDQ, parse_vpdq
from bastion.errors import PolicyDenied
from bastion.store import bank_repository as repo
from bastion.store.audit import record_audit_event
from bastion.store.models import BankEntry


def _iso(value: Any) -> str:
    return "" if value is None else value.isoformat()


def _row(e: BankEntry) -> dict[str, Any]:
    options = e.options or {}
    return {
        "signal_type": e.signal_type,
        "value": e.value,
        "variant": e.variant,
        "item": e.item_key,
        "source": e.source,
        "external_id": e.external_id,
        "source_date": e.source_date,
        "classification": e.classification,
        "note": e.note,
        "enabled": e.enabled,
        "disabled_until": e.disabled_until,
        **{k: options.get(k) for k in OPTION_FIELDS},
    }


def _csv_cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key == "variant":
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if key in ("enabled", "collapse_repeats"):
        return "true" if value else "false"
    if key in ("source_date", "disabled_until"):
        return _iso(value)
    return str(value)


def _pytx_vpdq(value: str) -> str:
    return json.dumps([f"{f.value},{f.quality},{f.timestamp_s:.3f}" for f in parse_vpdq(value)])


def record_export_denied(session: Session, *, name: str, fmt: str, actor: str) -> None:
    """Audit a refused export (``bank.export.denied``). Adapters call this in a fresh
    unit of work after :func:`export_bank` raised :class:`PolicyDenied`, whose own
    transaction is rolled back."""
    bank = repo.get_bank(session, name)
    record_audit_event(
        session,
        actor=actor,
        action="bank.export.denied",
        object_type="bank",
        object_id=str(bank.id),
        detail={"bank": bank.name, "format": fmt},
    )


def export_bank(
    session: Session, *, name: str, out: TextIO, fmt: str = "csv", actor: str = "system"
) -> ExportReport:
    """Write every entry of the bank ``name`` to ``out`` in ``fmt`` (ascending entry id)
    and audit it. Raises :class:`NotFound`, :class:`PolicyDenied` (bank not exportable),
    :class:`InvalidInput` (unknown format)."""
    fmt = check_format(fmt)
    bank = repo.get_bank(session, name)
    if not bank.exportable:
        raise PolicyDenied(
            f"bank {bank.name!r} is not exportable (lists from hotlines and partners may not "
            "be redistributed); mark it exportable first if you own it"
        )
    report = ExportReport(bank=bank.name, format=fmt)
    event = record_audit_event(
        session,
        actor=actor,
        action="bank.export",
        object_type="bank",
        object_id=str(bank.id),
        detail={"bank": bank.name, "format": fmt, "rows": None},
    )
    writer: Any = None
    if fmt in ("csv", "tsv"):
        writer = csv.writer(out, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
    for batch in repo.iter_entries(session, bank):
        for e in batch:
            row = _row(e)
            if writer is not None:
                writer.writerow([_csv_cell(k, row[k]) for k in EXPORT_COLUMNS])
            elif fmt == "jsonl":
                obj = {k: v for k, v in row.items() if v is not None}
                for k in ("source_date", "disabled_until"):
                    if k in obj:
                        obj[k] = _iso(obj[k])
                out.write(json.dumps(obj, separators=(",", ":")) + "\n")
            else:
                pytx_name = BASTION_TO_PYTX.get(e.signal_type)
                if pytx_name is None:
                    report.skipped.append(
                        RowIssue(0, "skipped", f"entry {e.id}: python-threatexchange has no "
                                 f"{e.signal_type} signal type")
                    )
                    continue
                if e.signal_type == "url" and (e.options or {}).get("match", "exact") != "exact":
                    report.skipped.append(
                        RowIssue(0, "skipped", f"entry {e.id}: python-threatexchange has no "
                                 f"{(e.options or {}).get('match')} URL entries")
                    )
                    continue
                value = _pytx_vpdq(e.value) if e.signal_type == VPDQ else e.value
                out.write(f"{pytx_name} {value}\n")
            report.rows += 1
            session.expunge(e)
    event.detail = {
        "bank": bank.name,
        "format": fmt,
        "rows": report.rows,
        "skipped": len(report.skipped),
    }
    session.add(event)
    return report
