"""Sending problem responses from ASGI middleware (before any route runs)."""

from __future__ import annotations

from typing import Any

from starlette.types import Send

from bastion.api.problems import PROBLEM_JSON, encode


async def send_problem(
    send: Send, status: int, body: dict[str, Any], *, headers: dict[str, str] | None = None,
    close: bool = False,
) -> None:
    """Send a complete ``application/problem+json`` response. ``close`` adds
    ``Connection: close`` (the request body was not read)."""
    payload = encode(body)
    raw = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
    ]
    for k, v in (headers or {}).items():
        raw.append((k.lower().encode("latin-1"), v.encode("latin-1")))
    if close:
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
