"""Entry point of the ``bastion`` command.

Each command group lives in its own module with a ``register(app)`` function; this module
only assembles them and maps :class:`~bastion.errors.BastionError` to exit status 2.
"""

from __future__ import annotations

import sys

import typer

from bastion.errors import BastionError

app = typer.Typer(
    name="bastion",
    help="Bastion: find, review, take down, report and preserve child sexual abuse material.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Bastion: find, review, take down, report and preserve child sexual abuse material."""
    # A callback keeps ``bastion COMMAND`` a command group even while one command exists.


def _register_all() -> None:
    from bastion.cli import (
        ads_cmd,
        apikey_cmd,
        bank_cmd,
        config_cmd,
        hash_cmd,
        scan_cmd,
        serve_cmd,
    )

    for module in (hash_cmd, bank_cmd, scan_cmd, ads_cmd, serve_cmd, apikey_cmd, config_cmd):
        module.register(app)


_register_all()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; usage errors and Bastion errors exit with status 2."""
    try:
        app(args=argv, standalone_mode=True)
    except BastionError as exc:
        print(f"bastion: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
