"""``bastion user``: people who sign in to the review UI.

``bastion user create NAME --role admin|reviewer|auditor`` asks for the password twice at a
prompt, or reads it from standard input with ``--password-stdin`` (one line; for
scripts). ``list``, ``disable``, ``enable`` and ``set-password`` complete the set. Every
change is audited (actor ``cli``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli.options import DataDir

user_app = typer.Typer(
    name="user", help="Manage review UI users.", no_args_is_help=True, add_completion=False
)

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline(4096)
        return line.rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _db(data_dir: Path | None):  # type: ignore[no-untyped-def]
    from bastion.config import load_settings
    from bastion.store.database import open_database

    return open_database(load_settings(home=data_dir))


@user_app.command("create")
def create_command(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    role: Annotated[str, typer.Option("--role", help="admin, reviewer or auditor.")],
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = None,
) -> None:
    """Create a user."""
    from bastion.config import load_settings
    from bastion.store.database import open_database
    from bastion.users import service

    password = _password(password_stdin)
    settings = load_settings(home=data_dir)
    db = open_database(settings)
    try:
        with db.write() as session:
            user = service.create(session, name=name, role=role, password=password,
                                  actor="cli", blur=settings.review.default_blur)
    finally:
        db.dispose()
    typer.echo(f"created user {user.id} {user.name!r} role={user.role}")


@user_app.command("list")
def list_command(json_out: Annotated[bool, typer.Option("--json")] = False,
                 data_dir: DataDir = None) -> None:
    """List users (never passwords)."""
    from bastion.users import service

    db = _db(data_dir)
    try:
        with db.read() as session:
            users = service.get_all(session)
    finally:
        db.dispose()
    rows = [{"id": u.id, "name": u.name, "role": u.role, "disabled": u.disabled}
            for u in users]
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['id']:>5} {r['name']:<24} {r['role']:<9}"
                   + (" disabled" if r["disabled"] else ""))


def _set(name: str, disabled: bool, data_dir: Path | None) -> None:
    from bastion.users import service

    db = _db(data_dir)
    try:
        with db.write() as session:
            service.set_disabled(session, name=name, disabled=disabled, actor="cli")
    finally:
        db.dispose()


@user_app.command("disable")
def disable_command(name: str, data_dir: DataDir = None) -> None:
    """Disable a user and end their sessions."""
    _set(name, True, data_dir)
    typer.echo(f"disabled {name!r}")


@user_app.command("enable")
def enable_command(name: str, data_dir: DataDir = None) -> None:
    """Enable a disabled user."""
    _set(name, False, data_dir)
    typer.echo(f"enabled {name!r}")


@user_app.command("set-password")
def set_password_command(name: str, password_stdin: PasswordStdin = False,
                         data_dir: DataDir = None) -> None:
    """Replace a user's password (unlocks the account, ends its sessions)."""
    from bastion.users import service

    password = _password(password_stdin)
    db = _db(data_dir)
    try:
        with db.write() as session:
            service.set_password(session, name=name, password=password, actor="cli")
    finally:
        db.dispose()
    typer.echo(f"password of {name!r} replaced")


def register(app: typer.Typer) -> None:
    """Add ``bastion user`` to the CLI."""
    app.add_typer(user_app)
