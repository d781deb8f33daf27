"""Authentication and authorisation of every request, before any route runs.

:class:`AuthMiddleware` (pure ASGI, so that no body parsing or validation can answer
before it):

1. paths in :data:`PUBLIC_PATHS`, and the static files under :data:`PUBLIC_PREFIXES`
   (the API reference page's Swagger UI), pass without credentials;
2. every other request needs ``Authorization: Bearer <API key>``: missing, unknown,
   expired or revoked -> 401 (``WWW-Authenticate: Bearer``);
3. the route's required scope (declared with :func:`requires`, shown in the OpenAPI
   document as ``x-required-scope``; a route that declares none requires ``admin``: fail
   closed) must be granted by the key -> else 403; ``/metrics`` also accepts the separate
   ``metrics_token``;
4. the key's rate limit -> else 429;
5. the key is put in ``request.state.api_key`` for the route (audit actor).

Unknown paths need a valid key too (then 404), so the API does not reveal which paths
exist to anonymous callers.

Public paths, and why: ``/healthz`` and ``/readyz`` (DESIGN.md: health checks are public);
``/openapi.json`` and ``/docs`` (the API's description, the same for every deployment of
this version and holding no data: static assets in DESIGN.md's sense; a browser cannot
send a Bearer header to read them). ``/ui`` sign-in and static assets come with the review
UI (issue 5).

Key lookups are cached in memory for :data:`KEY_CACHE_TTL_S` seconds (one indexed query
per key per TTL, not per request): an expiry or revocation takes effect within that time
in every process.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

from anyio import to_thread
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.api.limits import RateLimiter
from bastion.api.problems import (
    Forbidden,
    RateLimited,
    Unauthenticated,
    error_problem,
)
from bastion.api.respond import send_problem
from bastion.apikeys import service as keys
from bastion.apikeys.scopes import ADMIN
from bastion.apikeys.service import ApiKeyRecord
from bastion.errors import BastionError

#: Paths served without credentials (see the module docstring).
PUBLIC_PATHS: Final = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs"})
#: Path prefixes that pass without credentials: the API reference page's static files.
PUBLIC_PREFIXES: Final = ("/docs/assets/",)

#: Seconds a key lookup (hit or miss of a well-formed key) is cached.
KEY_CACHE_TTL_S = 5.0
#: Keys cached at most.
KEY_CACHE_SIZE = 10_000

#: The OpenAPI extension naming a route's scope.
SCOPE_EXTENSION: Final = "x-required-scope"
#: The OpenAPI extension marking a route that the metrics token may read.
METRICS_TOKEN_EXTENSION: Final = "x-metrics-token"


def requires(scope: str, *, metrics_token: bool = False) -> dict[str, Any]:
    """``openapi_extra`` for a route that needs ``scope`` (and optionally accepts the
    metrics token)::

        @router.get("/v1/banks", openapi_extra=requires("banks:read"))
    """
    extra: dict[str, Any] = {SCOPE_EXTENSION: scope}
    if metrics_token:
        extra[METRICS_TOKEN_EXTENSION] = True
    return extra


def flat_routes(routes: list[Any]) -> list[Any]:
    """Every route, with included routers opened up (FastAPI >= 0.16x keeps an included
    router as one entry holding ``original_router``). Bastion includes routers without a
    path prefix, so their routes' paths are the app's."""
    out: list[Any] = []
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            out.extend(flat_routes(list(inner.routes)))
        else:
            out.append(r)
    return out


def route_scope(route: Any) -> tuple[str, bool]:
    """``(required scope, accepts metrics token)`` of a route (``admin`` if undeclared)."""
    extra = getattr(route, "openapi_extra", None) or {}
    return str(extra.get(SCOPE_EXTENSION, ADMIN)), bool(extra.get(METRICS_TOKEN_EXTENSION))


class KeyCache:
    """Looks keys up in the store through ``lookup`` (a blocking function run in a worker
    thread), caching results for :data:`KEY_CACHE_TTL_S` seconds."""

    def __init__(self, lookup: Callable[[str], ApiKeyRecord | None]) -> None:
        self._lookup = lookup
        self._cache: OrderedDict[str, tuple[float, ApiKeyRecord | None]] = OrderedDict()

    async def get(self, key: str) -> ApiKeyRecord | None:
        """The key's record (any state) or None."""
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < KEY_CACHE_TTL_S:
            return hit[1]
        record = await to_thread.run_sync(self._lookup, key)
        self._cache[key] = (now, record)
        self._cache.move_to_end(key)
        while len(self._cache) > KEY_CACHE_SIZE:
            self._cache.popitem(last=False)
        return record

    def clear(self) -> None:
        """Forget every cached lookup."""
        self._cache.clear()


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, or None."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            try:
                text = bytes(value).decode("ascii")
            except UnicodeDecodeError:
                return None
            kind, _, token = text.strip().partition(" ")
            if kind.lower() == "bearer" and token.strip():
                return str(token.strip())
            return None
    return None


class AuthMiddleware:
    """ASGI middleware implementing the module docstring's rules. ``routes`` returns the
    app's routes (resolved per request, so routes added later are covered)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Callable[[], list[Any]],
        key_cache: KeyCache,
        limiter: RateLimiter,
        metrics_token: str | None,
    ) -> None:
        self.app = app
        self.routes = routes
        self.key_cache = key_cache
        self.limiter = limiter
        self.metrics_token = metrics_token

    def _required(self, scope: Scope) -> tuple[str | None, bool]:
        """The scope of the route that will serve this request; None when no route does
        (404, or 405 for a known path with another method): any valid key then."""
        for route in self.routes():
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return route_scope(route)
        return None, False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        try:
            key = await self._authorise(scope)
        except BastionError as exc:
            status, body, headers = error_problem(exc, scope.get("path"))
            await send_problem(send, status, body, headers=headers)
            return
        scope.setdefault("state", {})["api_key"] = key
        await self.app(scope, receive, send)

    async def _authorise(self, scope: Scope) -> ApiKeyRecord | None:
        token = bearer_token(scope)
        if token is None:
            raise Unauthenticated("an API key is required: send Authorization: Bearer <key>")
        required, metrics_ok = self._required(scope)
        if (
            metrics_ok
            and self.metrics_token is not None
            and hmac.compare_digest(token.encode(), self.metrics_token.encode())
        ):
            return None
        record = await self.key_cache.get(token) if keys.looks_like_key(token) else None
        if record is None or not record.active():
            raise Unauthenticated("unknown, expired or revoked API key")
        if required is not None and not record.allows(required):
            raise Forbidden(f"this API key lacks the scope {required!r}")
        wait = self.limiter.take(record.id)
        if wait:
            raise RateLimited(f"rate limit of this API key exceeded; retry in {wait} s", wait)
        return record
