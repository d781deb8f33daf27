"""Platform webhooks: signed JSON requests that tell the platform to act.

Each action is POSTed as JSON to the endpoint the platform registered for its kind
(``Settings.webhook_urls``: ``{"takedown": "https://...", "*": "https://..."}``) with::

    Content-Type: application/json
    Idempotency-Key: <the action's key, the same on every attempt>
    Bastion-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The signature covers the timestamp and the exact body bytes. A receiver recomputes it with
the shared secret (``Settings.webhook_secret``), compares in constant time, and refuses a
timestamp outside its replay window (default 300 s either way). Verification, in any
Python (the README carries the same snippet)::

    import hashlib, hmac, time

    def verify(secret: bytes, header: str, body: bytes, window_s: int = 300) -> bool:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t, sig = parts["t"], parts["v1"]
        if abs(time.time() - int(t)) > window_s:
            return False
        mac = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(mac, sig)

A 2xx answer means delivered; anything else (or no answer within
``Settings.webhook_timeout_s``) is a failed attempt, retried by the outbox.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, Protocol

import httpx

from bastion.actions.outbox import Action
from bastion.config import Settings
from bastion.errors import BastionError

SIGNATURE_HEADER = "Bastion-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Seconds either side of the receiver's clock a signature's timestamp is accepted.
REPLAY_WINDOW_S = 300


class DeliveryFailed(BastionError):
    """One delivery attempt failed (no endpoint, network error, non-2xx answer); the
    message says why (never the payload). The outbox retries it, unless ``permanent``:
    a configuration error (no endpoint for the kind) that no retry cures, which the outbox
    records as ``blocked`` at once for the operator to fix."""

    code = "delivery-failed"

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Deliverer(Protocol):
    """Delivers one action; raises :class:`DeliveryFailed` when the attempt failed."""

    def deliver(self, action: Action) -> None:
        """Send ``action`` once."""


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``Bastion-Signature`` header value ``t=<timestamp>,v1=<64 hex>`` (HMAC-SHA256 over
    ``b"<timestamp>." + body``, as in Stripe-style webhook signing)."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes, header: str, body: bytes, *, window_s: int = REPLAY_WINDOW_S,
           now: float | None = None) -> bool:
    """True when ``header`` is a valid signature of ``body`` made within ``window_s`` seconds
    of ``now`` (default: the clock). Malformed headers are simply invalid."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t, sig = parts["t"], parts["v1"]
        ts = int(t)
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - ts) > window_s:
        return False
    mac = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, sig)


def webhook_body(action: Action) -> bytes:
    """The JSON body sent for ``action`` (compact, keys sorted)."""
    doc: dict[str, Any] = {
        "action_id": action.id,
        "kind": action.kind,
        "content_id": action.content_id,
        "user_id": action.user_id,
        "case_id": action.case_id,
        "idempotency_key": action.idempotency_key,
        "created_at": action.created_at.isoformat(),
        "attempt": action.attempts + 1,
        "payload": action.payload,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class WebhookDeliverer:
    """Delivers actions to ``Settings.webhook_urls`` with signed requests (see the module
    docstring). One pooled HTTP client; call :meth:`close` when done."""

    def __init__(self, settings: Settings, *, client: httpx.Client | None = None) -> None:
        self.urls = dict(settings.webhook_urls)
        self.secret = (None if settings.webhook_secret is None
                       else settings.webhook_secret.get_secret_value().encode())
        self.client = client or httpx.Client(timeout=settings.webhook_timeout_s,
                                             follow_redirects=False)

    def url_for(self, kind: str) -> str | None:
        """The endpoint for ``kind`` (or the ``*`` endpoint), or None."""
        return self.urls.get(kind) or self.urls.get("*")

    def deliver(self, action: Action) -> None:
        """POST ``action``; raises :class:`DeliveryFailed` unless the answer is 2xx."""
        url = self.url_for(action.kind)
        if url is None:
            raise DeliveryFailed(f"no webhook endpoint configured for {action.kind}: "
                                 "set webhook_urls", permanent=True)
        if self.secret is None:
            raise DeliveryFailed("webhook_secret is not set; requests would be unsigned",
                                 permanent=True)
        body = webhook_body(action)
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: action.idempotency_key,
            SIGNATURE_HEADER: sign(self.secret, body, int(time.time())),
        }
        try:
            r = self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{action.kind} webhook: {type(exc).__name__}: {exc}") from exc
        if not 200 <= r.status_code < 300:
            raise DeliveryFailed(f"{action.kind} webhook answered HTTP {r.status_code}")

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()
