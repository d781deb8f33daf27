"""Plain, immutable views of stored banks and entries, as the change log and snapshots
carry them to other processes (and as services return them to adapters).

They are detached from any session, cheap to build, and round-trip through JSON
(:meth:`to_json` / :meth:`from_json`), which is how the change log stores them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bastion.store.models import Bank, BankEntry


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


@dataclass(frozen=True, slots=True)
class BankRecord:
    """A bank's settings: ``thresholds`` maps signal type to the largest matching distance
    (inclusive, integer; overrides the signal type's default, e.g. PDQ 31 Hamming bits)."""

    id: int
    name: str
    label: str
    description: str
    thresholds: dict[str, int]
    auto_action: bool
    exportable: bool
    enabled: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def threshold_for(self, signal_type: str, default: int) -> int:
        """This bank's threshold for ``signal_type``, else ``default``."""
        return int(self.thresholds.get(signal_type, default))

    def to_json(self) -> dict[str, Any]:
        """The bank as a JSON object (times as ISO 8601 strings)."""
        return {
            "id": self.id,
            "name": self.name,
            "label": self.label,
            "description": self.description,
            "thresholds": dict(self.thresholds),
            "auto_action": self.auto_action,
            "exportable": self.exportable,
            "enabled": self.enabled,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> BankRecord:
        """Inverse of :meth:`to_json`."""
        return cls(
            id=int(obj["id"]),
            name=str(obj["name"]),
            label=str(obj.get("label", "")),
            description=str(obj.get("description", "")),
            thresholds={str(k): int(v) for k, v in (obj.get("thresholds") or {}).items()},
            auto_action=bool(obj.get("auto_action", False)),
            exportable=bool(obj.get("exportable", False)),
            enabled=bool(obj.get("enabled", True)),
            created_at=_dt(obj.get("created_at")),
            updated_at=_dt(obj.get("updated_at")),
        )

    @classmethod
    def from_row(cls, bank: Bank) -> BankRecord:
        """Build from an ORM row."""
        return cls(
            id=bank.id,
            name=bank.name,
            label=bank.label,
            description=bank.description,
            thresholds={str(k): int(v) for k, v in (bank.thresholds or {}).items()},
            auto_action=bank.auto_action,
            exportable=bank.exportable,
            enabled=bank.enabled,
            created_at=bank.created_at,
            updated_at=bank.updated_at,
        )


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """What matching needs of one bank entry.

    ``value`` is canonical for ``signal_type`` (PDQ: 64 lowercase hex; vPDQ: see
    :mod:`bastion.banks.values`); ``variant`` is the DESIGN.md variant object the value was
    computed from (``None``: the stored picture or a hash received as is); ``item_key`` ties
    together the signals of one known file; ``classification`` is A1/A2/B1/B2 or ``None``.
    ``options`` says how a ``url`` or ``keyword`` entry matches (``{"match": "prefix",
    "scheme": "any", "query_order": "keep"}``; see :func:`bastion.banks.values.check_entry`);
    ``None`` for other signal types.
    """

    id: int
    bank_id: int
    signal_type: str
    value: str
    variant: dict[str, Any] | None = None
    item_key: str | None = None
    classification: str | None = None
    enabled: bool = True
    disabled_until: datetime | None = None
    source: str | None = None
    external_id: str | None = None
    source_date: datetime | None = None
    note: str | None = None
    fp_votes: int = 0
    created_at: datetime | None = field(default=None, compare=False)
    options: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object (times as ISO 8601 strings)."""
        return {
            "id": self.id,
            "bank_id": self.bank_id,
            "signal_type": self.signal_type,
            "value": self.value,
            "variant": self.variant,
            "item_key": self.item_key,
            "classification": self.classification,
            "enabled": self.enabled,
            "disabled_until": _iso(self.disabled_until),
            "source": self.source,
            "external_id": self.external_id,
            "source_date": _iso(self.source_date),
            "note": self.note,
            "fp_votes": self.fp_votes,
            "created_at": _iso(self.created_at),
            "options": self.options,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> EntryRecord:
        """Inverse of :meth:`to_json`."""
        return cls(
            id=int(obj["id"]),
            bank_id=int(obj["bank_id"]),
            signal_type=str(obj["signal_type"]),
            value=str(obj["value"]),
            variant=obj.get("variant"),
            item_key=obj.get("item_key"),
            classification=obj.get("classification"),
            enabled=bool(obj.get("enabled", True)),
            disabled_until=_dt(obj.get("disabled_until")),
            source=obj.get("source"),
            external_id=obj.get("external_id"),
            source_date=_dt(obj.get("source_date")),
            note=obj.get("note"),
            fp_votes=int(obj.get("fp_votes", 0)),
            created_at=_dt(obj.get("created_at")),
            options=obj.get("options"),
        )

    @classmethod
    def from_row(cls, e: BankEntry) -> EntryRecord:
        """Build from an ORM row."""
        return cls(
            id=e.id,
            bank_id=e.bank_id,
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
            fp_votes=e.fp_votes,
            created_at=e.created_at,
            options=e.options,
        )
