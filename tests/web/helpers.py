"""Helpers for the review UI tests: sign in through the form."""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r'name="(?:login_token|csrf)" value="([^"]+)"')


def form_token(html: str) -> str:
    """The login or CSRF token of the first form in ``html``."""
    m = _TOKEN.search(html)
    assert m, "no token in the page"
    return m.group(1)


def sign_in(client: Any, name: str, password: str) -> Any:
    """Sign ``client`` in through the sign-in form; returns the POST's response."""
    page = client.get("/ui/sign-in")
    return client.post("/ui/sign-in", data={"login_token": form_token(page.text),
                                            "name": name, "password": password},
                       follow_redirects=False)


PW = "a long enough password"


class UiClients:
    """Test clients of one app (``self.app``, set by the subclass), each entered (so the
    app's matcher and background threads run) and left again by :meth:`close`."""

    app: Any
    clients: list[Any]

    def client(self, name: str | None = None, password: str = PW) -> Any:
        """A new client, signed in as ``name`` unless None."""
        from fastapi.testclient import TestClient

        if not hasattr(self, "clients"):
            self.clients = []
        c = TestClient(self.app, raise_server_exceptions=False)
        c.__enter__()
        self.clients.append(c)
        if name is not None:
            r = sign_in(c, name, password)
            assert r.status_code == 303, r.text
        return c

    @staticmethod
    def wait_ready(c: Any, timeout_s: float = 20.0) -> None:
        """Wait for ``/readyz`` (the API answers 503 while its indexes load)."""
        import time

        deadline = time.monotonic() + timeout_s
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the API never became ready"
            time.sleep(0.05)

    def close(self) -> None:
        """Leave every client made (stops the app's matcher and background threads)."""
        for c in getattr(self, "clients", []):
            c.__exit__(None, None, None)
        self.clients = []
