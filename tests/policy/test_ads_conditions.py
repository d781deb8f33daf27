"""Policy conditions on classified ads (issue 8): a case at an ad's score, or for its
network's size, spread over cities, or time span; unknown ``ads_`` names refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from bastion.errors import ConfigurationError
from bastion.policy import load_policy
from bastion.policy.rules import ADS_INDICATORS


@dataclass
class V:
    status: str = "no_match"
    matches: list[dict[str, Any]] = field(default_factory=list)


SPREAD = load_policy({"rules": [
    {"name": "ad_network_spread",
     "when": {"min_indicator": {"ads_network_cities": 3, "ads_network_days": 7}},
     "decision": "hold", "open_case": True, "priority": 55},
    {"name": "ad_network_size", "when": {"min_indicator": {"ads_network_size": 10}},
     "decision": "hold", "open_case": True, "priority": 50},
]})


@pytest.mark.parametrize(("facts", "rule", "case"), [
    # three cities over eight days: spread
    ({"ads_network_size": 4, "ads_network_cities": 3, "ads_network_days": 8.0},
     "ad_network_spread", True),
    # exactly at both bounds: holds (inclusive)
    ({"ads_network_size": 3, "ads_network_cities": 3, "ads_network_days": 7.0},
     "ad_network_spread", True),
    # many cities in one afternoon: not the spread rule, and too small for the size rule
    ({"ads_network_size": 5, "ads_network_cities": 5, "ads_network_days": 0.2},
     "no_match", False),
    # a long-lived network in one city
    ({"ads_network_size": 6, "ads_network_cities": 1, "ads_network_days": 90.0},
     "no_match", False),
    # large but local and brief: the size rule
    ({"ads_network_size": 12, "ads_network_cities": 1, "ads_network_days": 0.0},
     "ad_network_size", True),
    # no ad values at all (not an ad): no rule holds
    ({}, "no_match", False),
    # a value missing is not met (days unknown)
    ({"ads_network_size": 4, "ads_network_cities": 4}, "no_match", False),
])
def test_network_spread_and_time_span_open_cases(
        facts: dict[str, float], rule: str, case: bool) -> None:
    out = SPREAD.evaluate(V(), indicators=facts)
    assert (out.rule, out.open_case) == (rule, case)
    assert out.decision == ("hold" if case else "allow")


def test_unknown_ad_indicator_names_are_refused_naming_the_field() -> None:
    with pytest.raises(ConfigurationError) as err:
        load_policy({"rules": [{"name": "typo", "when": {
            "min_indicator": {"ads_network_city": 2}}, "decision": "hold"}]})
    assert "policy.rules.0.when.min_indicator" in str(err.value)
    assert "ads_network_city" in str(err.value) and "ads_network_cities" in str(err.value)
    # every documented name is accepted; names of other issues are not restricted here
    ok = load_policy({"rules": [{"name": "all", "decision": "hold", "when": {
        "min_indicator": {**dict.fromkeys(ADS_INDICATORS, 1.0), "text_risk": 0.5}}}]})
    assert ok.rules[0].when.min_indicator is not None
    assert set(ADS_INDICATORS) <= set(ok.rules[0].when.min_indicator)
