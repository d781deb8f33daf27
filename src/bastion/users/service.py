"""The users service: accounts with roles, Argon2id passwords, sign-in with lock-out, and
sessions.

Roles: ``reviewer`` decides cases (and sees media, blurred by default); ``auditor`` reads
cases and the audit log but never media; ``admin`` manages users, banks, keys and policy.

Passwords are hashed with Argon2id (RFC 9106; ``argon2-cffi``'s defaults: 3 passes over
64 MiB, 4 lanes) and never stored or logged. :func:`sign_in` counts failures; after
``review.max_failed_logins`` failures in a row the account is locked for
``review.lockout_minutes`` (even the right password is refused meanwhile). Every attempt is
audited with opaque ids only (``user:<id>``, or ``unknown`` for a name that does not exist).
Sign-in returns a result rather than raising, so that the caller commits the failure count.

A session is a random 256-bit token (the cookie's value) of which only the SHA-256 is
stored, with a CSRF token for forms, an expiry (``review.session_hours``) and counters of
what its reviewer was exposed to (reveals, seconds in review).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bastion.config import Settings
from bastion.errors import Conflict, InvalidInput, NotFound
from bastion.store.audit import record_audit_event
from bastion.store.models_review import User, UserSession
from bastion.store.types import utcnow

Role = Literal["admin", "reviewer", "auditor"]
ROLES: tuple[str, ...] = ("admin", "reviewer", "auditor")
#: Shortest and longest password accepted, characters.
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")

_hasher = PasswordHasher()
#: Verified against when the name is unknown, so that timing does not reveal names.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True, slots=True)
class UserRead:
    """A user as adapters see it (never the password hash)."""

    id: int
    name: str
    role: str
    created_at: datetime
    disabled: bool
    locked_until: datetime | None
    blur: int

    @classmethod
    def of(cls, u: User) -> UserRead:
        """From a stored row."""
        return cls(u.id, u.name, u.role, u.created_at, u.disabled_at is not None,
                   u.locked_until, u.blur)


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidInput(f"a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} "
                           "characters")


def create(session: Session, *, name: str, role: str, password: str, actor: str,
           blur: int = 24) -> UserRead:
    """Create a user. Raises :class:`InvalidInput` (name: letters, digits, ``._@-``, up to
    100; role; password length), :class:`Conflict` when the name exists."""
    if not _NAME_RE.match(name):
        raise InvalidInput("a user name is 1-100 letters, digits and . _ @ - "
                           "(starting with a letter or digit)")
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    _check_password(password)
    if session.execute(select(User.id).where(User.name == name)).first():
        raise Conflict(f"user {name!r} exists already")
    user = User(name=name, role=role, password_hash=_hasher.hash(password),
                created_at=utcnow(), failed_logins=0, blur=blur)
    session.add(user)
    session.flush()
    record_audit_event(session, actor=actor, action="user.create", object_type="user",
                       object_id=str(user.id), detail={"role": role})
    return UserRead.of(user)


def get_by_name(session: Session, name: str) -> User:
    """The user called ``name``. Raises :class:`NotFound`."""
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user {name!r}")
    return user


def get_all(session: Session) -> list[UserRead]:
    """Every user, by id."""
    return [UserRead.of(u) for u in session.execute(select(User).order_by(User.id)).scalars()]


def set_password(session: Session, *, name: str, password: str, actor: str) -> None:
    """Replace a user's password, unlock the account and end its sessions."""
    _check_password(password)
    user = get_by_name(session, name)
    user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    _end_all(session, user.id)
    record_audit_event(session, actor=actor, action="user.set_password", object_type="user",
                       object_id=str(user.id))


def set_disabled(session: Session, *, name: str, disabled: bool, actor: str) -> None:
    """Disable (ending every session) or re-enable a user."""
    user = get_by_name(session, name)
    user.disabled_at = utcnow() if disabled else None
    if disabled:
        _end_all(session, user.id)
    record_audit_event(session, actor=actor, action="user.disable" if disabled else
                       "user.enable", object_type="user", object_id=str(user.id))


def set_blur(session: Session, *, user_id: int, blur: int) -> None:
    """A reviewer's preview blur radius (4-64 pixels of a 512-pixel preview)."""
    if not 4 <= blur <= 64:
        raise InvalidInput("blur is between 4 and 64")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    user.blur = blur


@dataclass(frozen=True, slots=True)
class SignIn:
    """Outcome of :func:`sign_in`: ``user`` when it succeeded, else ``reason``
    (``invalid`` or ``locked``; both shown to the person as one message)."""

    user: UserRead | None
    reason: str | None = None


def sign_in(session: Session, *, name: str, password: str, settings: Settings,
            now: datetime | None = None, request_id: str | None = None) -> SignIn:
    """Check a name and password (see the module docstring). Commit the session even
    when it fails: the failure count and the audit event must persist."""
    at = now or utcnow()
    user = session.execute(
        select(User).where(User.name == name[:100]).with_for_update()).scalar_one_or_none()
    if user is None or user.disabled_at is not None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password[:MAX_PASSWORD_CHARS])
        record_audit_event(session, actor="anonymous", action="user.login_failed",
                           object_type="user",
                           object_id="unknown" if user is None else str(user.id),
                           detail={"reason": "invalid"}, request_id=request_id)
        return SignIn(None, "invalid")
    if user.locked_until is not None and user.locked_until > at:
        record_audit_event(session, actor="anonymous", action="user.login_failed",
                           object_type="user", object_id=str(user.id),
                           detail={"reason": "locked"}, request_id=request_id)
        return SignIn(None, "locked")
    try:
        _hasher.verify(user.password_hash, password[:MAX_PASSWORD_CHARS])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        user.failed_logins += 1
        if user.failed_logins >= settings.review.max_failed_logins:
            user.locked_until = at + timedelta(minutes=settings.review.lockout_minutes)
            user.failed_logins = 0
        record_audit_event(session, actor="anonymous", action="user.login_failed",
                           object_type="user", object_id=str(user.id),
                           detail={"reason": "invalid"}, request_id=request_id)
        return SignIn(None, "invalid")
    user.failed_logins = 0
    user.locked_until = None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    record_audit_event(session, actor=f"user:{user.id}", action="user.login",
                       object_type="user", object_id=str(user.id), request_id=request_id)
    return SignIn(UserRead.of(user))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, *, user_id: int, settings: Settings,
                  now: datetime | None = None) -> tuple[str, UserSession]:
    """A new session: ``(token for the cookie, row)``; only the token's SHA-256 is kept."""
    at = now or utcnow()
    token = secrets.token_urlsafe(32)
    row = UserSession(digest=_digest(token), user_id=user_id,
                      csrf_token=secrets.token_urlsafe(32), created_at=at, last_seen_at=at,
                      expires_at=at + timedelta(hours=settings.review.session_hours),
                      reveals=0, review_seconds=0)
    session.add(row)
    session.flush()
    return token, row


def find_session(session: Session, token: str | None,
                 now: datetime | None = None) -> tuple[UserSession, User] | None:
    """The live session of a cookie token and its user; None when unknown, expired,
    signed out, or its user is disabled."""
    if not token or len(token) > 200:
        return None
    at = now or utcnow()
    row = session.execute(
        select(UserSession).where(UserSession.digest == _digest(token))).scalar_one_or_none()
    if row is None or row.revoked_at is not None or row.expires_at <= at:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    return row, user


def end_session(session: Session, *, token: str, actor: str) -> None:
    """Sign out: the session's cookie is refused from now on."""
    found = find_session(session, token)
    if found is None:
        return
    found[0].revoked_at = utcnow()
    record_audit_event(session, actor=actor, action="user.logout", object_type="user",
                       object_id=str(found[1].id))


def _end_all(session: Session, user_id: int) -> None:
    for row in session.execute(select(UserSession).where(
            UserSession.user_id == user_id, UserSession.revoked_at.is_(None))).scalars():
        row.revoked_at = utcnow()


def touch(session: Session, *, session_id: int, reveals: int = 0,
          now: datetime | None = None) -> UserSession:
    """Count time in review (seconds since the last request, at most 5 minutes per gap,
    so an idle tab does not count) and ``reveals`` on a session; returns it."""
    at = now or utcnow()
    row = session.get(UserSession, session_id)
    if row is None:
        raise NotFound(f"no session {session_id}")
    gap = (at - row.last_seen_at).total_seconds()
    row.review_seconds += int(max(0.0, min(gap, 300.0)))
    row.reveals += reveals
    row.last_seen_at = at
    return row


def exposure_totals(session: Session) -> list[dict[str, int | str]]:
    """Per reviewer: ``{"user_id", "name", "reveals", "review_minutes", "sessions"}``
    (never per item), for admins."""
    q = (select(User.id, User.name, func.coalesce(func.sum(UserSession.reveals), 0),
                func.coalesce(func.sum(UserSession.review_seconds), 0),
                func.count(UserSession.id))
         .join(UserSession, UserSession.user_id == User.id, isouter=True)
         .group_by(User.id, User.name).order_by(User.id))
    return [{"user_id": uid, "name": name, "reveals": int(r), "review_minutes": int(s) // 60,
             "sessions": int(n)} for uid, name, r, s, n in session.execute(q)]
