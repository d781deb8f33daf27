"""``bastion evidence``: preserved reported items, legal holds, purge, exports.

::

    bastion evidence list [--json]
    bastion evidence hold ITEM --reference REF [--kind legal_hold|preservation_request]
                          [--until 2027-06-01T00:00:00Z] [--as NAME]
    bastion evidence release HOLD [--as NAME]
    bastion evidence show ITEM --reason TEXT --as ADMIN   metadata and holds (audited)
    bastion evidence purge [--json]            delete what expired and nothing holds
    bastion evidence export ITEM... --reference LEGAL-PROCESS --reason TEXT --as ADMIN
    bastion evidence approve-export EXPORT --as OTHER-ADMIN [-o DIR]

``--as`` names the user acting (an admin for exports; the approver must differ from the
requester); without it holds are recorded as the actor ``cli``. ``approve-export`` prints
the archive's path, its SHA-256 and the key that decrypts it, once: give the key to the
requesting agency by another channel than the archive. Every step is audited
(:mod:`bastion.evidence.preservation`). Exit status 2 for Bastion errors.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.cli.options import DataDir, JsonOpt
from bastion.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bastion.config import Settings
    from bastion.store.database import Database

evidence_app = typer.Typer(
    name="evidence", help="Preserved evidence: holds, purge, exports under legal process.",
    no_args_is_help=True, add_completion=False,
)

AsUser = Annotated[str | None, typer.Option("--as", help="The user acting (a user name).")]


def _open(data_dir: Path | None) -> tuple[Settings, Database]:
    from bastion.config import load_settings
    from bastion.store.database import open_database

    settings = load_settings(home=data_dir)
    return settings, open_database(settings)


def _user_id(session: Session, name: str | None) -> int:
    from bastion.users import service as users

    if name is None:
        raise InvalidInput("--as NAME is required: the admin acting")
    return users.get_by_name(session, name).id


def _actor(session: Session, name: str | None) -> str:
    return "cli" if name is None else f"user:{_user_id(session, name)}"


@evidence_app.command("list")
def list_command(json_out: JsonOpt = False, data_dir: DataDir = None) -> None:
    """List preserved items, soonest to expire first."""
    from bastion.evidence import preservation

    _, db = _open(data_dir)
    try:
        with db.read() as session:
            views = preservation.list_items(session, limit=1000)
    finally:
        db.dispose()
    if json_out:
        typer.echo(json.dumps([v.to_json() for v in views], indent=2))
        return
    for v in views:
        typer.echo(f"{v.id}\t{v.content_id}\tcase={v.case_id}\treport={v.report_id}"
                   f"\texpires={v.expires_at.isoformat()}" + ("\theld" if v.held else ""))


@evidence_app.command("hold")
def hold_command(
    item_id: Annotated[int, typer.Argument(help="The preserved item's id.")],
    reference: Annotated[str, typer.Option("--reference", help="The matter or request.")],
    kind: Annotated[str, typer.Option(
        "--kind", help="legal_hold or preservation_request (18 U.S.C. 2703(f)).")]
    = "legal_hold",
    until: Annotated[str | None, typer.Option(
        "--until", help="RFC 3339 time the hold ends by itself.")] = None,
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Hold an item past its preservation clock (prints the hold's id)."""
    from bastion.evidence import preservation

    end: datetime | None = None
    if until is not None:
        try:
            end = datetime.fromisoformat(until)
        except ValueError as exc:
            raise InvalidInput(f"--until {until!r} is not an RFC 3339 time") from exc
    _, db = _open(data_dir)
    try:
        with db.write() as session:
            hold = preservation.place_hold(session, item_id=item_id, kind=kind,
                                           reference=reference,
                                           actor=_actor(session, as_user), until=end)
    finally:
        db.dispose()
    typer.echo(f"hold {hold.id} on item {hold.item_id} ({hold.kind}: {hold.reference})")


@evidence_app.command("show")
def show_command(
    item_id: Annotated[int, typer.Argument(help="The preserved item's id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why you read it (audited).")],
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Print a preserved item's metadata record and holds as JSON (an admin, with a
    reason; audited). Its bytes never leave the vault but in an approved export."""
    from bastion.evidence import preservation
    from bastion.evidence.vault import open_vault

    settings, db = _open(data_dir)
    try:
        vault = open_vault(settings)
        with db.write() as session:
            got = preservation.read_preserved(session, vault=vault, item_id=item_id,
                                              user_id=_user_id(session, as_user),
                                              reason=reason)
            view = preservation.get(session, item_id=item_id)
            held = [h.to_json() for h in preservation.holds(session, item_id=item_id)]
    finally:
        db.dispose()
    typer.echo(json.dumps({**view.to_json(), "size": None if got.data is None
                           else len(got.data), "metadata": got.metadata, "holds": held},
                          indent=2, default=str))


@evidence_app.command("release")
def release_command(
    hold_id: Annotated[int, typer.Argument(help="The hold's id.")],
    as_user: AsUser = None, data_dir: DataDir = None,
) -> None:
    """Release a hold; the item's preservation clock applies again."""
    from bastion.evidence import preservation

    _, db = _open(data_dir)
    try:
        with db.write() as session:
            hold = preservation.release_hold(session, hold_id=hold_id,
                                             actor=_actor(session, as_user))
    finally:
        db.dispose()
    typer.echo(f"hold {hold.id} on item {hold.item_id} released")


@evidence_app.command("purge")
def purge_command(json_out: JsonOpt = False, data_dir: DataDir = None) -> None:
    """Delete every preserved item whose clock ended and that nothing holds."""
    from bastion.evidence import preservation

    settings, db = _open(data_dir)
    try:
        purged = preservation.purge_expired(db, vault_root=settings.home.resolve() / "evidence",
                                            preservation_days=settings.preservation_days)
    finally:
        db.dispose()
    if json_out:
        typer.echo(json.dumps({"purged": purged}))
    else:
        typer.echo(f"purged {len(purged)} item(s)" + (
            ": " + ", ".join(map(str, purged)) if purged else ""))


@evidence_app.command("export")
def export_command(
    item_ids: Annotated[list[int], typer.Argument(help="Preserved items' ids.")],
    reference: Annotated[str, typer.Option(
        "--reference", help="The legal process (warrant, subpoena, court order) number.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, in a sentence.")],
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Request an export of preserved items under legal process (a second admin
    approves it with ``approve-export``); prints the export's id."""
    from bastion.evidence import preservation

    _, db = _open(data_dir)
    try:
        with db.write() as session:
            export_id = preservation.request_export(
                session, item_ids=item_ids, reference=reference, reason=reason,
                user_id=_user_id(session, as_user))
    finally:
        db.dispose()
    typer.echo(f"export {export_id} requested; another admin approves it with "
               f"`bastion evidence approve-export {export_id} --as NAME`")


@evidence_app.command("approve-export")
def approve_export_command(
    export_id: Annotated[int, typer.Argument(help="The export's id.")],
    as_user: AsUser = None,
    out_dir: Annotated[Path | None, typer.Option(
        "-o", "--out-dir", help="Where to write the archive (default $BASTION_HOME/exports).")]
    = None,
    json_out: JsonOpt = False,
    data_dir: DataDir = None,
) -> None:
    """Approve an export as a second admin: writes the encrypted archive and prints its
    path, SHA-256 and key (shown once)."""
    from bastion.evidence import preservation
    from bastion.evidence.vault import open_vault

    settings, db = _open(data_dir)
    try:
        vault = open_vault(settings)
        with db.write() as session:
            res = preservation.approve_export(
                session, vault=vault, export_id=export_id,
                user_id=_user_id(session, as_user),
                out_dir=out_dir or settings.home.resolve() / "exports")
    finally:
        db.dispose()
    if json_out:
        typer.echo(json.dumps({"export_id": res.export_id, "path": str(res.path),
                               "sha256": res.archive_sha256, "key": res.key_hex}))
    else:
        typer.echo(f"archive\t{res.path}\nsha256\t{res.archive_sha256}\nkey\t{res.key_hex}")


def register(app: typer.Typer) -> None:
    """Add ``evidence`` to the ``bastion`` command."""
    app.add_typer(evidence_app, name="evidence")
