"""Fetching a submitted ``fetch_url`` without becoming a proxy into the platform's network.

Server-side request forgery defences (issue 4; OWASP's SSRF prevention cheat sheet):

- off unless ``fetch_urls = true``; ``http`` and ``https`` only; no credentials in URLs;
- the host is resolved ONCE and the connection is pinned to that address (the TLS
  handshake still checks the certificate against the host name), so a second DNS answer
  cannot redirect the connection (DNS rebinding);
- loopback, private, link-local, multicast, reserved, unspecified, shared (CGNAT) and every
  other non-global address is refused, and so is any IPv4-mapped IPv6 address
  (``::ffff:127.0.0.1``), unless it lies in an operator's ``fetch_allow_networks``; a name
  that resolves to any refused address is refused;
- every redirect (at most :data:`MAX_REDIRECTS`) is checked the same way before it is
  followed;
- the body is read up to ``fetch_max_bytes`` (413 past it) within ``fetch_timeout_s`` in
  all; ``Accept-Encoding: identity`` (no decompression bombs);
- the server's ``Content-Type`` and the URL's extension are ignored: the content service
  sniffs the type from the bytes.

Errors: :class:`FetchRefused` (422, names ``fetch_url``), :class:`FetchFailed` (502),
:class:`~bastion.errors.LimitExceeded` (413).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from bastion.errors import BastionError, InvalidInput, LimitExceeded

#: Redirects followed at most.
MAX_REDIRECTS = 3
#: Longest URL accepted, characters.
MAX_URL_CHARS = 2_048
_READ_CHUNK = 64 * 1024
_USER_AGENT = "Bastion-fetch/0.1"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``resolver(host, port)`` -> the host's addresses (strings), as ``getaddrinfo`` gives them.
Resolver = Callable[[str, int], list[str]]


class FetchRefused(InvalidInput):
    """The URL may not be fetched (fetching disabled, scheme, address refused)."""

    code = "fetch-refused"

    def __init__(self, message: str, field: str = "fetch_url") -> None:
        super().__init__(message)
        self.field = field


class FetchFailed(BastionError):
    """The URL could not be fetched (connection, TLS, HTTP status, timeout)."""

    code = "fetch-failed"


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (TCP), via ``getaddrinfo``. Raises FetchFailed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchFailed(f"cannot resolve {host!r}: {exc}") from None
    out: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in out:
            out.append(addr)
    return out


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """How URLs are fetched (from :class:`~bastion.config.Settings`)."""

    enabled: bool = False
    allow_networks: tuple[IPNetwork, ...] = ()
    max_bytes: int = 32 * 1024 * 1024
    timeout_s: float = 15.0
    max_redirects: int = MAX_REDIRECTS
    resolver: Resolver = field(default=system_resolver)

    @classmethod
    def from_settings(cls, enabled: bool, networks: Sequence[str], max_bytes: int,
                      timeout_s: float) -> FetchPolicy:
        """Build from settings values. Raises InvalidInput for a malformed network."""
        nets: list[IPNetwork] = []
        for n in networks:
            try:
                nets.append(ipaddress.ip_network(n, strict=False))
            except ValueError:
                raise InvalidInput(f"fetch_allow_networks: {n!r} is not a network") from None
        return cls(enabled, tuple(nets), max_bytes, timeout_s)


@dataclass(frozen=True, slots=True)
class Fetched:
    """A fetched body: ``data`` (bytes), the final ``url``, the ``address`` connected to
    and the number of ``redirects`` followed."""

    data: bytes
    url: str
    address: str
    redirects: int


def refusal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be fetched from, or None for a global unicast address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return "an IPv4-mapped IPv6 address"
    checks = (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    )
    for attr, why in checks:
        if getattr(ip, attr):
            return why
    if not ip.is_global:
        return "not a global address"
    return None


def check_address(address: str, policy: FetchPolicy) -> IPAddress:
    """The parsed address if it may be fetched from. Raises :class:`FetchRefused`."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        raise FetchRefused(f"{address!r} is not an IP address") from None
    if any(ip.version == n.version and ip in n for n in policy.allow_networks):
        return ip
    why = refusal_reason(ip)
    if why is not None:
        raise FetchRefused(f"refused to fetch from {ip}: {why}")
    return ip


@dataclass(frozen=True, slots=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str


def _parse(url: str) -> _Target:
    if len(url) > MAX_URL_CHARS:
        raise FetchRefused(f"URL longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise FetchRefused(f"malformed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchRefused("only http and https URLs are fetched")
    if parts.username is not None or parts.password is not None:
        raise FetchRefused("URLs with credentials are not fetched")
    host = parts.hostname
    if not host:
        raise FetchRefused("URL has no host")
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise FetchRefused("URL host is not a valid name") from None
    if any(c.isspace() or c in "\r\n" for c in url):
        raise FetchRefused("URL contains whitespace")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return _Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def _resolve(target: _Target, policy: FetchPolicy) -> str:
    try:
        literal = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        check_address(str(literal), policy)
        return str(literal)
    addresses = policy.resolver(target.host, target.port)
    if not addresses:
        raise FetchFailed(f"{target.host!r} resolves to no address")
    for a in addresses:  # any refused answer refuses the name
        try:
            check_address(a, policy)
        except FetchRefused as exc:
            raise FetchRefused(f"{target.host} resolves to {a}: {exc.message}") from None
    return addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to ``address`` whatever ``host`` resolves to now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to ``address``; the certificate is checked against ``host``."""

    def __init__(self, host: str, port: int, address: str, timeout: float,
                 context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._ctx = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self.host)


def fetch(url: str, policy: FetchPolicy) -> Fetched:
    """Fetch ``url`` under ``policy`` (see the module docstring). Raises
    :class:`FetchRefused`, :class:`FetchFailed`, :class:`LimitExceeded`."""
    if not policy.enabled:
        raise FetchRefused("URL fetching is disabled on this server (setting fetch_urls)")
    deadline = time.monotonic() + policy.timeout_s
    current = url
    for redirects in range(policy.max_redirects + 1):
        target = _parse(current)
        address = _resolve(target, policy)
        status, location, body = _get(target, address, policy, deadline)
        if status in (301, 302, 303, 307, 308):
            if location is None:
                raise FetchFailed(f"HTTP {status} redirect without a Location")
            current = urljoin(current, location)
            continue
        if not 200 <= status < 300:
            raise FetchFailed(f"HTTP {status} from {target.host}")
        assert body is not None
        return Fetched(body, current, address, redirects)
    raise FetchFailed(f"more than {policy.max_redirects} redirects")


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchFailed("fetch timed out")
    return left


def _get(target: _Target, address: str, policy: FetchPolicy,
         deadline: float) -> tuple[int, str | None, bytes | None]:
    timeout = _remaining(deadline)
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = _PinnedHTTPS(target.host, target.port, address, timeout,
                            ssl.create_default_context())
    else:
        conn = _PinnedHTTP(target.host, target.port, address, timeout)
    try:
        conn.request("GET", target.path, headers={
            "User-Agent": _USER_AGENT, "Accept": "*/*", "Accept-Encoding": "identity",
            "Connection": "close",
        })
        resp = conn.getresponse()
        if resp.status in (301, 302, 303, 307, 308):
            return resp.status, resp.getheader("Location"), None
        if not 200 <= resp.status < 300:
            return resp.status, None, None
        length = resp.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > policy.max_bytes:
            raise LimitExceeded(
                f"fetched body is {length} bytes, over the limit of {policy.max_bytes}"
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            left = _remaining(deadline)  # the whole fetch, not each read, is bounded
            if conn.sock is not None:
                conn.sock.settimeout(left)
            chunk = resp.read(_READ_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > policy.max_bytes:
                raise LimitExceeded(f"fetched body over the limit of {policy.max_bytes} bytes")
            chunks.append(chunk)
        return resp.status, None, b"".join(chunks)
    except (OSError, http.client.HTTPException) as exc:
        if isinstance(exc, TimeoutError | socket.timeout):
            raise FetchFailed("fetch timed out") from None
        raise FetchFailed(f"cannot fetch from {target.host}: {type(exc).__name__}: {exc}"[:300]) \
            from None
    finally:
        conn.close()
