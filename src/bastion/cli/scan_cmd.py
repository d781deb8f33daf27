"""``bastion scan`` (the main job), ``bastion match`` and ``bastion retrohunt``.

``bastion scan PATH... [--json] [--bank NAME]...`` hashes every file (folders recursive;
``-`` reads one path per line from standard input) in isolated decode workers across the
cores, matches each against the enabled banks (or only the ``--bank`` ones), logs its signals
(never its bytes) in the content log for retro-hunt, and prints one result per file. A
summary goes to stderr. Exit status (DESIGN.md): 1 if anything matched; else 2 if any file
was not scanned, an error occurred, or no bank is enabled (a scan against nothing must never
look clean); else 0.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bastion.cli.hash_cmd import PROGRESS_MIN_FILES, hash_paths, iter_paths
from bastion.cli.options import DataDir
from bastion.config import Settings, load_settings
from bastion.errors import InvalidInput
from bastion.signals.base import Signal, get_signal_type
from bastion.signals.isolation import DecodePool
from bastion.signals.pdq import dihedral_from_hash

if TYPE_CHECKING:  # imported when a command runs, after the decode workers are started
    from bastion.scan.matcher import Match
    from bastion.scan.service import MatchService, ScanResult
    from bastion.store.database import Database



def _open(data_dir: Path | None, settings: Settings | None = None) -> tuple[Settings, Database]:
    from bastion.store.database import open_database

    settings = settings or load_settings(home=data_dir)
    return settings, open_database(settings)


#: Longest path line read from stdin (bytes; Linux's PATH_MAX is 4096).
MAX_STDIN_PATH_BYTES = 4096


def _read_stdin_paths() -> Iterator[Path]:
    """Paths from stdin, one per line (UTF-8; undecodable bytes kept as in file names).
    Raises :class:`InvalidInput` for a line that cannot be a path (a NUL byte, or longer
    than :data:`MAX_STDIN_PATH_BYTES`): most likely a file's bytes piped in by mistake."""
    for n, raw in enumerate(sys.stdin.buffer, start=1):
        line = raw.rstrip(b"\r\n")
        if b"\0" in line or len(line) > MAX_STDIN_PATH_BYTES:
            raise InvalidInput(
                f"'-' reads file paths from stdin, one per line, but line {n} is not a path "
                "(it holds binary data or is too long): pass the file's path as an argument "
                "instead of piping its bytes")
        if line:
            yield Path(line.decode("utf-8", "surrogateescape"))


def bank_selection(
    svc: MatchService, requested: list[str] | None
) -> tuple[set[str], set[str] | None]:
    """``(enabled banks among those asked for, the banks asked for or None for all)`` for
    ``--bank`` options. Raises :class:`InvalidInput` naming unknown banks."""
    enabled = {b.name for b in svc.matcher.enabled_banks()}
    if not requested:
        return enabled, None
    known = {b.name for b in svc.matcher.banks().values()}
    unknown = sorted(set(requested) - known)
    if unknown:
        raise InvalidInput(f"unknown bank(s): {', '.join(unknown)}")
    wanted = set(requested)
    return enabled & wanted, wanted


def _filter_banks(matches: list[Match], banks: set[str] | None) -> list[Match]:
    return matches if banks is None else [m for m in matches if m.bank in banks]


def _print_json(obj: Mapping[str, object]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _row(table: Table, r: ScanResult) -> None:
    colour = {"match": "red", "not_scanned": "yellow", "no_match": "green"}[r.status]
    what = "; ".join(
        f"{m.bank}/{m.entry_id} {m.signal_type} d={m.distance}"
        + (f" {m.transform}" if m.transform not in (None, "original") else "")
        + (
            f" via {m.query_variant.kind}"
            if m.query_variant is not None and m.query_variant.kind != "stored"
            else ""
        )
        for m in r.matches[:3]
    )
    if len(r.matches) > 3:
        what += f" (+{len(r.matches) - 3})"
    table.add_row(str(r.path), f"[{colour}]{r.status}[/]", what, r.reason or "")


def scan_command(
    paths: Annotated[
        list[str], typer.Argument(help="Files or folders (recursive); '-' reads paths from stdin.")
    ],
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    bank: Annotated[
        list[str] | None, typer.Option("--bank", help="Match only these banks (repeatable).")
    ] = None,
    every_frame: Annotated[
        bool, typer.Option("--every-frame", help="Hash every video frame, not one per second.")
    ] = False,
    no_log: Annotated[
        bool, typer.Option("--no-log", help="Do not record signals in the content log.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Hash and match files against the banks (exit 1 match, 2 not scanned/no bank, 0 clean)."""
    settings = load_settings(home=data_dir)
    workers = settings.decode_workers
    pool = DecodePool(workers or None, limits=settings.limits) if workers != 0 else None
    if pool is not None:
        pool.prestart()  # worker start-up overlaps with opening the store and loading banks
    from bastion.scan.content_log import LOG_BATCH, log_scans
    from bastion.scan.service import MatchService, status_of

    settings, db = _open(data_dir, settings)
    err = Console(stderr=True)
    svc = MatchService(db, snapshot_dir=settings.home / "index", limits=settings.limits)
    try:
        svc.start(background=False, follow=False)
        enabled, wanted = bank_selection(svc, bank)
        no_bank = not enabled
        if no_bank:
            err.print(
                "[bold red]warning:[/] no bank is enabled"
                + (" among --bank" if bank else "")
                + ": nothing can match (exit status 2). Try `bastion bank sample`."
            )
        files: list[Path] = []
        for p in paths:
            if p == "-":
                files.extend(_read_stdin_paths())
            else:
                files.extend(iter_paths([Path(p)]))
        t0 = time.perf_counter()
        counts = {"match": 0, "no_match": 0, "not_scanned": 0}
        pending: list[ScanResult] = []
        table = Table()
        for col in ("path", "status", "matches", "reason"):
            table.add_column(col, overflow="fold")
        show_progress = len(files) >= PROGRESS_MIN_FILES and err.is_terminal
        progress = Progress(
            TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=err, transient=True, disable=not show_progress,
        )
        with progress:
            bar = progress.add_task("scan", total=len(files))
            for hashed in hash_paths(
                files, settings, every_frame=every_frame, variants="query", pool=pool
            ):
                result = svc.scan_result(hashed)
                if wanted is not None:
                    result.matches = _filter_banks(result.matches, wanted)
                    result.status = status_of(hashed.status == "hashed", result.matches)
                if not no_log:
                    pending.append(result)
                    if len(pending) >= LOG_BATCH:
                        log_scans(db, pending)
                        pending.clear()
                counts[result.status] += 1
                if json_out:
                    _print_json(result.to_json())
                else:
                    _row(table, result)
                progress.advance(bar)
        log_scans(db, pending)
        seconds = time.perf_counter() - t0
        if not json_out:
            Console(width=max(Console().width, 160)).print(table)
        rate = len(files) / seconds if seconds > 0 else 0.0
        err.print(
            f"{len(files)} files, {counts['match']} matched, {counts['not_scanned']} not scanned, "
            f"{seconds:.2f} s, {rate:.1f} files/s"
        )
    finally:
        svc.close()
        db.dispose()
        if pool is not None:
            pool.close()
    if counts["match"]:
        raise typer.Exit(1)
    if counts["not_scanned"] or no_bank:
        raise typer.Exit(2)


def match_command(
    signal_type: Annotated[str, typer.Argument(help="pdq, md5, sha1, sha256, url, keyword")],
    value: Annotated[str, typer.Argument(help="The hash (hex); a URL; a text (keyword).")],
    json_out: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    quality: Annotated[
        int, typer.Option("--quality", min=0, max=100, help="Quality of a PDQ hash.")
    ] = 100,
    data_dir: DataDir = None,
) -> None:
    """Match one bare hash against the banks (exit 1 match, 2 no bank, 0 none). For
    ``url`` the value is a URL checked against the URL lists (canonical form, prefix and
    host entries); for ``keyword`` it is a text searched for the keyword lists' terms."""
    st = get_signal_type(signal_type)
    text_kind = st.name in ("url", "keyword")
    canonical = value if text_kind else st.parse(value)
    from bastion.scan.service import MatchService, status_of

    _settings, db = _open(data_dir)
    svc = MatchService(db)
    try:
        svc.start(background=False, follow=False)
        if text_kind:
            links = [value] if st.name == "url" and "://" in value else []
            matches = [m for m in svc.match_text("" if links else value, links)
                       if m.signal_type == st.name]
            no_bank = False
        else:
            signal = Signal(st.name, canonical, quality if st.name == "pdq" else None)
            if st.name == "pdq":
                signal = Signal("pdq", canonical, quality,
                                dihedral=dihedral_from_hash(canonical))
            no_bank = not svc.matcher.enabled_banks()
            matches = svc.match_signals([signal])
    finally:
        svc.close()
        db.dispose()
    status = status_of(True, matches)
    if json_out:
        _print_json(
            {
                "signal_type": st.name,
                "value": canonical,
                "status": status,
                "matches": [m.to_json() for m in matches],
            }
        )
    else:
        for m in matches:
            typer.echo(
                f"{m.bank}\t{m.entry_id}\t{m.signal_type}\tdistance={m.distance}"
                + (f"\t{m.transform}" if m.transform else "")
            )
        if not matches:
            typer.echo("no_match")
    if matches:
        raise typer.Exit(1)
    if no_bank:
        typer.echo("warning: no bank is enabled: nothing can match", err=True)
        raise typer.Exit(2)


def retrohunt_command(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per match.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Search earlier content for bank entries added since the last run; purge the content
    log past its retention (exit 1 if anything was found, else 0)."""
    from bastion.scan.content_log import RetrohuntFollower, purge

    settings, db = _open(data_dir)
    try:
        purged = purge(db, retention_days=settings.content_log_days)
        run = RetrohuntFollower(db).run_once()
    finally:
        db.dispose()
    for m in run.matches:
        obj = {
            "content_id": m.signal.content_id,
            "path": m.signal.source,
            "scanned_at": m.signal.scanned_at.isoformat(),
            "bank": m.bank_name,
            "entry_id": str(m.entry.id),
            "signal_type": m.entry.signal_type,
            "distance": m.distance,
            "transform": m.transform,
        }
        if json_out:
            _print_json(obj)
        else:
            typer.echo("\t".join(str(obj[k]) for k in ("path", "bank", "entry_id",
                                                      "signal_type", "distance")))
    typer.echo(
        f"retro-hunt: {run.entries} entries searched, {run.found} matches "
        f"({run.new} new); {purged} logged items past retention purged",
        err=True,
    )
    if run.found:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``scan``, ``match`` and ``retrohunt`` to the ``bastion`` command."""
    app.command("scan")(scan_command)
    app.command("match")(match_command)
    app.command("retrohunt")(retrohunt_command)
