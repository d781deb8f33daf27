"""Two ``bastion serve`` processes on one database: a bank entry added through one is
matched by the other within 1 second (each follows the bank change log). Runs on SQLite
and, when BASTION_TEST_DATABASE_URL is set, on PostgreSQL."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx
from tests.api.conftest import ServerProcess

from bastion.apikeys import service as keys
from bastion.store.database import Database


def test_entry_added_through_one_server_matches_on_the_other(db: Database,
                                                             tmp_path: Path) -> None:
    with db.write() as s:
        _, key = keys.create(s, name="two", scopes=["admin"])
    h = {"Authorization": f"Bearer {key}"}
    env = {"BASTION_DATABASE_URL": db.url, "BASTION_DECODE_WORKERS": "0"}
    a = ServerProcess(tmp_path / "a", env=env, args=("--no-sample",))
    b = ServerProcess(tmp_path / "b", env=env, args=("--no-sample",))
    try:
        a.wait_ready()
        b.wait_ready()
        assert "bst_" not in a.stderr() + b.stderr()  # a key existed: none printed
        r = httpx.post(a.url + "/v1/banks", headers=h, json={"name": "shared"})
        assert r.status_code == 201, r.text
        value = hashlib.md5(b"two servers, one database").hexdigest()
        probe = {"signals": [{"type": "md5", "value": value}]}
        r = httpx.post(b.url + "/v1/match", headers=h, json=probe)
        assert r.json()["results"][0]["status"] == "no_match"
        r = httpx.post(a.url + "/v1/banks/shared/entries", headers=h,
                       json={"entries": [{"signal_type": "md5", "value": value}]})
        assert r.status_code == 201, r.text
        added = time.monotonic()
        seen = None
        while time.monotonic() - added < 5:
            r = httpx.post(b.url + "/v1/match", headers=h, json=probe)
            if r.json()["results"][0]["status"] == "match":
                seen = time.monotonic() - added
                break
            time.sleep(0.02)
        assert seen is not None and seen < 1.0, seen
    finally:
        a.stop()
        b.stop()
