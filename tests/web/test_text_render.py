"""The span-to-segments renderer of the case text view: segments concatenate to the text,
every span's code points are covered by segments carrying it, overlaps cut the text into
runs carrying both spans, highlights never split a character from what extends it, and
invisible or reordering characters are shown as visible tokens."""

from __future__ import annotations

import html
import itertools
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.web.text import (
    Segment,
    Span,
    build_view,
    cluster_end,
    cluster_start,
    segments,
    visible_html,
)

# Text drawn from a mix that stresses code points: ASCII, astral emoji, combining marks,
# ZWJ and variation selectors, Hebrew and Arabic, zero-width and bidi controls.
ALPHABET = st.sampled_from(
    ["a", "b", " ", "\n", "\U0001F600", "\U0001F469", "\u200d", "\U0001F4BB", "\ufe0f",
     "\u0301", "\u0308", "\u05e9", "\u05dc", "\u0627", "\u200b", "\u202e", "\U0001F3FD",
     "\U000E0067", "\U0001F1FA", "e", "\u00e9"])
TEXTS = st.lists(ALPHABET, max_size=40).map("".join)


@st.composite
def text_and_spans(draw: st.DrawFn) -> tuple[str, list[Span]]:
    text = draw(TEXTS)
    n = len(text)
    spans = []
    for ref in range(1, draw(st.integers(0, 6)) + 1):
        a = draw(st.integers(-2, n + 2))
        b = draw(st.integers(-2, n + 2))
        spans.append(Span(min(a, b), max(a, b), draw(st.sampled_from(
            ["keyword", "url", "indicator", "contact"])), ref, f"label {ref}"))
    return text, spans


@settings(max_examples=400, deadline=None)
@given(text_and_spans())
def test_segments_concatenate_to_the_text_and_cover_every_span(
        case: tuple[str, list[Span]]) -> None:
    text, spans = case
    segs = segments(text, spans)
    assert "".join(s.text for s in segs) == text
    assert all(s.text for s in segs)  # no empty runs
    # Consecutive unhighlighted runs are merged; each run's spans keep the input order.
    for a, b in itertools.pairwise(segs):
        assert a.spans or b.spans
    pos = 0
    owner: list[tuple[Span, ...]] = []
    for s in segs:
        owner.extend([s.spans] * len(s.text))
        pos += len(s.text)
        assert list(s.spans) == sorted(s.spans, key=spans.index)
    for sp in spans:
        start, end = max(0, min(sp.start, len(text))), max(0, min(sp.end, len(text)))
        for i in range(start, end):
            assert sp in owner[i], (sp, i)
        # Widened to cluster edges only: nothing outside the cluster edges is covered.
        for i, o in enumerate(owner):
            if sp in o:
                assert cluster_start(text, start) <= i < cluster_end(text, end)


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.data())
def test_cluster_edges_never_split_an_extended_character(text: str,
                                                         data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(text)))
    s, e = cluster_start(text, i), cluster_end(text, i)
    assert 0 <= s <= i <= e <= len(text)
    for j in (s, e):
        if 0 < j < len(text):
            assert text[j] not in "\u0301\u0308\u200d\ufe0f\U0001F3FD\U000E0067"
            assert text[j - 1] != "\u200d"


def test_overlapping_spans_cut_into_runs_carrying_both() -> None:
    text = "call 213 555 0123 now"
    a = Span(5, 17, "contact", 1, "phone")
    b = Span(0, 12, "indicator", 2, "obscured")
    segs = segments(text, [a, b])
    assert [(s.text, [x.ref for x in s.spans]) for s in segs] == [
        ("call ", [2]), ("213 555", [1, 2]), (" 0123", [1]), (" now", [])]
    both = segs[1]
    assert both.classes == "hl hl-contact hl-indicator hl-overlap"
    assert both.title == "#1 phone; #2 obscured" and both.refs == "1 2"
    # Nested and identical spans.
    segs = segments("abcdef", [Span(0, 6, "url", 1, "u"), Span(2, 4, "keyword", 2, "k"),
                               Span(2, 4, "keyword", 3, "k2")])
    assert [(s.text, s.refs) for s in segs] == [("ab", "1"), ("cd", "1 2 3"), ("ef", "1")]


def test_code_point_offsets_after_astral_characters_and_with_combining_marks() -> None:
    # Offsets count code points: an emoji before the span is one, not two UTF-16 units.
    text = "\U0001F600\U0001F469\u200d\U0001F4BB EXAMPLE"
    start = text.index("EXAMPLE")
    assert start == 5
    segs = segments(text, [Span(start, start + 7, "keyword", 1, "k")])
    assert [s.text for s in segs if s.spans] == ["EXAMPLE"]
    # A span ending between a letter and its combining accent takes the accent along;
    # one starting inside a ZWJ emoji sequence takes the whole sequence.
    text = "cafe\u0301 ok"
    segs = segments(text, [Span(0, 4, "keyword", 1, "k")])
    assert [s.text for s in segs if s.spans] == ["cafe\u0301"]
    text = "x \U0001F469\u200d\U0001F4BB y"
    segs = segments(text, [Span(4, 5, "indicator", 1, "i")])
    assert [s.text for s in segs if s.spans] == ["\U0001F469\u200d\U0001F4BB"]


def test_right_to_left_text_keeps_its_logical_order() -> None:
    text = "\u05e9\u05dc\u05d5\u05dd EXAMPLE \u0645\u0631\u062d\u0628\u0627"
    segs = segments(text, [Span(0, 4, "keyword", 1, "he"), Span(13, 18, "keyword", 2, "ar")])
    assert [s.text for s in segs if s.spans] == ["\u05e9\u05dc\u05d5\u05dd",
                                                "\u0645\u0631\u062d\u0628\u0627"]


def test_spans_outside_the_text_are_clipped_or_ignored() -> None:
    assert segments("", [Span(0, 3, "url", 1, "u")]) == []
    assert segments("abc", [Span(5, 9, "url", 1, "u")]) == [Segment("abc")]
    assert segments("abc", [Span(2, 2, "url", 1, "u")]) == [Segment("abc")]
    segs = segments("abc", [Span(-4, 2, "url", 1, "u")])
    assert [(s.text, s.refs) for s in segs] == [("ab", "1"), ("c", "")]


def test_invisible_and_reordering_characters_are_shown() -> None:
    out = str(visible_html("exa\u200bmple \u202egnp.exe <b>&"))
    assert '<span class="cp" title="U+200B ZERO WIDTH SPACE">U+200B</span>' in out
    assert 'title="U+202E RIGHT-TO-LEFT OVERRIDE">U+202E</span>' in out
    assert "\u200b" not in out and "\u202e" not in out
    assert "&lt;b&gt;&amp;" in out  # escaped
    # Emoji sequences and scripts are left alone.
    keep = "\U0001F469\u200d\U0001F4BB \u2764\ufe0f \u0645\u200c\u06cc"
    assert str(visible_html(keep)) == keep
    assert html.unescape(re.sub(r"<[^>]+>", "", str(visible_html("a\u0000b")))) == "aU+0000b"


def test_view_lists_every_span_and_hides_text_from_auditors() -> None:
    from bastion.evidence.texts import kept_text_of

    matches = [
        {"signal_type": "keyword", "bank": "kw", "entry": "example", "kind": "word",
         "matched": "EXAMPLE", "span": [4, 11]},
        {"signal_type": "url", "bank": "urls", "entry": "//bad.example/x", "kind": "prefix",
         "matched": "https://bad.example/x/1", "canonical": "https://bad.example/x/1"},
        {"signal_type": "pdq", "bank": "sample", "distance": 3},
    ]
    ad = {"score": 0.42, "network_id": "net-3", "network_size": 2, "lexicon_version": "v1",
          "indicators": [{"id": "obscured-phone", "span": [0, 3], "weight": 1.0,
                          "source": "Lugo-Graulich 2024", "evidence": "validated",
                          "category": "validated", "matched": "two"},
                         {"id": "movement-language", "span": [0, 3], "weight": -1.204,
                          "source": "NIJ 2024", "evidence": "not-predictive",
                          "category": "not_predictive", "matched": "New", "field": "title"}],
          "contacts": [{"kind": "phone", "value": "+12135550123", "raw": "two", "span": [0, 3],
                        "disguised": True},
                       {"kind": "email", "value": "a@b.example", "raw": "a at b", "span": [4, 5],
                        "disguised": True}]}
    kept = kept_text_of("two EXAMPLE", "New ad", ["https://bad.example/x/1"], max_chars=100)
    view = build_view(matches=matches, ad=ad, kept=kept, sees_text=True, source="vault")
    assert view.state == "shown" and [f.name for f in view.fields] == ["Title", "Text", "Links"]
    assert [(r.ref, r.kind) for r in view.rows] == [
        (1, "keyword"), (2, "link"), (3, "indicator"), (4, "counter"), (5, "contact"),
        (6, "contact")]
    assert [r.ref for r in view.match_rows] == [1, 2]
    text = view.fields[1].segments
    assert text is not None
    assert [(s.text, s.refs) for s in text] == [("two", "3 5"), (" ", ""), ("E", "1 6"),
                                                ("XAMPLE", "1")]
    title = view.fields[0].segments
    assert title is not None and (title[0].text, title[0].refs) == ("New", "4")
    links = view.fields[2].segments
    assert links is not None and [(s.text, s.refs) for s in links] == [
        ("https://bad.example/x/1", "2")]
    assert view.ad is not None and view.ad.contacts[0]["value"] == "+12135550123"
    assert "weight +1.000; source: Lugo-Graulich 2024" in text[0].title

    hidden = build_view(matches=matches, ad=ad, kept=None, sees_text=False, source="")
    assert hidden.state == "hidden" and hidden.fields == []
    assert all(r.matched is None for r in hidden.rows)
    assert hidden.ad is not None and hidden.ad.contacts[0]["value"] is None
    assert hidden.ad.contacts[0]["raw"] is None
    assert "+12135550123" not in repr(hidden) and "a@b.example" not in repr(hidden)
    # Contacts are numbered per kind for those who do not see their values.
    assert [r.detail for r in hidden.rows if r.kind == "contact"] == ["phone 1", "email 1"]

    # A cut text: spans past the cut are listed and marked.
    cut = kept_text_of("two EXAMPLE", None, [], max_chars=5)
    view = build_view(matches=matches[:1], ad=None, kept=cut, sees_text=True, source="vault")
    assert view.fields[0].truncated and view.rows[0].beyond


def _template_env() -> Any:
    from pathlib import Path

    from jinja2 import Environment, FileSystemLoader, select_autoescape

    import bastion.web.text as web_text

    env = Environment(loader=FileSystemLoader(str(Path(web_text.__file__).parent / "templates")),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["visible_html"] = visible_html
    return env


_ENV = _template_env()
_FIELD = re.compile(r'<div class="item-text" id="field-text"[^>]*>(.*?)</div>', re.S)


def _shown(text: str) -> str:
    return "".join(f"U+{ord(c):04X}" if "cp" in str(visible_html(c)) else c for c in text)


@settings(max_examples=200, deadline=None)
@given(text_and_spans())
def test_the_rendered_page_shows_the_whole_text_with_flat_marks(
        case: tuple[str, list[Span]]) -> None:
    from bastion.evidence.texts import kept_text_of

    text, spans = case
    matches = [{"signal_type": "keyword", "bank": "b<&>", "entry": "e\"'", "kind": "word",
                "matched": text[max(0, s.start):max(0, s.end)], "span": [s.start, s.end]}
               for s in spans]
    kept = kept_text_of(text, None, [], max_chars=1000)
    if kept is None:
        return
    view = build_view(matches=matches, ad=None, kept=kept, sees_text=True, source="vault")
    page = _ENV.get_template("case_text.html").render(text_view=view)
    m = _FIELD.search(page)
    assert m, page
    body = m.group(1)
    assert html.unescape(re.sub(r"<[^>]+>", "", body)) == _shown(text)
    assert "style=" not in page and "<script" not in page
    # Marks are never nested: each closes before the next opens.
    opened = 0
    for tag in re.findall(r"</?mark\b", body):
        opened += 1 if tag == "<mark" else -1
        assert opened in (0, 1)
    assert opened == 0
    # Every highlighted code point of the text lies inside a mark.
    covered = "".join(_shown(seg.text) for seg in view.fields[0].segments or [] if seg.spans)
    marked = "".join(html.unescape(re.sub(r"<[^>]+>", "", x))
                     for x in re.findall(r"<mark[^>]*>(.*?)</mark>", body, re.S))
    assert marked == covered
