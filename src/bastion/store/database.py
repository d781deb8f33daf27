"""Engines, units of work and start-up migrations.

One :class:`Database` per process, built from :class:`bastion.config.Settings`::

    db = open_database(settings)          # migrates the schema to the newest version
    with db.write() as session:           # one unit of work; commits on success
        ...
    with db.read() as session:            # one consistent snapshot, never writes
        ...

SQLite (the default: ``$BASTION_HOME/bastion.db``) runs in WAL mode with a busy timeout and
foreign keys on. Python's ``sqlite3`` module normally starts transactions only before the
first write, so a read would see a new snapshot per statement; here every unit of work
issues its own ``BEGIN`` (``BEGIN IMMEDIATE`` for :meth:`Database.write`, so a writer takes
the database's write lock at the start and never fails half-way with "database is locked"
after waiting for another writer). PostgreSQL (``BASTION_DATABASE_URL``, driver ``psycopg``)
reads in ``REPEATABLE READ`` snapshots and writes in ``READ COMMITTED``.

The schema is created and upgraded only by Alembic (``bastion/store/migrations``), run
programmatically by :func:`migrate` under a lock (a PostgreSQL advisory lock; SQLite's
write lock), so several processes starting at once migrate exactly once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bastion.config import Settings
from bastion.errors import ConfigurationError, NotReady

if TYPE_CHECKING:
    from alembic.config import Config

#: Seconds a SQLite writer waits for the write lock before giving up.
SQLITE_BUSY_TIMEOUT_S = 30.0

#: Advisory-lock key that serialises migrations on PostgreSQL (any fixed 64-bit number).
_MIGRATION_LOCK_KEY = 0x6261737469_6F6E  # "bastion"

_MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's events below issue BEGIN; the driver must not.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA synchronous = NORMAL")
        # Deleted rows are overwritten with zeros (evidence purges leave nothing behind).
        cur.execute("PRAGMA secure_delete = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """The store's engine and its units of work.

    ``url`` is a SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://...``).
    ``pg_schema`` (PostgreSQL only) puts every table in that schema through the
    connection's ``search_path`` (tests use one schema per run); it must match
    ``[a-z_][a-z0-9_]*`` and must already exist. Raises :class:`ConfigurationError` for an
    unsupported URL.
    """

    def __init__(self, url: str, *, pg_schema: str | None = None, echo: bool = False) -> None:
        self.url = url
        connect_args: dict[str, Any] = {}
        if url.startswith("sqlite"):
            self.dialect = "sqlite"
            if pg_schema is not None:
                raise ConfigurationError("pg_schema applies to PostgreSQL only")
            if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            connect_args["check_same_thread"] = False
            self.engine = create_engine(url, echo=echo, connect_args=connect_args)
            _configure_sqlite(self.engine)
            self._read_engine: Engine = self.engine
            self._write_engine: Engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        elif url.startswith("postgresql"):
            self.dialect = "postgresql"
            if pg_schema is not None:
                if not _SCHEMA_RE.match(pg_schema):
                    raise ConfigurationError(f"invalid PostgreSQL schema name {pg_schema!r}")
                connect_args["options"] = f"-csearch_path={pg_schema}"
            self.engine = create_engine(
                url, echo=echo, connect_args=connect_args, pool_pre_ping=True
            )
            self._read_engine = self.engine.execution_options(isolation_level="REPEATABLE READ")
            self._write_engine = self.engine
        else:
            raise ConfigurationError(
                "database_url must be sqlite:///... or postgresql+psycopg://..., "
                f"got {url.split(':', 1)[0]}:..."
            )
        self.pg_schema = pg_schema
        #: SQLite: one writer at a time within this process (see :meth:`write`).
        self._local_writer = threading.RLock() if self.dialect == "sqlite" else None
        self._write_sessions = sessionmaker(self._write_engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._read_engine, expire_on_commit=False)

    @property
    def is_postgresql(self) -> bool:
        """True when the store is PostgreSQL."""
        return self.dialect == "postgresql"

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One read-write unit of work: commits when the block ends, rolls back on error.

        On SQLite the write lock is taken at the start (``BEGIN IMMEDIATE``), waiting up to
        :data:`SQLITE_BUSY_TIMEOUT_S` seconds for another writer. Writers of one process
        first queue on a process-wide lock, so they wake the moment the previous one commits
        instead of in SQLite's busy-handler sleeps (1-100 ms back-off); only writers of other
        processes meet the busy handler.
        """
        if self._local_writer is None:
            with self._write_sessions() as session, session.begin():
                yield session
            return
        if not self._local_writer.acquire(timeout=SQLITE_BUSY_TIMEOUT_S):
            raise NotReady(f"the database stayed busy for {SQLITE_BUSY_TIMEOUT_S:.0f} s "
                           "(another writer of this process held it)")
        try:
            with self._write_sessions() as session, session.begin():
                yield session
        finally:
            self._local_writer.release()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """One read-only unit of work over a single consistent snapshot (rolled back)."""
        with self._read_sessions() as session:
            session.begin()
            try:
                yield session
            finally:
                session.rollback()

    def dispose(self) -> None:
        """Close every pooled connection (call before a process exits or forks)."""
        self.engine.dispose()


_REVISION_RE = re.compile(r'^(down_)?revision\s*(?::[^=]*)?=\s*["\']?([^"\'\s]+)["\']?', re.M)


def head_revision() -> str:
    """The newest migration's revision id, read from the migration files without importing
    Alembic (whose import costs about a second at every command's start). Raises
    :class:`ConfigurationError` unless the files form a chain with exactly one head."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict((bool(down), rev) for down, rev in _REVISION_RE.findall(path.read_text()))
        if False not in found:
            continue
        revisions.add(found[False])
        if found.get(True) not in (None, "None"):
            parents.add(found[True])
    heads = revisions - parents
    if len(heads) != 1:
        raise ConfigurationError(f"migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def _current_revision(conn: Connection) -> str | None:
    """The revision stamped in ``alembic_version``, or None (no such table: a new store)."""
    try:
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except Exception:
        return None
    finally:
        conn.rollback()
    return None if row is None else str(row[0])


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic :class:`Config` for Bastion's migrations, optionally bound to ``connection``
    (``env.py`` then runs on it instead of opening its own)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def migrate(db: Database, revision: str = "head") -> None:
    """Upgrade ``db``'s schema to ``revision`` (default: the newest), holding a lock so that
    concurrent start-ups migrate once. Raises :class:`ConfigurationError` when the database
    cannot be reached or migrated (the message names the URL's dialect, never the password).
    """
    from alembic import command

    try:
        engine = db._write_engine
        with engine.connect() as conn:
            if db.is_postgresql:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
                conn.commit()
                try:
                    command.upgrade(alembic_config(conn), revision)
                    conn.commit()
                finally:
                    conn.execute(
                        text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_KEY}
                    )
                    conn.commit()
            else:
                command.upgrade(alembic_config(conn), revision)
                conn.commit()
    except OperationalError as exc:
        raise ConfigurationError(
            f"cannot open the {db.dialect} database: {exc.orig or exc}"
        ) from exc


def is_current(db: Database) -> bool:
    """True when ``db``'s schema is already at :func:`head_revision` (a cheap check that
    lets a start-up skip Alembic entirely)."""
    try:
        with db._read_engine.connect() as conn:
            return _current_revision(conn) == head_revision()
    except OperationalError:
        return False


def open_database(settings: Settings, *, migrate_schema: bool = True) -> Database:
    """Open the store named by ``settings`` (``resolved_database_url()``) and, unless
    ``migrate_schema`` is false, migrate it to the newest schema (skipped when it is already
    there). Raises :class:`ConfigurationError` when it cannot be opened."""
    db = Database(settings.resolved_database_url())
    if migrate_schema and not is_current(db):
        migrate(db)
    return db
