"""The ``url`` signal type: one canonical form per web address, and URLs found in free text.

Hotlines share lists of addresses where abuse material was found (the IWF URL List, Lantern);
a list entry must match the address however a user writes it, and a look-alike host must not
pass as the listed one. The canonical form (RFC 3986 section 6 normalisation, with the WHATWG
URL Standard's host and IPv4 rules where browsers are more lenient than the RFC)::

    scheme "://" host [":" port] path ["?" query]      e.g. https://xn--bcher-kva.example/a%2Fb?q=1
           "//"  host [":" port] path ["?" query]      no scheme given: stands for http and https

- scheme: ``http`` or ``https`` only, lower case; ``hxxp``/``hxxps`` (defanged) read as
  ``http``/``https``;
- host: lower case; percent-escapes decoded; internationalised names mapped with UTS #46
  (non-transitional) and encoded to A-labels with IDNA 2008 (``idna`` package), so
  ``bücher.example`` is ``xn--bcher-kva.example``; one trailing dot dropped; IPv4 in any form
  browsers accept (``0x7f.1``, ``2130706433``) written as dotted decimal; IPv6 compressed in
  brackets. A look-alike host (Cyrillic ``о`` for Latin ``o``) stays a *different* host: see
  :func:`host_skeleton` for how the index reports it as ``confusable``;
- user name and password dropped (``http://bank.example@evil.example/`` is evil.example);
- port: ``:80`` dropped for http, ``:443`` for https, either for a URL without scheme;
  other ports kept;
- path: empty is ``/``; ``\\`` read as ``/`` (as browsers do); percent-encoding normalised
  (unreserved characters ``A-Z a-z 0-9 - . _ ~`` decoded, other escapes in upper-case hex,
  reserved characters never decoded, so ``/a%2Fb`` stays different from ``/a/b``; characters
  not allowed in a URL, non-ASCII included, encoded as UTF-8); dot segments removed
  (RFC 3986 section 5.2.4); a ``%`` not starting an escape is written ``%25``;
- query: the same percent-encoding rules; parameter order and repeated keys kept; an empty
  query (a bare ``?``) dropped;
- fragment: dropped (never sent to the server).

``http`` and ``https`` URLs are different values with the same host; ``www.`` is never
stripped (a list entry can ask for host-wide matching instead, see :class:`UrlEntry`).

Errors: :class:`~bastion.errors.InvalidInput` for anything that is not an http(s) URL with a
valid host, :class:`~bastion.errors.LimitExceeded` past :data:`MAX_URL_CHARS` or
:data:`MAX_TEXT_CHARS`.

Sources: RFC 3986 (sections 3, 5.2.4, 6.2.2); WHATWG URL Standard (host parsing, IPv4
parser, special-scheme backslashes); UTS #46 and RFC 5891 (IDNA 2008) through ``idna``;
UTS #39 section 4 (confusable skeletons) with the data that ``confusable_homoglyphs`` ships
from Unicode's ``confusables.txt``; the Public Suffix List as bundled with ``tldextract``
(read offline, never fetched) to tell bare ``domain.tld`` names in text from file names.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.resources
import ipaddress
import json
import re
import unicodedata
from dataclasses import dataclass, replace
from typing import ClassVar, Literal

import idna

from bastion.errors import InvalidInput, LimitExceeded
from bastion.signals.base import SignalType, register

#: Longest URL accepted, in characters (browsers and servers commonly stop near 8 KB).
MAX_URL_CHARS = 8192
#: Longest text searched for URLs in one item, in characters.
MAX_TEXT_CHARS = 1_000_000
#: Most URLs taken from one item; more is refused (:class:`LimitExceeded`), never cut short.
MAX_URLS_PER_TEXT = 10_000
#: RFC 1035 limits (octets of the A-label form).
MAX_HOST_CHARS = 253
MAX_LABEL_CHARS = 63

Scheme = Literal["http", "https"]
SCHEMES: tuple[Scheme, ...] = ("http", "https")
DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443}

UrlMatchMode = Literal["exact", "prefix", "host"]
SchemeRule = Literal["any", "http", "https"]
QueryOrder = Literal["keep", "any"]
URL_MATCH_MODES: tuple[UrlMatchMode, ...] = ("exact", "prefix", "host")
SCHEME_RULES: tuple[SchemeRule, ...] = ("any", "http", "https")
QUERY_ORDERS: tuple[QueryOrder, ...] = ("keep", "any")

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SUB_DELIMS = "!$&'()*+,;="
# Characters kept literally (RFC 3986 pchar; query adds "/" and "?").
_PATH_SAFE = frozenset("".join(_UNRESERVED) + _SUB_DELIMS + ":@/")
_QUERY_SAFE = _PATH_SAFE | frozenset("?")
_HEX = "0123456789ABCDEF"

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_HOST_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]*[a-z0-9_])?|[a-z0-9_]")
_PCT_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_C0_SPACE = "".join(chr(i) for i in range(0x21))


def _percent_encode_char(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))


def _make_pct_re(safe: frozenset[str]) -> re.Pattern[str]:
    # Everything that may need rewriting: an escape, a stray "%", or a character outside safe.
    cls = "".join(re.escape(c) for c in sorted(safe))
    return re.compile(r"%[0-9A-Fa-f]{2}|%|[^" + cls + "]")


_PATH_FIX_RE = _make_pct_re(_PATH_SAFE)
_QUERY_FIX_RE = _make_pct_re(_QUERY_SAFE)


def _fix_escape(m: re.Match[str]) -> str:
    s = m.group()
    if len(s) == 3:
        ch = chr(int(s[1:], 16))
        return ch if ch in _UNRESERVED else "%" + s[1:].upper()
    if s == "%":
        return "%25"
    return _percent_encode_char(s)


def normalize_percent_encoding(component: str, *, query: bool = False) -> str:
    """Normalise the percent-encoding of a path (or, with ``query=True``, a query).

    Escapes of unreserved characters are decoded (``%7E`` -> ``~``), other escapes
    upper-cased (``%2f`` -> ``%2F``), reserved characters left as they are (an escaped
    ``%2F`` stays escaped), and characters not allowed there encoded as UTF-8 (a space is
    ``%20``, ``é`` is ``%C3%A9``). RFC 3986 section 6.2.2.2. Pure; never raises.
    """
    return (_QUERY_FIX_RE if query else _PATH_FIX_RE).sub(_fix_escape, component)


def remove_dot_segments(path: str) -> str:
    """Remove ``.`` and ``..`` segments from an absolute path (RFC 3986 section 5.2.4).

    ``"/a/b/../c/./d"`` -> ``"/a/c/d"``; ``"/a/.."`` -> ``"/"``; never climbs above the root.
    """
    if "." not in path:
        return path
    segments = path.split("/")[1:]
    out: list[str] = []
    last = len(segments) - 1
    for i, seg in enumerate(segments):
        if seg == ".":
            if i == last:
                out.append("")
        elif seg == "..":
            if out:
                out.pop()
            if i == last:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)


# --- hosts ------------------------------------------------------------------------------


_IPV4_DIGITS = {10: "0123456789", 16: "0123456789abcdefABCDEF", 8: "01234567"}


def _parse_ipv4_number(part: str) -> int | None:
    """WHATWG IPv4 number parser: decimal, ``0x`` hex or leading-zero octal; None if not one."""
    if part == "":
        return None
    base = 10
    if part[:2] in ("0x", "0X"):
        part, base = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        part, base = part[1:], 8
    if part == "":
        return 0
    if part.strip(_IPV4_DIGITS[base]):  # a character that is not a digit of the base
        return None
    return int(part, base)


def _ends_in_number(host: str) -> bool:
    """WHATWG "ends in a number checker": the last label is digits or a 0x-hex number."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    last = parts[-1]
    if last and not last.strip("0123456789"):
        return True
    return _parse_ipv4_number(last) is not None and last[:2] in ("0x", "0X")


def _parse_ipv4(host: str) -> str:
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        raise InvalidInput(f"invalid IPv4 address {host!r}")
    numbers: list[int] = []
    for p in parts:
        n = _parse_ipv4_number(p)
        if n is None:
            raise InvalidInput(f"invalid IPv4 address {host!r}")
        numbers.append(n)
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise InvalidInput(f"IPv4 address out of range {host!r}")
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n * 256 ** (3 - i)
    return str(ipaddress.IPv4Address(value))


#: Hosts up to this long have their canonical form remembered (the same hosts recur in
#: posts); a host that does not canonicalise is never remembered (the error is raised again).
_CACHED_HOST_CHARS = 255


def canonical_host(host: str) -> str:
    """Canonical form of a host name or address (see the module docstring).

    Returns lower-case ASCII: A-labels for internationalised names, dotted decimal for
    IPv4, ``[compressed]`` for IPv6. Raises :class:`InvalidInput` for an empty host, a
    character not allowed in a host, a label that IDNA 2008 rejects, or a name longer than
    253 characters (63 per label).
    """
    if len(host) <= _CACHED_HOST_CHARS:
        return _canonical_host_cached(host)
    return _canonical_host(host)


@functools.lru_cache(maxsize=16384)
def _canonical_host_cached(host: str) -> str:
    return _canonical_host(host)


def _canonical_host(host: str) -> str:
    if host.startswith("["):
        if not host.endswith("]"):
            raise InvalidInput(f"unterminated IPv6 address {host!r}")
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise InvalidInput(f"invalid IPv6 address {host!r}") from None
    if "%" in host:
        if "%" in _PCT_ESCAPE_RE.sub("", host):
            raise InvalidInput(f"stray '%' in host {host!r}")
        try:
            host = _decode_host_escapes(host)
        except UnicodeDecodeError:
            raise InvalidInput(f"host {host!r} escapes are not UTF-8") from None
    if not host.isascii():
        try:
            host = idna.uts46_remap(host, std3_rules=False, transitional=False)
        except (idna.IDNAError, UnicodeError, ValueError) as exc:
            raise InvalidInput(f"invalid international host name {host!r}: {exc}") from None
    host = host.lower()
    if host.endswith(".") and len(host) > 1:
        host = host[:-1]
    if not host:
        raise InvalidInput("empty host")
    if _ends_in_number(host):
        return _parse_ipv4(host)
    labels = host.split(".")
    out: list[str] = []
    for label in labels:
        if not label:
            raise InvalidInput(f"empty label in host {host!r}")
        if not label.isascii():
            try:
                label = idna.alabel(label).decode("ascii")
            except (idna.IDNAError, UnicodeError, ValueError) as exc:
                raise InvalidInput(f"label {label!r} rejected by IDNA 2008: {exc}") from None
        elif label.startswith("xn--"):
            try:
                idna.ulabel(label)
            except (idna.IDNAError, UnicodeError, ValueError) as exc:
                raise InvalidInput(f"invalid punycode label {label!r}: {exc}") from None
        if len(label) > MAX_LABEL_CHARS or not _HOST_LABEL_RE.fullmatch(label):
            raise InvalidInput(f"invalid host label {label!r}")
        out.append(label)
    result = ".".join(out)
    if len(result) > MAX_HOST_CHARS:
        raise InvalidInput(f"host longer than {MAX_HOST_CHARS} characters")
    return result


def _decode_host_escapes(host: str) -> str:
    out = bytearray()
    i = 0
    while i < len(host):
        m = _PCT_ESCAPE_RE.match(host, i)
        if m:
            out.append(int(m.group(1), 16))
            i = m.end()
        else:
            out.extend(host[i].encode("utf-8", "surrogatepass"))
            i += 1
    return out.decode("utf-8")


@functools.lru_cache(maxsize=65536)
def host_to_unicode(host: str) -> str:
    """The display form of a canonical host: A-labels decoded to Unicode (U-labels).

    Labels that do not decode are kept as they are; never raises.
    """
    if "xn--" not in host:
        return host
    labels = []
    for label in host.split("."):
        if label.startswith("xn--"):
            with contextlib.suppress(idna.IDNAError, UnicodeError, ValueError):
                label = idna.ulabel(label)
        labels.append(label)
    return ".".join(labels)


# --- confusable skeletons (UTS #39) -----------------------------------------------------


@functools.cache
def confusable_prototypes() -> dict[int, str]:
    """Map code point -> prototype string, from ``confusable_homoglyphs``'s copy of
    Unicode's ``confusables.txt``.

    That package stores each ``source ; prototype`` pair in both directions, so a source
    has exactly one neighbour (its prototype) and a prototype usually several (its
    sources). A character with several neighbours is a prototype and maps to itself; one
    with a single neighbour maps to that neighbour when the neighbour has several or is a
    multi-character prototype (``m`` -> ``rn``); two characters linked only to each other
    both map to the smaller. Directional marks wrapped around right-to-left characters in
    that data are removed. Only equality of skeletons is ever used.
    """
    # The package's data file is read directly: importing its modules also loads unrelated
    # script tables (about 0.3 s).
    data = importlib.resources.files("confusable_homoglyphs").joinpath("confusables.json")
    raw: dict[str, list[dict[str, str]]] = json.loads(data.read_text(encoding="utf-8"))
    strip = str.maketrans("", "", "\u200e\u200f")
    graph: dict[str, set[str]] = {}
    for key, alts in raw.items():
        k = key.translate(strip)
        for a in alts:
            c = a["c"].translate(strip)
            if c and k and c != k:
                graph.setdefault(k, set()).add(c)
                graph.setdefault(c, set()).add(k)
    table: dict[int, str] = {}
    for ch, nbrs in graph.items():
        if len(ch) != 1 or len(nbrs) != 1:
            continue
        (other,) = nbrs
        if len(other) > 1 or len(graph.get(other, ())) > 1 or other < ch:
            table[ord(ch)] = other
    return table


def _skeleton_once(s: str) -> str:
    table = confusable_prototypes()
    s = unicodedata.normalize("NFD", s)
    return unicodedata.normalize("NFD", s.translate(table))


@functools.lru_cache(maxsize=65536)
def host_skeleton(host: str) -> str:
    """Confusable skeleton of a host (UTS #39 section 4, adapted to case-insensitive hosts).

    Two hosts that look alike have the same skeleton: ``mastodon.social`` and
    ``mastоdon.social`` (Cyrillic ``о``), ``examp1e.com`` and ``example.com``,
    ``rnastodon.social`` and ``mastodon.social``. ``host`` may be canonical (A-labels) or
    Unicode. The skeleton is for comparison only: never shown, never stored.
    """
    u = host_to_unicode(host)
    return _skeleton_once(_skeleton_once(u).casefold())


# --- canonical URLs ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CanonicalUrl:
    """A URL in canonical form (module docstring). ``str(url)`` is the canonical string.

    ``scheme`` is ``None`` when the URL was written without one (stands for both http and
    https); ``host`` is canonical ASCII; ``port`` is ``None`` for the scheme's default;
    ``path`` starts with ``/``; ``query`` excludes the ``?`` and is ``None`` when absent.
    """

    scheme: Scheme | None
    host: str
    port: int | None
    path: str
    query: str | None

    def __str__(self) -> str:
        head = f"{self.scheme}://" if self.scheme else "//"
        port = f":{self.port}" if self.port is not None else ""
        query = f"?{self.query}" if self.query is not None else ""
        return f"{head}{self.host}{port}{self.path}{query}"

    @property
    def authority(self) -> str:
        """``host[:port]`` as in the canonical string."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def host_unicode(self) -> str:
        """The host for display, with U-labels (``bücher.example``)."""
        return host_to_unicode(self.host)

    def sorted_query(self) -> str | None:
        """The query with its ``&``-separated parameters sorted (for ``query_order=any``)."""
        if self.query is None:
            return None
        return "&".join(sorted(self.query.split("&")))

    def with_host(self, host: str) -> CanonicalUrl:
        """The same URL on another (canonical) host."""
        return replace(self, host=host)


_DEFANG_RE = re.compile(
    r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\[:\]|\[://\]|\[/\]", re.IGNORECASE
)
_DEFANG_MAP = {"[.]": ".", "(.)": ".", "{.}": ".", "[dot]": ".", "(dot)": ".", "[:]": ":",
               "[://]": "://", "[/]": "/"}
_HXXP_RE = re.compile(r"^h(?:xx|XX|Xx|xX|\*\*|tt)p(s?)(?=:|\[)", re.IGNORECASE)


def refang(text: str) -> str:
    """Undo common defanging: ``hxxp`` -> ``http``, ``[.]``/``(.)``/``{.}``/``[dot]`` ->
    ``.``, ``[:]`` -> ``:``, ``[://]`` -> ``://``. Pure; never raises."""
    text = _HXXP_RE.sub(lambda m: "http" + m.group(1).lower(), text)
    if "[" in text or "(" in text or "{" in text:
        text = _DEFANG_RE.sub(lambda m: _DEFANG_MAP[m.group().lower()], text)
    return text


def parse_url(value: str, *, max_chars: int = MAX_URL_CHARS) -> CanonicalUrl:
    """Parse ``value`` (an http(s) URL, possibly without scheme or defanged) into its
    canonical form.

    ``"HTTP://Example.COM:80"`` -> ``http://example.com/``; ``"example.com/x"`` ->
    ``//example.com/x``. Raises :class:`InvalidInput` for a non-http(s) scheme, a missing
    or invalid host, a port outside 0-65535; :class:`LimitExceeded` for more than
    ``max_chars`` characters.
    """
    if not isinstance(value, str):
        raise InvalidInput("a URL must be a string")
    if len(value) > max_chars:
        raise LimitExceeded(f"URL longer than {max_chars} characters")
    s = value.strip(_C0_SPACE)
    if "\t" in s or "\n" in s or "\r" in s:
        s = s.replace("\t", "").replace("\n", "").replace("\r", "")
    if not s:
        raise InvalidInput("empty URL")
    s = refang(s)
    scheme: Scheme | None = None
    m = _SCHEME_RE.match(s)
    rest = s
    if m:
        name = m.group(1).lower()
        after = s[m.end():]
        if name in DEFAULT_PORTS:
            scheme = "http" if name == "http" else "https"
            rest = after.lstrip("/\\")
        elif after[:2] in ("//", "\\\\", "/\\", "\\/") or not _looks_like_port(after):
            raise InvalidInput(f"unsupported URL scheme {name!r} (only http and https)")
    else:
        if rest[:2] in ("//", "\\\\", "/\\", "\\/"):
            rest = rest[2:]
    # Fragment, then query, then authority / path. Backslashes act as "/" before the query.
    rest = rest.split("#", 1)[0]
    before_q, sep, query = rest.partition("?")
    before_q = before_q.replace("\\", "/")
    authority, slash, path = before_q.partition("/")
    path = slash + path
    if "@" in authority:
        authority = authority.rsplit("@", 1)[1]
    host, port = _split_port(authority)
    host = canonical_host(host)
    default_ports = (80, 443) if scheme is None else (DEFAULT_PORTS[scheme],)
    if port in default_ports:
        port = None
    path = remove_dot_segments(normalize_percent_encoding(path)) if path else "/"
    if not path.startswith("/"):
        path = "/" + path
    q: str | None = normalize_percent_encoding(query, query=True) if sep and query else None
    return CanonicalUrl(scheme, host, port, path, q)


def _looks_like_port(after: str) -> bool:
    # "example.com:8080/x" has no scheme: what follows the first ":" is a port.
    digits = after.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return digits.isdigit() or digits == ""


def _split_port(authority: str) -> tuple[str, int | None]:
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise InvalidInput("unterminated IPv6 address")
        host, tail = authority[: end + 1], authority[end + 1 :]
        if tail and not tail.startswith(":"):
            raise InvalidInput(f"unexpected {tail!r} after IPv6 address")
        port_s = tail[1:]
    else:
        host, _, port_s = authority.partition(":")
        if ":" in port_s:
            raise InvalidInput(f"invalid authority {authority!r}")
    if port_s == "":
        return host, None
    if not port_s.isdigit() or not port_s.isascii() or len(port_s) > 5 or int(port_s) > 65535:
        raise InvalidInput(f"invalid port {port_s!r}")
    return host, int(port_s)


# --- the signal type and list entries ----------------------------------------------------


@register
class UrlSignal(SignalType):
    """A web address in canonical form (module docstring); ``parse`` canonicalises.

    Distance: 0 when the canonical strings are equal, else 1 (threshold 0): partial matches
    (prefix, host-wide, look-alike host) are a list entry's choice, made in
    :class:`UrlEntry` and :mod:`bastion.index.url`, not a distance.
    """

    name = "url"
    default_threshold = 0
    examples = ("https://example.com/", "//xn--bcher-kva.example/a%2Fb?q=1&q=2")

    @classmethod
    def parse(cls, value: str) -> str:
        return str(parse_url(value))

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return 0 if a == b else 1


@dataclass(frozen=True, slots=True)
class UrlEntry:
    """A URL list entry: the canonical URL and how it matches (import columns).

    ``match``: ``exact`` (the whole canonical URL), ``prefix`` (URLs under it, respecting
    path boundaries: ``/a`` covers ``/a``, ``/a/b`` and ``/a?x`` but not ``/ab``), or
    ``host`` (every URL on the host or any of its subdomains). ``scheme``: ``any`` (default
    for entries written without one), ``http`` or ``https``. ``query_order``: ``keep``
    (parameter order matters, default) or ``any``.
    """

    url: CanonicalUrl
    match: UrlMatchMode = "exact"
    scheme: SchemeRule = "any"
    query_order: QueryOrder = "keep"

    kinds: ClassVar[tuple[str, ...]] = URL_MATCH_MODES

    @property
    def value(self) -> str:
        """The canonical URL string stored as the entry's signal value."""
        return str(self.url)


def parse_url_entry(
    value: str,
    *,
    match: str | None = None,
    scheme: str | None = None,
    query_order: str | None = None,
) -> UrlEntry:
    """Validate one URL list row: ``value`` plus the optional ``match``, ``scheme`` and
    ``query_order`` columns (empty or None = default).

    The scheme rule defaults to the URL's own scheme, or ``any`` when it has none; an
    explicit rule that contradicts the URL's scheme is an error. Host entries name a host
    only (path ``/``, no query). Raises :class:`InvalidInput` naming the column at fault.
    """
    url = parse_url(value)
    mode = (match or "exact").strip().lower()
    if mode not in URL_MATCH_MODES:
        raise InvalidInput(f"match must be one of {', '.join(URL_MATCH_MODES)}, got {match!r}")
    rule = (scheme or "").strip().lower() or (url.scheme or "any")
    if rule not in SCHEME_RULES:
        raise InvalidInput(f"scheme must be one of {', '.join(SCHEME_RULES)}, got {scheme!r}")
    if url.scheme is not None and rule not in ("any", url.scheme):
        raise InvalidInput(f"scheme {rule!r} contradicts the URL's own scheme {url.scheme!r}")
    order = (query_order or "keep").strip().lower()
    if order not in QUERY_ORDERS:
        raise InvalidInput(f"query_order must be keep or any, got {query_order!r}")
    if mode == "host" and (url.path != "/" or url.query is not None):
        raise InvalidInput("a host entry names a host only (no path or query)")
    return UrlEntry(url, mode, rule, order)


# --- finding URLs in free text ----------------------------------------------------------

#: Extra top-level names accepted for bare ``name.tld`` in text besides the Public Suffix
#: List: RFC 2606 reserved names and special-use names of hidden services (RFC 7686).
EXTRA_TLDS = frozenset({"example", "test", "onion", "i2p"})

_STOP = r"\s<>\"`{}|\^\u3000-\u303f\uff01\uff0c\uff1a\uff1b\uff1f\uff08\uff09"
_DOT = r"(?:\.|\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\))"
_URL_IN_TEXT_RE = re.compile(
    # 1: with a scheme (possibly defanged); everything up to a space or a stop character.
    r"(?<![A-Za-z0-9])(?:h(?:tt|xx|\*\*)ps?(?::|\[:\])(?://|\\\\)|h(?:tt|xx)ps?\[://\])"
    r"[^" + _STOP + r"]+"
    # 2: www. without a scheme.
    r"|(?<![\w@.\-])www" + _DOT + r"[^" + _STOP + r"]+"
    # 3: bare name.tld[:port][/path]: not inside a word or an e-mail address.
    r"|(?<![\w@.\-/])(?:[\w\-]++" + _DOT + r")++[^\W\d_]{2,63}(?![\w@\-])"
    r"(?::\d{1,5})?(?:[/?#][^" + _STOP + r"]*)?",
    re.IGNORECASE,
)
# Every match of _URL_IN_TEXT_RE contains an "anchor": a "." before a letter or after "www"
# (bare names, www. names), ":/", ":\\" or "[:" (schemes, also defanged) or a bracketed dot
# ("[.]", "(dot)" ...). No match contains white space (\s). So the full pattern needs to
# run only on stretches of text that hold an anchor and start and end at a space (or the
# text's ends): _url_regions finds them with a character test and short patterns with a
# literal first character, and most texts have none.
_ANCHOR_DOT_RE = re.compile(r"\.(?:(?=[^\W\d_])|(?<=[wW][wW][wW]\.))")
_ANCHOR_SCHEME_RE = re.compile(r":[/\\]|\[:")
_ANCHOR_BRACKET_RE = re.compile(r"[\[\(\{](?:\.|[dD][oO][tT])[\]\)\}]")


def _url_regions(text: str) -> list[tuple[int, int]]:
    """Disjoint ``[start, end)`` stretches of ``text``, in order, each beginning at the
    text's start or after a space and ending at its end or before a space, that together
    hold every anchor (so every match of :data:`_URL_IN_TEXT_RE`)."""
    anchors: list[int] = []
    if "." in text:
        anchors += [m.start() for m in _ANCHOR_DOT_RE.finditer(text)]
    if ":" in text:
        anchors += [m.start() for m in _ANCHOR_SCHEME_RE.finditer(text)]
    if "[" in text or "(" in text or "{" in text:
        anchors += [m.start() for m in _ANCHOR_BRACKET_RE.finditer(text)]
    if not anchors:
        return []
    anchors.sort()
    n = len(text)
    regions: list[tuple[int, int]] = []
    end = -1
    for p in anchors:
        if p < end:
            continue
        start = text.rfind(" ", 0, p) + 1
        end = text.find(" ", p)
        if end < 0:
            end = n
        regions.append((start, end))
    return regions


_SCHEME_PREFIX_RE = re.compile(r"h(?:tt|xx|\*\*)ps?(?:\[?:)", re.IGNORECASE)
_TRAILING = ".,;:!?'\"*"
_PAIRS = {")": "(", "]": "[", "}": "{"}


@dataclass(frozen=True, slots=True)
class FoundUrl:
    """A URL found in text: ``span`` is ``[start, end)`` in code points of the original
    text, ``matched`` the original characters there, ``url`` the canonical form."""

    span: tuple[int, int]
    matched: str
    url: CanonicalUrl


def _trim(candidate: str) -> str:
    while candidate:
        last = candidate[-1]
        unbalanced = last in _PAIRS and candidate.count(_PAIRS[last]) < candidate.count(last)
        if not (last in _TRAILING or unbalanced):
            break
        candidate = candidate[:-1]
    return candidate


@functools.cache
def _suffix_extractor() -> object:
    import tldextract

    # Bundled Public Suffix List snapshot only: no download, no cache directory.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def _known_tld(host: str) -> bool:
    last = host.rsplit(".", 1)[-1]
    if last in EXTRA_TLDS:
        return True
    ext = _suffix_extractor()(host)  # type: ignore[operator]
    return bool(ext.suffix) and bool(ext.domain)


def extract_urls(
    text: str,
    *,
    max_chars: int = MAX_TEXT_CHARS,
    max_urls: int = MAX_URLS_PER_TEXT,
    max_url_chars: int = MAX_URL_CHARS,
) -> list[FoundUrl]:
    """Find the URLs in free text, in order of position.

    Finds ``http(s)://...`` (also defanged ``hxxp://``, ``http[:]//``), ``www.``-names and
    bare ``name.tld/path`` whose last label is a public suffix (``tldextract``'s bundled
    list) or in :data:`EXTRA_TLDS`; ``[.]``, ``(.)`` and ``[dot]`` read as dots. Trailing
    ``.,;:!?`` and an unbalanced closing ``)``/``]``/``}`` are not part of a URL; balanced
    parentheses are (``.../Python_(programming_language)``). Names after ``@`` (e-mail
    addresses) are not URLs. Candidates that do not canonicalise are not URLs.

    Raises :class:`LimitExceeded` for text over ``max_chars`` characters or with more than
    ``max_urls`` URLs (refused whole, never cut short). A candidate longer than
    ``max_url_chars`` is not read as a URL.
    """
    if not isinstance(text, str):
        raise InvalidInput("text must be a string")
    if len(text) > max_chars:
        raise LimitExceeded(f"text longer than {max_chars} characters")
    found: list[FoundUrl] = []
    for start, end in _url_regions(text):
        _extract(text, max_urls, max_url_chars, found, start, end)
    return found


def _extract(
    text: str,
    max_urls: int,
    max_url_chars: int,
    found: list[FoundUrl] | None = None,
    pos: int = 0,
    endpos: int | None = None,
) -> list[FoundUrl]:
    """:func:`extract_urls` without its checks, on ``text[pos:endpos]`` (from a space to a
    space) or the whole text, appending to ``found``."""
    if found is None:
        found = []
    for m in _URL_IN_TEXT_RE.finditer(text, pos, len(text) if endpos is None else endpos):
        candidate = _trim(m.group())
        if not candidate:
            continue
        start = m.start()
        bare = candidate[:1] not in "hH" or not _SCHEME_PREFIX_RE.match(candidate)
        try:
            url = parse_url(candidate, max_chars=max_url_chars)
        except InvalidInput:
            continue
        if bare and not (url.host.startswith("www.") or _known_tld(url.host)):
            continue
        found.append(FoundUrl((start, start + len(candidate)), candidate, url))
        if len(found) > max_urls:
            raise LimitExceeded(f"more than {max_urls} URLs in one text")
    return found
