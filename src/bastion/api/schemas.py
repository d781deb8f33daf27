"""Request and response shapes of the API, for validation and the OpenAPI document.

Field names follow DESIGN.md "Shapes". Distances are integers, hashes lowercase hex,
times RFC 3339 in UTC.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bastion.content.schemas import ContentMeta


class Problem(BaseModel):
    """An RFC 9457 problem (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


class SignalOut(BaseModel):
    """A signal (DESIGN.md): ``value`` for hashes, ``frames`` for vPDQ."""

    model_config = ConfigDict(extra="allow")

    signal_type: str
    value: str | None = None
    quality: int | None = None
    low_quality: bool | None = None
    variant: dict[str, Any] | None = None
    frames: list[dict[str, Any]] | None = None


class MatchOut(BaseModel):
    """A match (DESIGN.md): bank, entry, signal type, integer distance, transform ..."""

    model_config = ConfigDict(extra="allow")

    bank: str
    entry_id: str
    signal_type: str
    distance: int
    label: str
    classification: str | None = None
    query_variant: dict[str, Any] | None = None
    transform: str | None = None


class VerdictOut(BaseModel):
    """The verdict of one content item."""

    content_id: str
    status: Literal["match", "no_match", "not_scanned"]
    reason: str | None = None
    media_type: str | None = None
    signals: list[SignalOut]
    matches: list[MatchOut]
    decision: Literal["block", "hold", "allow"]
    decision_rule: str
    case_id: str | None = None
    actions: list[dict[str, Any]]
    submitted_at: str
    replayed: bool
    history: list[dict[str, Any]] | None = None
    current: dict[str, Any] | None = Field(
        default=None,
        description="GET only: where the item stands now (the verdict above is as decided at "
        "submission): `cases` (case_id, state, review decision, classification, decided_at) "
        "and `actions` (action_id, kind, delivery state, created_at), oldest first")
    # Only when the item was analysed as a classified ad (issue 8):
    score: float | None = Field(default=None, description="Ad: trafficking risk score 0-1")
    indicators: list[dict[str, Any]] | None = Field(
        default=None, description="Ad: indicators found (id, span, weight, source, ...)")
    contacts: list[dict[str, Any]] | None = Field(
        default=None, description="Ad: phones (E.164), e-mails, handles, URLs, with spans")
    network_id: str | None = Field(
        default=None, description="Ad: its ad network now (after merges, the surviving id)")
    network_size: int | None = Field(
        default=None, description="Ad: ads in its network when the verdict was made")
    lexicon_version: str | None = None


class SignalIn(BaseModel):
    """A signal the platform computed (``type`` is accepted for ``signal_type``)."""

    model_config = ConfigDict(extra="allow")

    signal_type: str | None = Field(default=None, description="pdq, md5, sha1, sha256, vpdq")
    type: str | None = None
    value: str | None = None
    quality: int | None = None
    variant: dict[str, Any] | None = None
    frames: list[dict[str, Any]] | None = None


class ContentJsonIn(ContentMeta):
    """``POST /v1/content`` as JSON: metadata plus exactly one of ``signals``, ``fetch_url``."""

    signals: list[SignalIn] | None = Field(default=None, max_length=1000)
    fetch_url: str | None = Field(default=None, max_length=2048)


class BatchIn(BaseModel):
    """``POST /v1/content:batch``: up to 100 items, each as for JSON ``POST /v1/content``."""

    items: list[Any] = Field(min_length=1, max_length=100)


class BatchResult(BaseModel):
    """One item's outcome: a verdict, or a problem (one bad item never fails the rest)."""

    index: int
    ok: bool
    verdict: VerdictOut | None = None
    problem: Problem | None = None


class BatchOut(BaseModel):
    """Per-item results, in request order."""

    results: list[BatchResult]


class MatchIn(BaseModel):
    """``POST /v1/match``: bare signals, up to 1,000."""

    model_config = ConfigDict(extra="forbid")

    signals: list[SignalIn] = Field(min_length=1, max_length=1000)


class SignalMatches(BaseModel):
    """The matches of one submitted signal."""

    index: int
    signal_type: str
    value: str | None = None
    status: Literal["match", "no_match"]
    matches: list[MatchOut]


class MatchResultOut(BaseModel):
    """``POST /v1/match`` results, one per signal, in request order."""

    results: list[SignalMatches]


class HashOut(BaseModel):
    """``POST /v1/hash``: the signals of a file (``bastion hash --json`` shape)."""

    model_config = ConfigDict(extra="allow")

    media_type: str
    status: Literal["hashed", "not_scanned"]
    reason: str | None = None
    signals: list[SignalOut]


class RetrohuntOut(BaseModel):
    """Retro-hunt matches after a cursor, and the cursor to pass next."""

    results: list[dict[str, Any]]
    cursor: str | None


class EntriesIn(BaseModel):
    """Bank entries given as fields (``signal_type``, ``value``, provenance ...)."""

    entries: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)


class EntryPatch(BaseModel):
    """Changes to one entry: enable, or disable (until a time)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    disabled_until: str | None = None
