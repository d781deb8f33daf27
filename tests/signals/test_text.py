"""Text normalisation for keyword matching, and its map back to the original."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.errors import InvalidInput, LimitExceeded
from bastion.signals.text import (
    BATCH_SEPARATOR,
    collapse_repeats,
    is_spaced_word_char,
    normalise,
    normalise_many,
    normalise_term,
    normalise_terms,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ｅｘａｍｐｌｅ", "example"),
        ("exa\u200bmple", "example"),
        ("EXAMPLE", "example"),
        ("e x a m p l e", "example"),
        ("e.x.a.m.p.l.e", "example"),
        ("3xampl3", "example"),
        ("café", "cafe"),
        (unicodedata.normalize("NFD", "café"), "cafe"),
        ("Straße", "strasse"),
        ("ﬁne", "fine"),
        ("𝐞𝐱𝐚𝐦𝐩𝐥𝐞", "example"),
        ("exаmple", "example"),  # Cyrillic а
        ("p@ss", "pass"),
        ("a$$", "ass"),
        ("$ex", "sex"),
        ("user@example.com", "user@example.com"),
        ("13yo", "ieyo"),
        ("call 105 now", "call 105 now"),
        ("hello  \n\t world", "hello world"),
        ("I am a b c", "i am abc"),
        ("🍕\ufe0f 👍🏽", "🍕 👍"),
        ("１２３", "123"),
        ("٣", "3"),
        ("我 爱 你", "我爱你"),
        ("z\u0336a\u0336l\u0336g\u0336o\u0336", "zalgo"),
    ],
)
def test_normalised_forms(raw: str, expected: str) -> None:
    assert normalise(raw).text == expected


def test_spans_cover_original_characters() -> None:
    raw = "An E x a m p l e!"
    nt = normalise(raw)
    i = nt.text.index("example")
    s, e = nt.original_span(i, i + 7)
    assert raw[s:e] == "E x a m p l e"
    raw = "x exa\u200bmple y"
    nt = normalise(raw)
    i = nt.text.index("example")
    s, e = nt.original_span(i, i + 7)
    assert raw[s:e] == "exa\u200bmple"
    raw = "cafe\u0301!"
    nt = normalise(raw)
    assert raw[slice(*nt.original_span(0, 4))] == "cafe\u0301"
    raw = "Straße"
    nt = normalise(raw)  # "strasse": each "s" of "ss" maps to the whole "ß"
    assert nt.original_span(4, 5) == (4, 5)
    assert nt.original_span(5, 6) == (4, 5)


def test_collapse_repeats_maps_runs() -> None:
    raw = "Exxxaammple!!"
    nt = collapse_repeats(normalise(raw))
    assert nt.text == "example!"
    assert nt.original_span(0, 7) == (0, 11)
    assert raw[slice(*nt.original_span(1, 2))] == "xxx"
    assert normalise_term("exxample", collapse=True) == "example"


def test_batch_matches_one_by_one() -> None:
    texts = ["Hello Wörld", "e x a m p l e", "", "cafe\u0301", "Straße 3xampl3"]
    batch = normalise_many(texts)
    parts = batch.text.text.split(BATCH_SEPARATOR)
    assert parts == [normalise(t).text for t in texts]
    joined = batch.text.text
    i = joined.index("example")
    assert batch.locate(i, i + 7) == (1, 0, 13)
    i = joined.rindex("example")
    item, s, e = batch.locate(i, i + 7)
    assert (item, texts[item][s:e]) == (4, "3xampl3")


def test_word_characters() -> None:
    assert is_spaced_word_char("a") and is_spaced_word_char("ж") and is_spaced_word_char("한")
    assert not is_spaced_word_char("你") and not is_spaced_word_char("ก")
    assert not is_spaced_word_char("🍕") and not is_spaced_word_char(" ")


def test_limits_and_errors() -> None:
    with pytest.raises(LimitExceeded):
        normalise("x" * 11, max_chars=10)
    with pytest.raises(LimitExceeded):
        normalise_many(["ok", "x" * 11], max_chars=10)
    with pytest.raises(InvalidInput):
        normalise(None)  # type: ignore[arg-type]
    nt = normalise("abc")
    with pytest.raises(InvalidInput):
        nt.original_span(2, 2)
    with pytest.raises(InvalidInput):
        nt.original_span(0, 4)
    assert normalise("").text == ""
    assert normalise_term("\u200b\u200d") == ""


_texts = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_characters=BATCH_SEPARATOR),
        st.sampled_from(list(" .-*_·$@013457lLß\u200b\u0301\ufe0fｅ🍕👍🏽你ก")),
    ),
    max_size=120,
)


@settings(max_examples=400, deadline=None)
@given(_texts)
def test_offsets_map_inside_and_cover(raw: str) -> None:
    nt = normalise(raw)
    n = len(nt.text)
    prev_start = 0
    for k in range(n):
        s, e = nt.original_span(k, k + 1)
        assert 0 <= s < e <= len(raw)
        assert s >= prev_start  # monotone
        prev_start = s
    if n:
        s, e = nt.original_span(0, n)
        # The whole normalised text comes from inside the original.
        assert 0 <= s < e <= len(raw)
    for k in range(0, n, 7):
        for j in range(k + 1, min(n, k + 9) + 1):
            s, e = nt.original_span(k, j)
            s1, _ = nt.original_span(k, k + 1)
            _, e2 = nt.original_span(j - 1, j)
            assert (s, e) == (s1, e2)


@settings(max_examples=200, deadline=None)
@given(st.lists(_texts, max_size=6))
def test_batches_equal_single_texts(texts: list[str]) -> None:
    batch = normalise_many(texts)
    assert batch.text.text.split(BATCH_SEPARATOR) == [normalise(t).text for t in texts] or (
        not texts and batch.text.text == ""
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_texts, st.booleans()), max_size=8))
def test_batched_terms_equal_single_terms(items: list[tuple[str, bool]]) -> None:
    terms = [t for t, _ in items]
    flags = [c for _, c in items]
    assert normalise_terms(terms, flags) == [
        normalise_term(t, collapse=c) for t, c in items
    ]


# --- differential: the vectorised normalisation against a plain per-character reference ----

from tests.signals.text_reference import ref_collapse, ref_normalise  # noqa: E402

#: Mixed-script pieces evaders and ordinary posts use: Latin with leet digits and separators,
#: fullwidth, combining marks, zero-width and format characters, variation selectors and
#: skin tones, emoji sequences, CJK, Thai, Cyrillic look-alikes, ligatures, expansions.
MIXED_PIECES = [
    "a", "b", "e", "l", "x", "s", "E", "L", "ex", "ample", "cafe", "café", "Straße", "ﬁ",
    "0", "1", "3", "4", "5", "7", "9", "13", "$", "@", ".", "-", "_", "*", "·", " ", "  ",
    "\n", "\t", "!", "?", "(", ")", "/", ":", "ｅ", "Ｅ", "１", "\u200b", "\u200c", "\u200d",
    "\u00ad", "\u2060", "\u0301", "\u0336", "\u20e3", "\ufe0f", "\U0001f3fd", "🍕", "👍",
    "👨\u200d👩\u200d👧", "1\ufe0f\u20e3", "你", "好", "我爱", "ก", "ข", "สวัสดี", "а", "о",
    "ж", "Ω", "ß", "İ", "ǅ", "٣", "𝐞", "한", "\u3000", "\u115f", "\U000e0100", "\u0000",
]
_mixed_text = st.lists(
    st.one_of(st.sampled_from(MIXED_PIECES),
              st.characters(codec="utf-8", exclude_characters=BATCH_SEPARATOR)),
    max_size=60,
).map("".join)


def _spans(nt: object, n: int) -> list[tuple[int, int]]:
    return [nt.original_span(k, k + 1) for k in range(n)]  # type: ignore[attr-defined]


@settings(max_examples=500, deadline=None)
@given(_mixed_text)
def test_normalise_equals_reference(raw: str) -> None:
    ref = ref_normalise(raw)
    nt = normalise(raw)
    assert nt.text == ref.text
    assert _spans(nt, len(nt.text)) == list(zip(ref.start, ref.end, strict=True))
    col = collapse_repeats(nt)
    rcol = ref_collapse(ref)
    assert col.text == rcol.text
    assert _spans(col, len(col.text)) == list(zip(rcol.start, rcol.end, strict=True))


@settings(max_examples=150, deadline=None)
@given(st.lists(_mixed_text, max_size=6))
def test_batch_spans_equal_reference(texts: list[str]) -> None:
    batch = normalise_many(texts)
    joined = batch.text.text
    pos = 0
    for i, t in enumerate(texts):
        ref = ref_normalise(t)
        assert joined[pos : pos + len(ref.text)] == ref.text
        for k in range(len(ref.text)):
            assert batch.locate(pos + k, pos + k + 1) == (i, ref.start[k], ref.end[k])
        pos += len(ref.text) + 1


@pytest.mark.parametrize(
    "raw",
    [
        "x" * 70 + "3" + "y" * 70,  # a token longer than the 64-character substitution reach
        "a" * 100 + "1" + "b" * 30 + "7" + "c" * 100,
        "我" * 80 + "3" + "你" * 10 + "7" + "好" * 70 + "1",
        "a$$" + "b" * 70 + "3" + "c" * 70 + "4", "5" + "a" * 64 + "7" + "b" * 65 + "0",
        "a1" + "b" * 62 + "77", "a1" + "b" * 63 + "77", "77" + "b" * 62 + "1a",
        "77" + "b" * 63 + "1a" + "c" * 62 + "00", "x$$" + "b" * 62 + "77",
        "a$$b\u093f77", "a$b\u093f77", "x$$\u093f77",  # a "$" run visited twice
        "a$$b3c", "a$b$$", "x@y@z.com", "a@b a@b.c a@bc@ a@b-c 1@a a@1",
        "p@ss 3xampl3 $ex 13yo a$$ e@x.co",
        "s e x s.e.x s-e-x a b", "e\u0301\u0301x\u200b\u200da", "ß" * 5 + "\u0301",
        "", " ", "\u0301abc", "ｅ ｘ ａ",
    ],
)
def test_normalise_equals_reference_edge_cases(raw: str) -> None:
    ref = ref_normalise(raw)
    nt = normalise(raw)
    assert nt.text == ref.text
    assert _spans(nt, len(nt.text)) == list(zip(ref.start, ref.end, strict=True))


def test_many_substitution_candidates_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every position a candidate (``a1a1...``): windows are found chunk by chunk, with the
    same result as the reference."""
    import bastion.signals.text as text_mod

    monkeypatch.setattr(text_mod, "_WINDOW_CHUNK", 7)
    for raw in ["a1" * 300, "1a" * 150 + " " + "x3" * 100 + "$" * 5 + "b7" * 40]:
        ref = ref_normalise(raw)
        nt = normalise(raw)
        assert nt.text == ref.text
        assert _spans(nt, len(nt.text)) == list(zip(ref.start, ref.end, strict=True))
    big = normalise("a1" * 400_000)  # 800,000 candidates, well within memory
    assert big.text == "ai" * 400_000
