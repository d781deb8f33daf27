"""Turning untrusted bytes into signals (layer 1: no database, no web, no global state).

Importing this package registers the built-in signal types in
:data:`bastion.signals.base.REGISTRY`.
"""

from bastion.signals import exact, keyword, pdq, url  # noqa: F401  (registers signal types)
from bastion.signals.base import (
    REGISTRY,
    Signal,
    SignalType,
    Variant,
    VideoFrame,
    VideoSignal,
    get_signal_type,
)

__all__ = [
    "REGISTRY",
    "Signal",
    "SignalType",
    "Variant",
    "VideoFrame",
    "VideoSignal",
    "get_signal_type",
]
