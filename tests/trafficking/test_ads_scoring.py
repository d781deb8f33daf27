"""Lexicon and indicator scorer: evidence-based weights, spans and sources, determinism."""

from __future__ import annotations

import dataclasses

import pytest

from bastion.errors import InvalidInput
from bastion.trafficking.contacts import extract_contacts
from bastion.trafficking.lexicon import build_lexicon, load_lexicon, parse_lexicon
from bastion.trafficking.schemas import Ad
from bastion.trafficking.scoring import score_text
from bastion.trafficking.service import analyse_ad

BASE = "Hello, this is Mia. Open for bookings near the quiet plaza. Call 202-555-0143."


def test_movement_language_lowers_the_score() -> None:
    lex = load_lexicon()
    without = analyse_ad(Ad("a", BASE), lex)
    moving = analyse_ad(Ad("b", BASE + " New in town, leaving soon."), lex)
    assert [i.id for i in moving.indicators] == ["movement-language", "movement-language"]
    assert moving.score < without.score


def test_stated_age_under_23_does_not_count() -> None:
    lex = load_lexicon()
    plain = analyse_ad(Ad("a", BASE), lex)
    aged = analyse_ad(Ad("b", BASE + " Age 21."), lex)
    assert [i.id for i in aged.indicators] == ["stated-age-under-23"]
    assert aged.indicators[0].weight == 0.0
    assert aged.score == plain.score


def test_validated_indicators_raise_the_score_and_explain_it() -> None:
    lex = load_lexicon()
    text = ("Sweet latina, discreet, new to this. Call two0two 555 0143. "
            "Age 16. Leaving soon 💗")
    res = analyse_ad(Ad("a", text), lex)
    ids = {i.id for i in res.indicators}
    assert {"stated-ethnicity", "trustworthy-provider", "youthful-language",
            "obscured-phone", "stated-age-under-18", "movement-language",
            "emoji-growing-heart"} <= ids
    assert res.score > analyse_ad(Ad("b", BASE), lex).score
    assert 0.0 <= res.score <= 1.0
    for ind in res.indicators:
        assert ind.source and ind.evidence and ind.category
        start, end = ind.span
        assert 0 <= start < end <= len(text)
        assert text[start:end] == ind.matched
    phone = next(i for i in res.indicators if i.id == "obscured-phone")
    assert phone.matched == "two0two 555 0143"


def test_presence_not_count() -> None:
    lex = load_lexicon()
    once = analyse_ad(Ad("a", BASE + " Discreet."), lex)
    thrice = analyse_ad(Ad("b", BASE + " Discreet. Discreet. Discreet."), lex)
    assert once.score == thrice.score
    assert len(thrice.indicators) == 3


def test_same_input_same_output_and_version_reported() -> None:
    lex = load_lexicon()
    ad = Ad("a", "Young asian, verified, two0two 555 0143 🍒👑", title="Visiting Leeds")
    first = analyse_ad(ad, lex).to_json()
    second = analyse_ad(ad, load_lexicon()).to_json()
    assert first == second
    assert first["lexicon_version"] == "v1"
    assert any(i.get("field") == "title" for i in first["indicators"])


def test_words_inside_other_words_do_not_match() -> None:
    lex = load_lexicon()
    res = score_text("Youngstown and Asiana and unprofessional", lex)
    assert res.indicators == ()


def test_every_entry_has_a_source_and_not_predictive_weighs_at_most_zero() -> None:
    lex = load_lexicon()
    cats = {e.category for e in lex.entries}
    assert {"validated", "not_predictive", "emoji", "control"} <= cats
    for e in lex.entries:
        assert e.source.strip()
        if e.evidence == "not-predictive":
            assert e.weight <= 0
    validated = {e.id for e in lex.entries if e.evidence == "validated"}
    assert {"youthful-language", "obscured-phone", "stated-ethnicity",
            "trustworthy-provider"} <= validated


def test_loader_refuses_a_positive_not_predictive_weight() -> None:
    lex = load_lexicon()
    entries = [dataclasses.replace(e, weight=0.5) if e.id == "movement-language" else e
               for e in lex.entries]
    with pytest.raises(InvalidInput, match="not-predictive"):
        build_lexicon("bad", lex.intercept, entries)


@pytest.mark.parametrize(
    "toml",
    [
        "version = 1",
        'version = "x"\n[[entry]]\nid = "a"\ncategory = "validated"\nmatch = "phrase"\n'
        'weight = 1.0\nevidence = "validated"\nsource = ""\npatterns = ["a"]',
        'version = "x"\n[[entry]]\nid = "a"\ncategory = "validated"\nmatch = "regex"\n'
        'weight = 1.0\nevidence = "validated"\nsource = "s"\npatterns = ["("]',
        'version = "x"\n[[entry]]\nid = "a"\ncategory = "validated"\nmatch = "phrase"\n'
        'weight = "heavy"\nevidence = "validated"\nsource = "s"\npatterns = ["a"]',
        "not toml [",
    ],
)
def test_bad_lexicons_are_invalid_input(toml: str) -> None:
    with pytest.raises(InvalidInput):
        parse_lexicon(toml)


def test_lexicon_round_trips_through_toml() -> None:
    lex = load_lexicon()
    again = parse_lexicon(lex.to_toml())
    assert again.entries == lex.entries
    assert (again.version, again.intercept) == (lex.version, lex.intercept)
    text = "Discreet latina 💗, new in town, age 19, call two0two 555 0143"
    contacts = extract_contacts(text)
    assert score_text(text, again, contacts) == score_text(text, lex, contacts)


def test_ascii_and_other_text_find_the_same_phrases_at_the_same_spans() -> None:
    # ASCII text takes the lowered fast path; a non-ASCII character elsewhere takes the
    # case-insensitive one: the phrases, spans and matched text must not differ.
    lex = load_lexicon()
    base = "Just ARRIVED,  New   In Town. Call me."
    fast = lex.find(base)
    slow = lex.find(base + " \u00e9t\u00e9")
    assert [i.id for i in fast] and [(i.id, i.span, i.matched) for i in fast] == [
        (i.id, i.span, i.matched) for i in slow]
    assert {i.matched for i in fast} >= {"Just ARRIVED", "New   In Town"}
