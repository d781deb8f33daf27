"""Options shared by the ``bastion`` command groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

#: ``--data-dir`` (or ``BASTION_HOME``): the data directory, default ``./bastion-data``.
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="BASTION_HOME",
        help="Data directory (SQLite database, indexes, evidence). Default ./bastion-data.",
    ),
]

#: ``--json``: machine-readable output.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
