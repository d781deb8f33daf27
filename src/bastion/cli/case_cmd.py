"""``bastion case``: read the review queue and cases from the command line.

``bastion case list [--state S ...] [--min-priority N] [--bank B] [--json]`` prints the
queue (highest priority first); ``bastion case show ID [--json]`` one case with its
history. Deciding is done in the review UI, where the reviewer is a signed-in person.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli.options import DataDir, JsonOpt

case_app = typer.Typer(
    name="case", help="Read cases and the review queue.", no_args_is_help=True,
    add_completion=False,
)



def _db(data_dir: Path | None):  # type: ignore[no-untyped-def]
    from bastion.config import load_settings
    from bastion.store.database import open_database

    return open_database(load_settings(home=data_dir))


@case_app.command("list")
def list_command(
    state: Annotated[list[str] | None, typer.Option("--state")] = None,
    min_priority: Annotated[int, typer.Option("--min-priority")] = 0,
    bank: Annotated[str | None, typer.Option("--bank")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    json_out: JsonOpt = False,
    data_dir: DataDir = None,
) -> None:
    """The queue: cases waiting for review (or in the given states)."""
    from bastion.cases import service
    from bastion.cases.schemas import QUEUE_STATES

    db = _db(data_dir)
    try:
        with db.read() as session:
            rows = service.queue(session, states=state or QUEUE_STATES,
                                 min_priority=min_priority, bank=bank, limit=limit)
    finally:
        db.dispose()
    if json_out:
        typer.echo(json.dumps([c.to_json() for c in rows], indent=2))
        return
    for c in rows:
        typer.echo(f"{c.id:>7} p{c.priority:<3} {c.state:<10} {c.source:<11} "
                   f"{','.join(c.banks) or '-':<16} {c.content_id}")


@case_app.command("show")
def show_command(case_id: int, json_out: JsonOpt = False, data_dir: DataDir = None) -> None:
    """One case and its history."""
    from bastion.cases import service

    db = _db(data_dir)
    try:
        with db.read() as session:
            case = service.get(session, case_id=case_id).to_json()
            case["events"] = [{**e, "at": e["at"].isoformat()}
                              for e in service.events(session, case_id=case_id)]
    finally:
        db.dispose()
    typer.echo(json.dumps(case, indent=2) if json_out else "\n".join(
        f"{k}: {v}" for k, v in case.items()))


def register(app: typer.Typer) -> None:
    """Add ``bastion case`` to the CLI."""
    app.add_typer(case_app)
