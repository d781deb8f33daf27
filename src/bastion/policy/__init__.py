"""Policy: what a verdict and a review decision mean for the platform.

:mod:`.rules` is the rule engine (rules from the settings file's ``[policy]`` table);
:mod:`.defaults` holds the built-in defaults' reasoning and :func:`decide`.
"""

from bastion.policy.defaults import Decision, PolicyResult, decide
from bastion.policy.rules import (
    DEFAULT_POLICY,
    DecisionEffects,
    MatchFacts,
    Policy,
    PolicyOutcome,
    load_policy,
)

__all__ = ["DEFAULT_POLICY", "Decision", "DecisionEffects", "MatchFacts", "Policy",
           "PolicyOutcome", "PolicyResult", "decide", "load_policy"]
