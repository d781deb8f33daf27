"""The CyberTipline ``report`` and ``fileDetails`` documents, built and validated.

Element names and their order follow NCMEC's schema (``cybertipline.xsd``: the ``report``,
``incidentSummary``, ``reporter``, ``personOrUserReported`` and ``fileDetails`` elements;
the order matters because the schema uses ``xs:sequence``). Every document built here is
validated against the schema before it is returned (:class:`CyberTiplineSchema`), so an
invalid report is refused before anything is sent, with libxml2's message, which names the
element at fault (e.g. ``Element 'reporter': Missing child element(s). Expected is (
reportingPerson )``).

The schema is never bundled: it is read from ``Settings.cybertipline_xsd`` or fetched from
the Reporting API's ``GET /xsd`` (:meth:`bastion.reporting.client.CyberTiplineClient.xsd`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from bastion.errors import InvalidInput
from bastion.reporting.incident import (
    AccountDisabled,
    Incident,
    IncidentFile,
    InternetDetails,
    IpCaptureEvent,
    ReportedUser,
    ReportingPerson,
)

#: Largest schema document accepted, bytes.
MAX_XSD_BYTES = 4 * 1024 * 1024


class ReportInvalid(InvalidInput):
    """A report or fileDetails document does not satisfy the CyberTipline schema (or a rule
    Bastion adds); the message names the element. Nothing was sent."""

    code = "report-invalid"


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False, remove_blank_text=True)


class CyberTiplineSchema:
    """NCMEC's XSD, compiled once. ``validate(doc)`` raises :class:`ReportInvalid` with
    every error message (line, element, reason); ``is_valid`` only answers."""

    def __init__(self, xsd: bytes) -> None:
        if len(xsd) > MAX_XSD_BYTES:
            raise InvalidInput(f"CyberTipline schema over {MAX_XSD_BYTES} bytes")
        try:
            self._schema = etree.XMLSchema(etree.fromstring(xsd, _safe_parser()))
        except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
            raise InvalidInput(f"not a usable CyberTipline schema: {exc}") from exc

    @classmethod
    def from_path(cls, path: Path) -> CyberTiplineSchema:
        """Read the schema from ``path``; raises :class:`InvalidInput` when unreadable."""
        try:
            return cls(path.read_bytes())
        except OSError as exc:
            raise InvalidInput(f"cannot read the CyberTipline schema {path}: {exc}") from exc

    def errors(self, doc: bytes) -> list[str]:
        """Every schema error of ``doc`` (empty when valid); a parse error is one error."""
        try:
            root = etree.fromstring(doc, _safe_parser())
        except etree.XMLSyntaxError as exc:
            return [f"not well-formed XML: {exc}"]
        if getattr(root.getroottree().docinfo, "doctype", ""):
            return ["a DOCTYPE (entities) is not allowed"]
        try:
            if self._schema.validate(root):
                return []
        except etree.XMLSchemaValidateError as exc:
            return [f"cannot be validated: {exc}"]
        log: Iterable[etree._LogEntry] = self._schema.error_log  # type: ignore[assignment]
        return [f"line {e.line}: {e.message}" for e in log]

    def is_valid(self, doc: bytes) -> bool:
        """True when ``doc`` validates."""
        return not self.errors(doc)

    def validate(self, doc: bytes, what: str = "document") -> None:
        """Raise :class:`ReportInvalid` naming the failing elements unless ``doc`` is valid."""
        errs = self.errors(doc)
        if errs:
            raise ReportInvalid(f"{what} fails the CyberTipline schema: " + "; ".join(errs[:5]))


def xml_time(value: datetime) -> str:
    """``xs:dateTime`` in UTC with a ``Z`` (seconds precision). Raises :class:`InvalidInput`
    for a naive time."""
    if value.tzinfo is None:
        raise InvalidInput("naive time in a report; Bastion writes aware UTC times only")
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _sub(parent: etree._Element, tag: str, text: str | None = None,
         **attrs: str) -> etree._Element:
    try:
        el = etree.SubElement(parent, tag, attrs)
    except ValueError as exc:  # control characters, NUL in an attribute value
        raise ReportInvalid(f"{tag}: attribute value not allowed in XML ({exc})") from exc
    if text is not None:
        try:
            el.text = text
        except ValueError as exc:  # control characters, NUL
            raise ReportInvalid(f"{tag}: text not allowed in XML ({exc})") from exc
    return el


def _opt(parent: etree._Element, tag: str, text: str | None) -> None:
    if text is not None and text != "":
        _sub(parent, tag, text)


def _ip_event(parent: etree._Element, ev: IpCaptureEvent) -> None:
    el = _sub(parent, "ipCaptureEvent")
    _sub(el, "ipAddress", ev.ip_address)
    _opt(el, "eventName", ev.event_name)
    if ev.at is not None:
        _sub(el, "dateTime", xml_time(ev.at))
    if ev.possible_proxy is not None:
        _sub(el, "possibleProxy", _bool(ev.possible_proxy))
    if ev.port is not None:
        _sub(el, "port", str(ev.port))


def _disabled(parent: etree._Element, tag: str, d: AccountDisabled) -> None:
    attrs: dict[str, str] = {}
    if d.disabled_at is not None:
        attrs["disabledDate"] = xml_time(d.disabled_at)
    if d.user_notified is not None:
        attrs["userNotified"] = _bool(d.user_notified)
    if d.user_notified_at is not None:
        attrs["userNotifiedDate"] = xml_time(d.user_notified_at)
    _sub(parent, tag, "true", **attrs)


def _reporter(parent: etree._Element, rp: ReportingPerson) -> None:
    if not (rp.first_name or rp.last_name) or not rp.email:
        raise ReportInvalid(
            "reporter/reportingPerson needs a name and an e-mail address "
            "(settings cybertipline_reporter_*)")
    rep = _sub(parent, "reporter")
    person = _sub(rep, "reportingPerson")
    _opt(person, "firstName", rp.first_name)
    _opt(person, "lastName", rp.last_name)
    _opt(person, "phone", rp.phone)
    _opt(person, "email", rp.email)
    _opt(rep, "termsOfService", rp.terms_of_service)
    _opt(rep, "legalURL", rp.legal_url)


def _internet(parent: etree._Element, d: InternetDetails) -> None:
    el = _sub(parent, "internetDetails")
    if d.kind == "web_page":
        attrs = ({} if d.third_party_hosted is None
                 else {"thirdPartyHostedContent": _bool(d.third_party_hosted)})
        inc = _sub(el, "webPageIncident", **attrs)
        for url in d.urls:
            _sub(inc, "url", url)
    else:
        inc = _sub(el, "chatImIncident")
        _opt(inc, "chatClient", d.chat_client)
        _opt(inc, "chatRoomName", d.chat_room)
    _opt(inc, "additionalInfo", d.additional_info)


def _user(parent: etree._Element, u: ReportedUser) -> None:
    el = _sub(parent, "personOrUserReported")
    if u.emails:
        person = _sub(el, "personOrUserReportedPerson")
        for email in u.emails:
            _sub(person, "email", email)
    _sub(el, "espIdentifier", u.esp_identifier)
    _opt(el, "espService", u.esp_service)
    _opt(el, "screenName", u.screen_name)
    for name in u.display_names:
        _sub(el, "displayName", name)
    for url in u.profile_urls:
        _sub(el, "profileUrl", url)
    for ev in u.ip_capture_events:
        _ip_event(el, ev)
    for rid in u.prior_reports:
        _sub(el, "priorCTReports", str(rid))
    if u.temporarily_disabled is not None:
        _disabled(el, "accountTemporarilyDisabled", u.temporarily_disabled)
    if u.permanently_disabled is not None:
        _disabled(el, "accountPermanentlyDisabled", u.permanently_disabled)
    _opt(el, "additionalInfo", u.additional_info)


def _serialise(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def build_report_xml(incident: Incident, schema: CyberTiplineSchema) -> bytes:
    """The ``report`` document (UTF-8 bytes) for ``incident``, validated against ``schema``.

    Raises :class:`ReportInvalid` naming the element when a required element is missing
    (``reporter/reportingPerson`` without a name or e-mail, no reporter at all, an
    ``incidentType`` the schema does not list ...) or any value does not fit the schema.
    """
    root = etree.Element("report")
    summary = _sub(root, "incidentSummary")
    _sub(summary, "incidentType", incident.incident_type)
    _opt(summary, "platform", incident.platform)
    if incident.escalation_reason:
        _sub(summary, "escalateToHighPriority", incident.escalation_reason)
    if incident.annotations:
        ann = _sub(summary, "reportAnnotations")
        for name in dict.fromkeys(incident.annotations):
            _sub(ann, name, "true")
    _sub(summary, "incidentDateTime", xml_time(incident.incident_at))
    _opt(summary, "incidentDateTimeDescription", incident.incident_time_description)
    for d in incident.internet_details:
        _internet(root, d)
    if incident.reporter is None:
        raise ReportInvalid("report/reporter/reportingPerson is required by the schema and "
                            "no reporting person is configured (cybertipline_reporter_*)")
    _reporter(root, incident.reporter)
    for u in incident.reported_users:
        _user(root, u)
    _opt(root, "additionalInfo", incident.additional_info)
    doc = _serialise(root)
    schema.validate(doc, "report")
    return doc


def build_file_details_xml(report_id: int, file_id: str, f: IncidentFile,
                           schema: CyberTiplineSchema) -> bytes:
    """The ``fileDetails`` document for one uploaded file (NCMEC's ``report_id`` and
    ``file_id`` from ``/submit`` and ``/upload``), validated against ``schema``.

    ``fileViewedByEsp`` is always written (true or false, from ``f.viewed_by_esp``); with
    EXIF, ``exifViewedByEsp`` (from ``f.exif_viewed_by_esp``) and a ``details`` block of
    ``type="EXIF"`` with one ``nameValuePair`` per tag. ``fileAnnotations`` holds one
    ``true`` element per annotation name.
    Raises :class:`ReportInvalid` naming the element when the document does not validate.
    """
    root = etree.Element("fileDetails")
    _sub(root, "reportId", str(report_id))
    _sub(root, "fileId", file_id)
    _sub(root, "fileName", f.file_name)
    _opt(root, "originalFileName", f.original_file_name)
    if f.uploaded_at is not None:
        _sub(root, "uploadedToEspTimestamp", xml_time(f.uploaded_at))
    _opt(root, "locationOfFile", f.location_of_file)
    _sub(root, "fileViewedByEsp", _bool(f.viewed_by_esp))
    if f.exif:
        _sub(root, "exifViewedByEsp", _bool(f.exif_viewed_by_esp))
    if f.publicly_available is not None:
        _sub(root, "publiclyAvailable", _bool(f.publicly_available))
    if f.annotations:
        file_ann = _sub(root, "fileAnnotations")
        for file_annotation in dict.fromkeys(f.annotations):
            _sub(file_ann, file_annotation, "true")
    _opt(root, "industryClassification", f.industry_classification)
    for h in f.original_hashes:
        _sub(root, "originalFileHash", h.value, hashType=h.hash_type)
    if f.upload_ip is not None:
        _ip_event(root, f.upload_ip)
    if f.exif:
        details = _sub(root, "details", type="EXIF")
        for name, value in f.exif:
            pair = _sub(details, "nameValuePair")
            _sub(pair, "name", name)
            _sub(pair, "value", value)
    _opt(root, "additionalInfo", f.additional_info)
    doc = _serialise(root)
    schema.validate(doc, f"fileDetails of {f.file_name}")
    return doc


def element_texts(doc: bytes, path: str) -> list[str]:
    """The texts of the elements at ``path`` (an lxml path like ``.//fileId``) in ``doc``,
    parsed without entities or network access (responses, tests)."""
    root = etree.fromstring(doc, _safe_parser())
    return [el.text or "" for el in root.iterfind(path)]


def all_element_names(doc: bytes) -> Iterable[str]:
    """Every element name in ``doc``, in document order."""
    root = etree.fromstring(doc, _safe_parser())
    return [str(el.tag) for el in root.iter()]


def pretty(doc: bytes) -> str:
    """``doc`` indented for people to read (the UI's report page); parsed without entities
    or network access. Raises :class:`InvalidInput` for a document that is not XML."""
    try:
        root = etree.fromstring(doc, _safe_parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidInput(f"not well-formed XML: {exc}") from exc
    return bytes(etree.tostring(root, pretty_print=True, encoding="UTF-8")).decode()
