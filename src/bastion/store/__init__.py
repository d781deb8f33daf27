"""Persistence (layer 3): SQLAlchemy 2 models, repositories and Alembic migrations.

SQLite by default (a WAL-mode file under the data directory), PostgreSQL in production;
the same code and tests run on both. Start with :func:`open_database`.

Modules: :mod:`~bastion.store.database` (engines, units of work, migrations),
:mod:`~bastion.store.models` (tables), :mod:`~bastion.store.bank_repository` (banks and
entries), :mod:`~bastion.store.change_log` (the bank change log and its follower),
:mod:`~bastion.store.content_log` (scanned items' signals and retro-hunt results),
:mod:`~bastion.store.audit` (audit events).
"""

from bastion.store.database import Database, migrate, open_database

__all__ = ["Database", "migrate", "open_database"]
