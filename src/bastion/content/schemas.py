"""Shapes of the content service: submitted metadata, and the verdict (DESIGN.md).

Verdict (API)::

    {"content_id": "...", "status": "match" | "no_match" | "not_scanned",
     "reason": "...",            # when not scanned, or matched although not decoded
     "media_type": "image", "signals": [...], "matches": [...],
     "decision": "block" | "hold" | "allow", "decision_rule": "...",
     "case_id": null, "actions": [], "submitted_at": "<RFC 3339 UTC>", "replayed": false}
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bastion.signals.base import parse_hex

#: Longest free ``text`` accepted, characters (an ad or a caption; kept only encrypted).
MAX_TEXT_CHARS = 100_000
#: Longest ad ``title``, characters (the ad analysis's own limit).
MAX_AD_FIELD_CHARS = 65_536
#: Most outbound ``links`` per item.
MAX_LINKS = 100
#: Longest URL accepted in ``published_url`` and ``links``, characters.
MAX_URL_CHARS = 2_048


class OriginalHashes(BaseModel):
    """MD5/SHA-1/SHA-256 of the file as the user uploaded it, before the platform
    transcoded it (reports need those). Lowercase hex; each optional."""

    model_config = ConfigDict(extra="forbid")

    md5: str | None = Field(default=None, description="32 hex characters")
    sha1: str | None = Field(default=None, description="40 hex characters")
    sha256: str | None = Field(default=None, description="64 hex characters")

    @field_validator("md5", "sha1", "sha256")
    @classmethod
    def _hex(cls, v: str | None, info: Any) -> str | None:
        if v is None:
            return None
        bits = {"md5": 128, "sha1": 160, "sha256": 256}[info.field_name]
        try:
            return parse_hex(v, bits=bits, what=info.field_name)
        except Exception as exc:
            raise ValueError(str(exc)) from None


class ContentMeta(BaseModel):
    """Metadata of one submitted item (everything but the content itself)."""

    model_config = ConfigDict(extra="forbid")

    content_id: str = Field(
        min_length=1, max_length=255, description="The platform's id of the item (idempotency key)"
    )
    user_id: str | None = Field(default=None, max_length=255)
    content_type: str | None = Field(
        default=None, max_length=100, description="A hint only; the type is sniffed from bytes"
    )
    uploaded_at: datetime | None = Field(default=None, description="RFC 3339 with a zone")
    ip: str | None = Field(default=None, max_length=64, description="Uploader's IP address")
    port: int | None = Field(default=None, ge=0, le=65535)
    published_url: str | None = Field(
        default=None, max_length=MAX_URL_CHARS, description="Where shown; never fetched"
    )
    original_hashes: OriginalHashes | None = None
    publicly_available: bool | None = Field(
        default=None,
        description="Whether the item was visible to the public on the platform (not only to "
        "chosen users); a CyberTipline report's publiclyAvailable",
    )
    text: str | None = Field(
        default=None, max_length=MAX_TEXT_CHARS,
        description="Caption or ad text; kept (encrypted) only when the item opens a case "
        "or matches"
    )
    links: list[str] = Field(default_factory=list, max_length=MAX_LINKS)
    title: str | None = Field(
        default=None, max_length=MAX_AD_FIELD_CHARS,
        description="Classified ad: its title (an ad field: the item is analysed as an ad)",
    )
    location: str | None = Field(
        default=None, max_length=256,
        description="Classified ad: where it is posted, e.g. 'Houston, TX' (an ad field)",
    )
    posted_at: datetime | None = Field(
        default=None, description="Classified ad: when it was posted, RFC 3339 (an ad field)"
    )

    @field_validator("content_id")
    @classmethod
    def _printable(cls, v: str) -> str:
        if not v.isprintable():
            raise ValueError("content_id must be printable text")
        return v

    @field_validator("uploaded_at", "posted_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("the time needs a time zone (RFC 3339, e.g. ...Z)")
        return None if v is None else v.astimezone(UTC)

    @field_validator("ip")
    @classmethod
    def _ip(cls, v: str | None) -> str | None:
        if v is None:
            return None
        try:
            return str(ipaddress.ip_address(v.strip()))
        except ValueError:
            raise ValueError("ip must be an IPv4 or IPv6 address") from None

    @field_validator("links")
    @classmethod
    def _links(cls, v: list[str]) -> list[str]:
        for link in v:
            if len(link) > MAX_URL_CHARS:
                raise ValueError(f"each link must be at most {MAX_URL_CHARS} characters")
        return v

    def has_ad_fields(self) -> bool:
        """Whether the request carries classified-ad fields (``title``, ``location``,
        ``posted_at``): such items are analysed as ads (issue 8)."""
        return self.title is not None or self.location is not None or self.posted_at is not None

    def stored_json(self) -> dict[str, Any]:
        """What is stored of the metadata: everything but ``text``, ``title`` and ``links``
        (kept as SHA-256 and length or count; the text itself only encrypted,
        :mod:`bastion.evidence.texts`) and ``content_id`` (a column of its own)."""
        import hashlib
        import json

        out = self.model_dump(mode="json", exclude={"text", "title", "content_id", "links"},
                              exclude_none=True)
        if self.links:
            out["links_sha256"] = hashlib.sha256(json.dumps(self.links).encode()).hexdigest()
            out["links_count"] = len(self.links)
        if self.title is not None:
            out["title_sha256"] = hashlib.sha256(
                self.title.encode("utf-8", "replace")).hexdigest()
        if self.text is not None:
            out["text_sha256"] = hashlib.sha256(self.text.encode("utf-8", "replace")).hexdigest()
            out["text_chars"] = len(self.text)
        return out
