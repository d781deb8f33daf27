"""Fixtures for the API: an app on the ``db`` fixture's store, with keys for every scope.

``api`` builds the app in-process (FastAPI's TestClient) with the sample bank loaded.
Decoding runs in-process (``decode_workers=0``) unless a test asks for the isolated pool.
``ServerProcess`` runs a real ``bastion serve`` in a subprocess (for memory and
multi-process tests).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from bastion.api.app import create_app
from bastion.apikeys import service as keys
from bastion.apikeys.scopes import SCOPES
from bastion.banks.sample import create_sample_bank
from bastion.config import Settings, load_settings
from bastion.store.database import Database

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
IMAGES = DATA / "images"
BRIDGE = IMAGES / "bridge-mods" / "aaa-orig.jpg"


@dataclass
class Api:
    """A running in-process API: ``client``, ``keys`` by scope name (``all-but-<scope>``
    too), and its settings and store."""

    client: TestClient
    settings: Settings
    db: Database
    keys: dict[str, str] = field(default_factory=dict)

    def h(self, scope: str = "admin") -> dict[str, str]:
        """Authorization header of the key for ``scope``."""
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait for ``/readyz``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.client.get("/readyz").status_code == 200:
                return
            time.sleep(0.05)
        raise AssertionError("API never became ready")


def make_keys(db: Database) -> dict[str, str]:
    """One key per scope, and ``all-but-<scope>`` keys lacking exactly that scope (and
    admin)."""
    out: dict[str, str] = {}
    with db.write() as s:
        for scope in SCOPES:
            out[scope] = keys.create(s, name=f"k-{scope}", scopes=[scope])[1]
            others = [x for x in SCOPES if x not in (scope, "admin")]
            out[f"all-but-{scope}"] = keys.create(s, name=f"nb-{scope}", scopes=others)[1]
    return out


@pytest.fixture
def make_api(db: Database, tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """Build an :class:`Api` with settings overrides (``decode_workers`` default 0)."""
    made: list[TestClient] = []

    def build(*, sample: bool = True, wait: bool = True, app_kwargs: dict[str, Any] | None = None,
              **overrides: Any) -> Api:
        overrides.setdefault("decode_workers", 0)
        settings = load_settings(environ={}, home=tmp_path / "home", **overrides)
        if sample:
            with db.write() as s:
                create_sample_bank(s)
        api_keys = make_keys(db)
        app = create_app(settings, db=db, **(app_kwargs or {}))
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        made.append(client)
        api = Api(client, settings, db, api_keys)
        if wait:
            api.wait_ready()
        return api

    yield build
    for c in made:
        c.__exit__(None, None, None)


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """The default API: sample bank, in-process decoding."""
    return make_api()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``bastion serve`` in a subprocess on 127.0.0.1 (stopped by :meth:`stop`)."""

    def __init__(self, home: Path, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.home = home
        full_env = {**os.environ, "BASTION_HOME": str(home), **(env or {})}
        self.stderr_path = home.parent / f"serve-{self.port}.err"
        home.mkdir(parents=True, exist_ok=True)
        self._err = open(self.stderr_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bastion.cli.main", "serve", "--port", str(self.port),
             *args],
            env=full_env, stdout=subprocess.DEVNULL, stderr=self._err, cwd=home.parent,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait until ``/readyz`` answers 200 (fails if the process died)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.stderr()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve never became ready: {self.stderr()}")

    def stderr(self) -> str:
        """What the server wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        """Terminate the server and wait for it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
