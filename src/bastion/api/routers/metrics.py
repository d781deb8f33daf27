"""``GET /metrics``: Prometheus text (scope ``admin``, or the separate metrics token)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from bastion.api.auth import requires
from bastion.api.deps import Svc
from bastion.api.routers.content import _PROBLEMS

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    openapi_extra=requires("admin", metrics_token=True),
    responses={200: {"content": {"text/plain": {}}}, **_PROBLEMS},
)
def metrics(svc: Svc) -> Response:
    """This process's metrics in the Prometheus text format."""
    return Response(svc.metrics.render(svc.matcher, db=svc.db, settings=svc.settings),
                    media_type=CONTENT_TYPE_LATEST)
