"""Shared fixtures.

``db``: a freshly migrated :class:`bastion.store.Database`, parametrised over SQLite (a
file in the test's temporary directory) and, when ``BASTION_TEST_DATABASE_URL`` is set,
PostgreSQL. Each PostgreSQL test gets its own schema (``bastion_test_<random>``, reached
through the connection's ``search_path`` and dropped afterwards), so parallel
pytest-xdist workers never see each other's rows. ``db.url`` is a self-contained URL for
that schema (for subprocesses and the CLI: ``BASTION_DATABASE_URL=db.url``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bastion.store.database import Database, migrate

PG_URL = os.environ.get("BASTION_TEST_DATABASE_URL") or None
DB_KINDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


def _pg_admin(statement: str) -> None:
    assert PG_URL is not None
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def make_database(kind: str, tmp_path: Path) -> tuple[Database, str | None]:
    """A migrated database of ``kind`` (``sqlite`` or ``postgresql``) and, for PostgreSQL,
    the schema to drop afterwards."""
    if kind == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'bastion.db'}")
        migrate(database)
        return database, None
    assert PG_URL is not None
    schema = f"bastion_test_{secrets.token_hex(6)}"
    _pg_admin(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    database = Database(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")
    migrate(database)
    return database, schema


@pytest.fixture(params=DB_KINDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh, migrated store: SQLite, and PostgreSQL when BASTION_TEST_DATABASE_URL is set."""
    database, schema = make_database(str(request.param), tmp_path)
    try:
        yield database
    finally:
        database.dispose()
        if schema is not None:
            drop_schema(schema)


def drop_schema(schema: str, attempts: int = 10) -> None:
    """Drop a test schema. A background thread of the code under test (a change-log
    follower, an upkeep round) may still be finishing a query in it, which can make the
    drop deadlock or wait for a lock: retry (each try waits at most 5 s for locks)."""
    import time

    from sqlalchemy.exc import OperationalError

    for attempt in range(attempts):
        try:
            _pg_admin(f"SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {schema} CASCADE")
            return
        except OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly when the PostgreSQL half of the store tests did not run."""
    if PG_URL is None:
        terminalreporter.write_line(
            "WARNING: BASTION_TEST_DATABASE_URL is not set: store tests ran on SQLite only, "
            "not PostgreSQL",
            yellow=True,
            bold=True,
        )


#: Background threads a test must not leave running (they would poll a dropped store).
_BACKGROUND = ("bastion-matcher", "bastion-follower", "bastion-actions", "bastion-maintenance")


@pytest.fixture(autouse=True)
def _no_background_thread_outlives_its_test() -> Iterator[None]:
    """Fail a test that leaves a matcher, follower, outbox or maintenance thread running
    (a service it started and never closed)."""
    import threading
    import time

    before = {t.ident for t in threading.enumerate()}
    yield
    deadline = time.monotonic() + 3.0
    while True:
        left = [t for t in threading.enumerate()
                if t.ident not in before and t.name in _BACKGROUND and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"background threads still running after the test: {[t.name for t in left]}"
