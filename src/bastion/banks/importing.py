"""Importing bank entries from files (formats in :mod:`bastion.banks.formats`).

Every row is validated by :func:`bastion.banks.values.check_entry`; every rejected,
flagged or duplicate row is reported with its 1-based line number (the line where the row
starts; the CSV header is line 1) and the reason.

Transactions: an import runs in the caller's one transaction. By default, bad rows are
skipped and listed in the report while the good rows are stored (all together, or none if
the transaction fails). With ``strict=True`` nothing is stored when any row is rejected
(the report still lists every problem). Flagged rows (suspicious but valid, such as a PDQ
hash far from 128 set bits) are stored in both modes.

Limits (:class:`ImportLimits`): file size, number of data rows, length of one line. Over a
limit the whole import is refused with :class:`~bastion.errors.LimitExceeded` before
anything is stored. A file that is not UTF-8, or CSV quoting that cannot be parsed, also
refuses the whole import (:class:`~bastion.errors.InvalidInput` naming the line).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session

from bastion.banks.formats import PYTX_TO_BASTION, check_format, guess_format
from bastion.banks.schemas import ImportReport, RowIssue
from bastion.banks.values import ENTRY_FIELDS, FIELD_ALIASES, VPDQ, check_entry
from bastion.errors import InvalidInput, LimitExceeded
from bastion.store import bank_repository as repo
from bastion.store.audit import record_audit_event

_KNOWN_FIELDS = frozenset(ENTRY_FIELDS) | frozenset(FIELD_ALIASES)


@dataclass(frozen=True, slots=True)
class ImportLimits:
    """Limits on one import: ``max_bytes`` of file, ``max_rows`` data rows, and
    ``max_line_chars`` characters in one line or CSV field (a vPDQ entry of 100,000
    frames is about 8 MB of JSON)."""

    max_bytes: int = 512 * 1024 * 1024
    max_rows: int = 2_000_000
    max_line_chars: int = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """One data row: its first line, its fields, or why it could not be read."""

    line: int
    fields: dict[str, Any] | None
    error: str | None = None


class _CountingReader(io.RawIOBase):
    """A binary reader that refuses to read past ``limit`` bytes."""

    def __init__(self, inner: IO[bytes], limit: int) -> None:
        self._inner = inner
        self._limit = limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        n = len(data)
        self.count += n
        if self.count > self._limit:
            raise LimitExceeded(f"file is larger than {self._limit} bytes")
        buffer[:n] = data
        return n


def _text_stream(binary: IO[bytes], limits: ImportLimits) -> io.TextIOWrapper:
    raw = io.BufferedReader(_CountingReader(binary, limits.max_bytes))
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")


def _excerpt(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _lines(stream: io.TextIOWrapper, limits: ImportLimits) -> Iterator[tuple[int, str | None]]:
    """Yield ``(line number, text without the line break)``, or ``(n, None)`` for a line
    over the length limit (the rest of it is skipped)."""
    n = 0
    while True:
        n += 1
        try:
            text = stream.readline(limits.max_line_chars + 1)
        except UnicodeDecodeError:
            raise InvalidInput(f"line {n}: the file is not valid UTF-8") from None
        if not text:
            return
        if len(text) > limits.max_line_chars and not text.endswith("\n"):
            while True:  # skip the rest of the overlong line
                more = stream.readline(1 << 20)
                if not more or more.endswith("\n"):
                    break
            yield n, None
            continue
        yield n, text.rstrip("\r\n")


def _rows_csv(
    stream: io.TextIOWrapper, delimiter: str, limits: ImportLimits
) -> Iterator[ParsedRow]:
    # csv's field limit is process-wide; raise it for this read and restore it after.
    old_limit = csv.field_size_limit(max(limits.max_line_chars, csv.field_size_limit()))
    reader = csv.reader(_LineCounter(stream), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    prev_end = 0
    try:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise InvalidInput(f"line {prev_end + 1}: the file is not valid UTF-8") from None
            except csv.Error as exc:
                raise InvalidInput(
                    f"line {reader.line_num}: cannot parse {delimiter!r}-separated values: {exc}"
                ) from None
            start = prev_end + 1
            prev_end = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if header is None:
                header = [c.strip().lower() for c in row]
                if "value" not in header and "signal" not in header:
                    raise InvalidInput(
                        f"line {start}: the header must name a 'value' (or 'signal') column"
                    )
                continue
            if any(len(c) > limits.max_line_chars for c in row):
                yield ParsedRow(start, None, f"a field is longer than {limits.max_line_chars}")
                continue
            if len(row) != len(header):
                yield ParsedRow(
                    start, None, f"{len(row)} columns where the header has {len(header)}"
                )
                continue
            yield ParsedRow(start, dict(zip(header, row, strict=True)))
    finally:
        csv.field_size_limit(old_limit)


class _LineCounter:
    """Iterates a text stream line by line for :mod:`csv` (which counts lines itself)."""

    def __init__(self, stream: io.TextIOWrapper) -> None:
        self._stream = stream

    def __iter__(self) -> _LineCounter:
        return self

    def __next__(self) -> str:
        line = self._stream.readline()
        if not line:
            raise StopIteration
        return line


def _rows_jsonl(stream: io.TextIOWrapper, limits: ImportLimits) -> Iterator[ParsedRow]:
    for n, text in _lines(stream, limits):
        if text is None:
            yield ParsedRow(n, None, f"line is longer than {limits.max_line_chars} characters")
            continue
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            yield ParsedRow(n, None, f"not valid JSON: {exc}")
            continue
        if not isinstance(obj, dict):
            yield ParsedRow(n, None, "a line must hold one JSON object")
            continue
        value = obj.get("value", obj.get("signal"))
        if isinstance(value, list):  # vPDQ frames given as the list itself
            obj = {**obj, "value": json.dumps(value)}
            obj.pop("signal", None)
        yield ParsedRow(n, obj)


def _rows_pytx(stream: io.TextIOWrapper, limits: ImportLimits) -> Iterator[ParsedRow]:
    for n, text in _lines(stream, limits):
        if text is None:
            yield ParsedRow(n, None, f"line is longer than {limits.max_line_chars} characters")
            continue
        line = text.strip()
        if not line:
            continue
        pytx_type, _, signal = line.partition(" ")
        if not signal.strip():
            yield ParsedRow(n, None, "expected '<signal type> <signal>'")
            continue
        name = PYTX_TO_BASTION.get(pytx_type.strip().lower())
        if name is None:
            yield ParsedRow(n, None, f"signal type {pytx_type[:40]!r} is not supported")
            continue
        yield ParsedRow(n, {"signal_type": name, "value": signal.strip()})


def read_rows(
    binary: IO[bytes], fmt: str, limits: ImportLimits = ImportLimits()
) -> Iterator[ParsedRow]:
    """Parse a bank file of format ``fmt`` (:data:`~bastion.banks.formats.FORMATS`) into
    rows. Raises :class:`InvalidInput` (not UTF-8, unparseable CSV, no value column) and
    :class:`LimitExceeded` (file too large) while iterating."""
    stream = _text_stream(binary, limits)
    fmt = check_format(fmt)
    if fmt == "csv":
        yield from _rows_csv(stream, ",", limits)
    elif fmt == "tsv":
        yield from _rows_csv(stream, "\t", limits)
    elif fmt == "jsonl":
        yield from _rows_jsonl(stream, limits)
    else:
        yield from _rows_pytx(stream, limits)


def import_stream(
    session: Session,
    *,
    name: str,
    binary: IO[bytes],
    fmt: str,
    strict: bool = False,
    limits: ImportLimits = ImportLimits(),
    defaults: dict[str, Any] | None = None,
    actor: str = "system",
) -> ImportReport:
    """Import a bank file read from ``binary`` into the bank ``name`` in ``session``'s
    transaction (see the module docstring for the rules). ``defaults`` fill empty fields
    of every row (``signal_type`` for a file of bare values, ``source`` ...). Returns the
    report; ``report.committed`` is false when ``strict`` refused the file. Raises
    :class:`NotFound` (bank), :class:`InvalidInput`, :class:`LimitExceeded`."""
    fmt = check_format(fmt)
    bank = repo.get_bank(session, name)
    report = ImportReport(bank=bank.name, format=fmt, strict=strict)
    entries: list[repo.NewEntry] = []
    lines: list[int] = []
    unknown: set[str] = set()
    for row in read_rows(binary, fmt, limits):
        report.rows += 1
        if report.rows > limits.max_rows:
            raise LimitExceeded(f"more than {limits.max_rows} rows; nothing was imported")
        if row.fields is None:
            report.issues.append(RowIssue(row.line, "rejected", row.error or "unreadable row"))
            continue
        unknown.update(k for k in row.fields if k not in _KNOWN_FIELDS)
        fields = {k: v for k, v in row.fields.items() if k in _KNOWN_FIELDS}
        try:
            entry, warnings = check_entry(fields, defaults=defaults)
        except InvalidInput as exc:
            value = fields.get("value", fields.get("signal"))
            report.issues.append(RowIssue(row.line, "rejected", exc.message, _excerpt(value)))
            continue
        for w in warnings:
            report.issues.append(RowIssue(row.line, "flagged", w, _excerpt(entry.value)))
        entries.append(entry)
        lines.append(row.line)
    if unknown:
        report.notes.append(f"ignored columns/keys: {', '.join(sorted(unknown))}")
    if strict and report.count("rejected"):
        report.notes.append("strict: a row was rejected, so nothing was imported")
        report.issues.sort(key=lambda i: i.line)
        return report
    stored, dups = repo.add_entries(session, bank, entries)
    for i in dups:
        e = entries[i]
        why = f"{e.signal_type} value already in bank {bank.name!r}"
        if e.signal_type == VPDQ:
            why = "vpdq value already in the bank"
        report.issues.append(RowIssue(lines[i], "duplicate", why, _excerpt(e.value)))
    report.stored = len(stored)
    report.committed = True
    report.issues.sort(key=lambda i: i.line)
    record_audit_event(
        session,
        actor=actor,
        action="bank.import",
        object_type="bank",
        object_id=str(bank.id),
        detail={
            "bank": bank.name,
            "format": fmt,
            "rows": report.rows,
            "stored": report.stored,
            "rejected": report.count("rejected"),
        },
    )
    return report


def import_file(
    session: Session,
    *,
    name: str,
    path: str | os.PathLike[str],
    fmt: str | None = None,
    strict: bool = False,
    limits: ImportLimits = ImportLimits(),
    defaults: dict[str, Any] | None = None,
    actor: str = "system",
) -> ImportReport:
    """Import the file at ``path`` (format from ``fmt`` or the file's extension); see
    :func:`import_stream`. The size limit is checked before reading. Raises
    :class:`InvalidInput` when the file cannot be opened."""
    p = Path(path)
    fmt = check_format(fmt) if fmt else guess_format(p)
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise InvalidInput(f"{p} is not a regular file")
    except OSError as exc:
        raise InvalidInput(f"cannot read {p}: {exc.strerror}") from None
    if size > limits.max_bytes:
        raise LimitExceeded(f"{p.name} is {size} bytes, over the limit of {limits.max_bytes}")
    try:
        with p.open("rb") as fh:
            return import_stream(
                session,
                name=name,
                binary=fh,
                fmt=fmt,
                strict=strict,
                limits=limits,
                defaults=defaults,
                actor=actor,
            )
    except OSError as exc:
        raise InvalidInput(f"cannot read {p}: {exc.strerror}") from None


__all__ = ["ImportLimits", "ParsedRow", "import_file", "import_stream", "read_rows"]
