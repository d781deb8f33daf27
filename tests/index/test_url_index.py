"""URL list matching: exact, prefix, host and look-alike hosts; updates in place."""

from __future__ import annotations

import random

import pytest

from bastion.errors import InvalidInput, LimitExceeded
from bastion.index.url import UrlIndex
from bastion.signals.url import parse_url, parse_url_entry


def kinds(idx: UrlIndex[str], url: str) -> list[tuple[str, str]]:
    return sorted((m.key, m.kind) for m in idx.match(url))


def test_exact_entries() -> None:
    idx: UrlIndex[str] = UrlIndex()
    idx.add("e", parse_url_entry("HTTP://Example.COM:80"))
    assert kinds(idx, "http://example.com/") == [("e", "exact")]
    assert kinds(idx, "http://example.com/x") == []
    assert kinds(idx, "https://example.com/") == []  # the entry has scheme http
    idx.add("s", parse_url_entry("https://x.example:443/"))
    assert kinds(idx, "https://x.example/") == [("s", "exact")]
    assert kinds(idx, "https://x.example:8443/") == []
    idx.add("p", parse_url_entry("a.example/%7Euser"))
    assert kinds(idx, "https://a.example/~user") == [("p", "exact")]
    assert kinds(idx, "a.example/~user") == [("p", "exact")]
    idx.add("r", parse_url_entry("a.example/a%2fb"))
    assert kinds(idx, "http://a.example/a%2Fb") == [("r", "exact")]
    assert kinds(idx, "http://a.example/a/b") == []


def test_query_order() -> None:
    idx: UrlIndex[str] = UrlIndex()
    idx.add("keep", parse_url_entry("q.example/s?a=1&b=2"))
    idx.add("any", parse_url_entry("r.example/s?a=1&b=2", query_order="any"))
    assert kinds(idx, "q.example/s?a=1&b=2") == [("keep", "exact")]
    assert kinds(idx, "q.example/s?b=2&a=1") == []
    assert kinds(idx, "r.example/s?b=2&a=1") == [("any", "exact")]
    assert kinds(idx, "r.example/s?a=1&b=2") == [("any", "exact")]
    assert kinds(idx, "r.example/s?a=1") == []


def test_prefix_respects_path_boundaries() -> None:
    idx: UrlIndex[str] = UrlIndex()
    idx.add("a", parse_url_entry("https://x.example/a", match="prefix"))
    idx.add("q", parse_url_entry("x.example/p?id=1", match="prefix"))
    assert kinds(idx, "https://x.example/a") == [("a", "prefix")]
    assert kinds(idx, "https://x.example/a/") == [("a", "prefix")]
    assert kinds(idx, "https://x.example/a/b/c?d=1") == [("a", "prefix")]
    assert kinds(idx, "https://x.example/a?x") == [("a", "prefix")]
    assert kinds(idx, "https://x.example/ab") == []
    assert kinds(idx, "https://x.example/") == []
    assert kinds(idx, "http://x.example/a/b") == []
    assert kinds(idx, "x.example/p?id=1&x=2") == [("q", "prefix")]
    assert kinds(idx, "x.example/p?id=10") == []


def test_host_entries_cover_subdomains() -> None:
    idx: UrlIndex[str] = UrlIndex()
    idx.add("h", parse_url_entry("example.org", match="host"))
    idx.add("w", parse_url_entry("www.example.net", match="host"))
    assert kinds(idx, "https://example.org/anything?x") == [("h", "host")]
    assert kinds(idx, "http://deep.sub.example.org:8080/") == [("h", "host")]
    assert kinds(idx, "https://notexample.org/") == []
    assert kinds(idx, "https://example.org.evil.example/") == []
    assert kinds(idx, "https://example.net/") == []  # www. is never stripped
    assert kinds(idx, "https://a.www.example.net/") == [("w", "host")]


def test_confusable_hosts() -> None:
    idx: UrlIndex[str] = UrlIndex()
    idx.add("m", parse_url_entry("mastodon.social"))
    idx.add("h", parse_url_entry("example.org", match="host"))
    (m,) = idx.match("mastоdon.social")  # Cyrillic о
    assert (m.key, m.kind) == ("m", "confusable")
    assert (m.host, m.listed_host) == ("mastоdon.social", "mastodon.social")
    assert m.canonical == "//xn--mastdon-djg.social/"
    assert m.listed == "//mastodon.social/"
    assert m.to_json()["kind"] == "confusable"
    (m,) = idx.match("https://sub.examp1e.org/x")
    assert (m.key, m.kind, m.listed_host) == ("h", "confusable", "example.org")
    assert kinds(idx, "https://mastodon.social/") == [("m", "exact")]
    assert kinds(idx, "https://mastodon.social/other") == []
    assert kinds(idx, "https://exemple.org/") == []


def test_add_remove_replace_in_place() -> None:
    idx: UrlIndex[str] = UrlIndex()
    e = parse_url_entry("a.example/x")
    idx.add("k", e)
    idx.add("k2", e)
    assert kinds(idx, "a.example/x") == [("k", "exact"), ("k2", "exact")]
    assert idx.remove("k")
    assert not idx.remove("k")
    assert kinds(idx, "a.example/x") == [("k2", "exact")]
    idx.add("k2", parse_url_entry("a.example/y"))
    assert kinds(idx, "a.example/x") == []
    assert kinds(idx, "a.example/y") == [("k2", "exact")]
    assert idx.remove("k2")
    assert len(idx) == 0
    assert kinds(idx, "a.exаmple/y") == []  # no skeleton left behind


def test_limits_and_errors() -> None:
    idx: UrlIndex[int] = UrlIndex(max_entries=2)
    idx.add(1, parse_url_entry("a.example"))
    idx.add(2, parse_url_entry("b.example"))
    with pytest.raises(LimitExceeded):
        idx.add(3, parse_url_entry("c.example"))
    idx.add(2, parse_url_entry("d.example"))  # replacing is not growing
    with pytest.raises(InvalidInput):
        idx.match("ftp://a.example/")


def _brute(entries: dict[int, object], url: str) -> set[int]:
    q = parse_url(url)
    out: set[int] = set()
    for key, e in entries.items():
        u = e.url  # type: ignore[attr-defined]
        if e.scheme != "any" and q.scheme is not None and e.scheme != q.scheme:  # type: ignore[attr-defined]
            continue
        if e.match == "host":  # type: ignore[attr-defined]
            if (q.host == u.host or q.host.endswith("." + u.host)) and (
                u.port is None or u.port == q.port
            ):
                out.add(key)
        elif e.match == "prefix":  # type: ignore[attr-defined]
            ql = f"{q.authority}{q.path}" + (f"?{q.query}" if q.query else "")
            ul = f"{u.authority}{u.path}" + (f"?{u.query}" if u.query else "")
            if ql == ul or (
                ql.startswith(ul)
                and (ul.endswith("/") or ql[len(ul)] in "/?" or ("?" in ul and ql[len(ul)] == "&"))
            ):
                out.add(key)
        elif e.query_order == "any":  # type: ignore[attr-defined]
            if (q.authority, q.path, q.sorted_query()) == (u.authority, u.path, u.sorted_query()):
                out.add(key)
        elif (q.authority, q.path, q.query) == (u.authority, u.path, u.query):
            out.add(key)
    return out


def test_against_brute_force_oracle() -> None:
    rng = random.Random(7)
    hosts = ["a.example", "b.a.example", "c.example", "a.example:8080"]
    paths = ["/", "/x", "/x/", "/x/y", "/xy", "/x/y/z"]
    queries = ["", "?p=1", "?p=1&q=2", "?q=2&p=1"]
    entries: dict[int, object] = {}
    idx: UrlIndex[int] = UrlIndex()
    for key in range(120):
        mode = rng.choice(["exact", "prefix", "host"])
        host = rng.choice(hosts)
        scheme = rng.choice(["", "http://", "https://"])
        if mode == "host":
            raw = scheme + host
        else:
            raw = scheme + host + rng.choice(paths) + rng.choice(queries)
        e = parse_url_entry(raw, match=mode, query_order=rng.choice(["keep", "any"]))
        entries[key] = e
        idx.add(key, e)
    for _ in range(400):
        url = (rng.choice(["", "http://", "https://"]) + rng.choice(hosts) + rng.choice(paths)
               + rng.choice(queries))
        got = {m.key for m in idx.match(url) if m.kind != "confusable"}
        assert got == _brute(entries, url), url
