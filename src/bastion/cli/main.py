"""Entry point of the ``bastion`` command.

Each command group lives in its own module with a ``register(app)`` function; this module
only assembles them and maps :class:`~bastion.errors.BastionError` to exit status 2.
"""

from __future__ import annotations

import importlib
import sys

import typer

from bastion.errors import BastionError

#: Which module provides each top-level command, so that ``bastion hash`` imports only what
#: hashing needs (importing every command's dependencies costs seconds per invocation).
COMMAND_MODULES: dict[str, str] = {
    "hash": "hash_cmd",
    "bank": "bank_cmd",
    "scan": "scan_cmd",
    "match": "scan_cmd",
    "retrohunt": "scan_cmd",
    "scan-text": "scan_text_cmd",
    "ads": "ads_cmd",
    "serve": "serve_cmd",
    "worker": "serve_cmd",
    "apikey": "apikey_cmd",
    "config": "config_cmd",
    "actions": "actions_cmd",
    "report": "report_cmd",
    "audit": "audit_cmd",
    "policy": "policy_cmd",
    "case": "case_cmd",
    "user": "user_cmd",
    "evidence": "evidence_cmd",
}


def _root() -> None:
    """Bastion: find, review, take down, report and preserve child sexual abuse material."""
    # A callback keeps ``bastion COMMAND`` a command group even while one command exists.


def build_app(command: str | None = None) -> typer.Typer:
    """The ``bastion`` Typer app with every command group, or only the module that provides
    ``command`` when it is known."""
    app = typer.Typer(
        name="bastion",
        help="Bastion: find, review, take down, report and preserve child sexual abuse "
        "material.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(_root)
    wanted = COMMAND_MODULES.get(command or "")
    names = [wanted] if wanted else list(dict.fromkeys(COMMAND_MODULES.values()))
    for name in names:
        try:
            module = importlib.import_module(f"bastion.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"bastion.cli.{name}":
                raise
            continue  # a command group not built yet
        module.register(app)
    return app


def __getattr__(name: str) -> typer.Typer:
    """``bastion.cli.main.app``: the full app, built on first use (tests, documentation)."""
    if name == "app":
        full = build_app()
        globals()["app"] = full
        return full
    raise AttributeError(name)


def _command_of(argv: list[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; usage errors and Bastion errors exit with status 2."""
    args = sys.argv[1:] if argv is None else argv
    try:
        build_app(_command_of(args))(args=args, standalone_mode=True)
    except BastionError as exc:
        print(f"bastion: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
