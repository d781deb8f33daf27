"""Bastion's HTTP API (FastAPI): :func:`bastion.api.app.create_app` builds it."""
