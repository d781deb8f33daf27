"""The typed incident: everything one CyberTipline report says, before it becomes XML.

An *incident* (DESIGN.md "Words") is one user's decided cases that go into one report. The
case service builds an :class:`Incident` from its cases and decisions; this package turns it
into the ``report`` document (:func:`bastion.reporting.xml.build_report_xml`) and, per
uploaded file, a ``fileDetails`` document (:func:`bastion.reporting.xml.build_file_details_xml`).
Field names follow NCMEC's CyberTipline Reporting API schema (``cybertipline.xsd``, the
``report`` and ``fileDetails`` elements); each class names the element it becomes.

Times are aware datetimes (UTC is written); hashes are lowercase hex. Nothing here holds
content bytes: an :class:`IncidentFile` names its bytes by ``locator``, resolved at upload
time by a :class:`bastion.reporting.files.FileProvider`.

The dataclasses convert to and from plain JSON (:func:`incident_to_json`,
:func:`incident_from_json`) so a draft can be stored and the same facts exported for
authorities without an API (:mod:`bastion.reporting.export`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bastion.errors import InvalidInput

#: ``incidentType`` values of the schema that Bastion's decisions map to.
INCIDENT_CSAM = "Child Pornography (possession, manufacture, and distribution)"
INCIDENT_TRAFFICKING = "Child Sex Trafficking"
INCIDENT_ENTICEMENT = "Online Enticement of Children for Sexual Acts"

#: Decision kinds (from the review issue) and the incident type each reports as.
INCIDENT_TYPE_OF_DECISION: dict[str, str] = {
    "csam": INCIDENT_CSAM,
    "child_exploitation_other": INCIDENT_ENTICEMENT,
    "trafficking": INCIDENT_TRAFFICKING,
}

IpEventName = Literal["Login", "Registration", "Purchase", "Upload", "Other", "Unknown"]
IndustryClassification = Literal["A1", "A2", "B1", "B2"]
ReportAnnotation = Literal[
    "sextortion", "csamSolicitation", "minorToMinorInteraction", "spam",
    "sadisticOnlineExploitation",
]
FileAnnotation = Literal[
    "animeDrawingVirtualHentai", "potentialMeme", "viral", "possibleSelfProduction",
    "physicalHarm", "violenceGore", "bestiality", "liveStreaming", "infant", "generativeAi",
]


@dataclass(frozen=True, slots=True)
class ReportingPerson:
    """``reporter/reportingPerson`` (required by the schema) and the optional
    ``contactPerson``: who at the platform files, from the settings."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    #: ``reporter/legalURL``: where law enforcement sends legal process.
    legal_url: str | None = None
    #: ``reporter/termsOfService``: the relevant terms, as text.
    terms_of_service: str | None = None


@dataclass(frozen=True, slots=True)
class IpCaptureEvent:
    """``ipCaptureEvent``: an IP address seen for the user (or file), with the event it was
    seen at (``Upload``, ``Login`` ...), its time and source port."""

    ip_address: str
    event_name: IpEventName | None = None
    at: datetime | None = None
    port: int | None = None
    possible_proxy: bool | None = None


@dataclass(frozen=True, slots=True)
class AccountDisabled:
    """``accountTemporarilyDisabled`` / ``accountPermanentlyDisabled``."""

    disabled_at: datetime | None = None
    user_notified: bool | None = None
    user_notified_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReportedUser:
    """``personOrUserReported``: the platform's user. ``esp_identifier`` is the platform's
    user id; ``prior_reports`` are earlier CyberTipline report ids about the same user."""

    esp_identifier: str
    esp_service: str | None = None
    screen_name: str | None = None
    display_names: tuple[str, ...] = ()
    profile_urls: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    ip_capture_events: tuple[IpCaptureEvent, ...] = ()
    prior_reports: tuple[int, ...] = ()
    temporarily_disabled: AccountDisabled | None = None
    permanently_disabled: AccountDisabled | None = None
    additional_info: str | None = None


@dataclass(frozen=True, slots=True)
class InternetDetails:
    """``internetDetails``: where the incident happened. ``kind`` ``web_page`` writes a
    ``webPageIncident`` with ``urls``; ``chat_im`` a ``chatImIncident`` (``chat_client``,
    ``chat_room``)."""

    kind: Literal["web_page", "chat_im"] = "web_page"
    urls: tuple[str, ...] = ()
    chat_client: str | None = None
    chat_room: str | None = None
    third_party_hosted: bool | None = None
    additional_info: str | None = None


@dataclass(frozen=True, slots=True)
class OriginalHash:
    """``originalFileHash``: a hash of the file as the user uploaded it (the platform's
    pre-transcode hash where it sent one, else Bastion's). ``hash_type`` like ``MD5``,
    ``SHA1``, ``SHA256``, ``PDQ``; ``value`` lowercase hex."""

    hash_type: str
    value: str


@dataclass(frozen=True, slots=True)
class IncidentFile:
    """One file of the report and what its ``fileDetails`` document says.

    ``locator`` names the bytes for the :class:`~bastion.reporting.files.FileProvider`
    (an evidence id); ``content_id`` is the platform's id. ``viewed_by_esp`` must be true
    only when an audited reveal of the item exists (United States v. Wilson, 9th Cir. 2021:
    files no one at the provider viewed may need a warrant to open)."""

    locator: str
    file_name: str
    content_id: str | None = None
    original_file_name: str | None = None
    uploaded_at: datetime | None = None
    location_of_file: str | None = None
    viewed_by_esp: bool = False
    publicly_available: bool | None = None
    industry_classification: IndustryClassification | None = None
    annotations: tuple[FileAnnotation, ...] = ()
    original_hashes: tuple[OriginalHash, ...] = ()
    upload_ip: IpCaptureEvent | None = None
    #: Original EXIF (or other metadata) kept, as (name, value) pairs
    #: (:func:`bastion.reporting.exif.extract_exif`); sent as ``details type="EXIF"``.
    exif: tuple[tuple[str, str], ...] = ()
    #: ``exifViewedByEsp``: a person at the platform looked at the EXIF values. Bastion
    #: shows no EXIF values to anyone, so drafts from cases say false.
    exif_viewed_by_esp: bool = False
    #: Why ``exif`` is empty or cut (``no EXIF in the file``, ``EXIF parser timed out``
    #: ...): shown to the approving admin, never sent.
    exif_note: str | None = None
    additional_info: str | None = None


@dataclass(frozen=True, slots=True)
class Incident:
    """One report's facts: ``incidentSummary``, ``internetDetails``, ``reporter``,
    ``personOrUserReported`` and the files (each sent with its own ``fileDetails``).

    ``incident_type`` is one of the schema's ``incidentType`` values (see
    :data:`INCIDENT_TYPE_OF_DECISION`); ``escalation_reason``, when set, writes
    ``escalateToHighPriority`` (a reviewer marked a case urgent). ``key`` identifies the
    incident in Bastion (e.g. ``user:<id>:<first case id>``): one report per key."""

    key: str
    incident_type: str
    incident_at: datetime
    #: None when the settings name no reporting person: the report is then refused.
    reporter: ReportingPerson | None
    platform: str | None = None
    incident_time_description: str | None = None
    escalation_reason: str | None = None
    annotations: tuple[ReportAnnotation, ...] = ()
    internet_details: tuple[InternetDetails, ...] = ()
    reported_users: tuple[ReportedUser, ...] = ()
    files: tuple[IncidentFile, ...] = ()
    additional_info: str | None = None
    case_ids: tuple[str, ...] = field(default=())


def incident_to_json(incident: Incident) -> dict[str, Any]:
    """``incident`` as a JSON-able dict (times ISO 8601, tuples as lists)."""
    return typing.cast(dict[str, Any], _to_json(incident))


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def incident_from_json(data: Any) -> Incident:
    """Rebuild an :class:`Incident` from :func:`incident_to_json`'s output. Raises
    :class:`InvalidInput` naming the field when the JSON does not fit."""
    return typing.cast(Incident, _from_json(Incident, data, "incident"))


def _from_json(tp: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if data is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _from_json(inner, data, where)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(data, list):
            raise InvalidInput(f"{where}: expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(args[0], v, f"{where}[{i}]") for i, v in enumerate(data))
        if len(args) != len(data):
            raise InvalidInput(f"{where}: expected {len(args)} items")
        return tuple(_from_json(a, v, f"{where}[{i}]") for i, (a, v) in
                     enumerate(zip(args, data, strict=True)))
    if origin is Literal:
        if data not in typing.get_args(tp):
            raise InvalidInput(f"{where}: {data!r} is not one of {typing.get_args(tp)}")
        return data
    if dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise InvalidInput(f"{where}: expected an object")
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in data:
                kwargs[f.name] = _from_json(hints[f.name], data[f.name], f"{where}.{f.name}")
        try:
            return typing.cast(Any, tp)(**kwargs)
        except TypeError as exc:
            raise InvalidInput(f"{where}: {exc}") from exc
    if tp is datetime:
        try:
            parsed = datetime.fromisoformat(str(data))
        except ValueError as exc:
            raise InvalidInput(f"{where}: not an ISO 8601 time") from exc
        if parsed.tzinfo is None:
            raise InvalidInput(f"{where}: time without a zone")
        return parsed
    if tp in (str, int, bool) and not isinstance(data, tp):
        raise InvalidInput(f"{where}: expected {tp.__name__}")
    return data
