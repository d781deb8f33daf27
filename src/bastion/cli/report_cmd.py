"""``bastion report``: CyberTipline reports.

::

    bastion report list [--state S] [--overdue] [--json]
    bastion report show ID [--json] [--xml]
    bastion report draft INCIDENT.json        a draft from a typed incident (JSON)
    bastion report from-cases [--json]        drafts for every incident of decided cases
    bastion report approve ID                 draft (or fixed failed report) -> approved
    bastion report submit ID                  submit now (workers do it otherwise)
    bastion report retract ID
    bastion report reconcile ID (--ncmec-id N | --not-received)
    bastion report export ID --authority uk-nca [-o FILE]

Exit status 2 for Bastion errors (an invalid report names the element at fault).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.cli.options import DataDir, JsonOpt
from bastion.errors import InvalidInput

if TYPE_CHECKING:
    from bastion.config import Settings
    from bastion.reporting.client import CyberTiplineClient
    from bastion.reporting.service import ReportSubmitter, ReportView
    from bastion.store.database import Database

report_app = typer.Typer(
    name="report", help="CyberTipline reports: list, approve, submit, retract, export.",
    no_args_is_help=True, add_completion=False,
)

ReportId = Annotated[int, typer.Argument(help="The report's id (bastion report list).")]

#: Largest incident JSON file read by ``report draft``, bytes.
MAX_INCIDENT_BYTES = 8 * 1024 * 1024


def _open(data_dir: Path | None) -> tuple[Settings, Database]:
    from bastion.config import load_settings
    from bastion.store.database import open_database

    settings = load_settings(home=data_dir)
    return settings, open_database(settings)


def _line(v: ReportView) -> str:
    return (f"{v.id}\t{v.state}\t{v.incident_key}\tncmec={v.ncmec_report_id or '-'}"
            f"\tfiles={len(v.files)}\t{v.created_at.isoformat()}"
            + (f"\t{v.last_error}" if v.last_error else ""))


@report_app.command("list")
def list_command(
    state: Annotated[str | None, typer.Option("--state", help="Only this state.")] = None,
    overdue: Annotated[bool, typer.Option(
        "--overdue", help="Only reports not submitted within report_alert_hours.")] = False,
    json_out: JsonOpt = False,
    data_dir: DataDir = None,
) -> None:
    """List reports, newest first."""
    from bastion.reporting import service

    settings, db = _open(data_dir)
    try:
        with db.read() as session:
            views = (service.overdue(session, settings=settings) if overdue
                     else service.list_reports(session, state=state))
    finally:
        db.dispose()
    if json_out:
        typer.echo(json.dumps([v.to_json() for v in views], indent=2))
        return
    for v in views:
        typer.echo(_line(v))


@report_app.command("show")
def show_command(report_id: ReportId, json_out: JsonOpt = False,
                 xml: Annotated[bool, typer.Option("--xml", help="Print the report XML.")]
                 = False, data_dir: DataDir = None) -> None:
    """Show one report (its incident facts with --json, its document with --xml)."""
    from bastion.reporting import service
    from bastion.store.models_actions import CyberTipReportRow

    _, db = _open(data_dir)
    try:
        with db.read() as session:
            v = service.get(session, report_id)
            row = session.get(CyberTipReportRow, report_id)
            doc = "" if row is None else row.report_xml
    finally:
        db.dispose()
    if xml:
        typer.echo(doc)
    elif json_out:
        typer.echo(json.dumps(v.to_json(with_incident=True), indent=2))
    else:
        typer.echo(_line(v))
        for f in v.files:
            typer.echo(f"  file {f.position}\t{f.file_name}\tncmec={f.ncmec_file_id or '-'}"
                       f"\tuploaded={f.uploaded}\tdescribed={f.described}")


@report_app.command("draft")
def draft_command(
    incident_file: Annotated[Path, typer.Argument(help="A typed incident as JSON.")],
    data_dir: DataDir = None,
) -> None:
    """Create a draft from an incident JSON file (the reporter comes from the settings
    when the file has none). Refused, naming the element, when it would not validate."""
    from dataclasses import replace

    from bastion.reporting import service
    from bastion.reporting.incident import incident_from_json

    try:
        raw = incident_file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {incident_file}: {exc.strerror}") from exc
    if len(raw) > MAX_INCIDENT_BYTES:
        raise InvalidInput(f"{incident_file} is over {MAX_INCIDENT_BYTES} bytes")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"{incident_file}: not JSON: {exc}") from exc
    incident = incident_from_json(data)
    settings, db = _open(data_dir)
    try:
        if incident.reporter is None:
            incident = replace(incident, reporter=service.reporter_from_settings(settings))
        schema = service.load_schema(settings, _client_or_none(settings))
        with db.write() as session:
            v = service.create_draft(session, incident=incident, schema=schema,
                                     settings=settings, actor="cli")
    finally:
        db.dispose()
    typer.echo(f"report {v.id} drafted for incident {v.incident_key} ({len(v.files)} files)")


@report_app.command("from-cases")
def from_cases_command(json_out: JsonOpt = False, data_dir: DataDir = None) -> None:
    """Draft one report per incident: each user's decided cases (csam,
    child_exploitation_other, trafficking) not reported yet; the items are preserved.
    Exit status 2 when any incident's report was refused (listed with the reason)."""
    from bastion.evidence.vault import open_vault
    from bastion.reporting import service
    from bastion.reporting.case_incidents import draft_pending

    settings, db = _open(data_dir)
    try:
        schema = service.load_schema(settings, _client_or_none(settings))
        outcomes = draft_pending(db, schema=schema, settings=settings, actor="cli",
                                 vault=open_vault(settings))
    finally:
        db.dispose()
    if json_out:
        typer.echo(json.dumps([{"user_id": o.user_id, "case_ids": list(o.case_ids),
                                "report": None if o.report is None else o.report.to_json(),
                                "error": o.error} for o in outcomes], indent=2))
    else:
        for o in outcomes:
            typer.echo(f"user {o.user_id or '-'}\tcases {','.join(map(str, o.case_ids))}\t"
                       + (f"report {o.report.id} {o.report.state}" if o.report is not None
                          else f"refused: {o.error}"))
    if any(o.report is None for o in outcomes):
        raise typer.Exit(2)


def _client_or_none(settings: Settings) -> CyberTiplineClient | None:
    from bastion.reporting.client import CyberTiplineClient

    if settings.cybertipline_username is None or settings.cybertipline_password is None:
        return None
    return CyberTiplineClient(settings)


@report_app.command("approve")
def approve_command(report_id: ReportId, data_dir: DataDir = None) -> None:
    """Approve a draft (or a failed report whose cause was fixed) for submission."""
    from bastion.reporting import service

    _, db = _open(data_dir)
    try:
        with db.write() as session:
            v = service.approve(session, report_id, actor="cli")
    finally:
        db.dispose()
    typer.echo(f"report {v.id} {v.state}")


def _submitter(settings: Settings, db: Database) -> ReportSubmitter:
    from bastion.reporting.client import CyberTiplineClient
    from bastion.reporting.files import FileProvider, NoFileProvider, VaultFileProvider
    from bastion.reporting.service import ReportSubmitter, load_schema

    client = CyberTiplineClient(settings)
    files: FileProvider
    try:
        from bastion.evidence.vault import open_vault

        files = VaultFileProvider(db, open_vault(settings))
    except Exception as exc:
        files = NoFileProvider(f"the evidence vault cannot be opened: {exc}")
    return ReportSubmitter(db, settings, client, files, load_schema(settings, client))


@report_app.command("submit")
def submit_command(report_id: ReportId, data_dir: DataDir = None) -> None:
    """Run an approved (or interrupted) report's submission now."""
    from bastion.actions.worker import worker_name

    settings, db = _open(data_dir)
    try:
        v = _submitter(settings, db).submit_now(report_id, worker=worker_name())
    finally:
        db.dispose()
    typer.echo(_line(v))
    if v.state not in ("submitted",):
        raise typer.Exit(2)


@report_app.command("retract")
def retract_command(report_id: ReportId, data_dir: DataDir = None) -> None:
    """Retract a report NCMEC has an id for (before it is finished)."""
    settings, db = _open(data_dir)
    try:
        v = _submitter(settings, db).retract(report_id, actor="cli")
    finally:
        db.dispose()
    typer.echo(f"report {v.id} {v.state}")


@report_app.command("reconcile")
def reconcile_command(
    report_id: ReportId,
    ncmec_id: Annotated[int | None, typer.Option(
        "--ncmec-id", help="The report id NCMEC has for this submission.")] = None,
    not_received: Annotated[bool, typer.Option(
        "--not-received", help="NCMEC confirmed it has no such report.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Resolve a needs_reconciliation report after checking with NCMEC."""
    from bastion.reporting import service

    if (ncmec_id is None) == (not not_received):
        raise InvalidInput("give --ncmec-id N or --not-received (one of them)")
    _, db = _open(data_dir)
    try:
        with db.write() as session:
            v = service.resolve_reconciliation(session, report_id, actor="cli",
                                               ncmec_report_id=ncmec_id)
    finally:
        db.dispose()
    typer.echo(f"report {v.id} {v.state}")


@report_app.command("export")
def export_command(
    report_id: ReportId,
    authority: Annotated[str, typer.Option("--authority",
                                           help="uk-nca, iwf, inhope-<country> ...")],
    output: Annotated[Path | None, typer.Option("-o", "--output")] = None,
    data_dir: DataDir = None,
) -> None:
    """Export the report's facts and file hashes as JSON for manual filing elsewhere."""
    from bastion.reporting import service
    from bastion.reporting.export import export_incident
    from bastion.reporting.incident import incident_from_json
    from bastion.store.audit import record_audit_event

    _, db = _open(data_dir)
    try:
        with db.write() as session:
            v = service.get(session, report_id)
            doc = export_incident(incident_from_json(v.incident), authority=authority,
                                  cybertipline_report_id=v.ncmec_report_id)
            record_audit_event(session, actor="cli", action="report.export",
                               object_type="cybertip_report", object_id=str(report_id),
                               detail={"authority": authority})
    finally:
        db.dispose()
    text = json.dumps(doc, indent=2)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {output}")


def register(app: typer.Typer) -> None:
    """Add ``report`` to the ``bastion`` command."""
    app.add_typer(report_app, name="report")
