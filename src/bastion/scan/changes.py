"""Applying the bank change log to an in-memory matcher: the one contract every index
follower shares (:mod:`bastion.store.change_log` explains why each rule is idempotent)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bastion.store.change_log import Change
from bastion.store.records import BankRecord, EntryRecord


def apply_changes(
    changes: Iterable[Change],
    banks: dict[int, BankRecord],
    *,
    upsert: Callable[[EntryRecord], None],
    remove: Callable[[int], None],
    drop_bank: Callable[[int], None],
) -> int:
    """Apply ``changes`` in order: entries added/enabled/updated are upserted (the callee
    checks its bank is known and enabled), disabled/deleted ones removed by id; bank changes
    update ``banks`` in place, and a disabled or deleted bank's entries are dropped, an
    enabled bank's entries upserted. Returns how many changes were applied. The caller
    holds its own lock."""
    n = 0
    for ch in changes:
        n += 1
        if ch.kind.startswith("entry_"):
            assert ch.entry is not None
            if ch.kind == "entry_deleted" or not ch.entry.enabled:
                remove(ch.entry.id)
            else:
                upsert(ch.entry)
            continue
        if ch.kind == "bank_deleted":
            drop_bank(ch.bank_id)
            banks.pop(ch.bank_id, None)
            continue
        assert ch.bank is not None
        banks[ch.bank_id] = ch.bank
        if ch.kind == "bank_disabled":
            drop_bank(ch.bank_id)
        elif ch.kind == "bank_enabled":
            for e in ch.bank_entries or ():
                upsert(e)
    return n
