"""The rule engine: a table of verdicts and the cases and actions each produces; custom
rules from TOML; invalid policies refused naming the field; ``bastion policy check``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bastion.cli.main import main
from bastion.config import load_settings
from bastion.errors import ConfigurationError, InvalidInput
from bastion.policy import DEFAULT_POLICY, load_policy


@dataclass
class V:
    status: str
    matches: list[dict[str, Any]] = field(default_factory=list)


def m(st: str = "pdq", d: int = 0, auto: bool = True, q: str | None = None,
      label: str = "csam", bank: str = "b") -> dict[str, Any]:
    out: dict[str, Any] = {"bank": bank, "entry_id": "1", "signal_type": st, "distance": d,
                           "label": label, "classification": "A1", "auto_action": auto}
    if q:
        out["query_variant"] = {"kind": q}
    return out


# (verdict, decision, open_case, hide, priority, actions)
TABLE = [
    (V("match", [m("md5")]), "block", True, True, 90, ("hide",)),
    (V("match", [m("sha256", auto=False)]), "hold", True, False, 60, ()),
    (V("match", [m(d=10, q="stored")]), "block", True, True, 90, ("hide",)),
    (V("match", [m(d=11)]), "hold", True, False, 60, ()),
    (V("match", [m(d=2, q="band")]), "hold", True, False, 60, ()),
    (V("match", [m("url", label="trafficking")]), "hold", True, False, 60, ()),
    (V("match", [m("keyword", label="trafficking")]), "allow", False, False, 0, ()),
    (V("match", [m("keyword"), m("keyword"), m("vpdq", d=3)]), "hold", True, False, 60, ()),
    (V("not_scanned"), "hold", True, False, 30, ()),
    (V("no_match"), "allow", False, False, 0, ()),
]


@pytest.mark.parametrize(("verdict", "decision", "case", "hide", "priority", "actions"), TABLE)
def test_default_table(verdict: V, decision: str, case: bool, hide: bool, priority: int,
                       actions: tuple[str, ...]) -> None:
    out = DEFAULT_POLICY.evaluate(verdict)
    assert (out.decision, out.open_case, out.hide, out.priority, out.actions) == (
        decision, case, hide, priority, actions)


def test_keyword_hits_add_to_the_score() -> None:
    out = DEFAULT_POLICY.evaluate(V("match", [m("keyword"), m("keyword")]))
    assert out.score == 20 and not out.open_case


def test_custom_rules_from_toml(tmp_path: Path) -> None:
    (tmp_path / "bastion.toml").write_text('''
[policy]
not_scanned = "allow"
not_scanned_case = false

[[policy.rules]]
name = "kw"
when = { signal_type = ["keyword"] }
score = 30
continue = true

[[policy.rules]]
name = "kw_many"
when = { min_score = 60 }
decision = "hold"
open_case = true
priority = 40
actions = ["hide"]

[[policy.rules]]
name = "ncmec"
when = { bank = ["ncmec"], max_distance = 20 }
decision = "block"
open_case = true
hide = true
priority = 95
actions = ["hide", "preserve"]
''')
    policy = load_policy(load_settings(environ={}, home=tmp_path).policy)
    assert policy.evaluate(V("match", [m("keyword")])).decision == "allow"
    two = policy.evaluate(V("match", [m("keyword"), m("keyword")]))
    assert (two.decision, two.rule, two.actions, two.priority) == ("hold", "kw_many",
                                                                   ("hide",), 40)
    nc = policy.evaluate(V("match", [m(d=18, bank="ncmec", auto=False)]))
    assert (nc.decision, nc.hide, nc.actions) == ("block", True, ("hide", "preserve"))
    assert policy.evaluate(V("match", [m(d=25, bank="ncmec")])).decision == "allow"
    ns = policy.evaluate(V("not_scanned"))
    assert (ns.decision, ns.open_case) == ("allow", False)


@pytest.mark.parametrize(("raw", "field_name"), [
    ({"rules": [{"name": "x", "decision": "nuke"}]}, "policy.rules.0.decision"),
    ({"rules": [{"name": "x", "when": {"colour": ["red"]}}]}, "policy.rules.0.when.colour"),
    ({"rules": [{"name": "x", "actions": ["delete_user"]}]}, "policy.rules.0.actions.0"),
    ({"not_scanned": "maybe"}, "policy.not_scanned"),
    ({"fp_votes_to_disable": -1}, "policy.fp_votes_to_disable"),
    ({"decision_rules": [{"when": {"decision": ["bad"]}}]},
     "policy.decision_rules.0.when.decision.0"),
])
def test_invalid_policy_names_the_field(raw: dict[str, Any], field_name: str) -> None:
    with pytest.raises(ConfigurationError, match=field_name.replace(".", r"\.")):
        load_policy(raw)


@pytest.mark.parametrize(("decision", "matched", "hidden", "actions", "add", "vote"), [
    ("csam", True, True, ("takedown", "preserve", "report"), True, False),
    ("trafficking", False, False, ("takedown", "preserve", "report"), False, False),
    ("not_violating", True, True, ("restore",), False, True),
    ("not_violating", False, False, (), False, False),
    ("adult_legal", True, False, (), False, False),
    ("escalate", True, True, (), False, False),
])
def test_decision_effects(decision: str, matched: bool, hidden: bool,
                          actions: tuple[str, ...], add: bool, vote: bool) -> None:
    eff = DEFAULT_POLICY.on_decision(decision, matched=matched, hidden=hidden)
    assert (eff.actions, eff.add_to_confirmed_bank, eff.false_positive_vote) == (
        actions, add, vote)
    assert not eff.second_review


def test_second_review_and_unknown_decision() -> None:
    policy = load_policy({"second_review_csam": True})
    assert policy.on_decision("csam", matched=True, hidden=False).second_review
    with pytest.raises(InvalidInput):
        policy.on_decision("maybe", matched=True, hidden=False)


def test_policy_check_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BASTION_HOME", str(tmp_path))
    monkeypatch.delenv("BASTION_CONFIG", raising=False)
    path = tmp_path / "v.json"
    path.write_text(json.dumps({"status": "match", "matches": [m("md5")]}))
    with pytest.raises(SystemExit) as exc:
        main(["policy", "check", str(path), "--json", "--no-store"])
    assert exc.value.code in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert (out["decision"], out["rule"], out["open_case"], out["actions"]) == (
        "block", "auto_action_strong_match", True, ["hide"])
    path.write_text("{not json")
    with pytest.raises(SystemExit) as exc:
        main(["policy", "check", str(path), "--no-store"])
    assert exc.value.code == 2 and "not JSON" in capsys.readouterr().err
