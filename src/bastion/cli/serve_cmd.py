"""``bastion serve``: the API (FastAPI under uvicorn) with the in-process worker.

On the embedded defaults it needs no configuration: SQLite and files under the data
directory (``--data-dir`` / ``BASTION_HOME``, default ``./bastion-data``), the built-in
``sample`` bank created if missing, and, on first start (no API key exists yet), one
``admin`` API key printed once to stderr with the service's address. Several ``serve``
processes may share one PostgreSQL database (``BASTION_DATABASE_URL``); each loads its
indexes from it and follows the bank change log.

Background work (retro-hunt of earlier content after bank changes, upkeep; see
:mod:`bastion.content.maintenance`) runs in a thread of this process unless ``--no-worker``;
``bastion worker`` runs it in a process of its own.

``--workers N`` runs N uvicorn worker processes (each with its own indexes: memory grows
N-fold; unless ``decode_workers`` is set, the cores are shared out among their decode
workers, :func:`decoders_per_worker`); on SQLite, 1 process is the faster choice (writers
of several processes meet SQLite's busy back-off; use PostgreSQL for several); the
default 1 process serves requests on an event loop and runs blocking work
(database, matching, waiting for the isolated decode workers) in a thread pool.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from bastion.apikeys import service as keys
from bastion.banks import service as banks
from bastion.banks.sample import SAMPLE_BANK, create_sample_bank
from bastion.cli.options import DataDir
from bastion.config import Settings, load_settings
from bastion.errors import NotFound
from bastion.store.database import Database, open_database

#: Name of the key created on first start.
FIRST_KEY_NAME = "first-admin"


def prepare_store(db: Database, *, sample: bool = True) -> str | None:
    """Create the ``sample`` bank if missing (when ``sample``) and, when no API key
    exists, one ``admin`` key; returns that key (to show once) or None."""
    if sample:
        with db.write() as session:
            try:
                banks.get(session, name=SAMPLE_BANK)
            except NotFound:
                create_sample_bank(session, actor="cli:serve")
    with db.write() as session:
        if keys.count(session) == 0:
            _, key = keys.create(session, name=FIRST_KEY_NAME, scopes=["admin"],
                                 actor="cli:serve")
            return key
    return None


def _address(settings: Settings, host: str, port: int) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="uvicorn worker processes.")
    ] = 1,
    sample: Annotated[
        bool, typer.Option("--sample/--no-sample", help="Create the sample bank if missing.")
    ] = True,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker",
                           help="Run background work (retro-hunt, upkeep) in this process.")
    ] = True,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (paths and ids only).")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Run the API (and the in-process worker) until interrupted."""
    import uvicorn

    from bastion.api.app import create_app
    from bastion.content.maintenance import Maintenance

    _log_setup()
    settings = load_settings(home=data_dir)
    db = open_database(settings)
    first_key = prepare_store(db, sample=sample)
    address = _address(settings, host, port)
    err = sys.stderr
    print(f"Bastion is serving at {address}  (API docs {address}/docs, UI {address}/ui/)",
          file=err)
    if first_key is not None:
        print("First start: an admin API key was created. It is shown only this once; "
              "store it now:", file=err)
        print(first_key, file=err)
    err.flush()
    maintenance = Maintenance(db, settings)
    actions = None
    if worker:
        maintenance.start()
        from bastion.actions.worker import build_worker

        actions = build_worker(db, settings)  # the outbox and CyberTipline reports
        actions.start()
    try:
        if workers == 1:
            app = create_app(settings, db=db)
            uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log,
                        server_header=False)
        else:
            os.environ["BASTION_HOME"] = str(settings.home)
            if settings.decode_workers is None:  # share the cores, not N x cores decoders
                os.environ["BASTION_DECODE_WORKERS"] = str(decoders_per_worker(workers))
            uvicorn.run("bastion.api.app:app_from_env", factory=True, host=host, port=port,
                        workers=workers, log_level="info", access_log=access_log,
                        server_header=False)
    finally:
        if actions is not None:
            actions.close()
        maintenance.close()
        db.dispose()


def _log_setup() -> None:
    """INFO logs on stderr, except Alembic's line per migration (about 20 on a first start,
    which would bury the first admin key printed after them)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


def decoders_per_worker(workers: int, cores: int | None = None) -> int:
    """Isolated decode workers for each of ``workers`` uvicorn processes when the setting
    is not given: the machine's cores shared out (at least 1 each), so that N processes do
    not start N x cores decoders that then compete for the same cores."""
    total = cores if cores is not None else (os.cpu_count() or 1)
    return max(1, total // max(1, workers))


def worker_command(data_dir: DataDir = None) -> None:
    """Run background work (retro-hunt, upkeep) in the foreground until interrupted, for
    deployments whose ``serve`` processes run with ``--no-worker``."""
    from bastion.content.maintenance import Maintenance

    _log_setup()
    settings = load_settings(home=data_dir)
    db = open_database(settings)
    maintenance = Maintenance(db, settings)
    from bastion.actions.worker import build_worker

    actions = build_worker(db, settings)  # the outbox and CyberTipline reports
    actions.start()
    print("bastion worker: retro-hunt, upkeep, actions and reports running (Ctrl-C to stop)",
          file=sys.stderr)
    try:
        maintenance.run()
    except KeyboardInterrupt:
        pass
    finally:
        actions.close()
        maintenance.close()
        db.dispose()


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``worker`` to the ``bastion`` command."""
    app.command("serve")(serve_command)
    app.command("worker")(worker_command)
