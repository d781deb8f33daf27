"""Refitting the lexicon's weights by logistic regression, and the template alignment."""

from __future__ import annotations

import json
import sys

import pytest

from bastion.errors import ConfigurationError, InvalidInput
from bastion.trafficking.fit import LabelledAd, fit_lexicon, parse_labelled
from bastion.trafficking.lexicon import load_lexicon, parse_lexicon
from bastion.trafficking.synthetic import SyntheticConfig, generate
from bastion.trafficking.template import align, build_template


def _examples() -> list[LabelledAd]:
    cfg = SyntheticConfig(networks=25, singles=30, legal=60, indicator_rate=0.7,
                          legal_indicator_rate=0.05)
    return [LabelledAd(s.ad, s.trafficking) for s in generate(cfg, seed=8)]


def test_fit_learns_direction_and_keeps_not_predictive_at_most_zero() -> None:
    pytest.importorskip("sklearn")
    lex = load_lexicon()
    report = fit_lexicon(_examples(), lex)
    new = report.lexicon
    assert new.version.startswith("v1+fit.")
    for eid in ("youthful-language", "stated-ethnicity", "trustworthy-provider"):
        assert new.entry(eid).weight > 0, eid
    for e in new.entries:
        if e.evidence == "not-predictive":
            assert e.weight <= 0
    assert "emoji-crown" in report.unseen
    assert new.entry("emoji-crown").weight == lex.entry("emoji-crown").weight
    # the fitted lexicon is a valid lexicon file and deterministic
    assert parse_lexicon(new.to_toml()).entries == new.entries
    assert fit_lexicon(_examples(), lex).lexicon.version == new.version


def test_fit_without_scikit_learn_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)
    with pytest.raises(ConfigurationError, match=r"bastion\[ads\]"):
        fit_lexicon(_examples(), load_lexicon())


def test_fit_needs_both_labels() -> None:
    pytest.importorskip("sklearn")
    only = [e for e in _examples() if e.label]
    with pytest.raises(InvalidInput, match="each label"):
        fit_lexicon(only, load_lexicon())


def test_parse_labelled_reports_bad_lines_and_keeps_the_rest() -> None:
    lines = [json.dumps({"text": "a", "label": 1}), "oops",
             json.dumps({"text": "b", "label": "yes"}), "",
             json.dumps({"text": "c", "label": False})]
    examples, bad = parse_labelled(lines)
    assert [e.label for e in examples] == [True, False]
    assert [n for n, _ in bad] == [2, 3]


def test_alignment_operations() -> None:
    ops = align([1, 2, 3, 4], [1, 9, 3, 5, 4])
    kinds = [op for op, _, _ in ops]
    assert kinds == [0, 1, 0, 3, 0]


def test_template_marks_the_varying_slots() -> None:
    texts = [f"Hi I am {n}, available in {c} today. Call {p} anytime."
             for n, c, p in (("Anna", "Houston", "713 555 0101"),
                             ("Bella", "Dallas", "214 555 0102"),
                             ("Cara", "Austin", "512 555 0103"))]
    texts.append("Completely unrelated words about boats and the harbour at dawn.")
    t = build_template(texts, ["a", "b", "c", "d"])
    assert t.text.startswith("Hi I am [SLOT 1], available in [SLOT 2] today. Call [SLOT 3]")
    assert t.text.endswith("anytime.")
    assert {v for v, _ in t.slots[0].examples} >= {"Anna", "Bella", "Cara"}
    assert t.outliers == ("d",)
