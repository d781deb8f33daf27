"""Who is asking: the signed-in user of a UI request, role checks, CSRF checks, and a
per-address sign-in rate limit.

The session cookie (``bastion_session``) is HttpOnly, SameSite=Strict, Secure (unless
``review.secure_cookies`` is off for plain-HTTP tests), scoped to ``/ui``. Every form
carries the session's CSRF token, compared in constant time; a request without a live
session gets the sign-in page (GET) or 401 (other methods).
"""

from __future__ import annotations

import hmac
import time
from collections import deque
from dataclasses import dataclass

from bastion.errors import BastionError, PolicyDenied

COOKIE = "bastion_session"
LOGIN_COOKIE = "bastion_login"


class NotSignedIn(BastionError):
    """The UI request has no live session (the UI redirects to the sign-in page)."""

    code = "not-signed-in"


class CsrfRefused(PolicyDenied):
    """A UI form was posted without the session's CSRF token."""

    code = "csrf-refused"


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in person of one request: user id, name, role, preview blur, and the
    session's id, CSRF token and exposure counters."""

    user_id: int
    name: str
    role: str
    blur: int
    session_id: int
    csrf: str
    reveals: int
    review_seconds: int

    @property
    def sees_media(self) -> bool:
        """Reviewers and admins see (blurred) media; auditors never do."""
        return self.role in ("reviewer", "admin")

    @property
    def decides(self) -> bool:
        """Only reviewers decide cases."""
        return self.role == "reviewer"

    @property
    def actor(self) -> str:
        """Audit actor: ``user:<id>``."""
        return f"user:{self.user_id}"


def require_role(viewer: Viewer, *roles: str) -> None:
    """Raise :class:`PolicyDenied` unless ``viewer`` has one of ``roles``."""
    if viewer.role not in roles:
        raise PolicyDenied(f"this page needs the role {' or '.join(roles)}")


def check_csrf(viewer: Viewer, token: object) -> None:
    """Raise :class:`CsrfRefused` unless ``token`` is the session's CSRF token."""
    if not isinstance(token, str) or not hmac.compare_digest(token.encode(),
                                                             viewer.csrf.encode()):
        raise CsrfRefused("the form's CSRF token is missing or wrong; reload the page")


class LoginLimiter:
    """At most ``per_minute`` sign-in attempts per client address in any 60 s window
    (per process; addresses kept: at most 10,000)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = {}

    def allow(self, address: str) -> bool:
        """Record an attempt from ``address``; False when over the limit."""
        now = time.monotonic()
        q = self._hits.setdefault(address, deque())
        while q and now - q[0] > 60.0:
            q.popleft()
        if len(q) >= self.per_minute:
            return False
        q.append(now)
        if len(self._hits) > 10_000:
            self._hits.pop(next(iter(self._hits)))
        return True
