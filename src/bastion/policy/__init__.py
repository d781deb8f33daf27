"""Policy: what a verdict means for the platform (see :mod:`.defaults`)."""

from bastion.policy.defaults import Decision, PolicyResult, decide

__all__ = ["Decision", "PolicyResult", "decide"]
