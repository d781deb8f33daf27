"""The ``url`` signal type: canonical form, entries, and URLs found in free text."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.errors import InvalidInput, LimitExceeded
from bastion.signals import get_signal_type
from bastion.signals.url import (
    MAX_URL_CHARS,
    UrlSignal,
    canonical_host,
    extract_urls,
    host_skeleton,
    parse_url,
    parse_url_entry,
    refang,
)


def canon(s: str) -> str:
    return str(parse_url(s))


# Issue 7, "Checked by": pairs that must be equal ...
EQUAL = [
    ("HTTP://Example.COM:80", "http://example.com/"),
    ("https://x.example:443/", "https://x.example/"),
    ("http://a.example/%7Euser", "http://a.example/~user"),
    ("http://a.example/%2f", "http://a.example/%2F"),
    ("bücher.example", "xn--bcher-kva.example"),
    # ... and our own
    ("http://a.example/a/./b/../c", "http://a.example/a/c"),
    ("http://a.example", "http://a.example/"),
    ("http://a.example/x#frag", "http://a.example/x"),
    ("http://user:pw@a.example/", "http://a.example/"),
    ("http://A.Example./", "http://a.example/"),
    ("http://0x7f.1/", "http://127.0.0.1/"),
    ("http://2130706433/", "http://127.0.0.1/"),
    ("http://[0:0:0:0:0:0:0:1]:80/", "http://[::1]/"),
    ("hxxps://evil[.]example/a", "https://evil.example/a"),
    ("http[:]//evil(.)example/a", "http://evil.example/a"),
    ("http://a.example\\b\\c", "http://a.example/b/c"),
    ("http://a.example/%41%62?%7e=%7e", "http://a.example/Ab?~=~"),
    ("http://a.example/é d", "http://a.example/%C3%A9%20d"),
    ("http://a.example/x?", "http://a.example/x"),
    ("http://ex%61mple.com/", "http://example.com/"),
    ("http://ＥＸＡＭＰＬＥ．com/", "http://example.com/"),
    ("example.com:443/x", "example.com/x"),
    ("http://a.example/%2e%2E/b", "http://a.example/b"),
]
# ... and pairs that must not.
DIFFERENT = [
    ("https://x.example:8443/", "https://x.example/"),
    ("http://a.example/a%2Fb", "http://a.example/a/b"),
    ("http://a.example/p?a=1&b=2", "http://a.example/p?b=2&a=1"),
    ("mastоdon.social", "mastodon.social"),
    ("http://a.example/", "https://a.example/"),
    ("http://www.a.example/", "http://a.example/"),
    ("http://a.example/x/", "http://a.example/x"),
    ("http://a.example/X", "http://a.example/x"),
    ("http://a.example/p?a=1&a=2", "http://a.example/p?a=2&a=1"),
    ("http://a.example:8080/", "http://a.example/"),
]


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_equal_pairs(a: str, b: str) -> None:
    assert canon(a) == canon(b)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_pairs(a: str, b: str) -> None:
    assert canon(a) != canon(b)


def test_canonical_strings() -> None:
    assert canon("HTTP://Example.COM:80") == "http://example.com/"
    assert canon("bücher.example") == "//xn--bcher-kva.example/"
    assert canon("example.com:8080/x") == "//example.com:8080/x"
    assert canon("http://a.example/a%2fb?q=%2f&z=1&a=2") == "http://a.example/a%2Fb?q=%2F&z=1&a=2"
    assert canon("mastоdon.social") == "//xn--mastdon-djg.social/"


def test_same_host_for_http_and_https() -> None:
    assert parse_url("http://a.example/").host == parse_url("https://a.example/").host


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "ftp://a.example/",
        "javascript:alert(1)",
        "http://",
        "http://a..example/",
        "http://a.example:99999/",
        "http://a.example:8x/",
        "http://[::1/",
        "http://exa mple.com/",
        "http://" + "a" * 64 + ".example/",
        "http://%ff.example/",
        "http://xn--zz.example/",
        "http://256.1.1.1/",
    ],
)
def test_invalid_urls_raise_invalid_input(bad: str) -> None:
    with pytest.raises(InvalidInput):
        parse_url(bad)


def test_length_limit() -> None:
    with pytest.raises(LimitExceeded):
        parse_url("http://a.example/" + "x" * MAX_URL_CHARS)
    with pytest.raises(InvalidInput):
        parse_url(123)  # type: ignore[arg-type]


def test_signal_type_registered_and_round_trips() -> None:
    st_ = get_signal_type("url")
    assert st_ is UrlSignal
    for ex in UrlSignal.examples:
        assert UrlSignal.parse(ex) == ex
        assert UrlSignal.parse(UrlSignal.format(ex)) == ex
    assert UrlSignal.distance("https://a.example/", "https://a.example/") == 0
    assert UrlSignal.distance("https://a.example/", "http://a.example/") == 1
    assert UrlSignal.default_threshold == 0


def test_confusable_skeletons() -> None:
    assert canonical_host("mastоdon.social") != "mastodon.social"
    assert host_skeleton("mastоdon.social") == host_skeleton("mastodon.social")
    assert host_skeleton(canonical_host("mastоdon.social")) == host_skeleton("mastodon.social")
    assert host_skeleton("examp1e.com") == host_skeleton("example.com")
    assert host_skeleton("rnastodon.social") == host_skeleton("mastodon.social")
    assert host_skeleton("example.com") != host_skeleton("exemple.com")


def test_refang() -> None:
    assert refang("hxxps://a[.]b(.)c[dot]d") == "https://a.b.c.d"
    assert refang("https://plain.example/") == "https://plain.example/"


# --- entries -----------------------------------------------------------------------------


def test_entry_defaults_and_columns() -> None:
    e = parse_url_entry("example.com/a")
    assert (e.match, e.scheme, e.query_order) == ("exact", "any", "keep")
    assert e.value == "//example.com/a"
    e = parse_url_entry("https://example.com/a", match="PREFIX", query_order="any")
    assert (e.match, e.scheme, e.query_order) == ("prefix", "https", "any")
    e = parse_url_entry("https://example.com/", scheme="any")
    assert e.scheme == "any"
    assert parse_url_entry("example.com", match="host").match == "host"


@pytest.mark.parametrize(
    ("value", "kwargs"),
    [
        ("example.com", {"match": "fuzzy"}),
        ("example.com", {"scheme": "ftp"}),
        ("https://example.com/", {"scheme": "http"}),
        ("example.com", {"query_order": "sorted"}),
        ("example.com/path", {"match": "host"}),
        ("example.com/?q=1", {"match": "host"}),
    ],
)
def test_entry_errors(value: str, kwargs: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        parse_url_entry(value, **kwargs)


# --- extraction from text ------------------------------------------------------------------


def found(text: str) -> list[str]:
    return [f.matched for f in extract_urls(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see https://a.example/x.", ["https://a.example/x"]),
        ("(https://a.example/y)", ["https://a.example/y"]),
        (
            "https://en.wikipedia.org/wiki/Python_(programming_language)",
            ["https://en.wikipedia.org/wiki/Python_(programming_language)"],
        ),
        ("(see https://en.wikipedia.org/wiki/A_(b))", ["https://en.wikipedia.org/wiki/A_(b)"]),
        ("go to evil.com/path, now!", ["evil.com/path"]),
        ("hxxp://bad[.]example/z and bad[.]com", ["hxxp://bad[.]example/z", "bad[.]com"]),
        ("mail bob@foo.com or first.london@x.org", []),
        ("file.txt, e.g. version 1.2.3 and node.js", []),
        ("visit www.foo.org; or https://x.example/a?b=1&c=2!", ["www.foo.org",
                                                               "https://x.example/a?b=1&c=2"]),
        ("a \"https://q.example/\" b <https://r.example/>", ["https://q.example/",
                                                             "https://r.example/"]),
        ("看这里https://a.example/x。谢谢", ["https://a.example/x"]),
        ("hidden abcdefghijklmnop.onion/x", ["abcdefghijklmnop.onion/x"]),
    ],
)
def test_extract_urls(text: str, expected: list[str]) -> None:
    assert found(text) == expected


def test_extract_spans_index_the_original() -> None:
    text = "x (https://a.example/y) and hxxp://b[.]example/"
    for f in extract_urls(text):
        assert text[f.span[0] : f.span[1]] == f.matched
    urls = [str(f.url) for f in extract_urls(text)]
    assert urls == ["https://a.example/y", "http://b.example/"]


def test_extract_limits() -> None:
    with pytest.raises(LimitExceeded):
        extract_urls("a" * 11, max_chars=10)
    with pytest.raises(LimitExceeded):
        extract_urls("https://a.example/ " * 4, max_urls=3)


# --- properties ----------------------------------------------------------------------------

_label = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,8}[a-zA-Z0-9])?", fullmatch=True)
_ulabel = st.text(alphabet="abcdeüöéßжфあ", min_size=1, max_size=8)
_path = st.lists(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/?#\\\t\n\r"),
            max_size=8),
    max_size=4,
).map(lambda parts: "/" + "/".join(parts))
_query = st.lists(st.text(alphabet="ab=%2f7E&+;é~", max_size=6), max_size=3).map("&".join)
_url = st.builds(
    lambda scheme, labels, port, path, query: (
        f"{scheme}{'.'.join(labels)}{port}{path}{'?' + query if query else ''}"
    ),
    st.sampled_from(["http://", "https://", "HTTPS://", "", "//"]),
    st.lists(st.one_of(_label, _ulabel), min_size=1, max_size=3),
    st.sampled_from(["", ":80", ":443", ":8080"]),
    _path,
    _query,
)


@settings(max_examples=300, deadline=None)
@given(_url)
def test_canonicalisation_is_idempotent(raw: str) -> None:
    try:
        once = canon(raw)
    except InvalidInput:
        return
    assert canon(once) == once
    assert UrlSignal.parse(UrlSignal.format(once)) == once


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_strings_never_crash(raw: str) -> None:
    try:
        once = canon(raw)
    except InvalidInput:
        return
    assert canon(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_extraction_never_crashes_and_spans_are_exact(text: str) -> None:
    for f in extract_urls(text):
        assert text[f.span[0] : f.span[1]] == f.matched
        assert canon(str(f.url)) == str(f.url)


# --- the quick rejection before the full extraction pattern ---------------------------------

_URL_PIECES = [
    "http://", "https://", "HTTPS://", "hxxp://", "hXXps://", "h**p://", "http[:]//",
    "hxxp[://]", "http:\\\\", "www.", "WWW.", "www[.]", "ww.", "example", "a-b", "x1", "[.]",
    "(.)", "{.}", "[dot]", "(DOT)", "[ dot ]", ".", "..", ".com", ".co.uk", ".onion", "/path",
    "?q=1", "#f", ":8080", "@", "user@", " ", "\n", "\u3000", "(", ")", "[", "]", "{", "}",
    ",", "!", "?", ":", ":/", "é", "bücher", "ру", ".рф", "你好", ".中国", "1.2.3.4", "_",
    "-", "~", "%2F", "\u200b", "。", "．",
]
def _check_regions(text: str) -> None:
    from bastion.signals.url import _URL_IN_TEXT_RE, _extract, _url_regions

    regions = _url_regions(text)
    for (_, e0), (s1, _) in itertools.pairwise(regions):
        assert e0 < s1
    for s, e in regions:
        assert s == 0 or text[s - 1] == " "
        assert e == len(text) or text[e] == " "
    for m in _URL_IN_TEXT_RE.finditer(text):
        assert any(s <= m.start() and m.end() <= e for s, e in regions)
    assert extract_urls(text) == _extract(text, 10_000, 8192)


_url_texts = st.lists(
    st.one_of(st.sampled_from(_URL_PIECES), st.characters(codec="utf-8")), max_size=40
).map("".join)


@settings(max_examples=600, deadline=None)
@given(_url_texts)
def test_quick_rejection_never_drops_a_url(text: str) -> None:
    """Every candidate of the full pattern lies in a region the quick search keeps, and
    extraction region by region equals the full pattern run over the whole text."""
    _check_regions(text)


@pytest.mark.parametrize(
    "text",
    ["see www[.]example[.]com now", "go to hxxp[://]bad.example/x", "http:\\\\a.example\\b",
     "site(dot)example(dot)org", "WWW.EXAMPLE.COM", "http://localhost:8080/x",
     "a http[:]//x.example b", "{.}", "x.y", "mail me at a@b.example", "www.123",
     "at www.1.2.3.4 now", "WwW._x"],
)
def test_quick_rejection_on_defanged_forms(text: str) -> None:
    _check_regions(text)
    _check_regions(f"x {text}\u3000y")


def test_remembered_hosts_give_the_same_answers() -> None:
    """Short hosts are remembered, errors never are; long hosts take the plain path."""
    for _ in range(2):
        assert canonical_host("Bücher.Example") == "xn--bcher-kva.example"
        with pytest.raises(InvalidInput):
            canonical_host("bad host.example")
    with pytest.raises(InvalidInput):
        canonical_host("a." * 150 + "example")  # 306 characters: over 253
    assert canonical_host("A" * 63 + ".example") == "a" * 63 + ".example"
