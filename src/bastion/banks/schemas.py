"""Shapes the banks service takes and returns (CLI JSON, API bodies, import reports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bastion.store.records import BankRecord, EntryRecord


class BankCreate(BaseModel):
    """A new bank. ``thresholds`` override signal types' defaults (PDQ 31 Hamming bits)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    label: str = ""
    thresholds: dict[str, int] = Field(default_factory=dict)
    auto_action: bool = False
    exportable: bool = False


class BankUpdate(BaseModel):
    """Fields to change on a bank; ``None`` leaves a field as it is."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = None
    label: str | None = None
    thresholds: dict[str, int] | None = None
    auto_action: bool | None = None
    exportable: bool | None = None
    enabled: bool | None = None


class BankRead(BaseModel):
    """A bank as shown to operators: settings plus entry counts."""

    id: int
    name: str
    description: str
    label: str
    thresholds: dict[str, int]
    auto_action: bool
    exportable: bool
    enabled: bool
    entries: int = 0
    enabled_entries: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_record(cls, rec: BankRecord, counts: tuple[int, int] = (0, 0)) -> BankRead:
        """Build from a :class:`BankRecord` and ``(entries, enabled entries)``."""
        return cls(
            id=rec.id,
            name=rec.name,
            description=rec.description,
            label=rec.label,
            thresholds=dict(rec.thresholds),
            auto_action=rec.auto_action,
            exportable=rec.exportable,
            enabled=rec.enabled,
            entries=counts[0],
            enabled_entries=counts[1],
            created_at=rec.created_at,
            updated_at=rec.updated_at,
        )


class EntryRead(BaseModel):
    """One bank entry as shown to operators and in JSON exports."""

    id: int
    bank: str
    signal_type: str
    value: str
    variant: dict[str, Any] | None = None
    item: str | None = None
    source: str | None = None
    external_id: str | None = None
    source_date: datetime | None = None
    classification: str | None = None
    note: str | None = None
    enabled: bool = True
    disabled_until: datetime | None = None
    fp_votes: int = 0
    created_at: datetime | None = None
    #: How a ``url`` or ``keyword`` entry matches (``match``, ``scheme`` ...); None otherwise.
    options: dict[str, Any] | None = None

    @classmethod
    def from_record(cls, rec: EntryRecord, bank: str) -> EntryRead:
        """Build from an :class:`EntryRecord` of the bank named ``bank``."""
        return cls(
            id=rec.id,
            bank=bank,
            signal_type=rec.signal_type,
            value=rec.value,
            variant=rec.variant,
            item=rec.item_key,
            source=rec.source,
            external_id=rec.external_id,
            source_date=rec.source_date,
            classification=rec.classification,
            note=rec.note,
            enabled=rec.enabled,
            disabled_until=rec.disabled_until,
            fp_votes=rec.fp_votes,
            created_at=rec.created_at,
            options=rec.options,
        )


IssueKind = Literal["rejected", "flagged", "duplicate", "skipped"]


@dataclass(frozen=True, slots=True)
class RowIssue:
    """One problem with one input row: ``line`` is the 1-based line of the file where the
    row starts (0 for a problem with no line, such as a file-level note); ``kind`` is
    ``rejected`` (not stored), ``flagged`` (stored, but suspicious), ``duplicate`` (already
    in the bank, not stored again) or ``skipped`` (not exported / not added);
    ``excerpt`` is the start of the offending value, for the operator to find it."""

    line: int
    kind: IssueKind
    reason: str
    excerpt: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"line", "kind", "reason", "excerpt"?}``."""
        out: dict[str, Any] = {"line": self.line, "kind": self.kind, "reason": self.reason}
        if self.excerpt is not None:
            out["excerpt"] = self.excerpt
        return out


@dataclass(slots=True)
class ImportReport:
    """What an import did. ``committed`` is false when nothing was stored (``--strict``
    with a rejected row). ``rows`` counts data rows read (headers and blank lines
    excluded); ``stored + duplicates + rejected == rows`` when committed."""

    bank: str
    format: str
    strict: bool
    rows: int = 0
    stored: int = 0
    committed: bool = False
    issues: list[RowIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, kind: IssueKind) -> int:
        """How many issues of ``kind``."""
        return sum(1 for i in self.issues if i.kind == kind)

    def to_json(self) -> dict[str, Any]:
        """The report as one JSON object (every issue listed)."""
        return {
            "bank": self.bank,
            "format": self.format,
            "strict": self.strict,
            "committed": self.committed,
            "rows": self.rows,
            "stored": self.stored,
            "rejected": self.count("rejected"),
            "flagged": self.count("flagged"),
            "duplicates": self.count("duplicate"),
            "issues": [i.to_json() for i in self.issues],
            "notes": list(self.notes),
        }


@dataclass(slots=True)
class ExportReport:
    """What an export wrote: ``rows`` written, and entries ``skipped`` (with reasons; the
    python-threatexchange format has no SHA-1 type, for example)."""

    bank: str
    format: str
    rows: int = 0
    skipped: list[RowIssue] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"bank", "format", "rows", "skipped": [...]}``."""
        return {
            "bank": self.bank,
            "format": self.format,
            "rows": self.rows,
            "skipped": [i.to_json() for i in self.skipped],
        }


@dataclass(slots=True)
class AddFilesReport:
    """What ``bastion bank add`` did per file: ``added`` entries by path, and issues
    (``line`` is the 1-based position of the path among the arguments)."""

    bank: str
    added: dict[str, list[EntryRead]] = field(default_factory=dict)
    issues: list[RowIssue] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"bank", "files": {path: [entry...]}, "issues": [...]}``."""
        return {
            "bank": self.bank,
            "files": {
                p: [e.model_dump(mode="json") for e in es] for p, es in self.added.items()
            },
            "issues": [i.to_json() for i in self.issues],
        }
