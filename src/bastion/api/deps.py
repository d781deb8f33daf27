"""Dependencies shared by the routers: the services and the caller's API key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from bastion.api.fetch import FetchPolicy
from bastion.api.metrics import Metrics
from bastion.apikeys.service import ApiKeyRecord
from bastion.config import Settings
from bastion.content.service import ContentService
from bastion.scan.service import MatchService
from bastion.signals.isolation import DecodePool
from bastion.store.database import Database


@dataclass(slots=True)
class Services:
    """Everything one API process holds (built by :func:`bastion.api.app.create_app`)."""

    settings: Settings
    db: Database
    matcher: MatchService
    pool: DecodePool | None
    content: ContentService
    fetch_policy: FetchPolicy
    metrics: Metrics


def get_services(request: Request) -> Services:
    """The app's :class:`Services`."""
    svc: Services = request.app.state.services
    return svc


def get_actor(request: Request) -> str:
    """The audit actor of this request: ``api-key:<id>`` (``metrics-token`` when the
    metrics token was used)."""
    key: ApiKeyRecord | None = getattr(request.state, "api_key", None)
    return key.actor if key is not None else "metrics-token"


Svc = Annotated[Services, Depends(get_services)]
Actor = Annotated[str, Depends(get_actor)]
