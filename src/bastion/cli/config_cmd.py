"""``bastion config show``: the settings in force, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from bastion.config import load_settings

config_app = typer.Typer(
    name="config", help="Show the settings.", no_args_is_help=True, add_completion=False
)

MASK = "**********"


def shown_settings(data_dir: Path | None) -> dict[str, Any]:
    """The settings as JSON-able values; every secret (and the database URL, which may hold
    a password) replaced by a mask, or ``null`` when unset."""
    s = load_settings(home=data_dir)
    out: dict[str, Any] = s.model_dump(mode="json")
    for name, value in out.items():
        if value == MASK or name in ("database_url", "metrics_token"):
            out[name] = None if value is None else MASK
    out["home"] = str(s.home.resolve())
    out["database"] = s.resolved_database_url().split(":", 1)[0]
    return out


@config_app.command("show")
def show_command(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", envvar="BASTION_HOME", help="Data directory.")
    ] = None,
) -> None:
    """Print every setting in force (file, environment, defaults); secrets masked."""
    shown = shown_settings(data_dir)
    if json_out:
        typer.echo(json.dumps(shown, indent=2, sort_keys=True))
        return
    for key in sorted(shown):
        typer.echo(f"{key} = {json.dumps(shown[key])}")


def register(app: typer.Typer) -> None:
    """Add ``config`` to the ``bastion`` command."""
    app.add_typer(config_app, name="config")
