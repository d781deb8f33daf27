"""``bastion policy``: show the effective policy and explain what it does with a verdict.

``bastion policy check VERDICT.json`` (``-`` for standard input) reads a verdict in the
API's shape (``status``, ``matches``) and prints the decision, the deciding rule, whether a
case opens, hiding, priority, actions and the rules that held (``--json`` for JSON).
Matches without ``auto_action`` take their bank's flag from the store when it can be
opened (``--no-store`` treats them as not auto-action). ``bastion policy show`` prints
the validated policy as JSON. An invalid policy exits 2 naming the field.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bastion.cli.options import DataDir

policy_app = typer.Typer(
    name="policy", help="Show and check the policy.", no_args_is_help=True,
    add_completion=False,
)


#: Largest verdict file read, bytes.
MAX_VERDICT_BYTES = 16 * 1024 * 1024


def _read_verdict(path: str) -> dict[str, Any]:
    from bastion.errors import InvalidInput, LimitExceeded

    try:
        raw = (sys.stdin.buffer.read(MAX_VERDICT_BYTES + 1) if path == "-"
               else Path(path).read_bytes())
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_VERDICT_BYTES:
        raise LimitExceeded(f"{path}: over {MAX_VERDICT_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("status", ""), str) or not (
            isinstance(doc.get("matches", []), list)):
        raise InvalidInput(f"{path}: expected a verdict object with status and matches")
    doc.setdefault("matches", [])
    doc.setdefault("status", "match" if doc["matches"] else "no_match")
    return doc


class _Verdict:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.status: str = doc["status"]
        self.matches: list[Any] = doc["matches"]


@policy_app.command("check")
def check_command(
    verdict: Annotated[str, typer.Argument(help="Verdict JSON file, or - for stdin.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not read banks.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Explain what the policy would do with a verdict."""
    from bastion.config import load_settings
    from bastion.policy import load_policy

    settings = load_settings(home=data_dir)
    policy = load_policy(settings.policy)
    doc = _read_verdict(verdict)
    flags: dict[str, bool] = {}
    if not no_store and any(isinstance(m, dict) and "auto_action" not in m
                            for m in doc["matches"]):
        from bastion.store.bank_repository import list_banks
        from bastion.store.database import open_database

        db = open_database(settings)
        try:
            with db.read() as session:
                flags = {b.name: bool(b.auto_action) for b in list_banks(session)}
        finally:
            db.dispose()
    outcome = policy.evaluate(_Verdict(doc), auto_action=flags,
                              indicators=doc.get("indicators") or {})
    if json_out:
        typer.echo(json.dumps(outcome.to_json(), indent=2))
        return
    typer.echo(f"decision: {outcome.decision} (rule {outcome.rule!r})")
    case = f"open, priority {outcome.priority}" if outcome.open_case else "none"
    typer.echo(f"case: {case}")
    typer.echo(f"hide now: {'yes' if outcome.hide else 'no'}")
    typer.echo(f"actions: {', '.join(outcome.actions) or 'none'}; score {outcome.score:g}")
    for line in outcome.trace:
        typer.echo(f"  - {line}")


@policy_app.command("show")
def show_command(data_dir: DataDir = None) -> None:
    """Print the validated policy (defaults filled in) as JSON."""
    from bastion.config import load_settings
    from bastion.policy import load_policy

    policy = load_policy(load_settings(home=data_dir).policy)
    typer.echo(json.dumps(policy.model_dump(mode="json", by_alias=True), indent=2))


def register(app: typer.Typer) -> None:
    """Add ``bastion policy`` to the CLI."""
    app.add_typer(policy_app)
