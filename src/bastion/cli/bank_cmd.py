"""``bastion bank``: manage banks of known signals.

Thin adapter: each command opens one unit of work, calls :mod:`bastion.banks`, and prints
the result (``--json`` for machine-readable output). The store is the one named by the
settings: ``--data-dir`` / ``BASTION_HOME`` (SQLite under it by default) or
``BASTION_DATABASE_URL``. Exit status: 0 on success; 2 for usage and validation errors
(including an import or add in which any row or file was rejected: the report says what
was stored anyway), unknown banks, refused exports.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from bastion.banks import service
from bastion.banks.exporting import export_bank, record_export_denied
from bastion.banks.formats import FORMATS
from bastion.banks.importing import ImportLimits, import_file
from bastion.banks.sample import create_sample_bank
from bastion.banks.schemas import BankCreate, BankRead, BankUpdate, ImportReport, RowIssue
from bastion.banks.values import check_time, parse_threshold_option
from bastion.config import load_settings
from bastion.errors import InvalidInput, PolicyDenied
from bastion.store.database import Database, open_database

bank_app = typer.Typer(
    name="bank",
    help="Manage banks of known signals (hash lists).",
    no_args_is_help=True,
    add_completion=False,
)

DEFAULT_MAX_ROWS = ImportLimits().max_rows

#: Rows of an import report printed as text (``--json`` lists all).
TEXT_REPORT_ROWS = 200

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@bank_app.callback()
def _bank_group(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="BASTION_HOME",
            help="Data directory (default ./bastion-data); BASTION_DATABASE_URL overrides "
            "the database.",
        ),
    ] = None,
) -> None:
    """Manage banks of known signals (hash lists)."""
    ctx.obj = data_dir


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def _database(ctx: typer.Context) -> Iterator[Database]:
    settings = load_settings(home=ctx.obj)
    db = open_database(settings)
    try:
        yield db
    finally:
        db.dispose()


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=None, default=str, ensure_ascii=False))


def _bank_text(b: BankRead) -> str:
    flags = [
        "enabled" if b.enabled else "DISABLED",
        "auto-action" if b.auto_action else "no auto-action",
        "exportable" if b.exportable else "not exportable",
    ]
    th = ", ".join(f"{k}={v}" for k, v in sorted(b.thresholds.items())) or "defaults"
    return (
        f"{b.name}  label={b.label or '-'}  entries={b.entries} ({b.enabled_entries} enabled)"
        f"  thresholds: {th}  [{', '.join(flags)}]"
    )


def _thresholds(values: list[str] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values or []:
        k, n = parse_threshold_option(v)
        out[k] = n
    return out


def _issue_text(i: RowIssue) -> str:
    where = f"line {i.line}: " if i.line else ""
    tail = f"  [{i.excerpt}]" if i.excerpt else ""
    return f"  {i.kind:9} {where}{i.reason}{tail}"


def _print_import(report: ImportReport, as_json: bool) -> None:
    if as_json:
        _print_json(report.to_json())
        return
    verb = "imported" if report.committed else "NOT imported (strict)"
    typer.echo(
        f"{report.bank}: {verb}: {report.rows} rows read, {report.stored} stored, "
        f"{report.count('rejected')} rejected, {report.count('flagged')} flagged, "
        f"{report.count('duplicate')} duplicates"
    )
    for issue in report.issues[:TEXT_REPORT_ROWS]:
        typer.echo(_issue_text(issue))
    if len(report.issues) > TEXT_REPORT_ROWS:
        typer.echo(f"  ... and {len(report.issues) - TEXT_REPORT_ROWS} more (use --json)")
    for note in report.notes:
        typer.echo(f"  note: {note}")


@bank_app.command("create")
def create_command(
    ctx: typer.Context,
    name: str,
    label: Annotated[str, typer.Option(help="csam, ncii, terrorism, trafficking, ...")] = "",
    description: Annotated[str, typer.Option()] = "",
    threshold: Annotated[
        list[str] | None,
        typer.Option(help="Per-signal-type threshold, e.g. pdq=20 (repeatable)."),
    ] = None,
    auto_action: Annotated[
        bool, typer.Option("--auto-action", help="Matches may trigger automatic action.")
    ] = False,
    exportable: Annotated[
        bool, typer.Option("--exportable", help="Allow exporting this bank.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a bank."""
    data = BankCreate(
        name=name,
        label=label,
        description=description,
        thresholds=_thresholds(threshold),
        auto_action=auto_action,
        exportable=exportable,
    )
    with _database(ctx) as db, db.write() as s:
        bank = service.create(s, data=data)
    _print_json(bank.model_dump(mode="json")) if as_json else typer.echo(
        f"created {_bank_text(bank)}"
    )


@bank_app.command("list")
def list_command(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List banks."""
    with _database(ctx) as db, db.read() as s:
        banks = service.get_all(s)
    if as_json:
        _print_json([b.model_dump(mode="json") for b in banks])
        return
    if not banks:
        typer.echo("no banks (create one with 'bastion bank create NAME' or 'bastion bank sample')")
    for b in banks:
        typer.echo(_bank_text(b))


@bank_app.command("show")
def show_command(
    ctx: typer.Context,
    name: str,
    entries: Annotated[int, typer.Option(help="Also list up to N entries.", min=0)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Show a bank and its first entries."""
    with _database(ctx) as db, db.read() as s:
        bank = service.get(s, name=name)
        rows = service.list_entries(s, name=name, limit=entries) if entries else []
    if as_json:
        _print_json(
            {**bank.model_dump(mode="json"), "first_entries": [e.model_dump(mode="json")
                                                               for e in rows]}
        )
        return
    typer.echo(_bank_text(bank))
    if bank.description:
        typer.echo(f"  {bank.description}")
    for e in rows:
        state = "" if e.enabled else "  (disabled)"
        extra = f"  {e.classification}" if e.classification else ""
        typer.echo(f"  #{e.id}  {e.signal_type}  {e.value[:80]}{extra}{state}")
    if bank.entries > len(rows) and entries:
        typer.echo(f"  ... {bank.entries - len(rows)} more")


@bank_app.command("update")
def update_command(
    ctx: typer.Context,
    name: str,
    label: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(help="Set a threshold, e.g. pdq=20 (repeatable); others stay."),
    ] = None,
    auto_action: Annotated[bool | None, typer.Option("--auto-action/--no-auto-action")] = None,
    exportable: Annotated[bool | None, typer.Option("--exportable/--not-exportable")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a bank's label, description, thresholds, auto-action or exportable flag."""
    with _database(ctx) as db, db.write() as s:
        thresholds = None
        if threshold:
            thresholds = {**service.get(s, name=name).thresholds, **_thresholds(threshold)}
        bank = service.update(
            s,
            name=name,
            data=BankUpdate(
                label=label,
                description=description,
                thresholds=thresholds,
                auto_action=auto_action,
                exportable=exportable,
            ),
        )
    _print_json(bank.model_dump(mode="json")) if as_json else typer.echo(_bank_text(bank))


@bank_app.command("rename")
def rename_command(ctx: typer.Context, name: str, new_name: str) -> None:
    """Rename a bank."""
    with _database(ctx) as db, db.write() as s:
        bank = service.rename(s, name=name, new_name=new_name)
    typer.echo(f"renamed {name} to {bank.name}")


@bank_app.command("enable")
def enable_command(ctx: typer.Context, name: str) -> None:
    """Enable a bank (its entries match again)."""
    with _database(ctx) as db, db.write() as s:
        service.set_enabled(s, name=name, enabled=True)
    typer.echo(f"enabled {name}")


@bank_app.command("disable")
def disable_command(ctx: typer.Context, name: str) -> None:
    """Disable a bank (nothing in it matches)."""
    with _database(ctx) as db, db.write() as s:
        service.set_enabled(s, name=name, enabled=False)
    typer.echo(f"disabled {name}")


@bank_app.command("delete")
def delete_command(
    ctx: typer.Context,
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a bank and all its entries."""
    with _database(ctx) as db:
        with db.read() as s:
            bank = service.get(s, name=name)
        if not yes:
            if not sys.stdin.isatty():
                raise InvalidInput("refusing to delete without confirmation: pass --yes")
            typer.confirm(f"delete bank {name} and its {bank.entries} entries?", abort=True)
        with db.write() as s:
            service.delete(s, name=name)
    typer.echo(f"deleted {name} ({bank.entries} entries)")


def _entry_command(ctx: typer.Context, name: str, entry_id: int, action: str,
                   until: str | None = None) -> None:
    with _database(ctx) as db, db.write() as s:
        if action == "delete":
            e = service.delete_entry(s, name=name, entry_id=entry_id)
        else:
            e = service.set_entry_enabled(
                s, name=name, entry_id=entry_id, enabled=action == "enable",
                until=check_time(until, "--until"),
            )
    typer.echo(f"{action}d entry #{e.id} ({e.signal_type} {e.value[:64]}) in {name}")


@bank_app.command("disable-entry")
def disable_entry_command(
    ctx: typer.Context,
    name: str,
    entry_id: int,
    until: Annotated[str | None, typer.Option(help="ISO 8601 date it is re-enabled.")] = None,
) -> None:
    """Disable one entry (e.g. a false positive), optionally until a date."""
    _entry_command(ctx, name, entry_id, "disable", until)


@bank_app.command("enable-entry")
def enable_entry_command(ctx: typer.Context, name: str, entry_id: int) -> None:
    """Enable one entry."""
    _entry_command(ctx, name, entry_id, "enable")


@bank_app.command("delete-entry")
def delete_entry_command(ctx: typer.Context, name: str, entry_id: int) -> None:
    """Delete one entry."""
    _entry_command(ctx, name, entry_id, "delete")


@bank_app.command("import")
def import_command(
    ctx: typer.Context,
    name: str,
    file: Path,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help=f"One of {', '.join(FORMATS)} (default: from the name)."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Store nothing if any row is rejected.")
    ] = False,
    signal_type: Annotated[
        str | None, typer.Option(help="Signal type for rows that name none.")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Provenance for rows that name none.")] = None,
    max_rows: Annotated[int, typer.Option(min=1)] = DEFAULT_MAX_ROWS,
    as_json: JsonOpt = False,
) -> None:
    """Import entries from a CSV, TSV, JSON-lines or python-threatexchange file.

    Bad rows are skipped and reported with their line numbers (exit status 2); the good
    rows are stored in one transaction. With --strict nothing is stored if any row is bad.
    """
    defaults = {k: v for k, v in (("signal_type", signal_type), ("source", source)) if v}
    limits = ImportLimits(max_rows=max_rows)
    with _database(ctx) as db, db.write() as s:
        report = import_file(
            s, name=name, path=file, fmt=fmt, strict=strict, limits=limits,
            defaults=defaults, actor=_actor(),
        )
    _print_import(report, as_json)
    if report.count("rejected"):
        raise typer.Exit(2)


@bank_app.command("export")
def export_command(
    ctx: typer.Context,
    name: str,
    fmt: Annotated[str, typer.Option("--format", help=", ".join(FORMATS))] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default stdout).")
    ] = None,
) -> None:
    """Export an exportable bank (audited)."""
    actor = _actor()
    with _database(ctx) as db:
        try:
            with db.write() as s:
                if output is None:
                    report = export_bank(s, name=name, out=sys.stdout, fmt=fmt, actor=actor)
                else:
                    tmp = output.with_name(output.name + ".part")
                    with tmp.open("w", encoding="utf-8", newline="") as fh:
                        report = export_bank(s, name=name, out=fh, fmt=fmt, actor=actor)
                    tmp.replace(output)
        except PolicyDenied:
            with db.write() as s:
                record_export_denied(s, name=name, fmt=fmt, actor=actor)
            raise
    for issue in report.skipped:
        typer.echo(f"skipped: {issue.reason}", err=True)
    typer.echo(f"exported {report.rows} entries of {name} as {report.format}", err=True)


def _expand(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file()))
        else:
            out.append(p)
    return out


@bank_app.command("add")
def add_command(
    ctx: typer.Context,
    name: str,
    paths: list[Path],
    classification: Annotated[str | None, typer.Option(help="A1, A2, B1 or B2.")] = None,
    source: Annotated[str | None, typer.Option()] = None,
    note: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    """Hash files (folders recursively) and add every signal they yield to a bank."""
    provenance = {
        k: v
        for k, v in (("classification", classification), ("source", source), ("note", note))
        if v
    }
    with _database(ctx) as db, db.write() as s:
        report = service.add_files(s, name=name, paths=_expand(paths), provenance=provenance)
    if as_json:
        _print_json(report.to_json())
    else:
        for path, entries in report.added.items():
            kinds = ", ".join(e.signal_type for e in entries) or "nothing new"
            typer.echo(f"{path}: added {kinds}")
        for issue in report.issues:
            typer.echo(f"  {issue.kind:9} {issue.reason}")
    if any(i.kind == "skipped" for i in report.issues):
        raise typer.Exit(2)


@bank_app.command("sample")
def sample_command(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Create the built-in 'sample' bank (hashes of the benign bridge photo)."""
    with _database(ctx) as db, db.write() as s:
        bank, created = create_sample_bank(s, actor=_actor())
    if as_json:
        _print_json({**bank.model_dump(mode="json"), "created": created})
    else:
        typer.echo(f"{'created' if created else 'already present'}: {_bank_text(bank)}")


def register(app: typer.Typer) -> None:
    """Add the ``bank`` command group to ``app``."""
    app.add_typer(bank_app, name="bank")
