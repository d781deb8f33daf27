"""Keyword list matching on normalised text; spans in the original; updates in place."""

from __future__ import annotations

import re
import threading
import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.errors import LimitExceeded
from bastion.index.keyword import KeywordIndex
from bastion.signals.keyword import parse_keyword_entry


def hits(idx: KeywordIndex[str], text: str) -> list[tuple[str, str]]:
    return [(m.key, m.matched) for m in idx.match(text)]


@pytest.fixture
def example() -> KeywordIndex[str]:
    idx: KeywordIndex[str] = KeywordIndex()
    idx.add("word", parse_keyword_entry("example"))
    return idx


# Issue 7, "Checked by": all of these match the entry "example" ...
@pytest.mark.parametrize(
    "text",
    ["ｅｘａｍｐｌｅ", "exa\u200bmple", "EXAMPLE", "e x a m p l e", "3xampl3", "An Example."],
)
def test_evasions_match(example: KeywordIndex[str], text: str) -> None:
    (m,) = example.match(text)
    s, e = m.span
    assert text[s:e] == m.matched
    assert normalised_letters(m.matched) == "example"


def normalised_letters(s: str) -> str:
    return re.sub(r"[^a-z]", "", unicodedata.normalize("NFKC", s).lower().replace("3", "e"))


def test_words_and_prefixes(example: KeywordIndex[str]) -> None:
    assert hits(example, "examples") == []
    assert hits(example, "counterexample") == []
    example.add("prefix", parse_keyword_entry("example", match="prefix"))
    assert hits(example, "examples!") == [("prefix", "example")]
    assert hits(example, "counterexamples") == []
    example.add("sub", parse_keyword_entry("example", match="substring"))
    assert hits(example, "counterexamples") == [("sub", "example")]


def test_cafe_nfc_and_nfd() -> None:
    idx: KeywordIndex[str] = KeywordIndex()
    idx.add("c", parse_keyword_entry("café"))
    nfc = "at the café now"
    nfd = unicodedata.normalize("NFD", nfc)
    assert hits(idx, nfc) == [("c", "café")]
    ((_, matched),) = hits(idx, nfd)
    assert matched == unicodedata.normalize("NFD", "café")  # the combining mark included
    assert hits(idx, "at the cafe now") == [("c", "cafe")]


def test_unspaced_scripts_and_emoji() -> None:
    idx: KeywordIndex[str] = KeywordIndex()
    idx.add("zh", parse_keyword_entry("你好"))
    idx.add("th", parse_keyword_entry("สวัสดี"))
    idx.add("pizza", parse_keyword_entry("🍕"))
    idx.add("ru", parse_keyword_entry("привет"))
    assert hits(idx, "我说你好吗") == [("zh", "你好")]
    assert hits(idx, "คำว่าสวัสดีครับ") == [("th", "สวัสดี")]
    assert hits(idx, "cheese🍕\ufe0f!") == [("pizza", "🍕\ufe0f")]
    assert hits(idx, "ПРИВЕТ мир") == [("ru", "ПРИВЕТ")]
    assert hits(idx, "приветствую") == []


def test_collapse_repeats_only_when_asked() -> None:
    idx: KeywordIndex[str] = KeywordIndex()
    idx.add("plain", parse_keyword_entry("example"))
    assert hits(idx, "exxxaammple") == []
    idx.add("collapse", parse_keyword_entry("example", collapse_repeats=True))
    assert hits(idx, "so exxxaammple!") == [("collapse", "exxxaammple")]
    assert {k for k, _ in hits(idx, "example")} == {"plain", "collapse"}


def test_one_written_for_l() -> None:
    idx: KeywordIndex[str] = KeywordIndex()
    idx.add("k", parse_keyword_entry("kill"))
    assert hits(idx, "k1ll k111 ki11") == [("k", "k1ll"), ("k", "k111"), ("k", "ki11")]
    assert hits(idx, "kiii") == [("k", "kiii")]  # the price of reading 1 as both i and l


def test_many_texts_and_spans() -> None:
    idx: KeywordIndex[int] = KeywordIndex()
    idx.add(1, parse_keyword_entry("new in town"))
    idx.add(2, parse_keyword_entry("example"))
    texts = ["Hi, NEW   in\ntown!", "nothing here", "", "an e.x.a.m.p.l.e and example"]
    out = idx.match_many(texts)
    assert [[(m.key, m.span) for m in r] for r in out] == [
        [(1, (4, 17))],
        [],
        [],
        [(2, (3, 16)), (2, (21, 28))],
    ]
    for text, r in zip(texts, out, strict=True):
        for m in r:
            assert text[m.span[0] : m.span[1]] == m.matched


def test_updates_are_visible_at_once_and_after_rebuilds() -> None:
    idx: KeywordIndex[int] = KeywordIndex(delta_limit=8)
    idx.add_many((i, parse_keyword_entry(f"term{chr(97 + i % 26)}{i}")) for i in range(50))
    assert hits(idx, "x termc2 y") == [(2, "termc2")]  # type: ignore[arg-type]
    for i in range(50, 80):  # past delta_limit: background rebuilds
        idx.add(i, parse_keyword_entry(f"fresh{i}"))
        assert [m.key for m in idx.match(f"a fresh{i} b")] == [i]
    idx.wait_idle(10)
    assert [m.key for m in idx.match("fresh55 termc2")] == [55, 2]
    assert idx.remove(55)
    assert [m.key for m in idx.match("fresh55 termc2")] == [2]
    idx.add(2, parse_keyword_entry("replaced"))
    assert [m.key for m in idx.match("termc2 replaced")] == [2]
    assert [m.span for m in idx.match("termc2 replaced")] == [(7, 15)]
    assert len(idx) == 79


def test_concurrent_readers_during_updates() -> None:
    idx: KeywordIndex[int] = KeywordIndex(delta_limit=4)
    idx.add_many((i, parse_keyword_entry(f"base{i}")) for i in range(20))
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                assert [m.key for m in idx.match("base3 base7")] == [3, 7]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    t0 = time.monotonic()
    for i in range(100, 140):
        idx.add(i, parse_keyword_entry(f"more{i}"))
    stop.set()
    t.join(30)
    idx.wait_idle(10)
    assert not errors
    assert time.monotonic() - t0 < 60
    assert [m.key for m in idx.match("more139")] == [139]


def test_limits() -> None:
    idx: KeywordIndex[int] = KeywordIndex(max_entries=2, max_chars=10)
    idx.add(1, parse_keyword_entry("a"))
    idx.add(2, parse_keyword_entry("b"))
    with pytest.raises(LimitExceeded):
        idx.add(3, parse_keyword_entry("c"))
    with pytest.raises(LimitExceeded):
        idx.add_many([(3, parse_keyword_entry("c"))])
    with pytest.raises(LimitExceeded):
        idx.match("x" * 11)
    assert idx.match_many([]) == []


WORDS = ["example", "café", "new in town", "🍕", "你好", "test", "exam"]


def _oracle(text: str, term: str) -> bool:
    """Plain-text oracle for unevaded text: a case-insensitive whole-word occurrence."""
    t = re.escape(term)
    left = r"(?<![^\W_])" if term[0].isalnum() and term[0].isascii() else ""
    right = r"(?![^\W_])" if term[-1].isalnum() and term[-1].isascii() else ""
    return re.search(left + t + right, text, re.IGNORECASE) is not None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([*WORDS, "examples", "xtest", " ", ".", "a", "b"]), max_size=12))
def test_against_plain_oracle(tokens: list[str]) -> None:
    idx: KeywordIndex[str] = KeywordIndex()
    for w in WORDS:
        idx.add(w, parse_keyword_entry(w))
    text = " ".join(tokens)
    got = {m.key for m in idx.match(text)}
    want = {w for w in WORDS if _oracle(text, w)}
    assert got == want
    for m in idx.match(text):
        assert text[m.span[0] : m.span[1]].lower() == m.term.lower()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_and_spans_are_inside(text: str) -> None:
    idx: KeywordIndex[str] = KeywordIndex()
    for w in ["a", "e x", "🍕", "ß", "ab"]:
        idx.add(w, parse_keyword_entry(w, match="substring"))
    for m in idx.match(text):
        s, e = m.span
        assert 0 <= s < e <= len(text)
        assert text[s:e] == m.matched


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30), max_size=8),
       st.data())
def test_byte_offsets_to_characters_with_anchors(texts: list[str], data: st.DataObject) -> None:
    """The sparse byte -> character mapping used for few hits agrees with decoding."""
    import numpy as np

    from bastion.index.keyword import _chars_at

    joined = "\uffff".join(texts)
    raw = joined.encode("utf-8")
    bounds = sorted({len(joined[:i].encode("utf-8")) for i in range(len(joined) + 1)})
    offsets = data.draw(st.lists(st.sampled_from(bounds), min_size=1, max_size=10))
    codes = np.array([ord(c) for c in joined], dtype=np.uint32)
    got = _chars_at(raw, codes, np.array(offsets, dtype=np.int64)).tolist()
    assert got == [len(raw[:b].decode("utf-8")) for b in offsets]


def test_sparse_and_dense_hit_mapping_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    import bastion.index.keyword as kw

    idx: KeywordIndex[str] = KeywordIndex()
    idx.add("k", parse_keyword_entry("ключ"))
    idx.add("e", parse_keyword_entry("example"))
    texts = ["Это КЛЮЧ и ｅｘａｍｐｌｅ", "児童 ключ", "nothing", "e x a m p l e 🍕 ключ"]
    sparse = idx.match_many(texts)
    monkeypatch.setattr(kw, "_SPARSE_HITS", 10**9)  # one pass over the text
    assert idx.match_many(texts) == sparse
    assert [[m.span for m in r] for r in sparse] == [[(4, 8), (11, 18)], [(3, 7)], [],
                                                      [(0, 13), (16, 20)]]


# --- differential: the index against a plain reference (str.find on per-character text) ----

from tests.signals.text_reference import ref_match  # noqa: E402

_TERMS = [
    "example", "cafe", "café", "sex", "ab", "a b", "ex", "lil", "kill", "abc def", "strasse",
    "🍕", "🍕👍", "你好", "我爱", "สวัสดี", "ขก", "ключ", "жа", "éx", "e", "x1", "1\ufe0f\u20e3",
    "a-b", "ss", "pass", "ll", "exxample",
]
_PIECES = [
    "example", "EXAMPLE", "ｅｘａｍｐｌｅ", "e x a m p l e", "e.x.a.m.p.l.e", "3xampl3",
    "exa\u200bmple",
    "examples", "cafe\u0301", "café", "Straße", "s e x", "p@ss", "a$$", "k1ll", "kiii", "lil",
    "🍕", "🍕\ufe0f", "👍🏽", "你好", "我 爱", "สวัสดี", "ขก", "ключ", "КЛЮЧ", "жа", "ab", "a b",
    "abc def", "abc  def", "x1", "1\ufe0f\u20e3", "a-b", "exxample", "exxxaammple", " ", " ",
    ",", ".", "!", "-", "_", "\n", "a", "b", "e", "x", "l", "1", "3", "0", "\u200d", "\u0301",
    "\u3000", "ｘ", "@", "$", "é", "ß",
]
_posts = st.lists(
    st.one_of(st.sampled_from(_PIECES), st.characters(codec="utf-8",
                                                         exclude_characters="\uffff")),
    max_size=40,
).map("".join)
_entries = st.dictionaries(
    st.sampled_from(_TERMS),
    st.tuples(st.sampled_from(["word", "prefix", "substring"]), st.booleans()),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(_entries, st.lists(_posts, min_size=1, max_size=5), st.integers(0, 3))
def test_matches_equal_reference(
    entries: dict[str, tuple[str, bool]], texts: list[str], delta_at: int
) -> None:
    """Same matches and spans as the reference, whether entries sit in the main automata
    (bulk load) or the delta (added one by one), in batches or one by one."""
    idx: KeywordIndex[str] = KeywordIndex(delta_limit=10**6)
    items = [(t, parse_keyword_entry(t, match=m, collapse_repeats=c))
             for t, (m, c) in sorted(entries.items())]
    idx.add_many(items[:delta_at])
    for k, e in items[delta_at:]:
        idx.add(k, e)
    spec = {k: (e.term, e.match, e.collapse_repeats) for k, e in items}
    want = [ref_match(spec, t) for t in texts]
    got = [[(m.span, m.key) for m in r] for r in idx.match_many(texts)]
    assert got == want
    for t, w in zip(texts, want, strict=True):
        assert [(m.span, m.key) for m in idx.match(t)] == w
        for m in idx.match(t):
            assert t[m.span[0] : m.span[1]] == m.matched


@settings(max_examples=60, deadline=None)
@given(st.lists(_posts, min_size=1, max_size=30))
def test_large_batches_equal_reference(texts: list[str]) -> None:
    """Many texts and many hits per batch (the dense hit-mapping path)."""
    spec = {t: (t, "substring", False) for t in ["e", "a", "x", "你", "🍕", "ab"]}
    spec["ex w"] = ("example", "word", False)
    idx: KeywordIndex[str] = KeywordIndex()
    idx.add_many((k, parse_keyword_entry(t, match=m)) for k, (t, m, _) in spec.items())
    got = [[(m.span, m.key) for m in r] for r in idx.match_many(texts)]
    assert got == [ref_match(spec, t) for t in texts]
