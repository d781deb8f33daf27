"""``bastion serve`` on the embedded defaults: no configuration, SQLite under
./bastion-data, the sample bank, one admin key printed once on first start."""

from __future__ import annotations

from pathlib import Path

import httpx
from tests.api.conftest import BRIDGE, ServerProcess


def test_first_start_prints_one_admin_key_and_the_address(tmp_path: Path) -> None:
    home = tmp_path / "bastion-data"
    server = ServerProcess(home, env={"BASTION_DECODE_WORKERS": "1"})
    try:
        server.wait_ready()
        err = server.stderr()
        keys = [line for line in err.splitlines() if line.startswith("bst_")]
        assert len(keys) == 1
        assert server.url in err
        assert "Running upgrade" not in err  # no migration log burying the key
        assert (home / "bastion.db").is_file()
        h = {"Authorization": f"Bearer {keys[0]}"}
        r = httpx.post(server.url + "/v1/content", headers=h, timeout=60,
                       files={"file": ("b.jpg", BRIDGE.read_bytes())},
                       data={"content_id": "readme-check"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "match"
        assert r.json()["matches"][0]["bank"] == "sample"
    finally:
        server.stop()
    again = ServerProcess(home)
    try:
        again.wait_ready()
        assert "bst_" not in again.stderr()  # a key exists now: none printed
        h = {"Authorization": f"Bearer {keys[0]}"}
        assert httpx.get(again.url + "/v1/banks", headers=h).status_code == 200
    finally:
        again.stop()


def test_decode_workers_are_shared_out_among_uvicorn_workers() -> None:
    from bastion.cli.serve_cmd import decoders_per_worker

    assert decoders_per_worker(1, cores=2) == 2
    assert decoders_per_worker(2, cores=2) == 1
    assert decoders_per_worker(4, cores=2) == 1
    assert decoders_per_worker(3, cores=8) == 2
