"""``bastion audit``: verify and list the hash-chained audit log.

``bastion audit verify`` walks the chain and exits 0 when it is intact; otherwise it
prints the first broken event's id and why, and exits 1. ``bastion audit list`` prints
the newest events (JSON lines with ``--json``).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from bastion.cli.options import DataDir

audit_app = typer.Typer(
    name="audit", help="Verify and read the audit log.", no_args_is_help=True,
    add_completion=False,
)



@audit_app.command("verify")
def verify_command(data_dir: DataDir = None) -> None:
    """Check every event's hash and link; exit 1 naming the first broken event."""
    from bastion.audit import service
    from bastion.config import load_settings
    from bastion.store.database import open_database

    db = open_database(load_settings(home=data_dir))
    try:
        with db.read() as session:
            check = service.verify(session)
    finally:
        db.dispose()
    if check.ok:
        typer.echo(f"audit log intact: {check.checked} events verified")
        return
    typer.echo(f"audit log BROKEN at event {check.broken_id}: {check.reason} "
               f"({check.checked} events verified before it)")
    raise typer.Exit(1)


@audit_app.command("list")
def list_command(
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    action: Annotated[str | None, typer.Option("--action")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
    data_dir: DataDir = None,
) -> None:
    """The newest events first."""
    from bastion.audit import service
    from bastion.config import load_settings
    from bastion.store.database import open_database

    db = open_database(load_settings(home=data_dir))
    try:
        with db.read() as session:
            events = service.recent(session, limit=limit, action=action)
    finally:
        db.dispose()
    for ev in events:
        if json_out:
            typer.echo(json.dumps(ev, sort_keys=True))
        else:
            typer.echo(f"{ev['id']:>8} {ev['at']} {ev['actor']:<16} {ev['action']:<24} "
                       f"{ev['object_type']}:{ev['object_id']}")


def register(app: typer.Typer) -> None:
    """Add ``bastion audit`` to the CLI."""
    app.add_typer(audit_app)
