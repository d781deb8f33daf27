"""Errors as RFC 9457 problem details (``application/problem+json``), from ONE table.

Every :class:`~bastion.errors.BastionError` subclass has an entry in :data:`PROBLEMS`:
its HTTP status and a stable ``type`` URI (``urn:bastion:problem:<code>``; URNs, because
the types are identifiers, not pages). ``tests/api/test_problems.py`` fails when a subclass
anywhere in Bastion lacks an entry. The API-only errors (authentication, rate limits,
request shape) are defined here as subclasses too, so the tree stays one tree::

    BastionError                       500 (never raised as such)
    ├── InvalidInput                   422 request or value invalid (names the field)
    │   ├── BadRequest                 400 malformed request (bad JSON, broken multipart)
    │   ├── FieldError                 422 ... with ``field``
    │   ├── SignalInputError           422 a submitted signal is malformed (``field``)
    │   ├── FetchRefused               422 URL fetching refused (disabled, address refused)
    │   └── LimitExceeded              413 over a byte or count limit
    │       └── PayloadTooLarge        413 request body over the byte limit
    ├── UnhashableContent              422 (the API reports it as a ``not_scanned`` verdict)
    ├── NotFound                       404
    ├── Conflict                       409
    ├── NotReady                       503 + Retry-After (indexes loading)
    │   └── SnapshotRequired           503 + Retry-After
    ├── PolicyDenied                   403
    │   └── Forbidden                  403 the key lacks the route's scope
    ├── Unauthenticated                401 + WWW-Authenticate: Bearer
    ├── RateLimited                    429 + Retry-After
    ├── FetchFailed                    502 the URL could not be fetched
    ├── EvidenceCorrupt                500 stored evidence failed its integrity check
    └── ConfigurationError             503 the service is misconfigured

Problem bodies carry ``type``, ``title``, ``status``, ``detail`` (the error's message,
written for operators; never a stack trace), ``instance`` (the request path) and, for
validation errors, ``errors``: ``[{"field": "signals[0].value", "detail": "..."}]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bastion.errors import (
    BastionError,
    ConfigurationError,
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    NotReady,
    PolicyDenied,
    UnhashableContent,
)

PROBLEM_JSON = "application/problem+json"

#: Seconds clients are told to wait (``Retry-After``) while indexes load.
NOT_READY_RETRY_S = 2


class BadRequest(InvalidInput):
    """The request is malformed: unparseable JSON or multipart, a missing boundary."""

    code = "bad-request"


class FieldError(InvalidInput):
    """One request field is invalid; ``field`` names it (``fetch_url``, ``file``)."""

    code = "invalid-field"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class PayloadTooLarge(LimitExceeded):
    """The request body (or its file) is over the byte limit (decided from
    ``Content-Length`` or while streaming, never after buffering everything)."""

    code = "payload-too-large"


class Unauthenticated(BastionError):
    """No API key, or an unknown, expired or revoked one."""

    code = "unauthenticated"


class Forbidden(PolicyDenied):
    """The API key is valid but lacks the scope the route requires."""

    code = "forbidden"


class RateLimited(BastionError):
    """Too many requests for this API key; ``retry_after`` in seconds (>= 1)."""

    code = "rate-limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


@dataclass(frozen=True, slots=True)
class ProblemType:
    """An error's HTTP status, stable ``type`` URI and short title."""

    status: int
    code: str
    title: str

    @property
    def type(self) -> str:
        """``urn:bastion:problem:<code>``."""
        return f"urn:bastion:problem:{self.code}"


def _table() -> dict[type[BastionError], ProblemType]:
    from bastion.actions.webhooks import DeliveryFailed
    from bastion.api.fetch import FetchFailed, FetchRefused
    from bastion.content.signal_input import SignalInputError
    from bastion.evidence.platform_media import MediaUnavailable
    from bastion.evidence.vault import EvidenceCorrupt
    from bastion.reporting.client import CyberTiplineRejected, CyberTiplineUnavailable
    from bastion.reporting.files import FileUnavailable
    from bastion.reporting.xml import ReportInvalid
    from bastion.store.change_log import SnapshotRequired
    from bastion.web.guard import CsrfRefused, NotSignedIn

    return {
        BastionError: ProblemType(500, "error", "Internal error"),
        InvalidInput: ProblemType(422, "invalid-input", "Invalid input"),
        BadRequest: ProblemType(400, "bad-request", "Malformed request"),
        FieldError: ProblemType(422, "invalid-field", "Invalid field"),
        SignalInputError: ProblemType(422, "invalid-signal", "Invalid signal"),
        FetchRefused: ProblemType(422, "fetch-refused", "URL fetch refused"),
        LimitExceeded: ProblemType(413, "limit-exceeded", "Over a limit"),
        PayloadTooLarge: ProblemType(413, "payload-too-large", "Payload too large"),
        UnhashableContent: ProblemType(422, "unhashable-content", "Content cannot be hashed"),
        NotFound: ProblemType(404, "not-found", "Not found"),
        Conflict: ProblemType(409, "conflict", "Conflict"),
        NotReady: ProblemType(503, "not-ready", "Indexes are loading"),
        SnapshotRequired: ProblemType(503, "not-ready", "Indexes are loading"),
        PolicyDenied: ProblemType(403, "policy-denied", "Denied by policy"),
        Forbidden: ProblemType(403, "forbidden", "Missing scope"),
        Unauthenticated: ProblemType(401, "unauthenticated", "Authentication required"),
        RateLimited: ProblemType(429, "rate-limited", "Too many requests"),
        FetchFailed: ProblemType(502, "fetch-failed", "URL could not be fetched"),
        ConfigurationError: ProblemType(503, "configuration-error", "Service misconfigured"),
        EvidenceCorrupt: ProblemType(500, "evidence-corrupt", "Stored evidence failed a check"),
        NotSignedIn: ProblemType(401, "not-signed-in", "Sign in to the review UI"),
        MediaUnavailable: ProblemType(502, "media-unavailable", "Platform media unavailable"),
        CsrfRefused: ProblemType(403, "csrf-refused", "Form token missing or wrong"),
        DeliveryFailed: ProblemType(502, "delivery-failed", "Action delivery failed"),
        ReportInvalid: ProblemType(422, "report-invalid", "Report fails the schema"),
        CyberTiplineUnavailable: ProblemType(503, "cybertipline-unavailable",
                                             "CyberTipline unavailable"),
        CyberTiplineRejected: ProblemType(502, "cybertipline-rejected",
                                          "CyberTipline refused the request"),
        FileUnavailable: ProblemType(503, "file-unavailable", "Report file unavailable"),
    }


_PROBLEMS: dict[type[BastionError], ProblemType] | None = None


def problems() -> dict[type[BastionError], ProblemType]:
    """THE table: every BastionError subclass -> its :class:`ProblemType`."""
    global _PROBLEMS
    if _PROBLEMS is None:
        _PROBLEMS = _table()
    return _PROBLEMS


#: Problems that are not Bastion errors: HTTP-level refusals by the framework.
HTTP_PROBLEMS: dict[int, ProblemType] = {
    400: ProblemType(400, "bad-request", "Malformed request"),
    404: ProblemType(404, "not-found", "Not found"),
    405: ProblemType(405, "method-not-allowed", "Method not allowed"),
    413: ProblemType(413, "payload-too-large", "Payload too large"),
    415: ProblemType(415, "unsupported-media-type", "Unsupported media type"),
    422: ProblemType(422, "invalid-input", "Invalid input"),
    500: ProblemType(500, "internal-error", "Internal error"),
}


def problem_type_of(exc: BastionError) -> ProblemType:
    """The entry of ``exc``'s class, or of its nearest listed base class."""
    table = problems()
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return table[BastionError]


def problem_body(
    pt: ProblemType, detail: str, instance: str | None, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The problem+json object."""
    body: dict[str, Any] = {
        "type": pt.type, "title": pt.title, "status": pt.status, "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return body


def error_problem(
    exc: BastionError, instance: str | None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``(status, body, extra headers)`` for a Bastion error."""
    pt = problem_type_of(exc)
    headers: dict[str, str] = {}
    errors: list[dict[str, Any]] | None = None
    field = getattr(exc, "field", None)
    if isinstance(field, str):
        errors = [{"field": field, "detail": exc.message}]
    if isinstance(exc, NotReady) or pt.code == "configuration-error":
        headers["Retry-After"] = str(NOT_READY_RETRY_S)
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="bastion"'
    return pt.status, problem_body(pt, exc.message, instance, errors), headers


def encode(body: dict[str, Any]) -> bytes:
    """The problem body as UTF-8 JSON bytes."""
    return json.dumps(body, separators=(",", ":")).encode()
