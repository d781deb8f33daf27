"""``bastion apikey``: create, list, expire and revoke API keys.

``bastion apikey create NAME --scope S [--scope S ...]`` prints the key's facts and then
the key itself, once, alone on the last line of stdout (scripts take ``| tail -n1``);
only its SHA-256 digest is stored. Scopes: ``content:submit``, ``content:read``,
``match``, ``banks:read``, ``banks:write``, ``banks:export``, ``admin``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from bastion.apikeys import service as keys
from bastion.apikeys.scopes import SCOPES
from bastion.cli.options import DataDir, JsonOpt
from bastion.config import load_settings
from bastion.errors import InvalidInput
from bastion.store.database import Database, open_database

apikey_app = typer.Typer(
    name="apikey", help="Manage API keys.", no_args_is_help=True, add_completion=False
)



def _db(data_dir: Path | None) -> Database:
    return open_database(load_settings(home=data_dir))


def _time(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{what}: not an ISO 8601 time: {text!r}") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


@apikey_app.command("create")
def create_command(
    name: Annotated[str, typer.Argument(help="A name to recognise the key by.")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help=f"Repeatable or comma-separated: {', '.join(SCOPES)}."),
    ],
    expires: Annotated[
        str | None, typer.Option("--expires", help="Expiry time (ISO 8601; UTC if no zone).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a key; it is printed once, alone on the last line."""
    scopes = [s for item in scope for s in item.split(",")]
    db = _db(data_dir)
    try:
        with db.write() as session:
            record, key = keys.create(session, name=name, scopes=scopes,
                                      expires_at=_time(expires, "--expires"), actor="cli")
    finally:
        db.dispose()
    typer.echo(f"created API key {record.id} {record.name!r} scopes={','.join(record.scopes)}"
               + (f" expires={record.expires_at.isoformat()}" if record.expires_at else ""))
    typer.echo("The key is shown only now; store it (only its SHA-256 digest is kept):")
    typer.echo(key)


@apikey_app.command("list")
def list_command(json_out: JsonOpt = False, data_dir: DataDir = None) -> None:
    """List keys (never the keys themselves: their first characters only)."""
    db = _db(data_dir)
    try:
        with db.read() as session:
            records = keys.get_all(session)
    finally:
        db.dispose()
    if json_out:
        typer.echo(json.dumps([r.to_json() for r in records], indent=2))
        return
    for r in records:
        typer.echo(f"{r.id}\t{r.name}\t{r.prefix}…\t{r.state()}\t{','.join(r.scopes)}"
                   f"\t{r.created_at.isoformat()}")


@apikey_app.command("expire")
def expire_command(
    key_id: Annotated[int, typer.Argument(help="The key's id (bastion apikey list).")],
    at: Annotated[str | None, typer.Option("--at", help="When (ISO 8601); default now.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Set a key's expiry (default: now)."""
    db = _db(data_dir)
    try:
        with db.write() as session:
            r = keys.expire(session, key_id=key_id, at=_time(at, "--at"), actor="cli")
    finally:
        db.dispose()
    assert r.expires_at is not None
    typer.echo(f"API key {r.id} {r.name!r} expires {r.expires_at.isoformat()}")


@apikey_app.command("revoke")
def revoke_command(
    key_id: Annotated[int, typer.Argument(help="The key's id (bastion apikey list).")],
    data_dir: DataDir = None,
) -> None:
    """Revoke a key for good."""
    db = _db(data_dir)
    try:
        with db.write() as session:
            r = keys.revoke(session, key_id=key_id, actor="cli")
    finally:
        db.dispose()
    typer.echo(f"API key {r.id} {r.name!r} revoked")


def register(app: typer.Typer) -> None:
    """Add ``apikey`` to the ``bastion`` command."""
    app.add_typer(apikey_app, name="apikey")
