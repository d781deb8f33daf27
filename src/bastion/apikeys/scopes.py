"""The scopes an API key may hold (DESIGN.md "Routes") and what each grants.

============== ====================================================================
scope          grants
============== ====================================================================
content:submit ``POST /v1/content``, ``POST /v1/content:batch``, ``POST /v1/hash``
content:read   ``GET /v1/content/{content_id}``, ``GET /v1/retrohunt``
match          ``POST /v1/match``
banks:read     ``GET /v1/banks``, one bank, its entries
banks:write    creating, changing and deleting banks and entries
banks:export   ``GET /v1/banks/{name}/export``
admin          everything, ``/metrics`` included
============== ====================================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from bastion.errors import InvalidInput

SCOPES: Final = (
    "content:submit",
    "content:read",
    "match",
    "banks:read",
    "banks:write",
    "banks:export",
    "admin",
)

ADMIN: Final = "admin"


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """Validate scope names (case ignored, duplicates dropped); returns them in
    :data:`SCOPES` order. Raises :class:`InvalidInput` for an unknown scope or none."""
    wanted = {s.strip().lower() for s in scopes if s.strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise InvalidInput(
            f"unknown scope(s) {', '.join(unknown)} (known: {', '.join(SCOPES)})"
        )
    if not wanted:
        raise InvalidInput(f"give at least one scope (known: {', '.join(SCOPES)})")
    return [s for s in SCOPES if s in wanted]


def grants(held: Iterable[str], required: str) -> bool:
    """True if scopes ``held`` allow what ``required`` guards (``admin`` allows all)."""
    h = set(held)
    return ADMIN in h or required in h
