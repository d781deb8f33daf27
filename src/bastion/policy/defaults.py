"""The default policy: a verdict's ``decision`` (``block``, ``hold`` or ``allow``).

DESIGN.md and issue 5 define the defaults, first that applies:

1. ``block``: a match in a bank marked ``auto_action`` (verified material) that is

   - an exact MD5, SHA-1 or SHA-256 match (the very same bytes), or
   - a PDQ match at distance <= :data:`STRONG_PDQ_DISTANCE` (10 Hamming bits) of the
     uploaded picture's ``stored`` pixels, directly or through one of its 8 dihedral
     transforms, against a whole-picture bank hash (not a crop or caption-band variant on
     either side). Quality >= 50 holds for every match: the matcher never matches a
     low-quality hash.

   Why 10 bits: Meta's PDQ documentation puts near-identical copies (re-encodes,
   resizes) within about 10 bits, while the match threshold (31) also admits edited
   copies that a person should confirm; unrelated photos are 100+ bits apart
   (FIELD-NOTES.md measured a minimum of 106 among ~400 benign pairs).
2. ``hold``: any other match (any bank, any signal type, any variant or distance).
3. ``hold``: an item that could not be scanned (``not_scanned``): never treated as clean.
4. ``allow``: otherwise.

These rules are :data:`bastion.policy.rules.DEFAULT_RULES`, evaluated by the rule engine
(:mod:`bastion.policy.rules`); :func:`decide` applies the default policy, and a policy
from the settings file replaces them. Keyword hits (issue 5) add to a score and decide
nothing by themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from bastion.scan.matcher import Match

Decision = Literal["block", "hold", "allow"]

#: Largest PDQ distance (Hamming bits, inclusive) that blocks at once in an auto-action bank.
STRONG_PDQ_DISTANCE = 10

#: Exact signal types: a match means the very same bytes.
EXACT_SIGNAL_TYPES = frozenset({"md5", "sha1", "sha256"})

#: Variant kinds of a whole picture as stored (the query side must be ``stored``; a bank
#: entry without a variant is a whole-picture hash received from elsewhere).
_WHOLE_BANK_KINDS = frozenset({"stored", "displayed"})


class VerdictFacts(Protocol):
    """What the policy reads of a verdict: its status and its matches."""

    @property
    def status(self) -> str: ...

    @property
    def matches(self) -> Sequence[Match]: ...


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """The decision and the rule that made it (``rule``: a short stable name;
    ``match`` the deciding match, if any)."""

    decision: Decision
    rule: str
    match: Match | None = None


def is_strong(match: Match) -> bool:
    """True if ``match`` alone blocks (rule 1 of the module docstring)."""
    if not match.auto_action:
        return False
    if match.signal_type in EXACT_SIGNAL_TYPES:
        return True
    if match.signal_type != "pdq" or match.distance > STRONG_PDQ_DISTANCE:
        return False
    qv = match.query_variant
    if qv is not None and qv.kind != "stored":
        return False
    bv = match.bank_variant
    return bv is None or bv.get("kind", "stored") in _WHOLE_BANK_KINDS


def decide(verdict: VerdictFacts) -> PolicyResult:
    """The default policy's decision for ``verdict`` (see the module docstring)."""
    from bastion.policy.rules import DEFAULT_POLICY

    outcome = DEFAULT_POLICY.evaluate(verdict)
    deciding = None
    if outcome.match is not None:
        deciding = next((m for m in verdict.matches if str(m.entry_id) == outcome.match.entry_id
                         and m.bank == outcome.match.bank), None)
    return PolicyResult(outcome.decision, outcome.rule, deciding)
