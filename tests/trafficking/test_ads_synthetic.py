"""The synthetic ad generator: reproducible, labels that point at what was planted, neutral
filler, and every phone form recovered by extraction."""

from __future__ import annotations

import random
from functools import cache

import pytest

from bastion.trafficking.contacts import extract_contacts, region_for_location
from bastion.trafficking.lexicon import load_lexicon
from bastion.trafficking.synthetic import (
    DISGUISED_FORMS,
    PLAIN_FORMS,
    FictionalPhone,
    SyntheticConfig,
    fictional_phones,
    generate,
    same_network_pairs,
    write_phone,
)

CFG = SyntheticConfig(networks=10, singles=10, legal=10)


@cache
def _phones(region: str) -> list[FictionalPhone]:
    return list(fictional_phones(region))


def test_same_seed_same_ads_other_seed_other_ads() -> None:
    a = generate(CFG, seed=4)
    assert a == generate(CFG, seed=4)
    assert [s.ad.text for s in a] != [s.ad.text for s in generate(CFG, seed=5)]


def test_labels_point_at_the_planted_text() -> None:
    ads = generate(CFG, seed=1)
    assert {s.kind for s in ads} == {"network", "single", "legal"}
    for s in ads:
        text = s.ad.text
        for p in s.phones:
            assert text[p.span[0] : p.span[1]] == p.raw
        for eid, (start, end) in s.indicators:
            assert 0 <= start < end <= len(text), eid
    assert len(same_network_pairs(ads)) > 0


def test_found_indicators_are_exactly_the_planted_ones() -> None:
    lex = load_lexicon()
    for s in generate(CFG, seed=2):
        contacts = extract_contacts(s.ad.text, region=region_for_location(s.ad.location))
        found = {(i.id, i.span) for i in lex.find(s.ad.text, contacts)}
        assert found == set(s.indicators), s.ad.text


def test_legal_ads_use_the_non_predictive_phrasing_and_are_labelled_so() -> None:
    ads = [s for s in generate(CFG, seed=3) if s.kind == "legal"]
    assert all(not s.trafficking for s in ads)
    assert sum(any(i == "movement-language" for i, _ in s.indicators) for s in ads) >= 5


@pytest.mark.parametrize("form", PLAIN_FORMS + DISGUISED_FORMS)
@pytest.mark.parametrize("region", ["US", "GB"])
def test_every_phone_form_is_extracted(form: str, region: str) -> None:
    rng = random.Random(form)
    phones = _phones(region)
    for phone in rng.sample(phones, 5):
        raw = write_phone(phone, form, rng)
        text = f"Good day. Call {raw}. Thanks"
        found = [c for c in extract_contacts(text, region=region) if c.kind == "phone"]
        assert [c.value for c in found] == [phone.e164], raw
        assert found[0].disguised is (form in DISGUISED_FORMS), raw


def test_fictional_ranges_only() -> None:
    for p in list(fictional_phones("US"))[:300]:
        assert p.e164[5:9] == "5550" and 100 <= int(p.e164[8:]) <= 199
    for p in fictional_phones("GB"):
        assert p.groups[1] in ("7946", "496", "498", "9649")


def test_numbers_are_never_reused_once_the_ranges_run_out() -> None:
    """Beyond the 13,000 UK fictional numbers: each number belongs to one ad or one network,
    the rest get an e-mail address of their own (or their network's), and a phone-linked
    network without a number left is linked (and labelled) by e-mail instead."""
    import re

    cfg = SyntheticConfig(networks=4500, network_size=(3, 5), singles=1000, legal=1000,
                          uk_share=1.0)  # networks alone need about 13,500 numbers
    synth = generate(cfg, seed=4)
    assert generate(cfg, seed=4)[-5:] == synth[-5:]
    owner: dict[str, str] = {}
    for s in synth:
        contacts = {p.e164 for p in s.phones}
        contacts |= set(re.findall(r"[\w.]+@example\.com", s.ad.text))
        assert contacts, s.ad.text
        who = s.network or s.ad.ad_id
        for c in contacts:
            assert owner.setdefault(c, who) == who, (c, who)
    phones = {p.e164 for s in synth for p in s.phones}
    assert len(phones) == len(_phones("GB"))  # every number used, none twice
    assert all(not s.phones for s in synth if s.network is None)
    late = [s for s in synth if s.network is not None and not s.phones]
    assert late and all(s.link != "phone" for s in late)
    assert {s.link for s in late} >= {"email"}
