"""The policy's rule engine: rules from the settings file (TOML) mapping verdicts and review
decisions to outcomes.

A policy is the ``[policy]`` table of the settings file, validated at start
(:func:`load_policy` raises :class:`~bastion.errors.ConfigurationError` naming the field)::

    [policy]
    not_scanned = "hold"            # decision for items that could not be scanned
    second_review_csam = false      # a csam decision needs a second reviewer
    fp_votes_to_disable = 3         # false-positive votes that disable a bank entry (0: never)
    confirmed_bank = "confirmed"    # where confirmed csam signals go

    [[policy.rules]]                # verdict rules, in order (replace the defaults)
    name = "ncmec_exact"
    when = { signal_type = ["md5"], bank = ["ncmec"], auto_action = true }
    decision = "block"              # block | hold | allow
    open_case = true
    hide = true                     # hide the content now, before review
    priority = 90                   # 0-100, higher reviewed first
    actions = ["hide"]              # enqueued with the verdict
    score = 0                       # added per matching match
    continue = false                # true: add score/actions and keep evaluating

    [[policy.decision_rules]]       # review-decision rules: every matching rule applies
    when = { decision = ["csam"] }
    actions = ["takedown", "preserve", "report"]
    add_to_confirmed_bank = true

Verdict rule conditions (``when``; all must hold; an empty ``when`` always holds):

- on the verdict: ``status`` (list of ``match``, ``no_match``, ``not_scanned``),
  ``min_score`` (the score of earlier ``continue`` rules, at least), ``min_indicator``
  (``{name: value}``: each named indicator value of the verdict at least this; a verdict
  without the value does not meet it). Classified ads (issue 8) give :data:`ADS_INDICATORS`:
  ``ads_score`` (the ad's score, 0-1), ``ads_network_size`` (ads in its network),
  ``ads_network_cities`` (distinct cities of the network) and ``ads_network_days`` (days from
  the network's first to its last posting). Other names starting ``ads_`` are refused (a
  typo would otherwise never hold). For example, a case for a network seen in 3 or more
  cities over at least a week::

      [[policy.rules]]
      name = "ad_network_spread"
      when = { min_indicator = { ads_network_cities = 3, ads_network_days = 7 } }
      decision = "hold"
      open_case = true
- on its matches — the rule holds when at least one match meets every match condition:
  ``signal_type``, ``not_signal_type``, ``bank``, ``label``, ``classification`` (lists),
  ``auto_action`` (the bank's flag), ``max_distance`` (integer, inclusive, in the signal
  type's unit: Hamming bits for PDQ), ``query_variant`` (kinds of the uploaded picture's
  variant that matched; a match without one counts as ``stored``), ``bank_variant``
  (kinds of the bank entry's variant; none counts as ``stored``).

The first rule without ``continue`` that holds decides; when none does the verdict is
``allow`` (rule ``no_match``). :data:`DEFAULT_RULES` are DESIGN.md's and issue 5's defaults
(:mod:`bastion.policy.defaults` explains the 10-bit PDQ bound).

Decision rule conditions: ``decision`` (list), ``matched`` (the case had matches),
``hidden`` (the content is hidden). Outcomes: ``actions``, ``add_to_confirmed_bank``,
``false_positive_vote`` (one vote on every matched bank entry), ``restore`` (unhide).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bastion.errors import ConfigurationError

Decision = Literal["block", "hold", "allow"]

#: Review decisions (issue 5): one keystroke each in the review UI.
REVIEW_DECISIONS = ("csam", "child_exploitation_other", "trafficking", "adult_legal",
                    "not_violating", "escalate")
#: Industry classification of a ``csam`` decision: A = prepubescent, B = pubescent;
#: 1 = sex act, 2 = lascivious exhibition (NCMEC's ``industryClassification``).
CLASSIFICATIONS = ("A1", "A2", "B1", "B2")
#: Actions a rule may enqueue (delivered by the actions outbox).
ACTION_KINDS = ("hide", "takedown", "restore", "suspend", "preserve", "report",
                "share")


@dataclass(frozen=True, slots=True)
class MatchFacts:
    """What the policy reads of one match (from a :class:`~bastion.scan.matcher.Match` or
    its JSON): ``query_variant``/``bank_variant`` are variant kinds (None: stored)."""

    signal_type: str
    bank: str
    label: str
    classification: str | None
    auto_action: bool
    distance: int
    query_variant: str | None = None
    bank_variant: str | None = None
    entry_id: str | None = None

    @classmethod
    def of(cls, m: Any) -> MatchFacts:
        """From a :class:`~bastion.scan.matcher.Match`."""
        qv = getattr(m, "query_variant", None)
        bv = getattr(m, "bank_variant", None)
        return cls(
            signal_type=m.signal_type, bank=m.bank, label=m.label or "",
            classification=m.classification, auto_action=bool(m.auto_action),
            distance=int(m.distance), query_variant=None if qv is None else qv.kind,
            bank_variant=None if bv is None else str(bv.get("kind", "stored")),
            entry_id=str(m.entry_id),
        )

    @classmethod
    def from_json(cls, d: Mapping[str, Any], *, auto_action: bool | None = None) -> MatchFacts:
        """From a DESIGN.md match object; ``auto_action`` (the bank's flag) when the object
        lacks it. Raises :class:`~bastion.errors.InvalidInput` for a malformed object."""
        from bastion.errors import InvalidInput

        try:
            qv = d.get("query_variant")
            bv = d.get("bank_variant")
            aa = d.get("auto_action", auto_action)
            return cls(
                signal_type=str(d["signal_type"]), bank=str(d["bank"]),
                label=str(d.get("label") or ""), classification=d.get("classification"),
                auto_action=bool(aa), distance=int(d.get("distance", 0)),
                query_variant=None if not qv else str(qv.get("kind", "stored")),
                bank_variant=None if not bv else str(bv.get("kind", "stored")),
                entry_id=None if d.get("entry_id") is None else str(d["entry_id"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(f"malformed match object: {exc}") from None


class VerdictFacts(Protocol):
    """What the policy reads of a verdict: its status and its matches."""

    @property
    def status(self) -> str: ...

    @property
    def matches(self) -> Sequence[Any]: ...


#: The indicator values of a classified ad (see the module docstring), with what they are.
ADS_INDICATORS: dict[str, str] = {
    "ads_score": "the ad's indicator score, 0-1",
    "ads_network_size": "ads in the ad's network",
    "ads_network_cities": "distinct cities of the ad's network",
    "ads_network_days": "days from the network's first to its last posting",
}


class _When(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: tuple[Literal["match", "no_match", "not_scanned"], ...] | None = None
    min_score: float | None = None
    min_indicator: dict[str, float] | None = None
    signal_type: tuple[str, ...] | None = None
    not_signal_type: tuple[str, ...] | None = None
    bank: tuple[str, ...] | None = None
    label: tuple[str, ...] | None = None
    classification: tuple[str, ...] | None = None
    auto_action: bool | None = None
    max_distance: int | None = Field(default=None, ge=0)
    query_variant: tuple[str, ...] | None = None
    bank_variant: tuple[str, ...] | None = None

    @field_validator("min_indicator")
    @classmethod
    def _known_ads_indicators(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        for name in v or {}:
            if name.startswith("ads_") and name not in ADS_INDICATORS:
                raise ValueError(f"unknown ad indicator {name!r}; one of "
                                 f"{', '.join(ADS_INDICATORS)}")
        return v

    def has_match_conditions(self) -> bool:
        """True when the rule has any condition on individual matches."""
        return any(getattr(self, f) is not None for f in (
            "signal_type", "not_signal_type", "bank", "label", "classification",
            "auto_action", "max_distance", "query_variant", "bank_variant"))

    def match_holds(self, m: MatchFacts) -> bool:
        """True when match ``m`` meets every match condition of the rule."""
        if self.signal_type is not None and m.signal_type not in self.signal_type:
            return False
        if self.not_signal_type is not None and m.signal_type in self.not_signal_type:
            return False
        if self.bank is not None and m.bank not in self.bank:
            return False
        if self.label is not None and m.label not in self.label:
            return False
        if self.classification is not None and m.classification not in self.classification:
            return False
        if self.auto_action is not None and m.auto_action != self.auto_action:
            return False
        if self.max_distance is not None and m.distance > self.max_distance:
            return False
        if self.query_variant is not None and (m.query_variant or "stored") not in (
                self.query_variant):
            return False
        return self.bank_variant is None or (m.bank_variant or "stored") in self.bank_variant


class Rule(BaseModel):
    """One verdict rule (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    when: _When = _When()
    decision: Decision | None = None
    open_case: bool = False
    hide: bool = False
    priority: int = Field(default=50, ge=0, le=100)
    actions: tuple[Literal["hide", "takedown", "restore", "suspend", "preserve",
                           "report", "share"], ...] = ()
    score: float = 0.0
    continue_: bool = Field(default=False, alias="continue")


class _DecisionWhen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    decision: tuple[Literal["csam", "child_exploitation_other", "trafficking", "adult_legal",
                            "not_violating", "escalate"], ...] | None = None
    matched: bool | None = None
    hidden: bool | None = None


class DecisionRule(BaseModel):
    """One review-decision rule (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="decision", min_length=1, max_length=100)
    when: _DecisionWhen = _DecisionWhen()
    actions: tuple[Literal["hide", "takedown", "restore", "suspend", "preserve",
                           "report", "share"], ...] = ()
    add_to_confirmed_bank: bool = False
    false_positive_vote: bool = False
    restore: bool = False


_EXACT = ["md5", "sha1", "sha256"]

#: The default verdict rules (DESIGN.md, issue 5), in order.
DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    {"name": "auto_action_strong_match", "when": {"signal_type": _EXACT, "auto_action": True},
     "decision": "block", "open_case": True, "hide": True, "priority": 90,
     "actions": ["hide"]},
    {"name": "auto_action_strong_match",
     "when": {"signal_type": ["pdq"], "auto_action": True, "max_distance": 10,
              "query_variant": ["stored"], "bank_variant": ["stored", "displayed"]},
     "decision": "block", "open_case": True, "hide": True, "priority": 90,
     "actions": ["hide"]},
    {"name": "keyword_hit", "when": {"signal_type": ["keyword"]}, "score": 10,
     "continue": True},
    {"name": "match", "when": {"not_signal_type": ["keyword"]}, "decision": "hold",
     "open_case": True, "priority": 60},
)

#: The default review-decision rules.
DEFAULT_DECISION_RULES: tuple[dict[str, Any], ...] = (
    {"name": "confirmed_csam", "when": {"decision": ["csam"]},
     "actions": ["takedown", "preserve", "report"], "add_to_confirmed_bank": True},
    {"name": "confirmed_other", "when": {"decision": ["child_exploitation_other",
                                                      "trafficking"]},
     "actions": ["takedown", "preserve", "report"]},
    {"name": "false_positive", "when": {"decision": ["not_violating"], "matched": True},
     "false_positive_vote": True},
    {"name": "restore", "when": {"decision": ["not_violating", "adult_legal"],
                                 "hidden": True},
     "actions": ["restore"], "restore": True},
)


class Policy(BaseModel):
    """A validated policy (see the module docstring); :func:`load_policy` builds it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    not_scanned: Decision = "hold"
    not_scanned_case: bool = True
    not_scanned_priority: int = Field(default=30, ge=0, le=100)
    second_review_csam: bool = False
    fp_votes_to_disable: int = Field(default=3, ge=0)
    confirmed_bank: str = Field(default="confirmed", min_length=1, max_length=100)
    rules: tuple[Rule, ...] = tuple(Rule.model_validate(r) for r in DEFAULT_RULES)
    decision_rules: tuple[DecisionRule, ...] = tuple(
        DecisionRule.model_validate(r) for r in DEFAULT_DECISION_RULES)

    def evaluate(
        self, verdict: VerdictFacts, *, indicators: Mapping[str, float] | None = None,
        auto_action: Mapping[str, bool] | None = None,
    ) -> PolicyOutcome:
        """What this policy does with ``verdict`` (matches as
        :class:`~bastion.scan.matcher.Match`, :class:`MatchFacts` or JSON objects;
        ``auto_action`` gives banks' flags for JSON matches that lack it)."""
        facts = [_facts(m, auto_action) for m in verdict.matches]
        status = verdict.status
        score = 0.0
        actions: list[str] = []
        trace: list[str] = []
        for rule in self.rules:
            held = _holds(rule.when, status, facts, score, indicators or {})
            if held is None:
                continue
            score += rule.score * max(1, len(held))
            for a in rule.actions:
                if a not in actions:
                    actions.append(a)
            first = held[0] if held else None
            trace.append(f"rule {rule.name!r} holds" + (
                f" for {len(held)} match(es), first {_describe(first)}" if first else ""))
            if rule.continue_ or rule.decision is None:
                continue
            return PolicyOutcome(
                decision=rule.decision, rule=rule.name, open_case=rule.open_case,
                hide=rule.hide, priority=rule.priority, actions=tuple(actions), score=score,
                match=first, trace=tuple(trace))
        if status == "not_scanned":
            trace.append(f"not scanned: policy.not_scanned = {self.not_scanned!r}")
            return PolicyOutcome(
                decision=self.not_scanned, rule="not_scanned", open_case=self.not_scanned_case,
                hide=False, priority=self.not_scanned_priority, actions=tuple(actions),
                score=score, match=None, trace=tuple(trace))
        trace.append("no deciding rule holds: allow")
        return PolicyOutcome(decision="allow", rule="no_match" if not facts else "no_rule",
                             open_case=False, hide=False, priority=0,
                             actions=tuple(actions), score=score, match=None,
                             trace=tuple(trace))

    def on_decision(self, decision: str, *, matched: bool, hidden: bool) -> DecisionEffects:
        """The effects of a review ``decision`` (every decision rule that holds applies).
        Raises :class:`~bastion.errors.InvalidInput` for an unknown decision."""
        from bastion.errors import InvalidInput

        if decision not in REVIEW_DECISIONS:
            raise InvalidInput(f"unknown decision {decision!r}; one of "
                               f"{', '.join(REVIEW_DECISIONS)}")
        actions: list[str] = []
        add = vote = restore = False
        names: list[str] = []
        for r in self.decision_rules:
            w = r.when
            if w.decision is not None and decision not in w.decision:
                continue
            if w.matched is not None and w.matched != matched:
                continue
            if w.hidden is not None and w.hidden != hidden:
                continue
            names.append(r.name)
            actions.extend(a for a in r.actions if a not in actions)
            add |= r.add_to_confirmed_bank
            vote |= r.false_positive_vote
            restore |= r.restore
        return DecisionEffects(
            actions=tuple(actions), add_to_confirmed_bank=add, false_positive_vote=vote,
            restore=restore, second_review=decision == "csam" and self.second_review_csam,
            rules=tuple(names))


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    """What the policy does with one verdict: ``decision`` (block/hold/allow), the deciding
    ``rule``'s name, whether to ``open_case`` and ``hide`` at once, the case ``priority``
    (0-100), ``actions`` to enqueue, the accumulated ``score``, the deciding ``match`` and
    a human-readable ``trace`` (``bastion policy check``)."""

    decision: Decision
    rule: str
    open_case: bool
    hide: bool
    priority: int
    actions: tuple[str, ...]
    score: float
    match: MatchFacts | None
    trace: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """As JSON (``bastion policy check``)."""
        return {
            "decision": self.decision, "rule": self.rule, "open_case": self.open_case,
            "hide": self.hide, "priority": self.priority, "actions": list(self.actions),
            "score": self.score, "trace": list(self.trace),
        }


@dataclass(frozen=True, slots=True)
class DecisionEffects:
    """The effects of one review decision (see :meth:`Policy.on_decision`)."""

    actions: tuple[str, ...]
    add_to_confirmed_bank: bool
    false_positive_vote: bool
    restore: bool
    second_review: bool
    rules: tuple[str, ...]


def _facts(m: Any, auto_action: Mapping[str, bool] | None) -> MatchFacts:
    if isinstance(m, MatchFacts):
        return m
    if isinstance(m, Mapping):
        return MatchFacts.from_json(m, auto_action=(auto_action or {}).get(str(m.get("bank"))))
    return MatchFacts.of(m)


def _holds(
    when: _When, status: str, facts: list[MatchFacts], score: float,
    indicators: Mapping[str, float],
) -> list[MatchFacts] | None:
    """None when the rule does not hold; else the matches meeting its match conditions
    (empty when it has none)."""
    if when.status is not None and status not in when.status:
        return None
    if when.min_score is not None and score < when.min_score:
        return None
    if when.min_indicator is not None and any(
            indicators.get(k, float("-inf")) < v for k, v in when.min_indicator.items()):
        return None
    if not when.has_match_conditions():
        return []
    held = [m for m in facts if when.match_holds(m)]
    return held or None


def _describe(m: MatchFacts | None) -> str:
    if m is None:
        return "-"
    return (f"{m.signal_type} in bank {m.bank!r} (label {m.label!r}, auto_action "
            f"{m.auto_action}) at distance {m.distance}")


def load_policy(raw: Mapping[str, Any] | None) -> Policy:
    """Validate the ``[policy]`` table (None or empty: every default). Rules given replace
    the defaults. Raises :class:`ConfigurationError` naming the field at fault."""
    try:
        return Policy.model_validate(dict(raw or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"policy.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise ConfigurationError(f"invalid policy in the settings file: {problems}") from None


#: The policy with every default.
DEFAULT_POLICY = Policy()
