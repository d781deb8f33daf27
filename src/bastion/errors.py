"""Bastion's exception tree.

Every error Bastion raises on purpose derives from :class:`BastionError`; adapters map
them to exit codes (CLI) or RFC 9457 problem responses (API) from one table each::

    BastionError
    ├── InvalidInput            a value from outside is malformed (bad hash, bad row, bad TOML)
    │   └── LimitExceeded       input over a configured limit (bytes, pixels, frames, rows)
    ├── UnhashableContent       bytes that cannot be decoded into the signal asked for
    ├── NotFound                a named object (bank, entry, case) does not exist
    ├── Conflict                the object exists already, or the state forbids the change
    ├── NotReady                indexes still loading: matching refuses rather than say no_match
    ├── PolicyDenied            the policy or a permission forbids the action
    └── ConfigurationError      settings are missing or invalid
"""

from __future__ import annotations


class BastionError(Exception):
    """Root of Bastion's errors. ``str(err)`` is a message fit for an operator."""

    #: Stable short code, used in API problem types and CLI output.
    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(BastionError):
    """A value from outside is malformed: a hash, a CSV row, a setting, a request field."""

    code = "invalid-input"


class LimitExceeded(InvalidInput):
    """Input over a configured limit (bytes per file, pixels, frames, rows per import)."""

    code = "limit-exceeded"


class UnhashableContent(BastionError):
    """Bytes that cannot be turned into the signal asked for (corrupt, truncated, wrong type).

    Carries ``reason``, a short stable phrase for the ``not_scanned`` status.
    """

    code = "unhashable-content"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFound(BastionError):
    """A named object (bank, entry, case, key) does not exist."""

    code = "not-found"


class Conflict(BastionError):
    """The object exists already, or its state forbids the change."""

    code = "conflict"


class NotReady(BastionError):
    """The service cannot answer yet: indexes are still loading (matching refuses instead of
    answering ``no_match``) or the database stayed busy; retry later (HTTP 503)."""

    code = "not-ready"


class PolicyDenied(BastionError):
    """The policy or a permission forbids the action."""

    code = "policy-denied"


class ConfigurationError(BastionError):
    """Settings are missing or invalid; the message names the setting."""

    code = "configuration-error"
