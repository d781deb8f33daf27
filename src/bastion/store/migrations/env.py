"""Alembic environment for Bastion's store.

Run programmatically by :func:`bastion.store.database.migrate`, which passes an open
connection in ``config.attributes["connection"]``. The ``alembic`` command works too when
``sqlalchemy.url`` is set (``alembic -x`` is not used).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from bastion.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite ALTER TABLE support for later migrations
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the given connection, or on ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or call bastion.store.database.migrate()")
    engine = create_engine(url)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()


if context.is_offline_mode():
    raise RuntimeError("Bastion's migrations run online only")
run_migrations_online()
