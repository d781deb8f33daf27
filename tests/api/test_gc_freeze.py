"""The service freezes the objects alive after its indexes load (no full-collection stalls
walking them), and hands them back to the collector at shutdown."""

from __future__ import annotations

import gc
import time
from pathlib import Path

from fastapi.testclient import TestClient

from bastion.api.app import create_app
from bastion.config import load_settings
from bastion.store.database import Database


def test_objects_are_frozen_once_indexes_load_and_unfrozen_at_shutdown(
    db: Database, tmp_path: Path
) -> None:
    gc.unfreeze()
    settings = load_settings(environ={}, home=tmp_path / "home", decode_workers=0)
    client = TestClient(create_app(settings, db=db))
    with client:
        deadline = time.monotonic() + 20
        while gc.get_freeze_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/readyz").status_code == 200
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0



