"""The default policy: a table of verdicts and the decision each gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from bastion.policy import decide
from bastion.scan.matcher import Match
from bastion.signals.base import Variant


@dataclass
class V:
    status: str
    matches: list[Match] = field(default_factory=list)


def m(signal_type: str = "pdq", distance: int = 0, auto: bool = True,
      query: str | None = "stored", bank: dict[str, Any] | None = None,
      transform: str | None = "original") -> Match:
    return Match(
        bank="b", bank_id=1, entry_id=1, signal_type=signal_type, distance=distance,
        label="csam", classification="A1", auto_action=auto,
        query_variant=None if query is None else Variant(query),
        bank_variant=bank, transform=transform if signal_type == "pdq" else None,
    )


@pytest.mark.parametrize(("verdict", "decision", "rule"), [
    (V("match", [m("md5")]), "block", "auto_action_strong_match"),
    (V("match", [m("sha1")]), "block", "auto_action_strong_match"),
    (V("match", [m("sha256")]), "block", "auto_action_strong_match"),
    (V("match", [m(distance=10)]), "block", "auto_action_strong_match"),
    (V("match", [m(distance=10, transform="rot90")]), "block", "auto_action_strong_match"),
    (V("match", [m(distance=4, bank={"kind": "stored", "index": 0})]), "block",
     "auto_action_strong_match"),
    (V("match", [m(distance=0, query=None)]), "block", "auto_action_strong_match"),
    (V("match", [m(distance=11)]), "hold", "match"),
    (V("match", [m(distance=3, query="crop")]), "hold", "match"),
    (V("match", [m(distance=3, query="band")]), "hold", "match"),
    (V("match", [m(distance=3, query="frame")]), "hold", "match"),
    (V("match", [m(distance=3, bank={"kind": "crop", "detail": "c90"})]), "hold", "match"),
    (V("match", [m("md5", auto=False)]), "hold", "match"),
    (V("match", [m(distance=0, auto=False)]), "hold", "match"),
    (V("match", [m("vpdq", distance=5)]), "hold", "match"),
    (V("match", [m(distance=20), m("md5")]), "block", "auto_action_strong_match"),
    (V("not_scanned"), "hold", "not_scanned"),
    (V("match", [m("md5")]), "block", "auto_action_strong_match"),
    (V("no_match"), "allow", "no_match"),
])
def test_default_policy_table(verdict: V, decision: str, rule: str) -> None:
    result = decide(verdict)
    assert (result.decision, result.rule) == (decision, rule)
