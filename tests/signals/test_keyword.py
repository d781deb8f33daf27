"""The ``keyword`` signal type and keyword list entries."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.errors import InvalidInput, LimitExceeded
from bastion.signals import get_signal_type
from bastion.signals.keyword import (
    MAX_TERM_CHARS,
    KeywordSignal,
    canonical_term,
    parse_keyword_entry,
)


def test_registered_and_examples_round_trip() -> None:
    assert get_signal_type("keyword") is KeywordSignal
    for ex in KeywordSignal.examples:
        assert KeywordSignal.parse(ex) == ex
        assert KeywordSignal.parse(KeywordSignal.format(ex)) == ex
    assert KeywordSignal.default_threshold == 0


def test_canonical_term() -> None:
    assert canonical_term("  cheese \t  Pizza ") == "cheese Pizza"
    assert canonical_term(unicodedata.normalize("NFD", "café")) == "café"


def test_distance_uses_the_matching_form() -> None:
    assert KeywordSignal.distance("EXAMPLE", "ｅｘａｍｐｌｅ") == 0
    assert KeywordSignal.distance("example", "3xampl3") == 0
    assert KeywordSignal.distance("example", "examples") == 1


@pytest.mark.parametrize("bad", ["", "   ", "\u200b", "a\uffffb"])
def test_invalid_terms(bad: str) -> None:
    with pytest.raises(InvalidInput):
        KeywordSignal.parse(bad)


def test_term_length_limit() -> None:
    with pytest.raises(LimitExceeded):
        KeywordSignal.parse("x" * (MAX_TERM_CHARS + 1))


def test_entry_columns() -> None:
    e = parse_keyword_entry("Example")
    assert (e.term, e.match, e.language, e.collapse_repeats) == ("Example", "word", None, False)
    assert e.normalised == "example"
    e = parse_keyword_entry("exxample", match="Prefix", language="PT_br", collapse_repeats="yes")
    assert (e.match, e.language, e.collapse_repeats) == ("prefix", "pt-br", True)
    assert e.normalised == "example"
    e = parse_keyword_entry("x y", match="substring", collapse_repeats="0")
    assert e.collapse_repeats is False


@pytest.mark.parametrize(
    "kwargs",
    [{"match": "fuzzy"}, {"language": "english!"}, {"collapse_repeats": "maybe"}],
)
def test_entry_errors(kwargs: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        parse_keyword_entry("example", **kwargs)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_parse_format_round_trip(raw: str) -> None:
    try:
        term = KeywordSignal.parse(raw)
    except InvalidInput:
        return
    assert KeywordSignal.parse(KeywordSignal.format(term)) == term
    assert KeywordSignal.distance(term, raw.strip() or term) in (0, 1)
