"""Value types of the trafficking domain: an ad, a contact found in it, an indicator, a result.

Shapes (issue 8; one vocabulary for CLI JSON, API and exports):

- contact: ``{"kind": "phone"|"email"|"handle"|"url", "value": ..., "raw": ..., "span": [s, e],
  "disguised": bool}``; ``value`` is E.164 for phones (``+12025550143``), lower-case
  ``local@domain`` for e-mail, ``platform:name`` (or ``@name`` with no named platform) for
  handles, the found URL for URLs.
- indicator: ``{"id", "span": [s, e], "weight", "source", "evidence", "category", "matched"}``.
- spans are ``[start, end)`` in Unicode code points of the field they were found in (``text``
  unless ``field`` says ``title``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from bastion.errors import InvalidInput, LimitExceeded
from bastion.signals.base import parse_hex

ContactKind = Literal["phone", "email", "handle", "url"]
Field = Literal["text", "title"]

#: Code points per ``text`` (and per ``title``); longer ads are refused with LimitExceeded.
MAX_AD_CHARS = 65_536
#: PDQ hashes per ad (photos beyond this are refused).
MAX_AD_PHOTOS = 64
#: Characters in an ``ad_id``.
MAX_AD_ID_CHARS = 256


@dataclass(frozen=True, slots=True)
class Contact:
    """A way to reach the advertiser, found in an ad's text.

    ``span`` is ``(start, end)`` in code points of the field's original text, end exclusive;
    ``raw == text[start:end]``. ``disguised`` is True when the contact was written to evade
    extraction (spelled-out or look-alike digits, unusual separators, "at"/"dot" e-mail).
    """

    kind: ContactKind
    value: str
    raw: str
    span: tuple[int, int]
    disguised: bool = False
    field: Field = "text"

    def to_json(self) -> dict[str, Any]:
        """The issue-8 contact object (``field`` only when it is not ``text``)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "value": self.value,
            "raw": self.raw,
            "span": [self.span[0], self.span[1]],
            "disguised": self.disguised,
        }
        if self.field != "text":
            out["field"] = self.field
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Contact:
        """Inverse of :meth:`to_json`. Raises InvalidInput on a malformed object."""
        try:
            span = obj["span"]
            return cls(
                kind=obj["kind"],
                value=str(obj["value"]),
                raw=str(obj["raw"]),
                span=(int(span[0]), int(span[1])),
                disguised=bool(obj.get("disguised", False)),
                field=obj.get("field", "text"),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InvalidInput(f"malformed contact: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Indicator:
    """One lexicon entry found in an ad, with where, how much and why.

    ``weight`` is the entry's log-odds weight (``<= 0`` for phrases found not predictive);
    ``source`` is the citation; ``evidence`` the evidence level (see ``lexicon/README.md``).
    """

    id: str
    span: tuple[int, int]
    weight: float
    source: str
    evidence: str
    category: str
    matched: str
    field: Field = "text"

    def to_json(self) -> dict[str, Any]:
        """The issue-8 indicator object (``field`` only when it is not ``text``)."""
        out: dict[str, Any] = {
            "id": self.id,
            "span": [self.span[0], self.span[1]],
            "weight": self.weight,
            "source": self.source,
            "evidence": self.evidence,
            "category": self.category,
            "matched": self.matched,
        }
        if self.field != "text":
            out["field"] = self.field
        return out


@dataclass(frozen=True, slots=True)
class Ad:
    """One classified ad as a platform submits it.

    ``text`` is the body; ``location`` free text (``"Houston, TX"``); ``posted_at`` a
    timezone-aware time (naive input is read as UTC); ``pdq`` the 64-hex PDQ hashes of its
    photos (computed by the caller, e.g. :func:`bastion.signals.pdq.pdq_hash`).
    """

    ad_id: str
    text: str
    title: str | None = None
    location: str | None = None
    posted_at: datetime | None = None
    pdq: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.ad_id, str) or not self.ad_id.strip():
            raise InvalidInput("ad_id must be a non-empty string")
        if len(self.ad_id) > MAX_AD_ID_CHARS:
            raise LimitExceeded(f"ad_id longer than {MAX_AD_ID_CHARS} characters")
        if not isinstance(self.text, str):
            raise InvalidInput("text must be a string")
        for name, val in (("text", self.text), ("title", self.title)):
            if val is not None and len(val) > MAX_AD_CHARS:
                raise LimitExceeded(f"{name} longer than {MAX_AD_CHARS} code points")
        if len(self.pdq) > MAX_AD_PHOTOS:
            raise LimitExceeded(f"more than {MAX_AD_PHOTOS} photo hashes in one ad")

    @classmethod
    def from_json(cls, obj: Any) -> Ad:
        """Parse the ``bastion ads scan`` line object: ``ad_id``, ``text``, optional ``title``,
        ``location``, ``posted_at`` (RFC 3339), ``pdq`` (list of 64-hex). ``images`` (paths)
        are hashed by the caller, not here. Raises InvalidInput / LimitExceeded."""
        if not isinstance(obj, dict):
            raise InvalidInput("an ad must be a JSON object")
        ad_id = obj.get("ad_id")
        if isinstance(ad_id, int) and not isinstance(ad_id, bool):
            ad_id = str(ad_id)
        text = obj.get("text")
        if not isinstance(text, str):
            raise InvalidInput("ad has no string field 'text'")
        title = _opt_str(obj, "title")
        location = _opt_str(obj, "location")
        posted = obj.get("posted_at")
        posted_at = parse_time(posted) if posted is not None else None
        raw_pdq = obj.get("pdq", [])
        if not isinstance(raw_pdq, list) or len(raw_pdq) > MAX_AD_PHOTOS:
            raise InvalidInput(f"'pdq' must be a list of at most {MAX_AD_PHOTOS} hashes")
        pdq = tuple(parse_hex(h, bits=256, what="PDQ hash") for h in raw_pdq)
        return cls(
            ad_id=ad_id if isinstance(ad_id, str) else "",
            text=text,
            title=title,
            location=location,
            posted_at=posted_at,
            pdq=pdq,
        )

    def to_json(self) -> dict[str, Any]:
        """The input shape again (``posted_at`` as RFC 3339 UTC)."""
        out: dict[str, Any] = {"ad_id": self.ad_id, "text": self.text}
        if self.title is not None:
            out["title"] = self.title
        if self.location is not None:
            out["location"] = self.location
        if self.posted_at is not None:
            out["posted_at"] = format_time(self.posted_at)
        if self.pdq:
            out["pdq"] = list(self.pdq)
        return out


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    val = obj.get(key)
    if val is not None and not isinstance(val, str):
        raise InvalidInput(f"'{key}' must be a string")
    return val


def parse_time(value: Any) -> datetime:
    """Parse an RFC 3339 time (``2024-05-01T10:00:00Z``); naive times are UTC.

    Raises InvalidInput for anything else.
    """
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidInput("posted_at must be an RFC 3339 string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"posted_at is not RFC 3339: {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def format_time(dt: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix, seconds precision."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class AdResult:
    """Everything learned about one ad: its score in [0, 1], the indicators that explain it,
    its contacts, the lexicon version used, and (after linking) its network id."""

    ad_id: str
    score: float
    indicators: tuple[Indicator, ...]
    contacts: tuple[Contact, ...]
    lexicon_version: str
    network_id: str | None = None
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The ``bastion ads scan --json`` object."""
        out: dict[str, Any] = {
            "ad_id": self.ad_id,
            "score": self.score,
            "lexicon_version": self.lexicon_version,
            "indicators": [i.to_json() for i in self.indicators],
            "contacts": [c.to_json() for c in self.contacts],
            "network_id": self.network_id,
        }
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def logistic(x: float) -> float:
    """The logistic function 1 / (1 + e^-x), numerically safe for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
