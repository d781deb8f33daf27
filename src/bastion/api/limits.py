"""Request limits: body size (413) and per-key request rate (429).

:class:`BodyLimitMiddleware` refuses a body over its limit from ``Content-Length`` before
reading it, and otherwise counts bytes while the body streams in (chunked uploads),
raising :class:`~bastion.api.problems.PayloadTooLarge` the moment the count passes the
limit: nothing is ever buffered whole to decide. Multipart bodies (uploads) may be
``api_max_upload_bytes`` plus :data:`FORM_OVERHEAD_BYTES` for the text fields; every
other body at most :data:`MAX_JSON_BYTES`.

:class:`RateLimiter` is a token bucket per API key (``api_rate_per_s`` tokens a second,
``api_rate_burst`` at most), in this process's memory: with N API processes a key may
make up to N times the rate. Over the limit: 429 with ``Retry-After``.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.api.problems import PayloadTooLarge, problem_body, problem_type_of
from bastion.api.respond import send_problem

#: Largest non-multipart body (JSON), bytes: 1,000 signals are about 150 KB; a hash-only
#: video of 100,000 frames about 10 MB.
MAX_JSON_BYTES = 16 * 1024 * 1024
#: Room for the text fields of a multipart upload besides the file, bytes.
FORM_OVERHEAD_BYTES = 1024 * 1024
#: Keys whose buckets are kept (least recently used dropped past this).
MAX_BUCKETS = 100_000


class BodyLimitMiddleware:
    """ASGI middleware enforcing the body limits (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, max_upload_bytes: int) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes

    def limit_for(self, scope: Scope) -> int:
        """The body limit for this request, bytes."""
        for name, value in scope.get("headers", ()):
            if name == b"content-type" and value.lower().startswith(b"multipart/"):
                return self.max_upload_bytes + FORM_OVERHEAD_BYTES
        return MAX_JSON_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    exc = PayloadTooLarge(
                        f"request body of {declared} bytes is over the limit of {limit}"
                    )
                    pt = problem_type_of(exc)
                    await send_problem(
                        send, pt.status, problem_body(pt, exc.message, scope.get("path")),
                        close=True,
                    )
                    return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
            return message

        await self.app(scope, counting_receive, send)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets per key id. ``rate_per_s`` 0 disables limiting."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self._buckets: OrderedDict[int, _Bucket] = OrderedDict()

    def take(self, key_id: int, now: float | None = None) -> int:
        """Take one token for ``key_id``: 0 if allowed, else the seconds to wait (>= 1).
        Called from the event loop only (no lock needed)."""
        if self.rate <= 0:
            return 0
        t = time.monotonic() if now is None else now
        b = self._buckets.get(key_id)
        if b is None:
            b = self._buckets[key_id] = _Bucket(self.burst, t)
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key_id)
            b.tokens = min(self.burst, b.tokens + (t - b.at) * self.rate)
            b.at = t
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - b.tokens) / self.rate))
