"""UI pages (being built; see bastion.web.kit)."""

from __future__ import annotations

from bastion.web.kit import UiKit


def register(kit: UiKit) -> None:
    """Add this module's routes to kit.app."""
    del kit
