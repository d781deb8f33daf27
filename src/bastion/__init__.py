"""Bastion: a self-hosted child-safety service.

Layers (each imports only from those above it): ``bastion.signals`` (untrusted bytes to
signals), ``bastion.index`` (in-memory matching), ``bastion.store`` (persistence), the domain
services (``banks``, ``scan``, ...), and the adapters (``api``, ``web``, ``cli``). See
``../shared/DESIGN.md`` for the map.
"""

__version__ = "0.1.0"
