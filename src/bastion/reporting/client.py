"""A client of NCMEC's CyberTipline Reporting API (HTTPS, basic auth, XML).

Endpoints (relative to the base URL: ``https://exttest.cybertip.org/ispws`` for the test
environment, ``https://report.cybertip.org/ispws`` for production)::

    GET  /status     check credentials and service       -> reportResponse
    GET  /xsd        the schema
    POST /submit     the report document (text/xml)      -> reportResponse with reportId
    POST /upload     multipart ``id`` and ``file``        -> reportResponse with fileId, hash (MD5)
    POST /fileinfo   a fileDetails document (text/xml)    -> reportResponse
    POST /finish     form ``id``                          -> reportDoneResponse
    POST /retract    form ``id``                          -> reportResponse

Every answer carries a ``responseCode``: 0 success; 1000s server errors; 2000
authentication; 3000s authorisation; 4000s invalid request (4100 validation failure);
5000s unknown report or file (5101 already retracted, 5102 already finished). Server errors
and network failures raise :class:`CyberTiplineUnavailable` (retry later); everything else
that is not 0 raises :class:`CyberTiplineRejected` with NCMEC's code and message.

Credentials are sent as HTTP basic auth only; they never appear in messages, logs or
``repr`` (the password is held in httpx's auth object).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from lxml import etree

from bastion.config import Settings
from bastion.errors import BastionError, ConfigurationError

TEST_URL = "https://exttest.cybertip.org/ispws"
PRODUCTION_URL = "https://report.cybertip.org/ispws"

#: Largest API answer read, bytes (answers are a few hundred bytes; the XSD ~150 KB).
MAX_RESPONSE_BYTES = 4 * 1024 * 1024

#: Response codes with a fixed meaning for the state machine.
CODE_OK = 0
CODE_ALREADY_RETRACTED = 5101
CODE_ALREADY_FINISHED = 5102


class CyberTiplineUnavailable(BastionError):
    """A server error (1000s, HTTP 5xx) or a network failure: try again later.

    ``maybe_processed`` is True when the request may have reached NCMEC and been acted on
    (the connection broke after sending); False when it certainly was not (connection
    refused) or NCMEC answered with a server error."""

    code = "cybertipline-unavailable"

    def __init__(self, message: str, *, maybe_processed: bool) -> None:
        super().__init__(message)
        self.maybe_processed = maybe_processed


class CyberTiplineRejected(BastionError):
    """NCMEC refused the request: ``response_code`` (2000 authentication, 3000s
    authorisation, 4000s invalid request, 5000s unknown report or file) and NCMEC's
    ``description`` are in the message."""

    code = "cybertipline-rejected"

    def __init__(self, message: str, *, response_code: int, description: str) -> None:
        super().__init__(message)
        self.response_code = response_code
        self.description = description


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """A parsed ``reportResponse`` (or ``reportDoneResponse``)."""

    response_code: int
    description: str
    report_id: int | None = None
    file_id: str | None = None
    hash: str | None = None


def base_url(settings: Settings) -> str:
    """The API's base URL: ``cybertipline_url`` if set, else the environment's."""
    if settings.cybertipline_url:
        return settings.cybertipline_url.rstrip("/")
    return PRODUCTION_URL if settings.cybertipline_environment == "production" else TEST_URL


def parse_response(body: bytes) -> ApiResponse:
    """Parse an API answer; raises :class:`CyberTiplineUnavailable` when it is not one
    (a proxy's error page, truncated XML)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise CyberTiplineUnavailable(f"unreadable answer from the CyberTipline: {exc}",
                                      maybe_processed=True) from exc

    def text(tag: str) -> str | None:
        el = root.find(tag)
        return None if el is None or el.text is None else el.text.strip()

    code_text = text("responseCode")
    try:
        code = int(code_text or "")
        rid = text("reportId")
        report_id = int(rid) if rid else None
    except ValueError as exc:
        raise CyberTiplineUnavailable("CyberTipline answer without a valid responseCode",
                                      maybe_processed=True) from exc
    return ApiResponse(code, text("responseDescription") or "", report_id, text("fileId"),
                       text("hash"))


class CyberTiplineClient:
    """The Reporting API over ``httpx``. ``transport`` replaces the network in tests.
    Raises :class:`ConfigurationError` without credentials."""

    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None
                 ) -> None:
        if settings.cybertipline_username is None or settings.cybertipline_password is None:
            raise ConfigurationError(
                "cybertipline_username and cybertipline_password must be set to report")
        self.base_url = base_url(settings)
        self.environment = ("custom" if settings.cybertipline_url
                            else settings.cybertipline_environment)
        self._client = httpx.Client(
            base_url=self.base_url,
            auth=httpx.BasicAuth(settings.cybertipline_username.get_secret_value(),
                                 settings.cybertipline_password.get_secret_value()),
            timeout=settings.cybertipline_timeout_s, follow_redirects=False,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"CyberTiplineClient({self.base_url!r})"

    def _call(self, step: str, method: str, path: str, **kw: object) -> bytes:
        try:
            with self._client.stream(method, path, **kw) as r:  # type: ignore[arg-type]
                body = b""
                for chunk in r.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise CyberTiplineUnavailable(
                            f"{step}: answer over {MAX_RESPONSE_BYTES} bytes",
                            maybe_processed=True)
                status = r.status_code
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise CyberTiplineUnavailable(f"{step}: cannot connect: {type(exc).__name__}",
                                          maybe_processed=False) from exc
        except httpx.HTTPError as exc:
            raise CyberTiplineUnavailable(f"{step}: {type(exc).__name__} after sending",
                                          maybe_processed=True) from exc
        if status >= 500:
            raise CyberTiplineUnavailable(f"{step}: HTTP {status}", maybe_processed=False)
        if status in (401, 403):
            raise CyberTiplineRejected(f"{step}: HTTP {status} (check the credentials)",
                                       response_code=2000, description=f"HTTP {status}")
        if 400 <= status < 500:
            try:
                parse_response(body)  # NCMEC's own answer with a responseCode: judge that
            except CyberTiplineUnavailable:
                # refused by the server before processing (wrong URL, method, size)
                raise CyberTiplineRejected(
                    f"{step}: HTTP {status} (check cybertipline_url)", response_code=4000,
                    description=f"HTTP {status}") from None
        return body

    def _checked(self, step: str, body: bytes, ok: tuple[int, ...] = (CODE_OK,)
                 ) -> ApiResponse:
        resp = parse_response(body)
        if resp.response_code in ok:
            return resp
        if 1000 <= resp.response_code < 2000:
            raise CyberTiplineUnavailable(
                f"{step}: CyberTipline server error {resp.response_code}: {resp.description}",
                maybe_processed=False)
        raise CyberTiplineRejected(
            f"{step}: CyberTipline refused with {resp.response_code}: {resp.description}",
            response_code=resp.response_code, description=resp.description)

    def status(self) -> ApiResponse:
        """``GET /status``: credentials and service work (else raises)."""
        return self._checked("status", self._call("status", "GET", "/status"))

    def xsd(self) -> bytes:
        """``GET /xsd``: the schema document."""
        return self._call("xsd", "GET", "/xsd")

    def submit(self, report_xml: bytes) -> int:
        """``POST /submit``: returns NCMEC's report id."""
        resp = self._checked("submit", self._call(
            "submit", "POST", "/submit", content=report_xml,
            headers={"Content-Type": "text/xml; charset=utf-8"}))
        if resp.report_id is None:
            raise CyberTiplineUnavailable("submit: answer without a reportId",
                                          maybe_processed=True)
        return resp.report_id

    def upload(self, report_id: int, file_name: str, data: bytes) -> tuple[str, str | None]:
        """``POST /upload``: returns ``(file id, MD5 hex as NCMEC computed it)``."""
        resp = self._checked("upload", self._call(
            "upload", "POST", "/upload", data={"id": str(report_id)},
            files={"file": (file_name, data, "application/octet-stream")}))
        if not resp.file_id:
            raise CyberTiplineUnavailable("upload: answer without a fileId",
                                          maybe_processed=True)
        return resp.file_id, (resp.hash or None)

    def fileinfo(self, file_details_xml: bytes) -> None:
        """``POST /fileinfo`` with one fileDetails document."""
        self._checked("fileinfo", self._call(
            "fileinfo", "POST", "/fileinfo", content=file_details_xml,
            headers={"Content-Type": "text/xml; charset=utf-8"}))

    def finish(self, report_id: int) -> ApiResponse:
        """``POST /finish``; an already finished report (5102) counts as finished."""
        return self._checked("finish", self._call(
            "finish", "POST", "/finish", data={"id": str(report_id)}),
            ok=(CODE_OK, CODE_ALREADY_FINISHED))

    def retract(self, report_id: int) -> ApiResponse:
        """``POST /retract``; an already retracted report (5101) counts as retracted."""
        return self._checked("retract", self._call(
            "retract", "POST", "/retract", data={"id": str(report_id)}),
            ok=(CODE_OK, CODE_ALREADY_RETRACTED))

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
