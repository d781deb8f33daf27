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
