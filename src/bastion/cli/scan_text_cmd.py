"""``bastion scan-text``: text items (posts, messages, ads, profiles) against the URL and
keyword lists, in batches.

``bastion scan-text [--json] [--bank NAME]... [--jsonl | --plain] FILE|-`` reads one item per
input line (``-``: standard input), or JSON lines with a ``text`` field (and optionally
``links``, a list of URLs given with the text, and ``id``, echoed back); JSON lines are
recognised from the first non-blank line (an object with ``text``) unless ``--jsonl`` or
``--plain`` says which. Blank lines are not items. Each item is matched by
:meth:`bastion.scan.service.MatchService.match_texts` against the enabled banks (or only the
``--bank`` ones).

With ``--json``, one object per item: ``line`` (1-based), ``status`` (``match``,
``no_match``, or ``not_scanned`` with ``reason``), ``matches`` (the DESIGN.md match object
plus ``span`` as ``[start, end)`` code points of the line's text, ``matched`` the original
characters, ``entry`` the listed term or URL, ``kind``, and for URLs ``canonical``).
Without it, the items that matched or could not be scanned, one line each. A summary goes to
stderr.

A line that cannot be read (not UTF-8, not a JSON object with a ``text`` string, over
``Limits.max_text_chars``, more than ``Limits.max_urls_per_text`` URLs) is reported as
``not_scanned`` with its line number and the reason; the rest is still processed. Exit
status (DESIGN.md): 1 if anything matched; else 2 if any item was not scanned or no bank is
enabled; else 0.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from bastion.cli.options import DataDir
from bastion.cli.scan_cmd import bank_selection
from bastion.config import Limits, load_settings
from bastion.errors import InvalidInput
from bastion.scan.matcher import Match
from bastion.scan.service import MatchService
from bastion.scan.text_matcher import TextItem
from bastion.store.database import open_database

#: Items matched per batch (keyword lists are searched one batch at a time).
BATCH_ITEMS = 2_000
#: Characters of text per batch.
BATCH_CHARS = 1_000_000
#: Longest ``id`` echoed back, characters.
MAX_ID_CHARS = 200



@dataclass(slots=True)
class _Line:
    """One input item: its line number and either what to match or why it cannot be."""

    line: int
    item: TextItem | None
    reason: str | None = None
    item_id: str | int | None = None


def _raw_lines(binary: IO[bytes], max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, bytes without the line break)``, or ``(n, None)`` for a line longer
    than ``max_bytes`` (the rest of it is skipped, never held)."""
    n = 0
    while True:
        n += 1
        raw = binary.readline(max_bytes + 1)
        if not raw:
            return
        if len(raw) > max_bytes and not raw.endswith(b"\n"):
            while True:
                more = binary.readline(1 << 20)
                if not more or more.endswith(b"\n"):
                    break
            yield n, None
            continue
        yield n, raw.rstrip(b"\r\n")


def _json_item(n: int, text: str, limits: Limits) -> _Line:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return _Line(n, None, f"not valid JSON: {exc}")
    if not isinstance(obj, dict):
        return _Line(n, None, "a line must hold one JSON object")
    raw_id = obj.get("id")
    item_id: str | int | None = None
    if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool):
        item_id = raw_id if not isinstance(raw_id, str) else raw_id[:MAX_ID_CHARS]
    value = obj.get("text", "")
    if not isinstance(value, str):
        return _Line(n, None, "text must be a string", item_id)
    links = obj.get("links", [])
    if not isinstance(links, list) or not all(isinstance(u, str) for u in links):
        return _Line(n, None, "links must be a list of strings", item_id)
    if "text" not in obj and not links:
        return _Line(n, None, "no text field", item_id)
    return _Line(n, TextItem(value, tuple(links)), None, item_id)


def read_items(binary: IO[bytes], *, limits: Limits, mode: str = "auto") -> Iterator[_Line]:
    """Parse the input into items (module docstring); ``mode`` is ``auto``, ``plain`` or
    ``jsonl``. Never raises for a bad line: it becomes an item with a ``reason``."""
    # A JSON line may spell a character as \\uXXXX (6 bytes) or a surrogate pair (12 bytes
    # for 4 UTF-8 bytes): 6 bytes per character bounds every line that can be in limits.
    max_bytes = 6 * limits.max_text_chars + 64 * 1024
    first = True
    for n, raw in _raw_lines(binary, max_bytes):
        if raw is None:
            yield _Line(n, None, f"line is longer than {max_bytes} bytes")
            continue
        if first and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield _Line(n, None, f"line is not valid UTF-8 (byte {exc.start})")
            continue
        if not text.strip():
            continue
        if first:
            first = False
            if mode == "auto":
                mode = "plain"
                if text.lstrip().startswith("{"):
                    try:
                        obj = json.loads(text)
                    except (ValueError, RecursionError):
                        obj = None
                    if isinstance(obj, dict) and "text" in obj:
                        mode = "jsonl"
        if mode == "jsonl":
            yield _json_item(n, text, limits)
        else:
            yield _Line(n, TextItem(text))


def _emit_json(obj: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")


def _describe(m: Match) -> str:
    where = f" [{m.span[0]},{m.span[1]})" if m.span is not None else " (link)"
    extra = f" {m.canonical}" if m.canonical is not None else ""
    if m.kind == "confusable":
        extra += f" looks like {m.listed_host}"
    return f"{m.bank}/{m.entry_id} {m.signal_type} {m.kind} {m.matched!r}{where}{extra}"


def scan_text_command(
    source: Annotated[str, typer.Argument(help="A text file, one item per line; '-' reads stdin.")],
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per item.")] = False,
    bank: Annotated[
        list[str] | None, typer.Option("--bank", help="Match only these banks (repeatable).")
    ] = None,
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="Input lines are JSON objects with a text field.")
    ] = False,
    plain: Annotated[
        bool, typer.Option("--plain", help="Input lines are plain text (no JSON detection).")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Match text lines against URL and keyword lists (exit 1 match, 2 not scanned/no bank,
    0 clean)."""
    if jsonl and plain:
        raise InvalidInput("--jsonl and --plain exclude each other")
    mode = "jsonl" if jsonl else "plain" if plain else "auto"
    settings = load_settings(home=data_dir)
    binary: IO[bytes]
    if source == "-":
        binary = sys.stdin.buffer
    else:
        path = Path(source)
        try:
            if not path.is_file():
                raise InvalidInput(f"{source} is not a readable file")
            binary = path.open("rb")
        except OSError as exc:
            raise InvalidInput(f"cannot read {source}: {exc.strerror}") from None
    db = open_database(settings)
    svc = MatchService(db, limits=settings.limits)
    counts = {"match": 0, "no_match": 0, "not_scanned": 0}
    try:
        svc.start(background=False, follow=False)
        enabled, wanted = bank_selection(svc, bank)
        no_bank = not enabled
        if no_bank:
            typer.echo(
                "warning: no bank is enabled" + (" among --bank" if bank else "")
                + ": nothing can match (exit status 2)",
                err=True,
            )
        t0 = time.perf_counter()
        chars = 0
        batch: list[_Line] = []
        batch_chars = 0

        def flush() -> None:
            todo = [x for x in batch if x.item is not None]
            outcomes = iter(svc.match_texts([x.item for x in todo if x.item is not None]))
            for x in batch:
                matches: list[Match] = []
                reason = x.reason
                if x.item is not None:
                    outcome = next(outcomes)
                    matches, reason = outcome.matches, outcome.reason
                if wanted is not None:
                    matches = [m for m in matches if m.bank in wanted]
                status = "not_scanned" if reason else "match" if matches else "no_match"
                counts[status] += 1
                if json_out:
                    obj: dict[str, Any] = {"line": x.line}
                    if x.item_id is not None:
                        obj["id"] = x.item_id
                    obj["status"] = status
                    if reason:
                        obj["reason"] = reason
                    obj["matches"] = [m.to_json() for m in matches]
                    _emit_json(obj)
                elif reason:
                    typer.echo(f"line {x.line}\tnot_scanned\t{reason}")
                elif matches:
                    typer.echo(f"line {x.line}\tmatch\t" + "; ".join(map(_describe, matches)))
            sys.stdout.flush()
            batch.clear()

        for x in read_items(binary, limits=settings.limits, mode=mode):
            batch.append(x)
            if x.item is not None:
                batch_chars += len(x.item.text)
                chars += len(x.item.text)
            if len(batch) >= BATCH_ITEMS or batch_chars >= BATCH_CHARS:
                flush()
                batch_chars = 0
        flush()
        seconds = time.perf_counter() - t0
        total = sum(counts.values())
        typer.echo(
            f"{total} items, {counts['match']} matched, {counts['not_scanned']} not scanned, "
            f"{seconds:.2f} s, {chars / max(seconds, 1e-9) / 1e6:.2f} M characters/s",
            err=True,
        )
    finally:
        svc.close()
        db.dispose()
        if source != "-":
            binary.close()
    if counts["match"]:
        raise typer.Exit(1)
    if counts["not_scanned"] or no_bank:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add ``scan-text`` to the ``bastion`` command."""
    app.command("scan-text")(scan_text_command)
