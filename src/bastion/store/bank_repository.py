"""Banks and their entries: reads and writes on an open :class:`~sqlalchemy.orm.Session`.

Every write that affects matching also appends to the bank change log in the same
transaction (:mod:`bastion.store.change_log`). Values arriving here are already validated
and canonical (:mod:`bastion.banks.values` does that on every way in); this module only
persists them. The caller owns the transaction (``with db.write() as session``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bastion.errors import Conflict, NotFound
from bastion.store.change_log import record_change, record_entry_changes
from bastion.store.models import BANK_ENTRIES, Bank, BankEntry
from bastion.store.records import BankRecord, EntryRecord
from bastion.store.types import utcnow

#: Rows per INSERT statement when adding entries in bulk.
INSERT_BATCH = 1_000

_HEX = frozenset("0123456789abcdef")


def value_key(value: str) -> str:
    """The indexed key of a canonical value: the value itself up to 80 characters (every
    hash), else ``"sha256:" + hex digest`` of its UTF-8 bytes (71 characters)."""
    if len(value) <= 80:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()


def value_bin(value: str) -> bytes | None:
    """Raw bytes of a lowercase-hex value of even length up to 128 characters (a hash: PDQ
    gives 32 bytes), else ``None``."""
    if 0 < len(value) <= 128 and len(value) % 2 == 0 and set(value) <= _HEX:
        return bytes.fromhex(value)
    return None


@dataclass(frozen=True, slots=True)
class NewEntry:
    """An entry to add: ``value`` canonical for ``signal_type``; the rest as in
    :class:`~bastion.store.records.EntryRecord`."""

    signal_type: str
    value: str
    variant: dict[str, Any] | None = None
    item_key: str | None = None
    source: str | None = None
    external_id: str | None = None
    source_date: datetime | None = None
    classification: str | None = None
    note: str | None = None
    enabled: bool = True
    disabled_until: datetime | None = None
    options: dict[str, Any] | None = None


# -- banks ------------------------------------------------------------------------------


def get_bank(session: Session, name: str, *, for_update: bool = False) -> Bank:
    """The bank called ``name``. Raises :class:`NotFound`. ``for_update`` locks its row
    (PostgreSQL) until the transaction ends."""
    q = select(Bank).where(Bank.name == name)
    if for_update:
        q = q.with_for_update()
    bank = session.execute(q).scalar_one_or_none()
    if bank is None:
        raise NotFound(f"no bank named {name!r}")
    return bank


def get_bank_by_id(session: Session, bank_id: int) -> Bank:
    """The bank with id ``bank_id``. Raises :class:`NotFound`."""
    bank = session.get(Bank, bank_id)
    if bank is None:
        raise NotFound(f"no bank with id {bank_id}")
    return bank


def list_banks(session: Session) -> list[Bank]:
    """Every bank, by name."""
    return list(session.execute(select(Bank).order_by(Bank.name)).scalars())


def entry_counts(session: Session) -> dict[int, tuple[int, int]]:
    """``{bank_id: (entries, enabled entries)}`` for banks that have entries."""
    q = select(
        BankEntry.bank_id,
        func.count(),
        func.sum(case((BankEntry.enabled.is_(True), 1), else_=0)),
    ).group_by(BankEntry.bank_id)
    out: dict[int, tuple[int, int]] = {}
    for bank_id, total, enabled in session.execute(q):
        out[int(bank_id)] = (int(total), int(enabled or 0))
    return out


def create_bank(
    session: Session,
    *,
    name: str,
    description: str = "",
    label: str = "",
    thresholds: dict[str, int] | None = None,
    auto_action: bool = False,
    exportable: bool = False,
    enabled: bool = True,
) -> Bank:
    """Create a bank and log ``bank_created``. Raises :class:`Conflict` if the name exists."""
    if session.execute(select(Bank.id).where(Bank.name == name)).first() is not None:
        raise Conflict(f"a bank named {name!r} exists already")
    now = utcnow()
    bank = Bank(
        name=name,
        description=description,
        label=label,
        thresholds=dict(thresholds or {}),
        auto_action=auto_action,
        exportable=exportable,
        enabled=enabled,
        created_at=now,
        updated_at=now,
    )
    session.add(bank)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a bank named {name!r} exists already") from exc
    record_change(session, "bank_created", bank=bank)
    return bank


_BANK_FIELDS = frozenset(
    {"name", "description", "label", "thresholds", "auto_action", "exportable", "enabled"}
)


def update_bank(session: Session, bank: Bank, **fields: Any) -> Bank:
    """Change a bank's settings (any of ``name``, ``description``, ``label``,
    ``thresholds``, ``auto_action``, ``exportable``, ``enabled``) and log the change:
    ``bank_enabled`` / ``bank_disabled`` when ``enabled`` flips, else ``bank_updated``.
    Raises :class:`Conflict` when renaming onto an existing name, :class:`ValueError` for
    an unknown field. A call that changes nothing writes nothing."""
    unknown = set(fields) - _BANK_FIELDS
    if unknown:
        raise ValueError(f"unknown bank fields: {sorted(unknown)}")
    changed = {k: v for k, v in fields.items() if getattr(bank, k) != v}
    if not changed:
        return bank
    if "name" in changed:
        clash = session.execute(
            select(Bank.id).where(Bank.name == changed["name"], Bank.id != bank.id)
        ).first()
        if clash is not None:
            raise Conflict(f"a bank named {changed['name']!r} exists already")
    for key, value in changed.items():
        setattr(bank, key, dict(value) if key == "thresholds" else value)
    bank.updated_at = utcnow()
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a bank named {bank.name!r} exists already") from exc
    if "enabled" in changed:
        record_change(session, "bank_enabled" if bank.enabled else "bank_disabled", bank=bank)
        if len(changed) > 1:
            record_change(session, "bank_updated", bank=bank)
    else:
        record_change(session, "bank_updated", bank=bank)
    return bank


def delete_bank(session: Session, bank: Bank) -> BankRecord:
    """Delete a bank and all its entries; log ``bank_deleted``. Returns what was deleted."""
    rec = BankRecord.from_row(bank)
    session.delete(bank)
    session.flush()
    record_change(session, "bank_deleted", bank=rec)
    return rec


# -- entries ----------------------------------------------------------------------------


def _insert_for(session: Session) -> Any:
    # Core table, not the mapped class: executemany through "insertmanyvalues" batches
    # with one cached statement (a multi-row .values() would recompile per batch).
    name = session.get_bind().dialect.name
    table = BANK_ENTRIES
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


def add_entries(
    session: Session, bank: Bank, entries: Sequence[NewEntry]
) -> tuple[list[EntryRecord], list[int]]:
    """Add ``entries`` to ``bank`` and log ``entry_added`` for each one stored.

    An entry whose ``(signal_type, value)`` is already in the bank (or earlier in
    ``entries``) is not stored again. Returns ``(stored records, indexes into entries of
    the duplicates)``.
    """
    now = utcnow()
    stored: list[EntryRecord] = []
    duplicates: list[int] = []
    seen: set[tuple[str, str]] = set()
    pending: list[tuple[int, NewEntry, str]] = []
    for i, e in enumerate(entries):
        key = (e.signal_type, value_key(e.value))
        if key in seen:
            duplicates.append(i)
            continue
        seen.add(key)
        pending.append((i, e, key[1]))
    for start in range(0, len(pending), INSERT_BATCH):
        chunk = pending[start : start + INSERT_BATCH]
        params = [
            {
                "bank_id": bank.id,
                "signal_type": e.signal_type,
                "value": e.value,
                "value_key": vk,
                "value_bin": value_bin(e.value),
                "variant": e.variant,
                "item_key": e.item_key,
                "source": e.source,
                "external_id": e.external_id,
                "source_date": e.source_date,
                "classification": e.classification,
                "note": e.note,
                "enabled": e.enabled,
                "disabled_until": e.disabled_until,
                "options": e.options,
                "fp_votes": 0,
                "created_at": now,
                "updated_at": now,
            }
            for _, e, vk in chunk
        ]
        table = BANK_ENTRIES
        stmt = (
            _insert_for(session)
            .on_conflict_do_nothing(index_elements=["bank_id", "signal_type", "value_key"])
            .returning(table.c.id, table.c.signal_type, table.c.value_key)
        )
        ids = {(st, vk): i for i, st, vk in session.connection().execute(stmt, params)}
        batch: list[EntryRecord] = []
        for idx, e, vk in chunk:
            entry_id = ids.get((e.signal_type, vk))
            if entry_id is None:
                duplicates.append(idx)
                continue
            batch.append(
                EntryRecord(
                    id=entry_id,
                    bank_id=bank.id,
                    signal_type=e.signal_type,
                    value=e.value,
                    variant=e.variant,
                    item_key=e.item_key,
                    classification=e.classification,
                    enabled=e.enabled,
                    disabled_until=e.disabled_until,
                    source=e.source,
                    external_id=e.external_id,
                    source_date=e.source_date,
                    note=e.note,
                    created_at=now,
                    options=e.options,
                )
            )
        record_entry_changes(session, "entry_added", bank, batch)
        stored.extend(batch)
    duplicates.sort()
    return stored, duplicates


def get_entry(
    session: Session, entry_id: int, *, bank: Bank | None = None, for_update: bool = False
) -> BankEntry:
    """The entry with id ``entry_id`` (in ``bank`` when given). Raises :class:`NotFound`."""
    q = select(BankEntry).where(BankEntry.id == entry_id)
    if bank is not None:
        q = q.where(BankEntry.bank_id == bank.id)
    if for_update:
        q = q.with_for_update()
    entry = session.execute(q).scalar_one_or_none()
    if entry is None:
        where = f" in bank {bank.name!r}" if bank is not None else ""
        raise NotFound(f"no entry {entry_id}{where}")
    return entry


def find_entries(
    session: Session, bank: Bank, signal_type: str, value: str
) -> list[BankEntry]:
    """Entries of ``bank`` with this canonical value (zero or one)."""
    q = select(BankEntry).where(
        BankEntry.bank_id == bank.id,
        BankEntry.signal_type == signal_type,
        BankEntry.value_key == value_key(value),
    )
    return list(session.execute(q).scalars())


def iter_entries(
    session: Session, bank: Bank, *, batch_size: int = 10_000
) -> Iterator[list[BankEntry]]:
    """Every entry of ``bank`` in ascending id, in lists of up to ``batch_size``."""
    last = 0
    while True:
        rows = list(
            session.execute(
                select(BankEntry)
                .where(BankEntry.bank_id == bank.id, BankEntry.id > last)
                .order_by(BankEntry.id)
                .limit(batch_size)
            ).scalars()
        )
        if not rows:
            return
        yield rows
        last = rows[-1].id


def set_entry_enabled(
    session: Session,
    bank: Bank,
    entry: BankEntry,
    enabled: bool,
    *,
    until: datetime | None = None,
) -> BankEntry:
    """Enable or disable an entry (``until``: re-enabled by :func:`release_due_entries`
    after that time) and log ``entry_enabled`` / ``entry_disabled``. No change, no log."""
    new_until = None if enabled else until
    if entry.enabled == enabled and entry.disabled_until == new_until:
        return entry
    entry.enabled = enabled
    entry.disabled_until = new_until
    entry.updated_at = utcnow()
    record_change(session, "entry_enabled" if enabled else "entry_disabled", bank=bank, entry=entry)
    return entry


_ENTRY_FIELDS = frozenset({"classification", "note", "source", "external_id", "item_key"})


def update_entry(session: Session, bank: Bank, entry: BankEntry, **fields: Any) -> BankEntry:
    """Change an entry's descriptive fields (``classification``, ``note``, ``source``,
    ``external_id``, ``item_key``) and log ``entry_updated``. Raises :class:`ValueError`
    for another field."""
    unknown = set(fields) - _ENTRY_FIELDS
    if unknown:
        raise ValueError(f"unknown entry fields: {sorted(unknown)}")
    changed = {k: v for k, v in fields.items() if getattr(entry, k) != v}
    if not changed:
        return entry
    for key, value in changed.items():
        setattr(entry, key, value)
    entry.updated_at = utcnow()
    record_change(session, "entry_updated", bank=bank, entry=entry)
    return entry


def delete_entry(session: Session, bank: Bank, entry: BankEntry) -> EntryRecord:
    """Delete an entry and log ``entry_deleted`` (payload: the entry as it was)."""
    rec = EntryRecord.from_row(entry)
    session.delete(entry)
    session.flush()
    record_change(session, "entry_deleted", bank=bank, entry=rec)
    return rec


def add_false_positive_vote(session: Session, entry: BankEntry) -> int:
    """Count one more false-positive vote for ``entry``; returns the new count. (Votes do
    not change matching, so no change-log row.)"""
    session.execute(
        update(BankEntry).where(BankEntry.id == entry.id).values(fp_votes=BankEntry.fp_votes + 1)
    )
    session.refresh(entry)
    return entry.fp_votes


def release_due_entries(session: Session, *, now: datetime | None = None) -> list[EntryRecord]:
    """Re-enable every entry whose ``disabled_until`` has passed, logging ``entry_enabled``
    for each. A periodic job (``bastion serve``'s worker) calls this about once a minute;
    until then such entries stay disabled (matching never guesses from the clock)."""
    when = now or utcnow()
    rows = list(
        session.execute(
            select(BankEntry)
            .where(
                BankEntry.enabled.is_(False),
                BankEntry.disabled_until.is_not(None),
                BankEntry.disabled_until <= when,
            )
            .order_by(BankEntry.id)
            .with_for_update()
        ).scalars()
    )
    out: list[EntryRecord] = []
    for entry in rows:
        bank = get_bank_by_id(session, entry.bank_id)
        set_entry_enabled(session, bank, entry, True)
        out.append(EntryRecord.from_row(entry))
    return out
