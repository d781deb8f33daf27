"""The Alembic migrations create exactly what the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from bastion.store.database import Database, alembic_config, migrate
from bastion.store.models import Base


def test_schema_matches_models_and_migrating_twice_is_harmless(db: Database) -> None:
    migrate(db)  # already at head: a no-op
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        tables = set(inspect(conn).get_table_names())
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert diff == []
    assert {"banks", "bank_entries", "bank_changes", "content_items", "content_signals",
            "retrohunt_matches", "audit_events", "store_meta"} <= tables
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert [version] == heads  # exactly one head, and the database is at it


def test_sqlite_pragmas(db: Database) -> None:
    if db.is_postgresql:
        with db.read() as s:
            assert s.execute(text("SHOW transaction_isolation")).scalar_one() == "repeatable read"
        return
    with db.read() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert s.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        assert s.execute(text("PRAGMA busy_timeout")).scalar_one() >= 1000
