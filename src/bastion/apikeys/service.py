"""API keys: create (the key is shown once), list, expire, revoke, authenticate.

A key is ``bst_`` followed by 43 URL-safe characters (256 random bits from
:mod:`secrets`). Only its SHA-256 digest is stored: keys are long and random, so a fast
hash is as safe as a slow password hash here and keeps authentication at one indexed
lookup (a slow hash would cap the API's throughput). Listings show the key's first
12 characters (``prefix``) so operators can tell keys apart.

Plain functions with an explicit session; the caller owns the unit of work. Every change
is audited (``apikey.create``, ``apikey.expire``, ``apikey.revoke``). Errors:
:class:`~bastion.errors.InvalidInput`, :class:`~bastion.errors.NotFound`,
:class:`~bastion.errors.Conflict`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bastion.apikeys.scopes import check_scopes, grants
from bastion.errors import Conflict, InvalidInput, NotFound
from bastion.store.audit import record_audit_event
from bastion.store.models_api import ApiKey
from bastion.store.types import utcnow

#: What every key starts with (lets secret scanners recognise leaked keys).
KEY_PREFIX = "bst_"
#: Characters of a key shown in listings.
SHOWN_CHARS = 12
_KEY_RE = re.compile(r"^bst_[A-Za-z0-9_-]{43}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.@:-]{0,99}$")


def digest_of(key: str) -> str:
    """SHA-256 of the key string (64 lowercase hex)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_key(key: str) -> bool:
    """True if ``key`` has the shape of a Bastion API key (``bst_`` + 43 characters)."""
    return bool(_KEY_RE.match(key))


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as services see it (never the key itself)."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: ApiKey) -> ApiKeyRecord:
        """Build from an :class:`~bastion.store.models_api.ApiKey` row."""
        return cls(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            scopes=tuple(row.scopes or ()),
            created_at=row.created_at,
            created_by=row.created_by,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
        )

    def active(self, now: datetime | None = None) -> bool:
        """True unless revoked or past its expiry."""
        t = now or utcnow()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or t < self.expires_at

    def state(self, now: datetime | None = None) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.active(now) else "expired"

    def allows(self, scope: str) -> bool:
        """True if this key's scopes grant ``scope`` (``admin`` grants all)."""
        return grants(self.scopes, scope)

    @property
    def actor(self) -> str:
        """The audit actor for requests made with this key: ``api-key:<id>``."""
        return f"api-key:{self.id}"

    def to_json(self) -> dict[str, Any]:
        """``{"id", "name", "prefix", "scopes", "state", "created_at", ...}``."""
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "scopes": list(self.scopes),
            "state": self.state(),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
        }


def create(
    session: Session,
    *,
    name: str,
    scopes: Iterable[str],
    expires_at: datetime | None = None,
    actor: str = "system",
) -> tuple[ApiKeyRecord, str]:
    """Create a key; returns its record and the key itself (show it once, store it
    nowhere). ``expires_at`` must be aware and in the future. Raises
    :class:`InvalidInput` (name, scopes, expiry)."""
    name = name.strip()
    if not _NAME_RE.match(name):
        raise InvalidInput(
            "key name must be 1-100 letters, digits, spaces or _ . @ : -, starting with a "
            "letter or digit"
        )
    checked = check_scopes(scopes)
    now = utcnow()
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput("expiry time must carry a time zone")
        if expires_at <= now:
            raise InvalidInput("expiry time is in the past")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=name,
        prefix=key[:SHOWN_CHARS],
        digest=digest_of(key),
        scopes=checked,
        created_at=now,
        created_by=actor[:200],
        expires_at=expires_at,
        revoked_at=None,
    )
    session.add(row)
    session.flush()
    record_audit_event(
        session,
        actor=actor,
        action="apikey.create",
        object_type="api_key",
        object_id=str(row.id),
        detail={"scopes": checked},
    )
    return ApiKeyRecord.from_row(row), key


def count(session: Session) -> int:
    """How many keys exist (any state)."""
    return int(session.execute(select(func.count()).select_from(ApiKey)).scalar_one())


def get_all(session: Session) -> list[ApiKeyRecord]:
    """Every key, by id."""
    rows = session.execute(select(ApiKey).order_by(ApiKey.id)).scalars()
    return [ApiKeyRecord.from_row(r) for r in rows]


def _get_row(session: Session, key_id: int) -> ApiKey:
    row = session.get(ApiKey, key_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no API key with id {key_id}")
    return row


def expire(
    session: Session, *, key_id: int, at: datetime | None = None, actor: str = "system"
) -> ApiKeyRecord:
    """Set the key's expiry to ``at`` (aware; default now). Raises :class:`NotFound`,
    :class:`Conflict` (already revoked), :class:`InvalidInput` (naive time)."""
    row = _get_row(session, key_id)
    if row.revoked_at is not None:
        raise Conflict(f"API key {key_id} is revoked")
    when = at or utcnow()
    if when.tzinfo is None:
        raise InvalidInput("expiry time must carry a time zone")
    row.expires_at = when
    record_audit_event(
        session, actor=actor, action="apikey.expire", object_type="api_key",
        object_id=str(key_id), detail={"expires_at": when.isoformat()},
    )
    session.flush()
    return ApiKeyRecord.from_row(row)


def revoke(session: Session, *, key_id: int, actor: str = "system") -> ApiKeyRecord:
    """Revoke the key now (for good). Revoking twice is harmless. Raises :class:`NotFound`."""
    row = _get_row(session, key_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        record_audit_event(
            session, actor=actor, action="apikey.revoke", object_type="api_key",
            object_id=str(key_id),
        )
        session.flush()
    return ApiKeyRecord.from_row(row)


def find_by_key(session: Session, key: str) -> ApiKeyRecord | None:
    """The key record whose digest matches ``key`` (any state), or None. One indexed
    lookup; the digest comparison is repeated in constant time."""
    if not looks_like_key(key):
        return None
    d = digest_of(key)
    row = session.execute(select(ApiKey).where(ApiKey.digest == d)).scalar_one_or_none()
    if row is None or not hmac.compare_digest(row.digest, d):
        return None
    return ApiKeyRecord.from_row(row)
