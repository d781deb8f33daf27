"""``bastion hash [--json] [--every-frame] PATH...``: every signal of files and folders.

Folders are walked recursively (sorted, symbolic links to folders not followed). Each file is
hashed by :func:`bastion.signals.compute.hash_file`, in isolated decode workers
(:class:`bastion.signals.isolation.DecodePool`, ``decode_workers`` setting; 0 = in-process).

Output: with ``--json``, one JSON object per line per file, in input order (the
:meth:`~bastion.signals.result.HashResult.to_json` shape: ``path``, ``media_type``,
``status``, ``reason``, ``width``, ``height``, ``orientation``, ``duration_s``, ``signals``);
without it, a table. A progress bar goes to stderr when there are many files and stderr is a
terminal. Exit status: 2 if any file could not be hashed (``not_scanned``), else 0.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bastion.config import Settings, load_settings
from bastion.signals.base import Signal, VideoSignal
from bastion.signals.compute import HashOptions, HashTask, run_task
from bastion.signals.isolation import DecodePool
from bastion.signals.result import HashResult

#: A progress bar is shown (on a terminal) from this many files on.
PROGRESS_MIN_FILES = 20


def iter_paths(paths: list[Path]) -> Iterator[Path]:
    """Files named by ``paths``: files as given, folders walked recursively in sorted order.
    A path that does not exist is yielded as is (it is reported as not scanned)."""
    for p in paths:
        if p.is_dir():
            for root, dirs, files in os.walk(p, followlinks=False):
                dirs.sort()
                for name in sorted(files):
                    yield Path(root) / name
        else:
            yield p


def hash_paths(files: list[Path], settings: Settings, *, every_frame: bool = False,
               variants: Literal["none", "query", "bank"] = "none",
               pool: DecodePool | None = None,
               ) -> Iterator[HashResult]:
    """Hash ``files`` with ``settings`` (limits, workers, fast decode), results in order;
    ``variants`` as :class:`~bastion.signals.compute.HashOptions` says. ``pool``: an open
    decode pool to use (the caller closes it); default: one made for this call."""
    options = HashOptions(
        every_frame=every_frame, fast_decode=settings.fast_decode, variants=variants
    )
    tasks = (HashTask(path=str(f), options=options, limits=settings.limits) for f in files)
    if pool is not None:
        yield from pool.map(tasks)
        return
    workers = settings.decode_workers
    if workers is None:
        workers = os.cpu_count() or 1
    workers = min(workers, len(files))
    if workers == 0:
        for task in tasks:
            yield run_task(task)
        return
    with DecodePool(workers, limits=settings.limits) as pool:
        yield from pool.map(tasks)


def _stored_pdq(result: HashResult) -> Signal | None:
    for s in result.signals:
        if isinstance(s, Signal) and s.signal_type == "pdq" and s.variant.kind == "stored":
            return s
    return None


def _extra(result: HashResult) -> str:
    kinds: dict[str, int] = {}
    parts: list[str] = []
    for s in result.signals:
        if isinstance(s, VideoSignal):
            parts.append(f"vpdq {len(s.frames)} frames")
        elif s.signal_type == "pdq" and s.variant.kind != "stored":
            kinds[s.variant.kind] = kinds.get(s.variant.kind, 0) + 1
    parts += [f"{n} {k}" for k, n in kinds.items()]
    if result.duration_s is not None:
        parts.append(f"{result.duration_s:.1f} s")
    return ", ".join(parts)


def render_table(results: list[HashResult], console: Console) -> None:
    """Print ``results`` as a table: the stored PDQ and its quality, the other variants,
    the reason a file was not scanned and notes (``--json`` has every signal)."""
    table = Table(show_lines=False)
    table.add_column("path", overflow="fold", min_width=12)
    for col in ("type", "status", "size", "orient."):
        table.add_column(col, no_wrap=True)
    table.add_column("pdq (stored)", no_wrap=True)
    table.add_column("q", no_wrap=True, justify="right")
    table.add_column("also", overflow="fold")
    table.add_column("reason / notes", overflow="fold", min_width=16)
    for r in results:
        pdq = _stored_pdq(r)
        q = "" if pdq is None or pdq.quality is None else str(pdq.quality)
        if pdq is not None and pdq.low_quality:
            q += " (low)"
        size = f"{r.width}x{r.height}" if r.width is not None else ""
        status = "[green]hashed[/]" if r.status == "hashed" else "[red]not_scanned[/]"
        why = "; ".join(([r.reason] if r.reason else []) + r.notes)
        table.add_row(
            str(r.path), r.mime or r.media_type, status, size,
            "" if r.orientation is None else str(r.orientation),
            "" if pdq is None else pdq.value, q, _extra(r), why,
        )
    console.print(table)


def hash_command(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursive).")],
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object per line per file.")
    ] = False,
    every_frame: Annotated[
        bool, typer.Option("--every-frame", help="Hash every video frame (not one per second) "
                           "and report every animation frame.")
    ] = False,
    variants: Annotated[
        str, typer.Option("--variants", help="Robustness variants to hash as well: none, "
                          "query (as a scan does: trimmed, bands) or bank (as bank add does).")
    ] = "none",
) -> None:
    """Compute MD5, SHA-1, SHA-256, PDQ and vPDQ of files (exit 2 if any is not scanned)."""
    if variants not in ("none", "query", "bank"):
        raise typer.BadParameter("must be none, query or bank", param_hint="--variants")
    settings = load_settings()
    files = list(iter_paths(paths))
    err = Console(stderr=True)
    results: list[HashResult] = []
    any_not_scanned = False
    show_progress = len(files) >= PROGRESS_MIN_FILES and err.is_terminal
    progress = Progress(
        TextColumn("hashing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err, transient=True, disable=not show_progress,
    )
    with progress:
        bar = progress.add_task("hash", total=len(files))
        for result in hash_paths(
            files, settings, every_frame=every_frame,
            variants=variants,  # type: ignore[arg-type]  # checked above
        ):
            any_not_scanned |= result.status != "hashed"
            if json_out:
                sys.stdout.write(json.dumps(result.to_json(), separators=(",", ":")) + "\n")
                sys.stdout.flush()
            else:
                results.append(result)
            progress.advance(bar)
    if not json_out:
        out = Console()
        if not out.is_terminal:
            out = Console(width=max(out.width, 220))
        render_table(results, out)
        if any_not_scanned:
            n = sum(r.status != "hashed" for r in results)
            err.print(f"{n} of {len(results)} files could not be hashed")
    if any_not_scanned:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add the ``hash`` command to ``app``."""
    app.command("hash")(hash_command)
