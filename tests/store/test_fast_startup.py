"""Start-up skips Alembic when the schema is current; the head is read from the files."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory

from bastion.store.database import Database, alembic_config, head_revision, is_current, migrate


def test_head_revision_matches_alembic() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_is_current_only_after_migrating(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        assert not is_current(db)
        migrate(db)
        assert is_current(db)
    finally:
        db.dispose()
