"""``bastion actions``: the outbox as operators see it.

``bastion actions list [--failed] [--pending] [--content-id ID] [--json]`` lists actions
newest first (``--failed``: the dead-letter list, actions past their maximum age, and
blocked ones, whose kind has no webhook endpoint configured);
``bastion actions retry ID`` (or ``--all-failed``) puts dead actions back in the queue with
the same idempotency key.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from bastion.cli.options import DataDir
from bastion.errors import InvalidInput

actions_app = typer.Typer(
    name="actions", help="List and retry platform actions (the outbox).",
    no_args_is_help=True, add_completion=False,
)



@actions_app.command("list")
def list_command(
    failed: Annotated[bool, typer.Option(
        "--failed", help="Only failed actions: dead-lettered or blocked (no endpoint).")] = False,
    pending: Annotated[bool, typer.Option("--pending", help="Only pending actions.")] = False,
    content_id: Annotated[str | None, typer.Option("--content-id")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """List actions, newest first."""
    from bastion.actions import outbox
    from bastion.config import load_settings
    from bastion.store.database import open_database

    if failed and pending:
        raise InvalidInput("--failed and --pending exclude each other")
    state = "pending" if pending else None
    db = open_database(load_settings(home=data_dir))
    try:
        with db.read() as session:
            actions = outbox.list_actions(session, state=state, content_id=content_id,
                                          failed=failed, limit=limit)
    finally:
        db.dispose()
    if json_out:
        typer.echo(json.dumps([a.to_json() for a in actions], indent=2))
        return
    for a in actions:
        typer.echo(f"{a.id}\t{a.kind}\t{a.state}\t{a.content_id or '-'}\t{a.user_id or '-'}"
                   f"\tattempts={a.attempts}\t{a.created_at.isoformat()}"
                   + (f"\t{a.last_error}" if a.last_error and a.state != "delivered" else ""))


@actions_app.command("retry")
def retry_command(
    action_id: Annotated[int | None, typer.Argument(help="A dead action's id.")] = None,
    all_failed: Annotated[bool, typer.Option("--all-failed",
                                             help="Retry every dead or blocked action.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Put a dead-lettered or blocked action (or all of them) back in the queue."""
    from bastion.actions import outbox
    from bastion.config import load_settings
    from bastion.store.audit import record_audit_event
    from bastion.store.database import open_database

    if (action_id is None) == (not all_failed):
        raise InvalidInput("give an action id or --all-failed (not both)")
    settings = load_settings(home=data_dir)
    db = open_database(settings)
    try:
        with db.write() as session:
            if action_id is not None:
                outbox.retry(session, action_id, settings=settings)
                n = 1
            else:
                n = outbox.retry_all_dead(session, settings=settings)
            record_audit_event(session, actor="cli", action="actions.retry",
                               object_type="action", object_id=str(action_id or "all"),
                               detail={"count": n})
    finally:
        db.dispose()
    typer.echo(f"{n} action(s) queued again")


def register(app: typer.Typer) -> None:
    """Add ``actions`` to the ``bastion`` command."""
    app.add_typer(actions_app, name="actions")
