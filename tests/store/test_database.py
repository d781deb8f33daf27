"""The store's unit of work: SQLite writers of one process queue on a process-wide lock."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bastion.errors import NotReady
from bastion.store import database as database_module
from bastion.store.database import Database


def test_sqlite_writers_of_one_process_take_turns(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'w.db'}")
    order: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def first() -> None:
        with db.write():
            order.append("first in")
            inside.set()
            release.wait(10)
            order.append("first out")

    def second() -> None:
        inside.wait(10)
        with db.write():
            order.append("second in")

    a, b = threading.Thread(target=first), threading.Thread(target=second)
    a.start()
    b.start()
    inside.wait(10)
    b.join(0.3)
    assert b.is_alive(), "the second writer entered while the first held the write lock"
    release.set()
    a.join(10)
    b.join(10)
    assert order == ["first in", "first out", "second in"]
    db.dispose()


def test_sqlite_writer_waiting_past_the_busy_timeout_gets_not_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    db = Database(f"sqlite:///{tmp_path / 'w.db'}")
    inside = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with db.write():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    inside.wait(10)
    try:
        with pytest.raises(NotReady, match="busy"), db.write():
            pass
    finally:
        release.set()
        t.join(10)
    with db.write():  # usable again once the holder is gone
        pass
    db.dispose()
