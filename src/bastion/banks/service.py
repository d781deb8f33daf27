"""The banks service: create, list, show, rename, enable/disable and delete banks; add,
disable, enable and delete entries; hash files into a bank.

Plain functions with keyword-only arguments and an explicit session; the caller (CLI, API)
owns the unit of work::

    with db.write() as session:
        bank = service.create(session, data=BankCreate(name="hotline", label="csam"))

Every change that affects matching writes the bank change log in the same transaction
(:mod:`bastion.store.change_log`), so every process's indexes follow within a second.
Errors: :class:`~bastion.errors.NotFound`, :class:`~bastion.errors.Conflict`,
:class:`~bastion.errors.InvalidInput`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from bastion.banks.schemas import (
    AddFilesReport,
    BankCreate,
    BankRead,
    BankUpdate,
    EntryRead,
    RowIssue,
)
from bastion.banks.values import (
    VPDQ,
    check_bank_name,
    check_entry,
    check_label,
    check_thresholds,
    encode_vpdq,
)
from bastion.config import Limits
from bastion.errors import InvalidInput
from bastion.signals.base import MIN_MATCH_QUALITY, Signal, VideoSignal
from bastion.signals.result import HashResult
from bastion.store import bank_repository as repo
from bastion.store.records import BankRecord, EntryRecord

#: Signature of :func:`bastion.signals.compute.hash_file` as this module uses it.
HashFile = Callable[..., HashResult]


def _read(session: Session, bank: Any) -> BankRead:
    counts = repo.entry_counts(session).get(bank.id, (0, 0))
    return BankRead.from_record(BankRecord.from_row(bank), counts)


def create(session: Session, *, data: BankCreate) -> BankRead:
    """Create a bank (enabled, ``exportable`` off unless asked). Raises
    :class:`InvalidInput` for a bad name, label or threshold, :class:`Conflict` if the name
    is taken."""
    bank = repo.create_bank(
        session,
        name=check_bank_name(data.name),
        description=data.description.strip(),
        label=check_label(data.label),
        thresholds=check_thresholds(data.thresholds),
        auto_action=data.auto_action,
        exportable=data.exportable,
    )
    return BankRead.from_record(BankRecord.from_row(bank))


def get(session: Session, *, name: str) -> BankRead:
    """The bank called ``name`` with its entry counts. Raises :class:`NotFound`."""
    return _read(session, repo.get_bank(session, name))


def get_all(session: Session) -> list[BankRead]:
    """Every bank, by name, with entry counts."""
    counts = repo.entry_counts(session)
    return [
        BankRead.from_record(BankRecord.from_row(b), counts.get(b.id, (0, 0)))
        for b in repo.list_banks(session)
    ]


def update(session: Session, *, name: str, data: BankUpdate) -> BankRead:
    """Change a bank's settings (fields left ``None`` stay). Raises :class:`NotFound`,
    :class:`Conflict` (rename onto an existing name), :class:`InvalidInput`."""
    bank = repo.get_bank(session, name, for_update=True)
    fields: dict[str, Any] = {}
    if data.name is not None:
        fields["name"] = check_bank_name(data.name)
    if data.description is not None:
        fields["description"] = data.description.strip()
    if data.label is not None:
        fields["label"] = check_label(data.label)
    if data.thresholds is not None:
        fields["thresholds"] = check_thresholds(data.thresholds)
    for key in ("auto_action", "exportable", "enabled"):
        value = getattr(data, key)
        if value is not None:
            fields[key] = value
    repo.update_bank(session, bank, **fields)
    return _read(session, bank)


def rename(session: Session, *, name: str, new_name: str) -> BankRead:
    """Rename a bank. Raises :class:`NotFound`, :class:`Conflict`, :class:`InvalidInput`."""
    return update(session, name=name, data=BankUpdate(name=new_name))


def set_enabled(session: Session, *, name: str, enabled: bool) -> BankRead:
    """Enable or disable a whole bank (a disabled bank never matches)."""
    return update(session, name=name, data=BankUpdate(enabled=enabled))


def set_threshold(session: Session, *, name: str, signal_type: str, value: int | None) -> BankRead:
    """Set (or with ``None`` remove) the bank's threshold for one signal type."""
    bank = repo.get_bank(session, name, for_update=True)
    thresholds = dict(bank.thresholds or {})
    if value is None:
        thresholds.pop(signal_type, None)
    else:
        thresholds.update(check_thresholds({signal_type: value}))
    repo.update_bank(session, bank, thresholds=thresholds)
    return _read(session, bank)


def delete(session: Session, *, name: str) -> BankRead:
    """Delete a bank and all its entries. Returns the bank as it was."""
    bank = repo.get_bank(session, name, for_update=True)
    before = _read(session, bank)
    repo.delete_bank(session, bank)
    return before


# -- entries ----------------------------------------------------------------------------


def add_entry(session: Session, *, name: str, fields: dict[str, Any]) -> tuple[EntryRead, bool]:
    """Validate and add one entry given as fields (see
    :func:`bastion.banks.values.check_entry`). Returns ``(entry, created)``; ``created`` is
    false when the bank already held this value (the existing entry is returned). Raises
    :class:`InvalidInput` with the reason, :class:`NotFound` for the bank."""
    bank = repo.get_bank(session, name)
    entry, _warnings = check_entry(fields)
    stored, _dups = repo.add_entries(session, bank, [entry])
    if stored:
        return EntryRead.from_record(stored[0], bank.name), True
    (existing,) = repo.find_entries(session, bank, entry.signal_type, entry.value)
    return EntryRead.from_record(EntryRecord.from_row(existing), bank.name), False


def list_entries(
    session: Session, *, name: str, after_id: int = 0, limit: int = 100
) -> list[EntryRead]:
    """Entries of a bank in ascending id after ``after_id``, at most ``limit`` (1-10000)."""
    if not 1 <= limit <= 10_000:
        raise InvalidInput("limit must be between 1 and 10000")
    bank = repo.get_bank(session, name)
    for batch in repo.iter_entries(session, bank, batch_size=limit):
        rows = [e for e in batch if e.id > after_id]
        if rows:
            return [EntryRead.from_record(EntryRecord.from_row(e), bank.name) for e in rows]
    return []


def set_entry_enabled(
    session: Session,
    *,
    name: str,
    entry_id: int,
    enabled: bool,
    until: datetime | None = None,
) -> EntryRead:
    """Enable an entry, or disable it (until ``until``, aware UTC, when given)."""
    bank = repo.get_bank(session, name)
    entry = repo.get_entry(session, entry_id, bank=bank, for_update=True)
    repo.set_entry_enabled(session, bank, entry, enabled, until=until)
    return EntryRead.from_record(EntryRecord.from_row(entry), bank.name)


def delete_entry(session: Session, *, name: str, entry_id: int) -> EntryRead:
    """Delete one entry; returns it as it was."""
    bank = repo.get_bank(session, name)
    entry = repo.get_entry(session, entry_id, bank=bank, for_update=True)
    return EntryRead.from_record(repo.delete_entry(session, bank, entry), bank.name)


def release_due_entries(session: Session, *, now: datetime | None = None) -> int:
    """Re-enable entries whose ``disabled_until`` has passed (a periodic job); returns how
    many."""
    return len(repo.release_due_entries(session, now=now))


# -- hashing files into a bank ------------------------------------------------------------


def entry_fields_from_signal(signal: Signal | VideoSignal) -> dict[str, Any]:
    """The entry fields for one computed signal: its type, value and (for perceptual
    hashes) the variant it was computed from; a video's vPDQ becomes one ``vpdq`` entry."""
    if isinstance(signal, VideoSignal):
        out_v: dict[str, Any] = {"signal_type": VPDQ, "value": encode_vpdq(signal.frames)}
        if signal.variant.kind != "stored":
            out_v["variant"] = signal.variant.to_json()
        return out_v
    out: dict[str, Any] = {"signal_type": signal.signal_type, "value": signal.value}
    if signal.quality is not None:
        out["variant"] = signal.variant.to_json()
    return out


def item_key_for(result: HashResult) -> str | None:
    """The item key tying a file's signals together: ``sha256:<hex>`` of its bytes (the
    same file added twice gets the same key), or None when its bytes could not be read."""
    for s in result.signals:
        if isinstance(s, Signal) and s.signal_type == "sha256":
            return f"sha256:{s.value}"
    return None


def add_files(
    session: Session,
    *,
    name: str,
    paths: Sequence[str | os.PathLike[str]],
    hash_file: HashFile | None = None,
    limits: Limits | None = None,
    provenance: dict[str, Any] | None = None,
) -> AddFilesReport:
    """Hash each file (``bastion.signals.compute.hash_file``) and add every signal it
    yields to the bank, tied together by one item key per file (:func:`item_key_for`).

    Perceptual hashes of quality below 50 are not added (they are never matched and would
    match featureless pictures); exact hashes of a file that could not be decoded are
    added; the empty file adds nothing. Each such case is a ``skipped`` issue with the
    path's 1-based position as ``line``. ``provenance`` fills ``source``,
    ``external_id``, ``classification``, ``note`` for every entry.
    """
    if hash_file is None:
        from bastion.signals.compute import hash_file as default_hash_file

        hash_file = default_hash_file
    bank = repo.get_bank(session, name)
    report = AddFilesReport(bank=bank.name)
    for pos, raw in enumerate(paths, start=1):
        path = os.fspath(raw)
        result = hash_file(Path(path), limits=limits or Limits(), every_frame=True, variants="bank")
        key = item_key_for(result)
        if key is None:
            why = f"{path}: {result.reason or 'unreadable'}"
            report.issues.append(RowIssue(pos, "skipped", why))
            continue
        if result.status != "hashed":
            why = f"{path}: not decoded ({result.reason}); exact hashes only"
            report.issues.append(RowIssue(pos, "flagged", why))
        new: list[repo.NewEntry] = []
        for signal in result.signals:
            if isinstance(signal, Signal) and signal.low_quality:
                report.issues.append(
                    RowIssue(
                        pos,
                        "skipped",
                        f"{path}: {signal.signal_type} {signal.variant.kind} has quality "
                        f"{signal.quality} < {MIN_MATCH_QUALITY}; not added",
                    )
                )
                continue
            fields = {**(provenance or {}), **entry_fields_from_signal(signal), "item": key}
            try:
                entry, warnings = check_entry(fields)
            except InvalidInput as exc:
                report.issues.append(
                    RowIssue(pos, "skipped", f"{path}: {signal.signal_type}: {exc.message}")
                )
                continue
            for w in warnings:
                report.issues.append(RowIssue(pos, "flagged", f"{path}: {w}"))
            new.append(entry)
        stored, dups = repo.add_entries(session, bank, new)
        for i in dups:
            report.issues.append(
                RowIssue(pos, "duplicate", f"{path}: {new[i].signal_type} already in the bank")
            )
        report.added[path] = [EntryRead.from_record(e, bank.name) for e in stored]
    return report
